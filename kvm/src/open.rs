//! Opening a kernel memory source by name: a dump file (any format,
//! detected by content; whole-file `.xz` too; a file of raw memory, such
//! as a running VM's RAM file), a live door (`/dev/mem`, `qemu:PID`), or
//! the running kernel (`/proc/kcore`).

use crate::{Error, Kvm, OpenFlags};
use kvm_core::{OsHint, Source};
use kvm_core_file::FileReader;
use kvm_dev::{Amended, DoorError};
use std::path::{Path, PathBuf};

/// The live kernel's memory as an ELF core (Linux).
const LIVE_KCORE: &str = "/proc/kcore";

/// A door's error as the facade's.
fn door(e: DoorError) -> Error {
    match e {
        DoorError::Io(p, e) => Error::io(Some(p), e),
        DoorError::Core(p, e) => Error::core(Some(p), e),
    }
}

/// Opens the file or door `path`: `qemu:PID`, `/dev/mem`, else a dump
/// file (its format detected from its content; with none, raw memory).
/// `write`: open for writing where the door takes writes.
fn open_path(path: &Path, write: bool) -> Result<Box<dyn Source>, Error> {
    if let Some(pid) = kvm_dev::process::door_pid(path) {
        return kvm_dev::process::open(pid, write).map_err(door);
    }
    if is_dev_mem(path) {
        return kvm_dev::devmem::open(path, write).map_err(door);
    }
    check_file_kind(path, true)?;
    let file = FileReader::open(path).map_err(|e| Error::io(Some(path.to_path_buf()), e))?;
    let mut magic = [0u8; 6];
    let n = kvm_core_file::ReadAt::read_at(&file, 0, &mut magic)
        .map_err(|e| Error::core(Some(path.to_path_buf()), e))?;
    let in_memory = magic[..n] == crate::xz::XZ_MAGIC;
    let opened = if in_memory {
        // A whole-file .xz dump (how small dumps are shipped): unpack
        // into memory, bounded, and detect the format inside.
        let bytes = crate::xz::unpack(path, &file)?;
        kvm_core_file::open(bytes)
    } else {
        match kvm_core_file::open(file) {
            // No format's header: a file of raw memory (a VM's RAM file,
            // a pmemsave image), if a kernel's VMCOREINFO is in it.
            Err(e) if no_format(&e) => {
                return kvm_dev::ramfile::open(path, write).map_err(door);
            }
            other => other,
        }
    };
    let source = opened.map_err(|e| Error::core(Some(path.to_path_buf()), e))?;
    // A scan for VMCOREINFO reads every page of a dump that lacks it:
    // through pread (a second, unmapped reader of the same file), so that
    // the pages it read are not kept resident as a mapping's would be.
    let unmapped = || {
        let f = FileReader::open_unmapped(path).ok()?;
        kvm_core_file::open(f).ok()
    };
    Ok(discover(source, || (!in_memory).then(unmapped).flatten()))
}

/// Whether `e` says that no format's header matched (detect.rs).
fn no_format(e: &kvm_core::Error) -> bool {
    matches!(e, kvm_core::Error::Unsupported(why) if why.starts_with("unknown dump format"))
}

/// A Linux source without VMCOREINFO in its metadata (LiME, a QEMU ELF
/// dump taken without `-device vmcoreinfo`) gets the one found in its
/// memory, where there is one; what `scan` gives (the same dump, read
/// another way) is what is searched, if it gives one.
fn discover(
    source: Box<dyn Source>,
    scan: impl FnOnce() -> Option<Box<dyn Source>>,
) -> Box<dyn Source> {
    let info = source.info();
    if info.vmcoreinfo.is_some() || info.os.is_some_and(|os| os != OsHint::Linux) {
        return source;
    }
    let other = scan();
    let scan = other.as_deref().unwrap_or(&*source);
    match kvm_core::discover::find_vmcoreinfo(scan, scan.ranges(), 4096) {
        Some(found) => Box::new(Amended::with(source, |i| found.apply(i))),
        None => source,
    }
}

