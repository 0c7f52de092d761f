//! Linux as an [`Os`]: found from VMCOREINFO, its symbols and types loaded
//! from the kernel's own memory on first use.

use super::btf::KernelBtf;
use super::layout::Layout;
use super::symbols::KernelSymbols;
use super::unwind::Text;
use super::view::View;
use super::walker::Linux;
use crate::backtrace::{Backtrace, Frame, StackEnd};
use crate::os::{Machine, Os, TypeInfo};
use crate::paging::KernelPaging;
use crate::{
    Kernel, KernelLog, KernelSymbol, Mapping, Module, ModuleSymbol, OnCpu, OpenFile, PanicInfo,
    Process, Registers, Strings, Thread,
};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{OnceCell, RefCell};
use kvm_core::{CpuState, Endian, Error, OsHint, Result, Source, SourceInfo, VmCoreInfo};
use kvm_elf::SymbolTable;

/// Takes a source that carries VMCOREINFO (and does not say it is
/// another OS).
pub fn probe(source: &dyn Source) -> core::result::Result<Box<dyn Os>, &'static str> {
    let info = source.info();
    if info.os.is_some_and(|os| os != OsHint::Linux) {
        return Err("the source names another OS");
    }
    let vi = info
        .vmcoreinfo
        .clone()
        .ok_or("the dump has no VMCOREINFO")?;
    Ok(Box::new(LinuxOs::new(vi)))
}

/// A Linux kernel: VMCOREINFO, then what it leads to.
#[derive(Debug)]
pub struct LinuxOs {
    vi: VmCoreInfo,
    /// The kernel file's symbols (`-N`), until the kernel's are loaded.
    extra: RefCell<Option<SymbolTable>>,
    /// The kernel's symbols and BTF, loaded on first use.
    data: OnceCell<Result<Data>>,
}

/// What is learnt from the kernel's memory.
#[derive(Debug)]
struct Data {
    syms: KernelSymbols,
    /// The kernel's BTF, or why it was not found: symbols work without
    /// it (a dump cut short before .rodata still has its kallsyms).
    btf: Result<KernelBtf>,
    /// The walker's layout and `init_task`, once resolved.
    walker: OnceCell<(Layout, u64)>,
    /// Symbols of loaded modules, read on first use.
    modules: OnceCell<Vec<ModuleSymbol>>,
    /// Where kernel code is, for backtraces.
    code: OnceCell<Text>,
    /// The module symbols by address (indexes into `modules`), made
    /// when a frame is in a module.
    mod_by_addr: OnceCell<Vec<(u64, usize)>>,
}

impl LinuxOs {
    /// A Linux kernel described by `vi`.
    pub fn new(vi: VmCoreInfo) -> Self {
        LinuxOs {
            vi,
            extra: RefCell::new(None),
            data: OnceCell::new(),
        }
    }

    /// The kernel's symbols and BTF, found on first call (kallsyms tables
    /// from VMCOREINFO, see [`KernelSymbols::new`] and [`KernelBtf::find`]).
    fn data(&self, m: &Machine<'_>) -> Result<&Data> {
        let d = self.data.get_or_init(|| {
            let syms = KernelSymbols::new(m, &self.vi, self.extra.take())?;
            let btf = KernelBtf::find(m, &self.vi, &syms, m.source.info().incomplete);
            Ok(Data {
                syms,
                btf,
                walker: OnceCell::new(),
                modules: OnceCell::new(),
                code: OnceCell::new(),
                mod_by_addr: OnceCell::new(),
            })
        });
        d.as_ref().map_err(|e| *e)
    }

    fn view<'a>(&'a self, m: &'a Machine<'a>, d: &'a Data) -> View<'a> {
        View {
            m,
            vi: &self.vi,
            syms: &d.syms,
            btf: d.btf.as_ref().ok(),
            init_task: d.walker.get().map(|&(_, t)| t),
        }
    }

    /// Runs `f` on the walker (resolving its layout and `init_task` the
    /// first time); BTF failures on the way are the call's error.
    fn with_walker<T>(
        &self,
        m: &Machine<'_>,
        f: impl FnOnce(&Linux<'_, View<'_>>) -> Result<T>,
    ) -> Result<T> {
        let d = self.data(m)?;
        let btf = d.btf.as_ref().map_err(|e| *e)?;
        let view = self.view(m, d);
        let linux = match d.walker.get() {
            Some(&(layout, init_task)) => Linux::from_parts(&view, layout, init_task),
            None => {
                let linux = btf.checked(|| Linux::new(&view))?;
                let _ = d.walker.set(linux.parts());
                linux
            }
        };
        // The walkers ask for some types only when they meet them.
        btf.checked(|| f(&linux))
    }
}

