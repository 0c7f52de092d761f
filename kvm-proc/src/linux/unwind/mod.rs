//! Backtraces of Linux tasks from the dump alone: x86-64 through the
//! kernel's ORC tables (`orc.rs`), arm64 through frame records
//! (`arm64.rs`). A sleeping task starts from what `switch_to` saved (x86:
//! the `inactive_task_frame` at `thread.sp`; arm64: `thread.cpu_context`),
//! a running one from the dump's CPU registers. Every unwind is bounded
//! ([`MAX_FRAMES`]) and checked: a return address outside kernel text, a
//! stack going the wrong way or unreadable memory end it with the frames
//! read so far and the reason.

mod arm64;
mod orc;

use super::layout::need;
use super::walker::Linux;
use crate::backtrace::{Backtrace, Frame, StackEnd, MAX_FRAMES};
use crate::Kernel;
use alloc::format;
use alloc::vec::Vec;
use kvm_core::{Arch, CpuState, Error, Result, VirtRead};

/// What one unwind reads through: kernel memory, the task's stack and
/// the kernel's text.
pub(super) struct Walk<'a> {
    pub mem: &'a dyn VirtRead,
    /// The task's stack, `[lo, hi)`.
    stack: (u64, u64),
    text: &'a Text,
}

/// Where kernel code is, `[start, end)` each: the image's text and init
/// text, and each loaded module's core region; and what the unwinders
/// look up in it (found once for every backtrace of a kernel).
#[derive(Clone, Debug, Default)]
pub struct Text {
    /// The kernel image's.
    pub kernel: Vec<(u64, u64)>,
    /// The modules'.
    pub modules: Vec<ModuleText>,
    /// x86-64: the kernel's ORC table (`__start_orc_unwind_ip`,
    /// `__start_orc_unwind`, entries) and whether its entries have 6.4's
    /// layout (`orc_entry.signal`).
    pub orc: Option<(u64, u64, u64, bool)>,
    /// Where a new task's first switch returns (`ret_from_fork`, and
    /// `ret_from_fork_asm` since 6.7): its first frame is exact.
    pub forks: Vec<u64>,
    /// The scheduler's and the locks' text (`.sched.text`,
    /// `.spinlock.text`: the kernel's `in_sched_functions`).
    pub sched: Vec<(u64, u64)>,
}

/// A loaded module's code, and (x86-64) where its ORC table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModuleText {
    /// Where its core region starts.
    pub start: u64,
    /// Where it ends (exclusive).
    pub end: u64,
    /// `mod->arch`: `orc_unwind_ip`, `orc_unwind`, `num_orcs`.
    pub orc: Option<(u64, u64, u64)>,
}

impl Text {
    /// Whether `a` is in the kernel image's text.
    pub fn in_kernel(&self, a: u64) -> bool {
        self.kernel.iter().any(|&(s, e)| (s..e).contains(&a))
    }

    /// The module whose region holds `a`.
    pub fn module(&self, a: u64) -> Option<&ModuleText> {
        self.modules.iter().find(|m| (m.start..m.end).contains(&a))
    }

    /// Whether `a` is kernel or module text.
    pub fn contains(&self, a: u64) -> bool {
        self.in_kernel(a) || self.module(a).is_some()
    }
}

