//! The OS layers: from a kernel memory source to the kernel's symbols,
//! types and processes — Linux today (FreeBSD `allproc` and OpenBSD
//! `allprocess` later).
//!
//! ```text
//!  kvm_core::Source ──os::probe──► Box<dyn Os>  (one per OS: linux/)
//!                                     │ kernel_paging ─► Machine (source + kernel translator)
//!                                     ▼
//!          symbols, types, processes, threads, argv/env, load average
//! ```
//!
//! [`probe()`] tries each OS layer in turn; the one that takes the source
//! answers the facade's questions ([`Os`]). Walkers are written against a
//! kernel address space and a symbol and type lookup ([`Kernel`]), never
//! against a file format: every structure offset comes from the kernel's
//! own type information (BTF) through [`Kernel::offset_of`], no
//! hard-coded layouts.
//!
//! `no_std` + `alloc`: a kernel debugger runs the whole pipeline, source to
//! argv, without std.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod backtrace;
mod bsd;
mod chain;
pub mod crash;
pub mod freebsd;
pub mod fuzz;
pub mod linux;
pub mod mapping;
pub mod openbsd;
pub mod openfile;
pub mod os;
pub mod paging;
pub mod probe;

pub use backtrace::{Backtrace, Frame, StackEnd};
pub use crash::{OnCpu, PanicInfo};
pub use mapping::Mapping;
pub use openfile::OpenFile;
pub use os::{Machine, Os, TypeInfo};
pub use paging::KernelPaging;
pub use probe::{paging_from_cpus, probe, NoOs, PROBES};

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Arch, PhysAddr, PhysRead, Result, Translate, VirtAddr, VirtRead};

/// What a walker needs from the layers below: the kernel's memory, its
/// symbols and types, and a way to build a process's address space.
pub trait Kernel {
    /// The machine's architecture.
    fn arch(&self) -> Arch;
    /// The kernel's virtual address space.
    fn kernel(&self) -> &dyn VirtRead;
    /// Physical memory (for process address spaces).
    fn phys(&self) -> &dyn PhysRead;
    /// The physical address of a kernel virtual address.
    fn kernel_to_phys(&self, va: VirtAddr) -> Result<PhysAddr>;
    /// A translator for a process whose top page table is at `pgd`.
    fn user_paging(&self, pgd: PhysAddr) -> Result<Box<dyn Translate + '_>>;
    /// A kernel symbol's runtime address.
    fn symbol(&self, name: &str) -> Option<u64>;
    /// The byte offset of a member path such as `task_struct.mm` or
    /// `mm_struct.arg_start` (members of anonymous structs and unions
    /// included).
    fn offset_of(&self, path: &str) -> Option<u64>;
    /// The size of a type (`task_struct`) or of a member path
    /// (`task_struct.comm`).
    fn size_of(&self, name: &str) -> Option<u64>;
    /// The value of an enumerator (`PIDTYPE_PGID`).
    fn enum_value(&self, name: &str) -> Option<i64>;
}

/// Strings that may be unavailable: a page of argv/env can be missing from
/// a filtered dump or swapped out; then the list says so instead of
/// guessing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strings {
    /// The strings' bytes, split at NUL bytes, exactly as the process
    /// holds them (not necessarily UTF-8).
    Read(Vec<Vec<u8>>),
    /// Some of the memory holding them could not be read.
    Unavailable(kvm_core::Error),
}

/// A kernel symbol as a lookup finds it: its runtime address and its
/// type letter as `nm` and `/proc/kallsyms` print it (`T` text, `D` data,
/// `B` bss, `R` read-only data, `A` absolute; lower case is local), `?`
/// where the table that had it does not say (VMCOREINFO's `SYMBOL()`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSymbol {
    /// The runtime address.
    pub addr: u64,
    /// The type letter.
    pub kind: u8,
}

/// One record of the kernel log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its sequence number (`None` on kernels before 5.10 whose
    /// `log_first_seq` cannot be found).
    pub seq: Option<u64>,
    /// Its level (0 emergency … 7 debug), where the layout is known.
    pub level: Option<u8>,
    /// Its facility (0 for the kernel's own), likewise.
    pub facility: Option<u8>,
    /// When it was logged, in nanoseconds since boot (the local clock).
    pub time_ns: u64,
    /// Its text as the kernel stored it (lines of a record separated by
    /// `\n`; not necessarily UTF-8).
    pub text: Vec<u8>,
}

/// The kernel log, oldest record first, and what could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelLog {
    /// The records read.
    pub records: Vec<LogRecord>,
    /// Records that exist but could not be read (memory missing from the
    /// dump, or damaged).
    pub unreadable: u64,
    /// Why the first of those could not be.
    pub first_error: Option<kvm_core::Error>,
}

/// A loaded kernel module, as `/proc/modules` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// Its name.
    pub name: String,
    /// Its size in bytes (`/proc/modules`' second column).
    pub size: u64,
    /// The base address of its core (text) memory.
    pub addr: u64,
}

