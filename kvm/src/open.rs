//! Opening a kernel memory source and reading it.

use crate::linux::{KernelView, LinuxData};
use crate::Error;
use kvm_core::{CachedTranslate, PhysAddr, PhysRead, Translate, Translation, VirtAddr, VirtRead};
use kvm_core_file::linux::{kernel_paging, ArchPaging, KernelPaging};
use kvm_core_file::{Dump, FileReader};
use kvm_proc::linux::Linux;
use kvm_proc::{Process, Strings};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The xz container's magic bytes.
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
/// Largest dump unpacked from an .xz file into memory.
const MAX_XZ_DUMP: u64 = 1 << 30;

fn unxz(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::{BufReader, Write};
    let f = std::fs::File::open(path).map_err(|e| Error::io(Some(path.to_path_buf()), e))?;
    let mut out = Vec::new();
    // Cap the output: a small file must not expand into all of memory.
    struct Capped<'a>(&'a mut Vec<u8>);
    impl Write for Capped<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0.len() as u64 + b.len() as u64 > MAX_XZ_DUMP {
                return Err(std::io::Error::other(
                    "xz dump larger than 1 GiB: unpack it first",
                ));
            }
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    lzma_rs::xz_decompress(&mut BufReader::new(f), &mut Capped(&mut out)).map_err(|e| {
        Error::io(
            Some(path.to_path_buf()),
            std::io::Error::other(format!("xz: {e}")),
        )
    })?;
    Ok(out)
}

/// The live kernel's memory as an ELF core (Linux).
const LIVE_KCORE: &str = "/proc/kcore";

/// The kernel's translator: cached for dumps, direct for live memory.
enum KernelTlb {
    Cached(Box<CachedTranslate<ArchPaging, TLB>>),
    Live(ArchPaging),
}

impl Translate for KernelTlb {
    fn translate(&self, mem: &dyn PhysRead, va: VirtAddr) -> kvm_core::Result<Translation> {
        match self {
            KernelTlb::Cached(t) => t.translate(mem, va),
            KernelTlb::Live(t) => t.translate(mem, va),
        }
    }
}

/// The kernel's paging as found from the dump's facts.
struct Paging {
    /// The translator (cached for dumps).
    tlb: KernelTlb,
    /// The paging found, and where its root came from.
    found: KernelPaging,
}

/// Translations cached per open dump.
const TLB: usize = 1024;

/// An open kernel memory source (`kvm_t`).
pub struct Kvm {
    path: PathBuf,
    dump: Box<dyn Dump>,
    /// Kernel paging, when the dump says where the kernel's tables are.
    paging: Result<Paging, kvm_core::Error>,
    /// Symbols and types of the kernel, loaded on first use.
    linux: OnceLock<Result<LinuxData, kvm_core::Error>>,
    /// Symbols of the kernel file (`-N`), until `linux` is loaded.
    kernel_file: Mutex<Option<kvm_elf::SymbolTable>>,
    last_error: Mutex<String>,
}

impl std::fmt::Debug for Kvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kvm")
            .field("path", &self.path)
            .field("dump", &self.dump)
            .finish_non_exhaustive()
    }
}

/// Which processes [`Kvm::getprocs`] returns (the `KERN_PROC_*` ops).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcOp {
    /// Every process.
    All,
    /// The process with this pid.
    Pid(u32),
    /// The members of this process group.
    Pgrp(u32),
    /// The members of this session.
    Session(u32),
    /// Processes of this effective user id.
    Uid(u32),
    /// Processes of this real user id.
    Ruid(u32),
    /// Kernel threads.
    Kthread,
    /// Processes whose controlling terminal has this `tty_nr`.
    Tty(u32),
}

