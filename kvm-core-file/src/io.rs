//! Positional reads of a dump file.

use crate::{Error, Result};
use alloc::vec::Vec;
use kvm_core::MapRange;

/// Reads `buf` at `addr` through `map` (sorted, disjoint ranges whose
/// `value` is the file offset of their start), crossing into adjacent
/// ranges. Returns `None` when `addr` itself is in no range, else the count
/// read (short at a hole or the end of the file).
pub(crate) fn read_ranges<R: ReadAt + ?Sized>(
    file: &R,
    map: &[MapRange],
    addr: u64,
    buf: &mut [u8],
) -> Result<Option<usize>> {
    let mut done = 0usize;
    while done < buf.len() {
        let Some(at) = addr.checked_add(done as u64) else {
            break;
        };
        let Some((r, off)) = MapRange::find(map, at) else {
            break;
        };
        let n = usize::try_from(r.len - off)
            .unwrap_or(usize::MAX)
            .min(buf.len() - done);
        let Some(foff) = r.value.checked_add(off) else {
            break;
        };
        let got = file.read_at(foff, &mut buf[done..done + n])?;
        done += got;
        if got < n {
            break;
        }
    }
    Ok((done > 0 || buf.is_empty()).then_some(done))
}

/// A dump file read at explicit offsets (`pread`): shareable between
/// threads, no seek position.
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `off`; fewer only at the end of the
    /// file. Reading at or past the end returns `Ok(0)`.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize>;

    /// The file size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from `off`, or fails with [`Error::Malformed`] naming
    /// `what` when the file ends first.
    fn read_exact_at(&self, off: u64, buf: &mut [u8], what: &'static str) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = off.checked_add(done as u64).ok_or(Error::Malformed(what))?;
            match self.read_at(at, &mut buf[done..])? {
                0 => return Err(Error::Malformed(what)),
                n => done += n,
            }
        }
        Ok(())
    }

    /// Reads `len` bytes at `off` into a new vector, after checking that
    /// they lie inside the file (so `len` can come from the file itself).
    fn read_vec_at(&self, off: u64, len: u64, what: &'static str) -> Result<Vec<u8>> {
        let end = off.checked_add(len).ok_or(Error::Malformed(what))?;
        if end > self.size() {
            return Err(Error::Malformed(what));
        }
        let len = usize::try_from(len).map_err(|_| Error::Malformed(what))?;
        let mut v = alloc::vec![0u8; len];
        self.read_exact_at(off, &mut v, what)?;
        Ok(v)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let Ok(off) = usize::try_from(off) else {
            return Ok(0);
        };
        let src = self.get(off..).unwrap_or_default();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        self.as_slice().read_at(off, buf)
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

impl<R: ReadAt + ?Sized> ReadAt for &R {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        (**self).read_at(off, buf)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
}

impl<R: ReadAt + ?Sized> ReadAt for alloc::boxed::Box<R> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        (**self).read_at(off, buf)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
}

impl<R: ReadAt + ?Sized> ReadAt for alloc::sync::Arc<R> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        (**self).read_at(off, buf)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
}

#[cfg(feature = "std")]
pub use file::FileReader;

#[cfg(feature = "std")]
mod file {
    use super::*;
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::path::Path;

    /// A dump file: memory-mapped where the file system allows it (no
    /// system call per read, residency bounded: [`crate::mmap`]), else
    /// read with `pread` (`/proc/kcore`, pipes).
    #[derive(Debug)]
    pub struct FileReader {
        file: File,
        size: u64,
        map: Option<crate::mmap::MappedReader>,
    }

    impl FileReader {
        /// Opens `path` read-only.
        pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
            let file = File::open(path)?;
            let meta = file.metadata()?;
            let size = meta.len();
            // Regular files only: a device's size is 0 here, and /proc
            // files cannot be mapped.
            let map = if meta.is_file() {
                crate::mmap::MappedReader::map(&file).ok()
            } else {
                None
            };
            Ok(FileReader { file, size, map })
        }

        /// Opens `path` read-only, read with `pread` and never mapped: for
        /// one pass over a whole file (a scan), which through a mapping
        /// would count every page it touched in the process's RSS.
        pub fn open_unmapped(path: impl AsRef<Path>) -> std::io::Result<Self> {
            let file = File::open(path)?;
            let size = file.metadata()?.len();
            Ok(FileReader {
                file,
                size,
                map: None,
            })
        }

        /// Whether reads copy from a mapping (else `pread`).
        pub fn is_mapped(&self) -> bool {
            self.map.is_some()
        }
    }

    impl ReadAt for FileReader {
        fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
            if let Some(m) = &self.map {
                return m.read_at(off, buf);
            }
            let mut done = 0;
            while done < buf.len() {
                let Some(at) = off.checked_add(done as u64) else {
                    break;
                };
                match self.file.read_at(&mut buf[done..], at) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(Error::Io {
                            errno: e.raw_os_error().unwrap_or(0),
                        })
                    }
                }
            }
            Ok(done)
        }
        fn size(&self) -> u64 {
            self.size
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn sequential_and_scattered_reads_give_the_files_bytes() {
        let path = std::env::temp_dir().join(std::format!("kvm-io-test-{}", std::process::id()));
        let bytes: Vec<u8> = (0..64 * 4096u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let f = FileReader::open(&path).unwrap();
        assert!(f.is_mapped());
        let mut b = [0u8; 4096];
        // A pass, a walk, a pass again from the middle.
        let order = (0..64).chain([7, 3, 60, 0, 31, 31]).chain(32..64);
        for i in order {
            assert_eq!(f.read_at(i * 4096, &mut b), Ok(4096));
            assert_eq!(&b[..], &bytes[i as usize * 4096..][..4096], "page {i}");
        }
        // Past the end: short, then nothing, either way.
        assert_eq!(f.read_at(63 * 4096 + 100, &mut b), Ok(3996));
        assert_eq!(f.read_at(64 * 4096, &mut b), Ok(0));
        std::fs::remove_file(&path).unwrap();
    }
}
