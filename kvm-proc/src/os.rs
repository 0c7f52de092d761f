//! The OS layer: what the facade asks of the operating system whose
//! memory a source holds (`probe.rs` picks the layer).
//!
//! A source states facts (kvm-core's [`Source`]); an OS layer turns them
//! into a kernel: where its page tables are, its symbols and types, its
//! processes. The facade holds one [`Os`] (from [`crate::probe()`]) and no
//! OS-specific code. OS layers are `no_std` + `alloc`, so a kernel
//! debugger runs the whole pipeline without std.

use crate::paging::KernelPaging;
use crate::{
    Backtrace, KernelLog, KernelSymbol, Mapping, Module, ModuleSymbol, OpenFile, PanicInfo,
    Process, Strings, Thread,
};
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{
    Arch, Error, Paging, PhysAddr, PhysRead, Result, Source, Translate, Translated, VirtAddr,
    VirtRead,
};
use kvm_elf::SymbolTable;

/// A kernel's address space as an OS layer reads it: the source, and the
/// kernel's translator (cached or not, as the caller decided: live
/// memory is never cached) with the paging it was made from.
#[derive(Clone, Copy)]
pub struct Machine<'a> {
    /// Physical memory and its facts.
    pub source: &'a dyn Source,
    /// The kernel's translator.
    pub kernel: &'a dyn Translate,
    /// The kernel's paging (to build process address spaces); `None`
    /// when the source translates with a map of its own.
    pub paging: Option<Paging>,
}

impl core::fmt::Debug for Machine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Machine")
            .field("source", &self.source)
            .field("paging", &self.paging)
            .finish_non_exhaustive()
    }
}

impl Machine<'_> {
    /// The physical address of a kernel virtual address.
    pub fn kernel_to_phys(&self, va: VirtAddr) -> Result<PhysAddr> {
        self.kernel.translate(self.phys(), va).map(|t| t.pa)
    }

    /// Physical memory.
    pub fn phys(&self) -> &dyn PhysRead {
        self.source
    }

    /// The machine's architecture: the paging's, else the source's.
    pub fn arch(&self) -> Option<Arch> {
        self.paging.map(|p| p.arch()).or(self.source.info().arch)
    }

    /// The paging of a process whose top page table is at `pgd`.
    pub fn user_paging(&self, pgd: PhysAddr) -> Result<Paging> {
        self.paging.map(|p| p.user(pgd)).ok_or(Error::Unsupported(
            "the kernel's page-table root is unknown (the dump translates through its own map)",
        ))
    }
}

impl VirtRead for Machine<'_> {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        Translated::new(self.phys(), self.kernel).read_virt(va, buf)
    }
}

/// A member's offset (`None` for a type) and size, from the kernel's
/// types.
pub type TypeInfo = (Option<u64>, u64);

/// What the facade asks of an operating system's kernel.
///
/// Methods that read kernel memory take the [`Machine`]; an OS keeps what
/// it learns (symbols, types, anchors) between calls. `Send`, not `Sync`:
/// lookups fill caches, so a shared handle puts the OS behind a lock.
pub trait Os: Send + core::fmt::Debug {
    /// The OS's name as `kvm info` prints it (`linux`).
    fn name(&self) -> &'static str;

    /// The kernel's paging, from the source's facts (and, for OSes that
    /// need one, the kernel file's symbols: call after
    /// [`Os::add_kernel_symbols`]).
    fn kernel_paging(&self, source: &dyn Source) -> Result<KernelPaging>;

    /// The KASLR slide of the kernel image, if the source states it.
    fn kaslr_offset(&self) -> Option<u64>;

    /// Adds the symbols of the kernel file (`-N`: a System.map or
    /// vmlinux, link-time addresses). Before the first lookup only.
    fn add_kernel_symbols(&mut self, table: SymbolTable) -> Result<()>;

    /// A kernel symbol's runtime address and type (the kernel's own
    /// tables first, then the kernel file's), not counting modules.
    fn symbol(&self, m: &Machine<'_>, name: &str) -> Result<Option<KernelSymbol>>;

    /// The kernel's whole symbol table (runtime addresses).
    fn symbols(&self, m: &Machine<'_>) -> Result<&SymbolTable>;

    /// The symbols of loaded modules.
    fn module_symbols(&self, m: &Machine<'_>) -> Result<&[ModuleSymbol]>;

    /// The offset and size of a member path (`task_struct.mm`) or the size
    /// of a type (`task_struct`), from the kernel's own types.
    fn type_info(&self, m: &Machine<'_>, path: &str) -> Result<Option<TypeInfo>>;

    /// Every process (thread-group leader), with its threads.
    fn processes(&self, m: &Machine<'_>) -> Result<Vec<Process>>;

    /// The arguments of a process, read through its own page tables.
    fn argv(&self, m: &Machine<'_>, p: &Process) -> Result<Strings>;

    /// The environment of a process.
    fn envv(&self, m: &Machine<'_>, p: &Process) -> Result<Strings>;

    /// The 1, 5 and 15-minute load averages.
    fn loadavg(&self, m: &Machine<'_>) -> Result<[f64; 3]>;

    /// The running kernel's release (`uname -r`).
    fn release(&self, m: &Machine<'_>) -> Result<String>;

    /// The loaded modules (`/proc/modules`).
    fn modules(&self, m: &Machine<'_>) -> Result<Vec<Module>> {
        let _ = m;
        Err(Error::Unsupported(
            "this OS layer does not list kernel modules",
        ))
    }

    /// The kernel log, oldest record first (`dmesg`).
    fn kernel_log(&self, m: &Machine<'_>) -> Result<KernelLog> {
        let _ = m;
        Err(Error::Unsupported(
            "this OS layer does not read the kernel log",
        ))
    }

    /// The kernel backtrace of thread `t` of process `p`, innermost frame
    /// first, symbolized.
    fn backtrace(&self, m: &Machine<'_>, p: &Process, t: &Thread) -> Result<Backtrace> {
        let _ = (m, p, t);
        Err(Error::Unsupported("this OS layer does not read backtraces"))
    }

    /// Why the kernel died: its panic (from the log), the panicking
    /// CPU's registers and task's backtrace, each CPU's running task.
    fn panic_info(&self, m: &Machine<'_>) -> Result<PanicInfo> {
        let _ = m;
        Err(Error::Unsupported("this OS layer does not read panics"))
    }

    /// The memory map of `p` (`/proc/PID/maps`), lowest address first.
    fn maps(&self, m: &Machine<'_>, p: &Process) -> Result<Vec<Mapping>> {
        let _ = (m, p);
        Err(Error::Unsupported(
            "this OS layer does not read memory maps",
        ))
    }

    /// The open files of `p` (`/proc/PID/fd`, `kvm_getfiles`), by
    /// descriptor.
    fn files(&self, m: &Machine<'_>, p: &Process) -> Result<Vec<OpenFile>> {
        let _ = (m, p);
        Err(Error::Unsupported("this OS layer does not read open files"))
    }

    /// Where thread `t` of `p` sleeps (`/proc/PID/wchan`): the function
    /// of its first frame outside the scheduler and lock functions, for a
    /// task that is blocked; `None` for one running, runnable or gone.
    fn wchan(&self, m: &Machine<'_>, p: &Process, t: &Thread) -> Result<Option<String>> {
        let _ = (m, p, t);
        Err(Error::Unsupported(
            "this OS layer does not read wait channels",
        ))
    }
}