impl LinuxOs {
    /// The module symbol at or below `a` (the modules' symbols indexed
    /// by address on first use).
    fn module_at<'a>(&'a self, m: &Machine<'_>, d: &'a Data, a: u64) -> Option<&'a ModuleSymbol> {
        let mods = self.module_symbols(m).ok()?;
        let by_addr = d.mod_by_addr.get_or_init(|| {
            let mut v: Vec<(u64, usize)> = mods
                .iter()
                .enumerate()
                .filter(|(_, s)| is_code(s.kind as u8))
                .map(|(i, s)| (s.addr, i))
                .collect();
            v.sort_unstable();
            v
        });
        let i = by_addr
            .partition_point(|&(addr, _)| addr <= a)
            .checked_sub(1)?;
        mods.get(by_addr.get(i)?.1)
    }
}

impl Os for LinuxOs {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn kernel_paging(&self, source: &dyn Source) -> Result<KernelPaging> {
        super::paging::kernel_paging(source.info())
    }

    fn kaslr_offset(&self) -> Option<u64> {
        self.vi.kernel_offset()
    }

    fn add_kernel_symbols(&mut self, table: SymbolTable) -> Result<()> {
        if self.data.get().is_some() {
            return Err(Error::Unsupported("symbols were already loaded"));
        }
        *self.extra.get_mut() = Some(table);
        Ok(())
    }

    fn symbol(&self, m: &Machine<'_>, name: &str) -> Result<Option<KernelSymbol>> {
        let d = self.data(m)?;
        if name == "init_task" && d.walker.get().is_none() {
            // Kernels without data symbols: the walker finds it (a walker
            // that cannot be made leaves the other sources to answer).
            let _ = self.with_walker(m, |_| Ok(()));
        }
        Ok(self.view(m, d).lookup(name))
    }

    fn symbols(&self, m: &Machine<'_>) -> Result<&SymbolTable> {
        self.data(m)?.syms.all(m)
    }

    fn module_symbols(&self, m: &Machine<'_>) -> Result<&[ModuleSymbol]> {
        let d = self.data(m)?;
        if let Some(v) = d.modules.get() {
            return Ok(v);
        }
        let v = self.with_walker(m, |l| l.module_symbols())?;
        Ok(d.modules.get_or_init(|| v))
    }

    fn type_info(&self, m: &Machine<'_>, path: &str) -> Result<Option<TypeInfo>> {
        let d = self.data(m)?;
        let btf = d.btf.as_ref().map_err(|e| *e)?;
        let view = self.view(m, d);
        let (size, off) = btf.checked(|| {
            let size = view.size_of(path);
            let off = path.contains('.').then(|| view.offset_of(path));
            Ok((size, off))
        })?;
        Ok(match off {
            Some(off) => off.zip(size).map(|(o, s)| (Some(o), s)),
            None => size.map(|s| (None, s)),
        })
    }

    fn processes(&self, m: &Machine<'_>) -> Result<Vec<Process>> {
        self.with_walker(m, |l| l.processes())
    }

    fn argv(&self, m: &Machine<'_>, p: &Process) -> Result<Strings> {
        self.with_walker(m, |l| Ok(l.argv(p.task)))
    }

    fn envv(&self, m: &Machine<'_>, p: &Process) -> Result<Strings> {
        self.with_walker(m, |l| Ok(l.envv(p.task)))
    }

    fn loadavg(&self, m: &Machine<'_>) -> Result<[f64; 3]> {
        self.with_walker(m, |l| l.loadavg())
    }

    fn release(&self, m: &Machine<'_>) -> Result<String> {
        self.with_walker(m, |l| l.release())
    }

    fn modules(&self, m: &Machine<'_>) -> Result<Vec<Module>> {
        self.with_walker(m, |l| l.modules())
    }

    /// From VMCOREINFO's symbols and offsets alone: no BTF, no walker.
    fn kernel_log(&self, m: &Machine<'_>) -> Result<KernelLog> {
        // Only the older layout asks for a symbol VMCOREINFO lacks: the
        // kernel's symbols are set up then, not before.
        let symbol = |n: &str| {
            let d = self.data(m).ok()?;
            d.syms.lookup(m, &self.vi, n).map(|s| s.addr)
        };
        // The kernels read here (x86-64, arm64) are little-endian.
        super::log::read(m, Endian::Little, &self.vi, &symbol)
    }