impl Walk<'_> {
    fn on_stack(&self, a: u64) -> bool {
        (self.stack.0..self.stack.1).contains(&a)
    }

    /// Frames from `first`, each next one from `next` (`None` at the
    /// stack's end), checked and bounded.
    fn run(
        &self,
        first: Frame,
        mut next: impl FnMut() -> Result<Option<Frame>>,
    ) -> (Vec<Frame>, StackEnd) {
        // A first pc outside the kernel's text: a CPU in code kallsyms
        // does not cover (arm64's KPTI entry trampoline runs from an alias
        // in the fixmap; firmware), or a corrupt saved context.
        if self.text.kernel.is_empty() {
            let why = "the kernel's text is not known: _stext and _etext could not be looked up (memory missing from the dump?)";
            return (Vec::new(), StackEnd::Broken(why.into()));
        }
        if !self.text.contains(first.lookup_addr()) {
            let why = format!(
                "the program counter {:#x} is not in the kernel's text (an entry trampoline, firmware, or a corrupt context)",
                first.pc
            );
            return (Vec::new(), StackEnd::Broken(why));
        }
        let mut frames = alloc::vec![first];
        loop {
            if frames.len() >= MAX_FRAMES {
                return (frames, StackEnd::TooDeep);
            }
            let f = match next() {
                Ok(Some(f)) => f,
                Ok(None) => return (frames, StackEnd::Complete),
                Err(e) => return (frames, StackEnd::Broken(format!("{e}"))),
            };
            if !self.text.contains(f.lookup_addr()) {
                let why = format!("{:#x} is not kernel text (a corrupt stack?)", f.pc);
                return (frames, StackEnd::Broken(why));
            }
            // Callers' frames are higher up the stack; only the first
            // frame may share its address with the next (arm64: the
            // stack pointer and the first frame record).
            let prev = frames.last().map_or(0, |p| p.sp);
            let back = f.sp < prev || (f.sp == prev && frames.len() > 1);
            if self.on_stack(prev) && self.on_stack(f.sp) && back {
                let why = format!(
                    "the stack goes the wrong way at {:#x} (a corrupt stack?)",
                    f.sp
                );
                return (frames, StackEnd::Broken(why));
            }
            frames.push(f);
        }
    }

    /// ORC's frames from `st` (`guessed`: frame pointers were assumed
    /// already); says whether they were at all.
    fn orc(
        &self,
        t: &orc::Table,
        mut st: orc::State,
        mut guessed: bool,
    ) -> (Vec<Frame>, StackEnd, bool) {
        let first = Frame::at(st.ip, st.sp, st.signal);
        let (frames, end) = self.run(first, || match orc::step(self, t, &mut st, &mut guessed)? {
            orc::Step::Next => Ok(Some(Frame::at(st.ip, st.sp, st.signal))),
            orc::Step::End => Ok(None),
        });
        (frames, end, guessed)
    }

    /// Frame records' frames from `st`, the first at `sp` (its pc exact
    /// or a return address).
    fn records(
        &self,
        mut st: arm64::State,
        sp: u64,
        exact: bool,
        mask: u64,
    ) -> (Vec<Frame>, StackEnd) {
        self.run(Frame::at(st.pc, sp, exact), || {
            Ok(arm64::step(self, &mut st, mask)?.map(|rec| Frame::at(st.pc, rec, false)))
        })
    }
}

/// Kernel stacks are 16 KiB on x86-64 and arm64 (`THREAD_SIZE`; 32 KiB
/// with KASAN, where the direction check then covers only the lower
/// half). BTF has no type of that size to ask (`union thread_union` is
/// not emitted), and a search for it would parse all of BTF.
const THREAD_SIZE: u64 = 16 << 10;

