//! Opening a kernel memory source by name: a dump file (any format,
//! detected by content; whole-file `.xz` too) or the running kernel.

use crate::live::Live;
use crate::{Error, Kvm, OpenFlags};
use kvm_core::Source;
use kvm_core_file::FileReader;
use std::path::{Path, PathBuf};

/// The xz container's magic bytes.
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
/// Largest dump unpacked from an .xz file into memory.
const MAX_XZ_DUMP: u64 = 1 << 30;
/// The live kernel's memory as an ELF core (Linux).
const LIVE_KCORE: &str = "/proc/kcore";

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

/// Opens the dump file at `path`, its format detected from its content.
fn open_file(path: &Path) -> Result<Box<dyn Source>, Error> {
    check_file_kind(path, true)?;
    let file = FileReader::open(path).map_err(|e| Error::io(Some(path.to_path_buf()), e))?;
    let mut magic = [0u8; 6];
    let n = kvm_core_file::ReadAt::read_at(&file, 0, &mut magic)
        .map_err(|e| Error::core(Some(path.to_path_buf()), e))?;
    if magic[..n] == XZ_MAGIC {
        // A whole-file .xz dump (how small dumps are shipped): unpack
        // into memory, bounded, and detect the format inside.
        let bytes = unxz(path)?;
        kvm_core_file::open(bytes)
    } else {
        kvm_core_file::open(file)
    }
    .map_err(|e| Error::core(Some(path.to_path_buf()), e))
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
        "is a character device, not a dump file (live memory is read through /proc/kcore: give no core file)"
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

/// A live door that is not there: say what to do instead.
fn no_live(e: Error) -> Error {
    match e.io_kind() {
        Some(std::io::ErrorKind::NotFound) => Error::io(
            e.path().map(Path::to_path_buf),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file: no live kernel memory here (open a crash dump instead: -M CORE)",
            ),
        ),
        _ => e,
    }
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
        let kd = match core {
            Some(core) => Kvm::from_source(core, open_file(core)?, flags),
            None => {
                let path = live_path();
                let source = Box::new(Live::new(open_file(&path).map_err(no_live)?));
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
        let source = wrap(open_file(path)?);
        Ok(Kvm::from_source(path, source, OpenFlags::ReadOnly))
    }
}
