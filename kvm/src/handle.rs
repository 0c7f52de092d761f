//! The open kernel (`kvm_t`): one source, the OS layer that recognised its
//! kernel, and the kvm(3) calls over them.

use crate::space::KernelSpace;
use crate::{Error, Info, OpenFlags, ProcOp};
use core::ops::ControlFlow;
use kvm_core::{
    PageRun, PhysAddr, PhysWrite, Source, Translate, Translated, Translation, VirtAddr, VirtRead,
    VirtWrite,
};
use kvm_elf::SymbolTable;
use kvm_proc::{
    Backtrace, KernelLog, KernelSymbol, Machine, Mapping, Module, ModuleSymbol, NoOs, OpenFile, Os,
    PanicInfo, Process, Strings, Thread,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Why a write to a live kernel opened for writing fails when its door
/// takes none (/proc/kcore is read-only).
pub(crate) const LIVE_NO_WRITES: &str = "writes through this live door (/proc/kcore is read-only; \
     live writes go through /dev/mem, a QEMU RAM file or qemu:PID)";

/// An open kernel memory source (`kvm_t`).
pub struct Kvm {
    path: PathBuf,
    source: Arc<dyn Source>,
    flags: OpenFlags,
    /// The OS layer that took the source, or why none did. Its lookups
    /// fill caches, so calls take turns.
    os: Result<Mutex<Box<dyn Os>>, NoOs>,
    /// The kernel's address space, found on first use (after `-N`: an
    /// OS may need the kernel file's symbols for its root).
    space: OnceLock<Result<KernelSpace, kvm_core::Error>>,
    /// The kernel's whole symbol table, copied out of the OS on first use.
    symbols: OnceLock<SymbolTable>,
    /// The symbols of loaded modules, likewise.
    modules: OnceLock<Vec<ModuleSymbol>>,
    last_error: Mutex<String>,
}

impl std::fmt::Debug for Kvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kvm")
            .field("path", &self.path)
            .field("source", &self.source)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

impl Kvm {
    /// A handle over an already opened `source` (a dump, a live door, or
    /// a source of the caller's own; live when its `SourceInfo::live`
    /// says so), named `path` in errors. The OS layers are probed now; the
    /// kernel's paging and symbols are found on first use.
    pub fn from_source(path: impl AsRef<Path>, source: Box<dyn Source>, flags: OpenFlags) -> Kvm {
        let os = kvm_proc::probe(&*source).map(Mutex::new);
        Kvm {
            path: path.as_ref().to_path_buf(),
            source: Arc::from(source),
            flags,
            os,
            space: OnceLock::new(),
            symbols: OnceLock::new(),
            modules: OnceLock::new(),
            last_error: Mutex::new(String::new()),
        }
    }

    /// Adds the symbols of the kernel file `path` (`-N`): a `System.map`
    /// or an ELF vmlinux, with link-time addresses that are relocated by
    /// the dump's KASLR offset. They answer for names the kernel's own
    /// kallsyms lacks (and may lead an OS layer to the page tables). Call
    /// before the first read or lookup ([`Kvm::openfiles`] does); on a
    /// source no OS layer takes, the file is read and checked, but there
    /// is nothing to use it for.
    pub fn set_kernel_file(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        crate::open::check_file_kind(path, false)?;
        let table = SymbolTable::open_kernel_file(path)
            .map_err(|e| Error::core(Some(path.to_path_buf()), e))?;
        let at = |e| Error::core(Some(path.to_path_buf()), e);
        let Ok(os) = &self.os else {
            return Ok(());
        };
        if self.space.get().is_some() {
            return Err(at(kvm_core::Error::Unsupported(
                "the kernel's paging was found already: give the kernel file before the first read",
            )));
        }
        let mut os = os.lock().map_err(|_| at(poisoned()))?;
        os.add_kernel_symbols(table).map_err(at)
    }

    /// The file this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The source (physical memory and its facts).
    pub fn source(&self) -> &dyn Source {
        &*self.source
    }

    /// How the source was opened.
    pub fn flags(&self) -> OpenFlags {
        self.flags
    }

    /// Records `e` as the last error ([`Kvm::geterr`]) and returns it with
    /// the file name.
    pub(crate) fn fail(&self, e: kvm_core::Error) -> Error {
        let err = Error::core(Some(self.path.clone()), e);
        if let Ok(mut last) = self.last_error.lock() {
            *last = err.to_string();
        }
        err
    }

    /// The kernel's address space, found on first call: the OS layer's
    /// paging, else the CPU state a dump carries.
    fn space(&self) -> Result<&KernelSpace, kvm_core::Error> {
        let space = self.space.get_or_init(|| {
            let found = match &self.os {
                Ok(os) => os
                    .lock()
                    .map_err(|_| poisoned())?
                    .kernel_paging(&*self.source),
                Err(_) => kvm_proc::paging_from_cpus(&*self.source),
            }?;
            KernelSpace::new(found, &self.source)
        });
        space.as_ref().map_err(|e| *e)
    }

    /// The kernel's paging (mode and root) as found, `None` where the
    /// source translates with a map of its own (kvm_dump_mkheader's
    /// root).
    pub(crate) fn kernel_paging(&self) -> Result<Option<kvm_core::Paging>, Error> {
        self.space()
            .map(|s| s.found.paging)
            .map_err(|e| self.fail(e))
    }

    /// Runs `f` on the OS layer with the kernel's address space; its
    /// failure is the call's error.
    fn with_os<T>(
        &self,
        f: impl FnOnce(&dyn Os, &Machine<'_>) -> kvm_core::Result<T>,
    ) -> Result<T, Error> {
        let run = || {
            let os = self.os.as_ref().map_err(no_os)?;
            let space = self.space()?;
            let os = os.lock().map_err(|_| poisoned())?;
            f(&**os, &space.machine(&*self.source))
        };
        run().map_err(|e| self.fail(e))
    }

    /// Reads kernel virtual memory at `addr` (`kvm_read`): returns the
    /// bytes read, fewer than `buf.len()` when the read runs into an
    /// unmapped or missing page; an error when not even the first byte can
    /// be read.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        self.read_virt(VirtAddr(addr), buf)
            .map_err(|e| self.fail(e))
    }

    /// Reads physical memory at `addr`.
    pub fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        self.source
            .read_phys(PhysAddr(addr), buf)
            .map_err(|e| self.fail(e))
    }

    /// Physical writes, when the handle was opened
    /// [`OpenFlags::ReadWrite`] on a source that takes them (dumps never
    /// do: [`kvm_core::Error::ReadOnly`]; a live door may not either:
    /// [`kvm_core::Error::Unsupported`], naming the doors that do).
    fn writer(&self) -> Result<&dyn PhysWrite, kvm_core::Error> {
        if self.flags != OpenFlags::ReadWrite {
            return Err(kvm_core::Error::ReadOnly);
        }
        match self.source.phys_write() {
            Some(w) => Ok(w),
            None if self.source.info().live => Err(kvm_core::Error::Unsupported(LIVE_NO_WRITES)),
            None => Err(kvm_core::Error::ReadOnly),
        }
    }

    /// `Ok` when writes can go through: the handle was opened
    /// [`OpenFlags::ReadWrite`] on a source that takes them; else the
    /// error every write would give.
    pub fn check_writable(&self) -> Result<(), Error> {
        self.writer().map(|_| ()).map_err(|e| self.fail(e))
    }

    /// Writes kernel virtual memory at `addr` (`kvm_write`), page by page
    /// through the kernel's page tables; returns the bytes written, fewer
    /// than `buf.len()` when the write runs into an unmapped page.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<usize, Error> {
        let run = || {
            let w = self.writer()?;
            Translated::new(w, self.space()?).write_virt(VirtAddr(addr), buf)
        };
        run().map_err(|e| self.fail(e))
    }

    /// Writes physical memory at `addr`, as [`Kvm::write`] does.
    pub fn write_phys(&self, addr: u64, buf: &[u8]) -> Result<usize, Error> {
        let run = || self.writer()?.write_phys(PhysAddr(addr), buf);
        run().map_err(|e| self.fail(e))
    }

    /// Translates a kernel virtual address.
    pub fn translate(&self, addr: u64) -> Result<Translation, Error> {
        let space = self.space().map_err(|e| self.fail(e))?;
        space
            .translate(&*self.source, VirtAddr(addr))
            .map_err(|e| self.fail(e))
    }

    /// Calls `f` for every page the kernel's page tables map, in address
    /// order, until it returns `Break` (`kvm_walk_pages`).
    pub fn walk_pages(&self, f: &mut dyn FnMut(PageRun) -> ControlFlow<()>) -> Result<(), Error> {
        let space = self.space().map_err(|e| self.fail(e))?;
        space.walk(&*self.source, f).map_err(|e| self.fail(e))
    }

    /// Looks up kernel symbols (`kvm_nlist`): each name's runtime address,
    /// from the kernel's own tables (then the `-N` kernel file, the
    /// source's own, and the symbols of loaded modules), or `None`.
    pub fn nlist(&self, names: &[&str]) -> Result<Vec<Option<u64>>, Error> {
        let found = self.nlist_symbols(names)?;
        Ok(found.into_iter().map(|s| s.map(|s| s.addr)).collect())
    }

    /// As [`Kvm::nlist`], with each symbol's type letter (what
    /// `kvm_nlist`'s `n_type` is made from).
    pub fn nlist_symbols(&self, names: &[&str]) -> Result<Vec<Option<KernelSymbol>>, Error> {
        let mut out = self.with_os(|os, m| {
            names
                .iter()
                .map(|n| os.symbol(m, n))
                .collect::<kvm_core::Result<Vec<_>>>()
        })?;
        if out.iter().any(Option::is_none) {
            // A module list that cannot be read (a dump cut down to other
            // pages) leaves the names unresolved, as kvm_nlist reports them.
            let modules = self.module_symbols().unwrap_or_default();
            for (slot, name) in out.iter_mut().zip(names) {
                if slot.is_none() {
                    *slot = modules
                        .iter()
                        .find(|m| m.name == *name)
                        .map(|m| KernelSymbol {
                            addr: m.addr,
                            kind: u8::try_from(m.kind).unwrap_or(b'?'),
                        });
                }
            }
        }
        Ok(out)
    }

    /// The byte offset and size of a member path (`task_struct.mm`,
    /// `mm_struct.arg_start`) or the size of a type (`task_struct`), from
    /// the kernel's own types: `(offset, size)`, offset `None` for a type.
    pub fn type_info(&self, path: &str) -> Result<Option<(Option<u64>, u64)>, Error> {
        self.with_os(|os, m| os.type_info(m, path))
    }

    /// The symbols of the loaded modules (the `[module]` lines of
    /// `/proc/kallsyms`).
    pub fn module_symbols(&self) -> Result<&[ModuleSymbol], Error> {
        if let Some(m) = self.modules.get() {
            return Ok(m);
        }
        let m = self.with_os(|os, m| os.module_symbols(m).map(<[_]>::to_vec))?;
        Ok(self.modules.get_or_init(|| m))
    }

    /// The kernel's own symbol table (kallsyms decoded from the dump's
    /// memory, runtime addresses).
    pub fn kernel_symbols(&self) -> Result<&SymbolTable, Error> {
        if let Some(t) = self.symbols.get() {
            return Ok(t);
        }
        let t = self.with_os(|os, m| os.symbols(m).cloned())?;
        Ok(self.symbols.get_or_init(|| t))
    }

    /// The processes selected by `op` (`kvm_getprocs`), each with its
    /// threads.
    pub fn getprocs(&self, op: ProcOp) -> Result<Vec<Process>, Error> {
        let all = self.with_os(|os, m| os.processes(m))?;
        Ok(all.into_iter().filter(|p| op.selects(p)).collect())
    }

    /// The arguments of `p` (`kvm_getargv`), read through its own page
    /// tables; an error when part of them is not in the dump. Bytes that
    /// are not UTF-8 read as U+FFFD (see [`Kvm::getargv_bytes`]).
    pub fn getargv(&self, p: &Process) -> Result<Vec<String>, Error> {
        self.getargv_bytes(p).map(lossy)
    }

    /// The environment of `p` (`kvm_getenvv`), as [`Kvm::getargv`].
    pub fn getenvv(&self, p: &Process) -> Result<Vec<String>, Error> {
        self.getenvv_bytes(p).map(lossy)
    }

    /// The arguments of `p`, each exactly the bytes the process holds
    /// (what the C interface's `kvm_getargv` returns).
    pub fn getargv_bytes(&self, p: &Process) -> Result<Vec<Vec<u8>>, Error> {
        self.readable(p)?;
        self.strings(self.with_os(|os, m| os.argv(m, p))?)
    }

    /// The environment of `p`, as [`Kvm::getargv_bytes`].
    pub fn getenvv_bytes(&self, p: &Process) -> Result<Vec<Vec<u8>>, Error> {
        self.readable(p)?;
        self.strings(self.with_os(|os, m| os.envv(m, p))?)
    }

    /// An error for a process the OS layer listed as unreadable
    /// ([`Process::unavailable`]): nothing more can be read of it.
    fn readable(&self, p: &Process) -> Result<(), Error> {
        match &p.unavailable {
            Some(why) => Err(self.fail(*why)),
            None => Ok(()),
        }
    }

    fn strings(&self, s: Strings) -> Result<Vec<Vec<u8>>, Error> {
        match s {
            Strings::Read(v) => Ok(v),
            Strings::Unavailable(e) => Err(self.fail(e)),
        }
    }

    /// The 1, 5 and 15-minute load averages (`kvm_getloadavg`), rounded as
    /// `/proc/loadavg` prints them.
    pub fn getloadavg(&self) -> Result<[f64; 3], Error> {
        self.with_os(|os, m| os.loadavg(m))
    }

    /// The loaded modules, as `/proc/modules` lists them.
    pub fn modules(&self) -> Result<Vec<Module>, Error> {
        self.with_os(|os, m| os.modules(m))
    }

    /// The kernel log, oldest record first, with a count of the records
    /// that could not be read (`dmesg`).
    pub fn kernel_log(&self) -> Result<KernelLog, Error> {
        self.with_os(|os, m| os.kernel_log(m))
    }

    /// The kernel backtrace of thread `t` of process `p`, innermost frame
    /// first: a sleeping thread's from what the scheduler saved, a running
    /// one's from the dump's CPU registers. A stack that cannot be
    /// followed to its end gives the frames read and says why
    /// ([`Backtrace::end`](kvm_proc::Backtrace::end)).
    pub fn backtrace(&self, p: &Process, t: &Thread) -> Result<Backtrace, Error> {
        self.readable(p)?;
        self.with_os(|os, m| os.backtrace(m, p, t))
    }

    /// Where thread `t` of `p` sleeps (`/proc/PID/wchan`, ps's WCHAN):
    /// the function it waits in; `None` when it runs or is runnable.
    pub fn wchan(&self, p: &Process, t: &Thread) -> Result<Option<String>, Error> {
        self.readable(p)?;
        self.with_os(|os, m| os.wchan(m, p, t))
    }

    /// The memory map of `p` (`/proc/PID/maps`), lowest address first;
    /// empty for a process without an address space.
    pub fn maps(&self, p: &Process) -> Result<Vec<Mapping>, Error> {
        self.readable(p)?;
        self.with_os(|os, m| os.maps(m, p))
    }

    /// The open files of `p` by descriptor (`kvm_getfiles`, as
    /// `/proc/PID/fd` and fdinfo show them); empty for a process without
    /// a file table.
    pub fn getfiles(&self, p: &Process) -> Result<Vec<OpenFile>, Error> {
        self.readable(p)?;
        self.with_os(|os, m| os.files(m, p))
    }

    /// Why the kernel died: the panic its log reports (`panicked: false`
    /// when there is none), the panicking CPU's registers and task's
    /// backtrace, and each CPU's running task.
    pub fn panic_info(&self) -> Result<PanicInfo, Error> {
        self.with_os(|os, m| os.panic_info(m))
    }

    /// The running kernel's release, from the kernel's memory.
    pub fn uts_release(&self) -> Result<String, Error> {
        self.with_os(|os, m| os.release(m))
    }

    /// The message of the last error (`kvm_geterr`); empty if none.
    pub fn geterr(&self) -> String {
        self.last_error
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Facts about the source.
    pub fn info(&self) -> Info {
        let i = self.source.info();
        let ranges = self.source.ranges();
        // The space first: finding it takes the OS lock.
        let space = self.space();
        let os = self.os.as_ref().ok().and_then(|os| os.lock().ok());
        let mut remarks = i.remarks.clone();
        // VMCOREINFO's release against the kernel's own (init_uts_ns):
        // a dump whose metadata and memory disagree says so (not through
        // `fail`: `kvm_geterr` is not this check's to set).
        let memory = match (&os, &space) {
            (Some(os), Ok(s)) => os.release(&s.machine(&*self.source)).ok(),
            _ => None,
        };
        if let (Some(said), Some(memory)) = (i.kernel_release(), &memory) {
            if said != memory {
                remarks.push(format!(
                    "VMCOREINFO says release {said}, the kernel's memory (init_uts_ns) {memory}: \
                     the metadata or the memory is damaged, or they are of two kernels"
                ));
            }
        }
        Info {
            format: i.format,
            arch: i.arch.map(|a| a.name()),
            os: os.as_ref().map(|os| os.name()),
            release: i.kernel_release().map(str::to_owned),
            page_size: i.page_size,
            kaslr_offset: os.as_ref().and_then(|os| os.kaslr_offset()),
            root: space
                .as_ref()
                .ok()
                .and_then(|s| s.found.root())
                .map(|r| r.0),
            paging: match space {
                Ok(s) => s.found.source.to_owned(),
                Err(e) => format!("no kernel paging: {e}"),
            },
            ranges: (
                ranges.len(),
                ranges.iter().fold(0u64, |a, r| a.saturating_add(r.len)),
            ),
            incomplete: i.incomplete,
            remarks,
        }
    }
}