/// A symbol of a loaded kernel module, as `/proc/kallsyms` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleSymbol {
    /// The symbol's name.
    pub name: String,
    /// Its runtime address.
    pub addr: u64,
    /// The type letter (`t`, `T`, `d`, `r`, …).
    pub kind: char,
    /// The module's name.
    pub module: String,
}

/// One thread of a process.
///
/// Fields an OS layer cannot read (the kernel exports no offset for them)
/// are `None`: unavailable, never guessed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thread {
    /// Thread id (the kernel's `pid`; FreeBSD's `td_tid`).
    pub tid: u32,
    /// The thread's `task_struct` (FreeBSD: `struct thread`) address.
    pub task: u64,
    /// The thread's `comm` (FreeBSD's `td_name`).
    pub name: String,
    /// State letter as `/proc/PID/stat` prints it.
    pub state: Option<char>,
    /// CPU the thread last ran on.
    pub cpu: Option<u32>,
    /// Whether it is running on that CPU right now.
    pub oncpu: bool,
    /// Whether this is the thread that crashed the kernel (FreeBSD's
    /// `dumptid`); `None` where the OS layer does not say.
    pub crashed: Option<bool>,
    /// The registers the kernel saved for the thread (the crashed
    /// thread's `dumppcb`, an on-CPU thread's `stoppcbs` slot, else its
    /// own pcb), named as a debugger names them; `None` where not read.
    pub registers: Option<Registers>,
}

/// Saved registers, by name (`rip`, `rsp`, `x29`, `pc`, …), in the
/// order the architecture's debuggers list them.
pub type Registers = Vec<(&'static str, u64)>;

/// One process (thread-group leader), as `kvm_getprocs` reports it.
///
/// Fields an OS layer cannot read (the kernel exports no offset for them:
/// FreeBSD dumps read without type information) are `None`:
/// unavailable, never guessed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Process id (`tgid`).
    pub pid: u32,
    /// The real parent's pid (0 for the roots).
    pub ppid: Option<u32>,
    /// Process group id.
    pub pgrp: Option<u32>,
    /// Session id.
    pub session: Option<u32>,
    /// Real user id.
    pub uid: Option<u32>,
    /// Real group id.
    pub gid: Option<u32>,
    /// Effective user id (what `KERN_PROC_UID` selects by).
    pub euid: Option<u32>,
    /// Effective group id.
    pub egid: Option<u32>,
    /// State letter as `/proc/PID/stat` prints it (R S D T t X Z P I).
    pub state: Option<char>,
    /// The kernel's `comm` (at most 15 bytes on Linux, 19 on FreeBSD).
    pub comm: String,
    /// A kernel thread (no user address space), where known.
    pub kthread: Option<bool>,
    /// The controlling terminal as `/proc/PID/stat` encodes it (`tty_nr`,
    /// 0 for none).
    pub tty_nr: Option<u32>,
    /// The controlling terminal's name (`ttyS0`, `pts/3` shows as `3`
    /// under the pts driver), if any.
    pub tty: Option<String>,
    /// Start time in nanoseconds since boot on the boot-time clock (which
    /// counts suspend): `task_struct.start_boottime`, as
    /// `/proc/PID/stat`'s starttime.
    pub start_time_ns: Option<u64>,
    /// Resident pages (file + anonymous + shared memory), as
    /// `/proc/PID/statm`'s resident field; `None` for kernel threads or
    /// when the counters cannot be read.
    pub rss_pages: Option<u64>,
    /// Virtual size in pages (`mm->total_vm`), as `/proc/PID/stat`'s
    /// vsize (in bytes there); 0 for a task without an address space of
    /// its own (kernel threads, zombies), as /proc prints; `None` when it
    /// cannot be read.
    pub vsize_pages: Option<u64>,
    /// `task_struct` (FreeBSD: `struct proc`) address (for `getargv` and
    /// debugging).
    pub task: u64,
    /// Threads, leader first.
    pub threads: Vec<Thread>,
    /// Why the process could not be read, when it could not: then only
    /// `pid` (0 when even that is unknown) and `task` are known, and
    /// every other field is empty or `None`.
    pub unavailable: Option<kvm_core::Error>,
}

impl Process {
    /// A process known only by its pid and `task_struct` address, which
    /// could not be read for the reason `why`.
    pub fn unavailable(pid: u32, task: u64, why: kvm_core::Error) -> Process {
        Process {
            pid,
            ppid: None,
            pgrp: None,
            session: None,
            uid: None,
            gid: None,
            euid: None,
            egid: None,
            state: None,
            comm: String::new(),
            kthread: None,
            tty_nr: None,
            tty: None,
            start_time_ns: None,
            rss_pages: None,
            vsize_pages: None,
            task,
            threads: Vec::new(),
            unavailable: Some(why),
        }
    }
}
