//! The Linux layer of the facade: symbols from the dump's own kallsyms,
//! types from its BTF, and the [`kvm_proc::Kernel`] the walkers need.

use crate::open::Kvm;
use kvm_core::{Error, PhysAddr, PhysRead, Result, Translate, VirtAddr, VirtRead, VirtReadExt};
use kvm_elf::kallsyms::{self, KallsymsOptions, KallsymsTables};
use kvm_elf::{Btf, SymbolTable};
use std::sync::OnceLock;

/// How far past `_etext` the BTF search looks (arm64 kernels without data
/// symbols have no `__start_BTF`).
const BTF_SEARCH: u64 = 96 << 20;

/// What the facade learns about a Linux kernel once, on first use.
#[derive(Debug)]
pub(crate) struct LinuxData {
    /// The kernel's own symbols (kallsyms in memory, runtime addresses).
    pub syms: SymbolTable,
    /// Symbols of the kernel file given with `-N` (System.map or vmlinux),
    /// relocated by the dump's KASLR offset: used for names the kernel's
    /// own kallsyms lacks (data symbols on arm64).
    pub extra: Option<SymbolTable>,
    /// The kernel's BTF.
    pub btf: Btf,
    /// The walker's layout and `init_task` (by symbol or search), once
    /// resolved.
    pub walker: OnceLock<(kvm_proc::linux::Layout, u64)>,
    /// Symbols of loaded modules, read on first use.
    pub modules: OnceLock<Vec<kvm_proc::ModuleSymbol>>,
}

impl LinuxData {
    /// Decodes kallsyms (tables from VMCOREINFO; the `-N` file's symbols
    /// for kernels before 6.0) and loads BTF (see [`load_btf`]).
    pub fn load(kvm: &Kvm, extra: Option<SymbolTable>) -> Result<LinuxData> {
        let info = kvm.dump().info();
        let vi = info
            .vmcoreinfo
            .as_ref()
            .ok_or(Error::Unsupported("the dump has no VMCOREINFO"))?;
        let extra = match extra {
            Some(t) => Some(t.relocated(vi.kernel_offset().unwrap_or(0))?),
            None => None,
        };
        let known: Vec<(&str, u64)> = vi
            .symbol("_stext")
            .map(|a| ("_stext", a))
            .into_iter()
            .collect();
        let mut opts = KallsymsOptions::le64();
        opts.known = &known;
        // Decode kallsyms and look for BTF at the same time (two cores are
        // common; each takes tens of milliseconds): BTF follows the kallsyms
        // tables in .rodata, so the search needs no symbol.
        let from = tables_end(vi);
        let (syms, searched) = std::thread::scope(|sc| {
            let search = from.map(|from| sc.spawn(move || search_btf(kvm, from)));
            let syms = match KallsymsTables::from_symbols(|n| vi.symbol(n)) {
                Some(tables) => kallsyms::decode(kvm, &tables, &opts).map(|k| k.table),
                // Kernels before 6.0 do not say where their kallsyms are; the
                // kernel file's symbols then serve alone.
                None => extra.clone().ok_or(Error::Unsupported(
                    "VMCOREINFO lacks the kallsyms_* symbols (kernels before 6.0): give the kernel's System.map with -N",
                )),
            };
            (syms, search.and_then(|h| h.join().ok()).flatten())
        });
        let syms = syms?;
        let btf = load_btf(kvm, &syms, searched)?;
        Ok(LinuxData {
            syms,
            extra,
            btf,
            walker: OnceLock::new(),
            modules: OnceLock::new(),
        })
    }
}

fn read_btf(kvm: &Kvm, start: u64, len: u64) -> Result<Btf> {
    if len == 0 || len > kvm_elf::btf::MAX_SEARCH_BLOB {
        return Err(Error::Malformed("BTF section size is implausible"));
    }
    let mut buf = vec![0u8; len as usize];
    kvm.read_virt_exact(VirtAddr(start), &mut buf)?;
    Btf::from_vec(buf)
}