    fn backtrace(&self, m: &Machine<'_>, _p: &Process, t: &Thread) -> Result<Backtrace> {
        let d = self.data(m)?;
        let running = match t.oncpu {
            true => match t.cpu.and_then(|c| cpu_state(m.source.info(), c, t.tid)) {
                Some(c) => Some(c),
                None => {
                    let why = match t.cpu {
                        Some(c) => format!("the task was running on CPU {c} and the dump has no registers for that CPU"),
                        None => "the task was running and the dump has no registers for its CPU".into(),
                    };
                    return Ok(Backtrace {
                        frames: Vec::new(),
                        end: StackEnd::Broken(why),
                        unwinder: "none",
                        from: "cpu registers",
                    });
                }
            },
            false => None,
        };
        if d.code.get().is_none() {
            let text = self.with_walker(m, |l| Ok(l.text()))?;
            let _ = d.code.set(text);
        }
        let text = d.code.get().ok_or(Error::Unsupported("no text ranges"))?;
        let va_bits = va_bits(&self.vi);
        let mut bt =
            self.with_walker(m, |l| l.backtrace(t.task, running.as_ref(), text, va_bits))?;
        let kernel = |a: u64| d.syms.nearest(m, a);
        let module = |a: u64| self.module_at(m, d, a);
        for f in &mut bt.frames {
            symbolize(f, text, &kernel, &module);
        }
        Ok(bt)
    }

    fn maps(&self, m: &Machine<'_>, p: &Process) -> Result<Vec<Mapping>> {
        let page = m
            .source
            .info()
            .page_size
            .or(self.vi.page_size())
            .unwrap_or(4096);
        self.with_walker(m, |l| l.maps(p.task, page))
    }

    fn files(&self, m: &Machine<'_>, p: &Process) -> Result<Vec<OpenFile>> {
        self.with_walker(m, |l| l.files(p.task))
    }

    /// As the kernel's `get_wchan`: a blocked task only (`__get_wchan`
    /// then skips `in_sched_functions`), and the name of the return
    /// address itself (`lookup_symbol_name`, not the call before it).
    fn wchan(&self, m: &Machine<'_>, p: &Process, t: &Thread) -> Result<Option<String>> {
        if t.oncpu || matches!(t.state, None | Some('R')) {
            return Ok(None);
        }
        let d = self.data(m)?;
        let bt = self.backtrace(m, p, t)?;
        // The backtrace found where the scheduler's text is.
        let text = d.code.get().ok_or(Error::Unsupported("no text ranges"))?;
        let Some(f) = bt
            .frames
            .iter()
            .find(|f| !text.sched.iter().any(|&(s, e)| (s..e).contains(&f.pc)))
        else {
            return Ok(None);
        };
        let mut raw = Frame::at(f.pc, f.sp, true);
        let kernel = |a: u64| d.syms.nearest(m, a);
        let module = |a: u64| self.module_at(m, d, a);
        symbolize(&mut raw, text, &kernel, &module);
        Ok(raw.function)
    }

    fn panic_info(&self, m: &Machine<'_>) -> Result<PanicInfo> {
        let log = self.kernel_log(m)?;
        let report = super::panic::find(&log.records);
        // Without the task list (no BTF) the log still tells the panic.
        let procs = self.processes(m).unwrap_or_default();
        let mut on_cpu: Vec<OnCpu> = procs
            .iter()
            .flat_map(|p| p.threads.iter().map(move |t| (p, t)))
            .filter(|(_, t)| t.oncpu)
            .filter_map(|(p, t)| {
                Some(OnCpu {
                    cpu: t.cpu?,
                    tid: t.tid,
                    pid: p.pid,
                    comm: t.name.clone(),
                    idle: false,
                })
            })
            .collect();
        // Idle tasks are on no list: a CPU the dump has a note for (QEMU
        // writes one per CPU, in order) that no task claims ran its own.
        if qemu_numbered(m.source.info()) && !procs.is_empty() {
            for cpu in 0..m.source.info().cpus.len() as u32 {
                if !on_cpu.iter().any(|c| c.cpu == cpu) {
                    on_cpu.push(OnCpu {
                        cpu,
                        tid: 0,
                        pid: 0,
                        comm: format!("swapper/{cpu}"),
                        idle: true,
                    });
                }
            }
        }
        on_cpu.sort_by_key(|c| c.cpu);
        let Some(r) = report else {
            return Ok(PanicInfo {
                panicked: false,
                message: None,
                cpu: None,
                pid: None,
                comm: None,
                time_ns: None,
                registers: None,
                backtrace: None,
                on_cpu,
            });
        };
        let task = r.pid.and_then(|pid| {
            procs
                .iter()
                .find_map(|p| p.threads.iter().find(|t| t.tid == pid).map(|t| (p, t)))
        });
        let backtrace = match task {
            Some((p, t)) => Some(self.backtrace(m, p, t)?),
            None => None,
        };
        let info = m.source.info();
        let registers = r
            .cpu
            .and_then(|c| cpu_state(info, c, r.pid.unwrap_or(u32::MAX)))
            .and_then(|c| registers(info.arch, &c));
        Ok(PanicInfo {
            panicked: true,
            message: Some(r.message),
            cpu: r.cpu,
            pid: r.pid,
            comm: r.comm,
            time_ns: Some(r.time_ns),
            registers,
            backtrace,
            on_cpu,
        })
    }
}