/// Whether `path` is the `/dev/mem` character device (1, 1).
fn is_dev_mem(path: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::metadata(path)
        .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == (1 << 8 | 1))
}

/// Only regular files (and, for dumps, block devices: a dump device
/// holding a FreeBSD dump) are read: a character device is not a dump
/// (`/dev/zero` would read forever, a tty would block), a FIFO without a
/// writer blocks, a directory is no file. Each is refused by name.
pub(crate) fn check_file_kind(path: &Path, block_ok: bool) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(Some(path.to_path_buf()), e))?;
    let t = meta.file_type();
    let why = if t.is_file() || (block_ok && t.is_block_device()) {
        return Ok(());
    } else if t.is_dir() {
        "is a directory"
    } else if t.is_char_device() {
        "is a character device, not a dump file (live memory is read through /proc/kcore: give no core file; physical memory through /dev/mem)"
    } else if t.is_fifo() {
        "is a FIFO: kvm reads files it can seek in"
    } else {
        "is not a regular file"
    };
    Err(Error::io(
        Some(path.to_path_buf()),
        std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
    ))
}

/// The file treated as the live kernel: `$KVM_KCORE`, else `/proc/kcore`.
fn live_path() -> PathBuf {
    std::env::var_os("KVM_KCORE").map_or_else(|| PathBuf::from(LIVE_KCORE), PathBuf::from)
}

impl Kvm {
    /// Opens a kernel as `kvm_openfiles(3)` does: `core` names the dump
    /// (without it, the running kernel), `exec` the kernel's System.map or
    /// vmlinux (for symbols the kernel's own tables lack), `flags` whether
    /// [`Kvm::write`] is allowed.
    pub fn openfiles(
        exec: Option<&Path>,
        core: Option<&Path>,
        flags: OpenFlags,
    ) -> Result<Kvm, Error> {
        let write = flags == OpenFlags::ReadWrite;
        let kd = match core {
            Some(core) => Kvm::from_source(core, open_path(core, write)?, flags),
            None => {
                let path = live_path();
                if path.exists() {
                    check_file_kind(&path, false)?;
                }
                // The door's messages say what to do when it fails.
                let source = match kvm_dev::kcore::open(&path) {
                    // A stand-in for /proc/kcore (`KVM_KCORE`: tests, a
                    // copy) in another dump format, .xz too: read as live.
                    Err(DoorError::Core(_, e))
                        if no_format(&e) && path != Path::new(LIVE_KCORE) =>
                    {
                        Box::new(Amended::live(open_path(&path, false)?))
                    }
                    r => r.map_err(door)?,
                };
                Kvm::from_source(&path, source, flags)
            }
        };
        if let Some(exec) = exec {
            kd.set_kernel_file(exec)?;
        }
        Ok(kd)
    }

    /// Opens the crash dump at `path`, read-only, detecting its format from
    /// its content.
    ///
    /// A dump whose kernel or paging cannot be found still opens: physical
    /// reads work and the other calls report why they cannot.
    pub fn open_dump(path: impl AsRef<Path>) -> Result<Kvm, Error> {
        Kvm::openfiles(None, Some(path.as_ref()), OpenFlags::ReadOnly)
    }

    /// Opens the running kernel through `/proc/kcore` (Linux; needs root
    /// and a kernel without lockdown). Reads are never cached. The
    /// environment variable `KVM_KCORE` names another file to treat as the
    /// live kernel (tests, or a kcore copied elsewhere).
    pub fn open_live() -> Result<Kvm, Error> {
        Kvm::openfiles(None, None, OpenFlags::ReadOnly)
    }

    /// As [`Kvm::open_dump`], with the dump wrapped by `wrap` (to record
    /// or filter what is read).
    pub fn open_dump_with(
        path: impl AsRef<Path>,
        wrap: impl FnOnce(Box<dyn Source>) -> Box<dyn Source>,
    ) -> Result<Kvm, Error> {
        let path = path.as_ref();
        let source = wrap(open_path(path, false)?);
        Ok(Kvm::from_source(path, source, OpenFlags::ReadOnly))
    }
}