/// Where the kallsyms tables end (the last of them), per VMCOREINFO.
fn tables_end(vi: &kvm_core_file::VmCoreInfo) -> Option<VirtAddr> {
    [
        "kallsyms_token_index",
        "kallsyms_token_table",
        "kallsyms_names",
        "kallsyms_offsets",
    ]
    .iter()
    .filter_map(|n| vi.symbol(n))
    .max()
    .map(VirtAddr)
}

/// Searches the read-only data from `from` for the kernel's own BTF (the
/// first valid blob that defines `task_struct`).
fn search_btf(kvm: &Kvm, from: VirtAddr) -> Option<(VirtAddr, Btf)> {
    let vmlinux = |b: &Btf| b.composite("task_struct").ok().flatten().is_some();
    kvm_elf::btf::search_first(kvm, from, BTF_SEARCH, &vmlinux).ok()
}

/// The kernel's BTF: `__start_BTF`..`__stop_BTF` where kallsyms has them
/// (the search result is used when it found that very blob), else what
/// the search found, else a search from `_etext`.
fn load_btf(kvm: &Kvm, syms: &SymbolTable, searched: Option<(VirtAddr, Btf)>) -> Result<Btf> {
    if let (Some(s), Some(e)) = (syms.addr("__start_BTF"), syms.addr("__stop_BTF")) {
        if let Some((at, btf)) = searched {
            if at == s {
                return Ok(btf);
            }
        }
        return read_btf(kvm, s.0, e.0.wrapping_sub(s.0));
    }
    let found = searched.or_else(|| syms.addr("_etext").and_then(|from| search_btf(kvm, from)));
    found.map(|(_, btf)| btf).ok_or(Error::Unsupported(
        "no BTF found in the kernel image (CONFIG_DEBUG_INFO_BTF off?)",
    ))
}

/// The view of a kernel that the process walkers use.
pub(crate) struct KernelView<'a> {
    pub kvm: &'a Kvm,
    pub data: &'a LinuxData,
}

impl kvm_proc::Kernel for KernelView<'_> {
    fn arch(&self) -> kvm_proc::Arch {
        match self.kvm.dump().info().arch {
            Some(kvm_core_file::Arch::Aarch64) => kvm_proc::Arch::Aarch64,
            _ => kvm_proc::Arch::X86_64,
        }
    }
    fn kernel(&self) -> &dyn VirtRead {
        self.kvm
    }
    fn phys(&self) -> &dyn PhysRead {
        self.kvm.dump()
    }
    fn kernel_to_phys(&self, va: VirtAddr) -> Result<PhysAddr> {
        self.kvm
            .translate(va.0)
            .map(|t| t.pa)
            .map_err(|e| e.core_error().unwrap_or(Error::Unmapped { va: va.0 }))
    }
    fn user_paging(&self, pgd: PhysAddr) -> Result<Box<dyn Translate + '_>> {
        let a = self
            .kvm
            .arch_paging()
            .ok_or(Error::Unsupported("no kernel paging"))?;
        Ok(Box::new(a.user(pgd)))
    }
    fn symbol(&self, name: &str) -> Option<u64> {
        if name == "init_task" {
            if let Some(&(_, a)) = self.data.walker.get() {
                return Some(a);
            }
        }
        self.data
            .syms
            .addr(name)
            .or_else(|| self.data.extra.as_ref().and_then(|t| t.addr(name)))
            .map(|a| a.0)
            .or_else(|| {
                self.kvm
                    .dump()
                    .info()
                    .vmcoreinfo
                    .as_ref()
                    .and_then(|v| v.symbol(name))
            })
    }
    fn offset_of(&self, path: &str) -> Option<u64> {
        self.data
            .btf
            .member_path(path)
            .ok()
            .flatten()
            .map(|m| m.offset)
    }
    fn size_of(&self, name: &str) -> Option<u64> {
        match name.split_once('.') {
            Some(_) => {
                let m = self.data.btf.member_path(name).ok().flatten()?;
                self.data.btf.size_of(m.type_id).ok()
            }
            None => self.data.btf.size_of_name(name).ok().flatten(),
        }
    }
    fn enum_value(&self, name: &str) -> Option<i64> {
        self.data
            .btf
            .enumerator(name)
            .ok()
            .flatten()
            .map(|v| v.bits as i64)
    }
}