/// What `kvm info` prints: facts about the open source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The dump format (`elf`, `kdump`, `kdump-flattened`, `lime`, …).
    pub format: &'static str,
    /// `uname -m` of the dumped machine, if known.
    pub arch: Option<&'static str>,
    /// The operating system, when the dump shows it (`linux`).
    pub os: Option<&'static str>,
    /// The kernel release.
    pub release: Option<String>,
    /// The kernel's page size.
    pub page_size: Option<u64>,
    /// The KASLR slide of the kernel image.
    pub kaslr_offset: Option<u64>,
    /// Physical address of the kernel's top page table.
    pub root: Option<u64>,
    /// Where the root came from, or why there is none.
    pub paging: String,
    /// Number of physical ranges and their total size in bytes.
    pub ranges: (usize, u64),
    /// Whether the dump says it is incomplete.
    pub incomplete: bool,
    /// Remarks on where facts came from.
    pub remarks: Vec<String>,
}

impl Kvm {
    /// Opens the crash dump at `path`, detecting its format from its
    /// content, and finds the kernel's page tables from the dump's facts.
    ///
    /// A dump whose paging cannot be found still opens: physical reads
    /// work and virtual reads report why they cannot.
    pub fn open_dump(path: impl AsRef<Path>) -> Result<Kvm, Error> {
        Self::open_dump_with(path, |d| d)
    }

    /// Opens the running kernel through `/proc/kcore` (Linux; needs root
    /// and a kernel without lockdown). Reads are never cached. The
    /// environment variable `KVM_KCORE` names another file to treat as the
    /// live kernel (tests, or a kcore copied elsewhere).
    pub fn open_live() -> Result<Kvm, Error> {
        let path =
            std::env::var_os("KVM_KCORE").map_or_else(|| PathBuf::from(LIVE_KCORE), PathBuf::from);
        Self::open_source(&path, |d| d, true)
    }

    /// As [`Kvm::open_dump`], with the dump wrapped by `wrap` (to record
    /// or filter what is read).
    pub fn open_dump_with(
        path: impl AsRef<Path>,
        wrap: impl FnOnce(Box<dyn Dump>) -> Box<dyn Dump>,
    ) -> Result<Kvm, Error> {
        Self::open_source(path.as_ref(), wrap, false)
    }

    fn open_source(
        path: &Path,
        wrap: impl FnOnce(Box<dyn Dump>) -> Box<dyn Dump>,
        live: bool,
    ) -> Result<Kvm, Error> {
        let path = path.to_path_buf();
        let file = FileReader::open(&path).map_err(|e| Error::io(Some(path.clone()), e))?;
        let mut magic = [0u8; 6];
        let n = kvm_core_file::ReadAt::read_at(&file, 0, &mut magic)
            .map_err(|e| Error::core(Some(path.clone()), e))?;
        let dump = if magic[..n] == XZ_MAGIC {
            // A whole-file .xz dump (how small dumps are shipped): unpack
            // into memory, bounded, and detect the format inside.
            let bytes = unxz(&path)?;
            kvm_core_file::open(bytes)
        } else {
            kvm_core_file::open(file)
        }
        .map_err(|e| Error::core(Some(path.clone()), e))?;
        let dump = wrap(dump);
        let paging = kernel_paging(dump.info()).map(|k: KernelPaging| Paging {
            // Live memory changes under the reader: never cache its translations.
            tlb: if live {
                KernelTlb::Live(k.arch)
            } else {
                KernelTlb::Cached(Box::new(CachedTranslate::new(k.arch)))
            },
            found: k,
        });
        Ok(Kvm {
            path,
            dump,
            paging,
            linux: OnceLock::new(),
            kernel_file: Mutex::new(None),
            last_error: Mutex::new(String::new()),
        })
    }