impl<K: Kernel + ?Sized> Linux<'_, K> {
    /// Where kernel code is (modules that cannot be listed are left out:
    /// their frames then end an unwind, said so), with the modules' ORC
    /// tables.
    pub fn text(&self) -> Text {
        let k = self.k;
        let mut t = Text::default();
        let range = |s: &str, e: &str| Some((k.symbol(s)?, k.symbol(e)?));
        t.kernel = [("_stext", "_etext"), ("_sinittext", "_einittext")]
            .iter()
            .filter_map(|&(s, e)| range(s, e))
            .collect();
        t.sched = [
            ("__sched_text_start", "__sched_text_end"),
            ("__lock_text_start", "__lock_text_end"),
        ]
        .iter()
        .filter_map(|&(s, e)| range(s, e))
        .collect();
        if let (Some(ips), Some(end), Some(entries)) = (
            k.symbol("__start_orc_unwind_ip"),
            k.symbol("__stop_orc_unwind_ip"),
            k.symbol("__start_orc_unwind"),
        ) {
            if end >= ips {
                let signal = k.offset_of("orc_entry.signal").is_some();
                t.orc = Some((ips, entries, (end - ips) / 4, signal));
            }
        }
        t.forks = ["ret_from_fork_asm", "ret_from_fork"]
            .iter()
            .filter_map(|n| k.symbol(n))
            .collect();
        // /proc/modules' regions, and each module's ORC table (x86-64:
        // `struct mod_arch_specific`), in the same list order.
        if let (Ok(mods), Ok(list)) = (self.modules(), self.module_list()) {
            let orc = |m: u64| -> Option<(u64, u64, u64)> {
                let o = |f: &str| k.offset_of(f);
                let n = self.u32_at(m, o("module.arch.num_orcs")?).ok()?;
                let ips = self.ptr(m, o("module.arch.orc_unwind_ip")?).ok()?;
                let entries = self.ptr(m, o("module.arch.orc_unwind")?).ok()?;
                Some((ips, entries, u64::from(n)))
            };
            t.modules = mods
                .iter()
                .zip(&list)
                .map(|(md, &(m, _))| ModuleText {
                    start: md.addr,
                    end: md.addr.saturating_add(md.size),
                    orc: orc(m),
                })
                .collect();
        }
        t
    }

    /// The kernel backtrace of the task at `task`: from `running` (its
    /// CPU's registers in the dump) when it was running, else from what
    /// the scheduler saved. `text` is [`Linux::text`]; `va_bits`
    /// the arm64 kernel's virtual address bits (for PAC stripping).
    pub fn backtrace(
        &self,
        task: u64,
        running: Option<&CpuState>,
        text: &Text,
        va_bits: u32,
    ) -> Result<Backtrace> {
        let k = self.k;
        let lo = self.ptr(task, need(k, "task_struct.stack")?)?;
        let from = if running.is_some() {
            "cpu registers"
        } else {
            "saved context"
        };
        // An exited task's stack is released (`put_task_stack`: its
        // count drops to 0, the pointer may still be set).
        let released = match k.offset_of("task_struct.stack_refcount") {
            Some(o) => self.u32_at(task, o)? == 0,
            None => false,
        };
        if lo == 0 || released {
            return Ok(Backtrace {
                frames: Vec::new(),
                end: StackEnd::Exited,
                unwinder: "none",
                from,
            });
        }
        let size = THREAD_SIZE;
        let w = Walk {
            mem: self.mem(),
            stack: (lo, lo.saturating_add(size)),
            text,
        };
        match k.arch() {
            Arch::X86_64 => self.x86_64(&w, task, running, from),
            Arch::Aarch64 => self.aarch64(&w, task, running, from, va_bits),
            _ => Err(Error::Unsupported(
                "backtraces are read on x86-64 and arm64 kernels",
            )),
        }
    }

    fn x86_64(
        &self,
        w: &Walk<'_>,
        task: u64,
        running: Option<&CpuState>,
        from: &'static str,
    ) -> Result<Backtrace> {
        let k = self.k;
        let table = w.text.orc.map(|(ips, entries, count, signal)| orc::Table {
            ips,
            entries,
            count,
            format: if signal {
                orc::Format::Signal
            } else {
                orc::Format::End
            },
        });
        let st = match running {
            Some(c) => {
                if c.pc >> 47 != 0x1_ffff {
                    return Ok(user_mode("orc", from));
                }
                orc::State::new(c.pc, c.sp, c.fp.unwrap_or(0), true)
            }
            None => {
                let sp = self.ptr(task, need(k, "task_struct.thread.sp")?)?;
                let off = |m: &str, d: u64| k.offset_of(m).unwrap_or(d);
                // r15 r14 r13 r12 bx bp ret_addr (arch/x86/include/asm/switch_to.h).
                let size = k.size_of("inactive_task_frame").unwrap_or(56);
                // The frame is on the stack: memory a dump may lack, which
                // ends this task's unwind, not the caller's listing.
                let frame = (|| {
                    let bp = self.ptr(sp, off("inactive_task_frame.bp", 40))?;
                    Ok((bp, self.ptr(sp, off("inactive_task_frame.ret_addr", 48))?))
                })();
                let (bp, ip) = match frame {
                    Ok(v) => v,
                    Err(e) => return Ok(broken(e, "orc", from)),
                };
                // A task that never ran returns into ret_from_fork, whose
                // first instruction is exact.
                let fork = w.text.forks.contains(&ip);
                orc::State::new(ip, sp.wrapping_add(size), bp, fork)
            }
        };
        // Without tables every frame is a frame-pointer guess.
        let empty = orc::Table {
            ips: 0,
            entries: 0,
            count: 0,
            format: orc::Format::End,
        };
        let (frames, end, guessed) = w.orc(&table.unwrap_or(empty), st, table.is_none());
        let unwinder = match (table.is_some(), guessed) {
            (false, _) => "frame pointers",
            (true, true) => "orc+fp",
            (true, false) => "orc",
        };
        Ok(Backtrace {
            frames,
            end,
            unwinder,
            from,
        })
    }

    fn aarch64(
        &self,
        w: &Walk<'_>,
        task: u64,
        running: Option<&CpuState>,
        from: &'static str,
        va_bits: u32,
    ) -> Result<Backtrace> {
        let k = self.k;
        let mask = arm64::pac_mask(va_bits);
        let (st, sp, exact) = match running {
            Some(c) => {
                if c.pc & (1 << 55) == 0 {
                    return Ok(user_mode("frame records", from));
                }
                let fp = c.fp.ok_or(Error::Unsupported(
                    "the dump's CPU note has no frame pointer (x29)",
                ))?;
                (arm64::State { pc: c.pc, fp }, c.sp, true)
            }
            None => {
                let cc = |m: &'static str| -> Result<u64> { self.ptr(task, need(k, m)?) };
                let pc = arm64::strip(cc("task_struct.thread.cpu_context.pc")?, mask);
                let fp = cc("task_struct.thread.cpu_context.fp")?;
                let sp = cc("task_struct.thread.cpu_context.sp")?;
                (arm64::State { pc, fp }, sp, false)
            }
        };
        let (frames, end) = w.records(st, sp, exact, mask);
        Ok(Backtrace {
            frames,
            end,
            unwinder: "frame records",
            from,
        })
    }
}