/// x86-64's `user_regs_struct`, the order of its `pr_reg`.
const X86_64_REGS: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

/// arm64's `user_pt_regs`: x0–x30, sp, pc, pstate.
const AARCH64_REGS: [&str; 34] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
    "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
    "x28", "x29", "x30", "sp", "pc", "pstate",
];

/// A CPU note's registers by the architecture's names: all of `pr_reg`
/// where the source kept it, else the program counter, stack and frame
/// pointers.
fn registers(arch: Option<kvm_core::Arch>, c: &CpuState) -> Option<Registers> {
    let (all, few): (&[&'static str], [&'static str; 3]) = match arch? {
        kvm_core::Arch::X86_64 => (&X86_64_REGS, ["rip", "rsp", "rbp"]),
        kvm_core::Arch::Aarch64 => (&AARCH64_REGS, ["pc", "sp", "x29"]),
        _ => return None,
    };
    if c.regs.len() == all.len() {
        return Some(all.iter().copied().zip(c.regs.iter().copied()).collect());
    }
    let mut v: Registers = alloc::vec![(few[0], c.pc), (few[1], c.sp)];
    if let Some(fp) = c.fp {
        v.push((few[2], fp));
    }
    Some(v)
}

/// Text symbol letters (`/proc/kallsyms`: t/T, and weak w/W).
fn is_code(kind: u8) -> bool {
    matches!(kind, b't' | b'T' | b'w' | b'W')
}

/// Names a frame: by the kernel's symbols in its text, else by the
/// modules' (`module`: the module symbol at or below an address).
fn symbolize<'a>(
    f: &mut Frame,
    text: &Text,
    kernel: &dyn Fn(u64) -> Option<(String, u64, u8)>,
    module: &dyn Fn(u64) -> Option<&'a ModuleSymbol>,
) {
    let a = f.lookup_addr();
    if text.in_kernel(a) {
        if let Some((name, addr, _)) = kernel(a).filter(|&(_, _, k)| is_code(k)) {
            f.function = Some(name);
            f.offset = Some(f.pc.wrapping_sub(addr));
        }
    } else if let Some(s) = text.module(a).and(module(a)) {
        f.function = Some(s.name.clone());
        f.offset = Some(f.pc.wrapping_sub(s.addr));
        f.module = Some(s.module.clone());
    }
}

/// The registers of CPU `cpu`, running thread `tid`: QEMU numbers its
/// notes' `pr_pid` 1, 2, … by CPU (then the CPU picks), a kdump kernel
/// writes the running task's pid.
fn cpu_state(info: &SourceInfo, cpu: u32, tid: u32) -> Option<CpuState> {
    let cpus = &info.cpus;
    let c = match qemu_numbered(info) {
        true => cpus.get(cpu as usize),
        false => cpus.iter().find(|c| c.pid == tid),
    }?;
    (c.pc != 0).then(|| c.clone())
}

/// Whether the CPU notes are QEMU's: `pr_pid` 1, 2, … in CPU order.
fn qemu_numbered(info: &SourceInfo) -> bool {
    let cpus = &info.cpus;
    !cpus.is_empty()
        && cpus
            .iter()
            .enumerate()
            .all(|(i, c)| c.pid as usize == i + 1)
}

/// arm64's kernel virtual address bits (VMCOREINFO: `TCR_EL1_T1SZ`, else
/// `VA_BITS`), for stripping return addresses' PAC; 48 when neither is
/// given.
fn va_bits(vi: &VmCoreInfo) -> u32 {
    vi.number("TCR_EL1_T1SZ")
        .filter(|&t| (1..64).contains(&t))
        .map(|t| 64 - t as u32)
        .or_else(|| vi.number("VA_BITS").and_then(|v| u32::try_from(v).ok()))
        .unwrap_or(48)
}