    /// Adds the symbols of the kernel file `path` (`-N`): a `System.map`
    /// or an ELF vmlinux, with link-time addresses that are relocated by
    /// the dump's KASLR offset. They answer for names the kernel's own
    /// kallsyms lacks. Call before the first symbol lookup.
    pub fn set_kernel_file(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(Some(path.to_path_buf()), e))?;
        let table = if bytes.starts_with(b"\x7fELF") {
            kvm_elf::SymbolTable::from_elf(&bytes)
        } else {
            kvm_elf::SymbolTable::from_system_map(&bytes)
        }
        .map_err(|e| Error::core(Some(path.to_path_buf()), e))?;
        if self.linux.get().is_some() {
            return Err(Error::core(
                Some(path.to_path_buf()),
                kvm_core::Error::Unsupported("symbols were already loaded"),
            ));
        }
        if let Ok(mut k) = self.kernel_file.lock() {
            *k = Some(table);
        }
        Ok(())
    }

    /// The file this source reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The dump (physical memory and its facts).
    pub fn dump(&self) -> &dyn Dump {
        &*self.dump
    }

    fn fail(&self, e: kvm_core::Error) -> Error {
        let err = Error::core(Some(self.path.clone()), e);
        if let Ok(mut last) = self.last_error.lock() {
            *last = err.to_string();
        }
        err
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
        self.dump
            .read_phys(PhysAddr(addr), buf)
            .map_err(|e| self.fail(e))
    }

    /// Writes kernel memory (`kvm_write`): dumps are read-only.
    pub fn write(&self, _addr: u64, _buf: &[u8]) -> Result<usize, Error> {
        Err(self.fail(kvm_core::Error::ReadOnly))
    }

    /// Translates a kernel virtual address.
    pub fn translate(&self, addr: u64) -> Result<Translation, Error> {
        let p = self.paging.as_ref().map_err(|e| self.fail(*e))?;
        p.tlb
            .translate(&*self.dump, VirtAddr(addr))
            .map_err(|e| self.fail(e))
    }

    /// The kernel's paging configuration (to build process address spaces).
    pub(crate) fn arch_paging(&self) -> Option<ArchPaging> {
        self.paging.as_ref().ok().map(|p| p.found.arch)
    }

    fn linux_data(&self) -> Result<&LinuxData, Error> {
        let extra = || self.kernel_file.lock().ok().and_then(|mut k| k.take());
        match self.linux.get_or_init(|| LinuxData::load(self, extra())) {
            Ok(d) => Ok(d),
            Err(e) => Err(self.fail(*e)),
        }
    }

    fn with_linux<T>(
        &self,
        f: impl FnOnce(&Linux<'_, KernelView<'_>>) -> kvm_core::Result<T>,
    ) -> Result<T, Error> {
        let data = self.linux_data()?;
        let view = KernelView { kvm: self, data };
        let linux = match data.walker.get() {
            Some(&(layout, init_task)) => Linux::from_parts(&view, layout, init_task),
            None => {
                let linux = data
                    .btf_checked(|| Linux::new(&view))
                    .map_err(|e| self.fail(e))?;
                let _ = data.walker.set(linux.parts());
                linux
            }
        };
        // The walkers ask for some types only when they meet them.
        data.btf_checked(|| f(&linux)).map_err(|e| self.fail(e))
    }

    /// Looks up kernel symbols (`kvm_nlist`): each name's runtime address,
    /// from the dump's own kallsyms (then the `-N` kernel file, VMCOREINFO,
    /// and the symbols of loaded modules), or `None`.
    pub fn nlist(&self, names: &[&str]) -> Result<Vec<Option<u64>>, Error> {
        let data = self.linux_data()?;
        let view = KernelView { kvm: self, data };
        let mut out: Vec<Option<u64>> = names
            .iter()
            .map(|n| kvm_proc::Kernel::symbol(&view, n))
            .collect();
        if out.iter().any(Option::is_none) {
            // A module list that cannot be read (a dump cut down to other
            // pages) leaves the names unresolved, as kvm_nlist reports them.
            let modules = self.module_symbols().unwrap_or_default();
            for (slot, name) in out.iter_mut().zip(names) {
                if slot.is_none() {
                    *slot = modules.iter().find(|m| m.name == *name).map(|m| m.addr);
                }
            }
        }
        Ok(out)
    }

    /// The byte offset and size of a member path (`task_struct.mm`,
    /// `mm_struct.arg_start`) or the size of a type (`task_struct`), from
    /// the kernel's BTF: `(offset, size)`, offset `None` for a type.
    pub fn type_info(&self, path: &str) -> Result<Option<(Option<u64>, u64)>, Error> {
        let data = self.linux_data()?;
        let view = KernelView { kvm: self, data };
        let (size, off) = data
            .btf_checked(|| {
                let size = kvm_proc::Kernel::size_of(&view, path);
                let off = path
                    .contains('.')
                    .then(|| kvm_proc::Kernel::offset_of(&view, path));
                Ok((size, off))
            })
            .map_err(|e| self.fail(e))?;
        Ok(match off {
            Some(off) => off.zip(size).map(|(o, s)| (Some(o), s)),
            None => size.map(|s| (None, s)),
        })
    }

    /// The symbols of the loaded modules (the `[module]` lines of
    /// `/proc/kallsyms`).
    pub fn module_symbols(&self) -> Result<&[kvm_proc::ModuleSymbol], Error> {
        let data = self.linux_data()?;
        if let Some(m) = data.modules.get() {
            return Ok(m);
        }
        let m = self.with_linux(|l| l.module_symbols())?;
        Ok(data.modules.get_or_init(|| m))
    }

    /// The kernel's own symbol table (kallsyms decoded from the dump's
    /// memory, runtime addresses).
    pub fn kernel_symbols(&self) -> Result<&kvm_elf::SymbolTable, Error> {
        let data = self.linux_data()?;
        data.syms.all(self).map_err(|e| self.fail(e))
    }

    /// The processes selected by `op` (`kvm_getprocs`), each with its
    /// threads.
    pub fn getprocs(&self, op: ProcOp) -> Result<Vec<Process>, Error> {
        let all = self.with_linux(|l| l.processes())?;
        Ok(all
            .into_iter()
            .filter(|p| match op {
                ProcOp::All => true,
                ProcOp::Pid(x) => p.pid == x,
                ProcOp::Pgrp(x) => p.pgrp == x,
                ProcOp::Session(x) => p.session == x,
                ProcOp::Uid(x) => p.euid == x,
                ProcOp::Ruid(x) => p.uid == x,
                ProcOp::Kthread => p.kthread,
                ProcOp::Tty(x) => p.tty_nr == x,
            })
            .collect())
    }

    /// The arguments of `p` (`kvm_getargv`), read through its own page
    /// tables; an error when part of them is not in the dump.
    pub fn getargv(&self, p: &Process) -> Result<Vec<String>, Error> {
        match self.with_linux(|l| Ok(l.argv(p.task)))? {
            Strings::Read(v) => Ok(v),
            Strings::Unavailable(e) => Err(self.fail(e)),
        }
    }

    /// The environment of `p` (`kvm_getenvv`).
    pub fn getenvv(&self, p: &Process) -> Result<Vec<String>, Error> {
        match self.with_linux(|l| Ok(l.envv(p.task)))? {
            Strings::Read(v) => Ok(v),
            Strings::Unavailable(e) => Err(self.fail(e)),
        }
    }

    /// The 1, 5 and 15-minute load averages (`kvm_getloadavg`), rounded as
    /// `/proc/loadavg` prints them.
    pub fn getloadavg(&self) -> Result<[f64; 3], Error> {
        self.with_linux(|l| l.loadavg())
    }

    /// The running kernel's release, from `init_uts_ns`.
    pub fn uts_release(&self) -> Result<String, Error> {
        self.with_linux(|l| l.release())
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
        let i = self.dump.info();
        let vi = i.vmcoreinfo.as_ref();
        let ranges = self.dump.ranges();
        Info {
            format: i.format,
            arch: i.arch.map(|a| a.name()),
            os: vi.and_then(|v| v.osrelease()).map(|_| "linux"),
            release: i.kernel_release().map(str::to_owned),
            page_size: i.page_size,
            kaslr_offset: vi.and_then(|v| v.kernel_offset()),
            root: self.paging.as_ref().ok().map(|p| p.found.arch.root().0),
            paging: match &self.paging {
                Ok(p) => p.found.source.to_owned(),
                Err(e) => format!("no kernel paging: {e}"),
            },
            ranges: (
                ranges.len(),
                ranges.iter().fold(0u64, |a, r| a.saturating_add(r.len)),
            ),
            incomplete: i.incomplete,
            remarks: i.remarks.clone(),
        }
    }
}

impl VirtRead for Kvm {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> kvm_core::Result<usize> {
        let paging = self.paging.as_ref().map_err(|e| *e)?;
        kvm_core::Translated::new(&*self.dump, &paging.tlb).read_virt(va, buf)
    }
}