/// Both unwinders over `mem`, whose bytes `[base, base + len)` are code,
/// stack and (x86-64) an ORC table of `orc_count` entries at `base`, from
/// a start state at `base + start` (the fuzz target's walk:
/// [`crate::fuzz::unwind`]).
pub(crate) fn fuzz_walk(
    mem: &dyn VirtRead,
    base: u64,
    len: u64,
    orc_count: u64,
    start: u64,
    signal_format: bool,
) {
    let text = Text {
        kernel: alloc::vec![(base, base.saturating_add(len))],
        ..Text::default()
    };
    let w = Walk {
        mem,
        stack: (base, base.saturating_add(len)),
        text: &text,
    };
    let table = orc::Table {
        ips: base,
        entries: base.wrapping_add(4 * orc_count),
        count: orc_count,
        format: if signal_format {
            orc::Format::Signal
        } else {
            orc::Format::End
        },
    };
    let at = base.wrapping_add(start);
    let (frames, ..) = w.orc(&table, orc::State::new(at, at, at, signal_format), false);
    assert!(frames.len() <= MAX_FRAMES);
    let st = arm64::State { pc: at, fp: at };
    let (frames, _) = w.records(st, at, false, arm64::pac_mask(48));
    assert!(frames.len() <= MAX_FRAMES);
}

/// No frames: the first could not be read.
fn broken(e: Error, unwinder: &'static str, from: &'static str) -> Backtrace {
    Backtrace {
        frames: Vec::new(),
        end: StackEnd::Broken(format!("{e}")),
        unwinder,
        from,
    }
}