/// The kernel address space: through the kernel's page tables, else
/// (a source without an OS layer or paging) the source's own virtual
/// reads where it has them (an ELF core's `p_vaddr`).
impl VirtRead for Kvm {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> kvm_core::Result<usize> {
        match (self.space(), self.source.kernel_virt()) {
            (Ok(space), _) => Translated::new(&*self.source, space).read_virt(va, buf),
            // Where the source does not map `va` either, the reason is
            // the missing paging.
            (Err(e), Some(direct)) => direct.read_virt(va, buf).map_err(|_| e),
            (Err(e), None) => Err(e),
        }
    }
}

/// Why no OS layer took the source: the first layer's reason (each
/// names what it looked for).
fn no_os(why: &NoOs) -> kvm_core::Error {
    kvm_core::Error::Unsupported(
        why.0
            .first()
            .map_or("no OS layer recognises the kernel", |w| w.1),
    )
}

fn poisoned() -> kvm_core::Error {
    kvm_core::Error::Malformed("a lookup panicked earlier")
}

#[cfg(test)]
mod tests;

/// Strings' bytes as text, what is not UTF-8 as U+FFFD.
fn lossy(v: Vec<Vec<u8>>) -> Vec<String> {
    v.into_iter()
        .map(|b| {
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        })
        .collect()
}