fn user_mode(unwinder: &'static str, from: &'static str) -> Backtrace {
    Backtrace {
        frames: Vec::new(),
        end: StackEnd::UserMode,
        unwinder,
        from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_core::VirtAddr;

    /// Kernel memory in one buffer.
    struct Mem {
        base: u64,
        bytes: Vec<u8>,
    }

    impl Mem {
        fn new(base: u64, len: usize) -> Mem {
            Mem {
                base,
                bytes: alloc::vec![0; len],
            }
        }
        fn put(&mut self, at: u64, b: &[u8]) {
            let o = (at - self.base) as usize;
            self.bytes[o..o + b.len()].copy_from_slice(b);
        }
        fn u64(&mut self, at: u64, v: u64) {
            self.put(at, &v.to_le_bytes());
        }
    }

    impl VirtRead for Mem {
        fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<usize> {
            let o =
                va.0.checked_sub(self.base)
                    .filter(|&o| o < self.bytes.len() as u64)
                    .ok_or(Error::Unmapped { va: va.0 })? as usize;
            let n = buf.len().min(self.bytes.len() - o);
            buf[..n].copy_from_slice(&self.bytes[o..o + n]);
            Ok(n)
        }
    }

    const LO: u64 = 0xffff_8000_0800_0000;
    const PC: u64 = 0xffff_0000_0001_0010;

    fn text() -> Text {
        Text {
            kernel: alloc::vec![(0xffff_0000_0001_0000, 0xffff_0000_0002_0000)],
            ..Text::default()
        }
    }

    fn arm64_walk(m: &Mem, fp: u64) -> (Vec<u64>, StackEnd) {
        let t = text();
        let w = Walk {
            mem: m,
            stack: (LO, LO + THREAD_SIZE),
            text: &t,
        };
        let (frames, end) = w.records(arm64::State { pc: PC, fp }, LO + 0x80, false, 0);
        (frames.iter().map(|f| f.pc).collect(), end)
    }

    #[test]
    fn frame_records_to_the_final_record() {
        let mut m = Mem::new(LO, THREAD_SIZE as usize);
        m.u64(LO + 0x100, LO + 0x200);
        m.u64(LO + 0x108, PC + 0x100);
        m.u64(LO + 0x200, LO + 0x300);
        m.u64(LO + 0x208, PC + 0x200);
        // LO + 0x300: the all-zero final record.
        let (pcs, end) = arm64_walk(&m, LO + 0x100);
        assert_eq!(pcs, [PC, PC + 0x100, PC + 0x200]);
        assert_eq!(end, StackEnd::Complete);
    }

    /// A CPU caught entering the kernel from user mode: its x29 is still
    /// the user's, the kernel stack holds no record yet.
    #[test]
    fn a_user_frame_pointer_ends_the_kernel_stack() {
        let m = Mem::new(LO, THREAD_SIZE as usize);
        let (pcs, end) = arm64_walk(&m, 0x0000_ffff_f2eb_5400);
        assert_eq!((pcs, end), (alloc::vec![PC], StackEnd::Complete));
    }

    #[test]
    fn corrupt_frame_records_end_marked() {
        // A record pointing at itself: stopped at the second visit.
        let mut m = Mem::new(LO, THREAD_SIZE as usize);
        m.u64(LO + 0x100, LO + 0x100);
        m.u64(LO + 0x108, PC + 0x100);
        let (pcs, end) = arm64_walk(&m, LO + 0x100);
        assert_eq!(pcs.len(), 2);
        assert!(
            matches!(&end, StackEnd::Broken(w) if w.contains("wrong way")),
            "{end:?}"
        );
        // Going down the stack.
        let mut m = Mem::new(LO, THREAD_SIZE as usize);
        m.u64(LO + 0x200, LO + 0x100);
        m.u64(LO + 0x208, PC + 0x100);
        m.u64(LO + 0x100, LO + 0x300);
        m.u64(LO + 0x108, PC + 0x200);
        let (_, end) = arm64_walk(&m, LO + 0x200);
        assert!(
            matches!(&end, StackEnd::Broken(w) if w.contains("wrong way")),
            "{end:?}"
        );
        // A return address outside kernel text.
        let mut m = Mem::new(LO, THREAD_SIZE as usize);
        m.u64(LO + 0x100, LO + 0x200);
        m.u64(LO + 0x108, 0xffff_0000_0009_0000);
        let (pcs, end) = arm64_walk(&m, LO + 0x100);
        assert_eq!(pcs, [PC]);
        assert!(
            matches!(&end, StackEnd::Broken(w) if w.contains("not kernel text")),
            "{end:?}"
        );
        // A record off the stack and unreadable; one misaligned.
        let m = Mem::new(LO, THREAD_SIZE as usize);
        let (_, end) = arm64_walk(&m, LO - 0x1000);
        assert!(
            matches!(&end, StackEnd::Broken(w) if w.contains("not mapped")),
            "{end:?}"
        );
        let (_, end) = arm64_walk(&m, LO + 0x104);
        assert!(
            matches!(&end, StackEnd::Broken(w) if w.contains("aligned")),
            "{end:?}"
        );
        // Records that go up the stack forever (each above the last, off
        // the task's stack where the direction check cannot hold them)
        // stop at the frame bound.
        let mut m = Mem::new(LO + THREAD_SIZE, 0x4000);
        for i in 0..0x3ff0u64 / 0x10 {
            let at = LO + THREAD_SIZE + 0x10 * i;
            m.u64(at, at + 0x10);
            m.u64(at + 8, PC + 0x100);
        }
        let (pcs, end) = arm64_walk(&m, LO + THREAD_SIZE);
        assert_eq!((pcs.len(), end), (MAX_FRAMES, StackEnd::TooDeep));
    }

    /// Two functions with ORC entries, A (a call frame 8 bytes above the
    /// return address) and B (an entry frame whose pt_regs come from
    /// user mode), in 6.1's entry layout.
    #[test]
    fn orc_call_then_user_entry() {
        const BASE: u64 = 0xffff_ffff_8100_0000;
        const A: u64 = BASE + 0x1000;
        const B: u64 = BASE + 0x2000;
        const IPS: u64 = BASE + 0x8000;
        const ENTRIES: u64 = BASE + 0x8100;
        const SP: u64 = BASE + 0x10000;
        let mut m = Mem::new(BASE, 0x20000);
        for (i, ip) in [A, B].into_iter().enumerate() {
            let at = IPS + 4 * i as u64;
            m.put(at, &((ip as i64 - at as i64) as i32).to_le_bytes());
        }
        // A: sp_reg SP (5) + 8, bp_reg UNDEFINED, type CALL (0).
        m.put(ENTRIES, &[8, 0, 0, 0, 0x05, 0x00]);
        // B: sp_reg SP + 0 (pt_regs right there), type REGS (1).
        m.put(ENTRIES + 6, &[0, 0, 0, 0, 0x05, 0x01]);
        m.u64(SP, B + 0x10); // A's return address, into B
        m.u64(SP + 8 + 128, 0x7fff_0000_1234); // pt_regs.ip (user)
        m.u64(SP + 8 + 136, 0x33); // pt_regs.cs: user mode
        m.u64(SP + 8 + 152, 0x7fff_ffff_0000); // pt_regs.sp
        let table = orc::Table {
            ips: IPS,
            entries: ENTRIES,
            count: 2,
            format: orc::Format::End,
        };
        let t = Text {
            kernel: alloc::vec![(BASE, BASE + 0x3000)],
            ..Text::default()
        };
        let w = Walk {
            mem: &m,
            stack: (BASE + 0xc000, BASE + 0x10000 + THREAD_SIZE),
            text: &t,
        };
        let (frames, end, guessed) = w.orc(&table, orc::State::new(A + 0x10, SP, 0, false), false);
        let pcs: Vec<u64> = frames.iter().map(|f| f.pc).collect();
        assert_eq!(pcs, [A + 0x10, B + 0x10]);
        assert_eq!(frames[1].sp, SP + 8);
        assert_eq!(end, StackEnd::Complete);
        assert!(!guessed);
        // Below the first entry ORC has nothing: frame pointers are
        // guessed (bp 0 here: the guess reads unmapped memory).
        let mut st = orc::State::new(BASE + 0x10, SP, 0, false);
        let mut guessed = false;
        let r = orc::step(&w, &table, &mut st, &mut guessed);
        assert!(guessed);
        assert!(matches!(r, Err(Error::Unmapped { .. })));
    }

    /// A module's code unwinds through the module's own ORC table
    /// (`mod->arch`), the kernel's through the kernel's.
    #[test]
    fn orc_in_a_module() {
        const BASE: u64 = 0xffff_ffff_c000_0000;
        const F: u64 = BASE + 0x100; // the module's function
        const IPS: u64 = BASE + 0x8000;
        const ENTRIES: u64 = BASE + 0x8100;
        const SP: u64 = BASE + 0x10000;
        let mut m = Mem::new(BASE, 0x20000);
        m.put(IPS, &((F as i64 - IPS as i64) as i32).to_le_bytes());
        m.put(ENTRIES, &[8, 0, 0, 0, 0x05, 0x00]); // CALL, SP + 8
        m.u64(SP, F + 0x20); // returns into itself (a recursive call)
        let t = Text {
            kernel: alloc::vec![(0xffff_ffff_8100_0000, 0xffff_ffff_8200_0000)],
            modules: alloc::vec![ModuleText {
                start: BASE,
                end: BASE + 0x1000,
                orc: Some((IPS, ENTRIES, 1)),
            }],
            ..Text::default()
        };
        let w = Walk {
            mem: &m,
            stack: (BASE + 0xc000, BASE + 0x14000),
            text: &t,
        };
        let kernel = orc::Table {
            ips: 0,
            entries: 0,
            count: 0,
            format: orc::Format::End,
        };
        let mut st = orc::State::new(F + 0x10, SP, 0, false);
        let mut guessed = false;
        assert!(matches!(
            orc::step(&w, &kernel, &mut st, &mut guessed),
            Ok(orc::Step::Next)
        ));
        assert_eq!((st.ip, st.sp, guessed), (F + 0x20, SP + 8, false));
        // Without the module's table: a frame-pointer guess.
        let bare = Text {
            kernel: t.kernel.clone(),
            modules: alloc::vec![ModuleText {
                orc: None,
                ..t.modules[0]
            }],
            ..Text::default()
        };
        let w = Walk { text: &bare, ..w };
        let mut st = orc::State::new(F + 0x10, SP, 0, false);
        let _ = orc::step(&w, &kernel, &mut st, &mut guessed);
        assert!(guessed);
    }
}
