//! Physical memory that is a file at known offsets: a guest's RAM file
//! (each guest-physical range at a file offset), a QEMU process's memory
//! (`/proc/PID/mem`, each range at the host address QEMU mapped it to), a
//! raw image. Every read and write goes to the file (`pread`/`pwrite`):
//! nothing is cached, so a running guest's changes are seen by the next
//! read.

use kvm_core::{Error, MapRange, PhysAddr, PhysRead, PhysWrite, Result, Source, SourceInfo};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Physical ranges of `file`: each [`MapRange`]'s `value` is the file
/// offset of its `start`.
#[derive(Debug)]
pub struct MappedFile {
    file: File,
    ranges: Vec<MapRange>,
    writable: bool,
    info: SourceInfo,
}

impl MappedFile {
    /// `ranges` sorted and disjoint (physical addresses); `writable` when
    /// `file` was opened for writing and writes are wanted.
    pub fn new(file: File, mut ranges: Vec<MapRange>, writable: bool, info: SourceInfo) -> Self {
        ranges.sort_by_key(|r| r.start);
        MappedFile {
            file,
            ranges,
            writable,
            info,
        }
    }

    /// The facts, to amend after discovery.
    pub fn info_mut(&mut self) -> &mut SourceInfo {
        &mut self.info
    }

    /// The ranges, replaced once the layout is known.
    pub fn set_ranges(&mut self, mut ranges: Vec<MapRange>) {
        ranges.sort_by_key(|r| r.start);
        self.ranges = ranges;
    }

    /// The file offset of `pa` and the bytes left in its range.
    fn locate(&self, pa: PhysAddr) -> Result<(u64, u64)> {
        let (r, off) = MapRange::find(&self.ranges, pa.0).ok_or(Error::NotInMemory { pa: pa.0 })?;
        Ok((r.value + off, r.len - off))
    }
}

/// An I/O error as the core's error.
pub(crate) fn io_error(e: &std::io::Error) -> Error {
    Error::Io {
        errno: e.raw_os_error().unwrap_or(0),
    }
}

impl MappedFile {
    /// Moves up to `len` bytes at `pa`, range by range: `io(file offset,
    /// done, count)` moves `count` bytes at the offset, from or to the
    /// caller's buffer at `done`. The count semantics of [`PhysRead`].
    fn transfer(
        &self,
        pa: PhysAddr,
        len: usize,
        mut io: impl FnMut(u64, usize, usize) -> std::io::Result<usize>,
    ) -> Result<usize> {
        let mut done = 0usize;
        while done < len {
            let at = PhysAddr(pa.0.wrapping_add(done as u64));
            let (off, left) = match self.locate(at) {
                Ok(l) => l,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            let want = (len - done).min(usize::try_from(left).unwrap_or(usize::MAX));
            match io(off, done, want) {
                Ok(0) if done == 0 => return Err(Error::NotInMemory { pa: at.0 }),
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if done == 0 => return Err(io_error(&e)),
                Err(_) => break,
            }
        }
        Ok(done)
    }
}

impl PhysRead for MappedFile {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len();
        self.transfer(pa, len, |off, at, n| {
            self.file.read_at(&mut buf[at..at + n], off)
        })
    }
}

impl PhysWrite for MappedFile {
    fn write_phys(&self, pa: PhysAddr, buf: &[u8]) -> Result<usize> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        self.transfer(pa, buf.len(), |off, at, n| {
            self.file.write_at(&buf[at..at + n], off)
        })
    }
}

impl Source for MappedFile {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &self.ranges
    }
    fn phys_write(&self) -> Option<&dyn PhysWrite> {
        self.writable.then_some(self as &dyn PhysWrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_core::Endian;
    use std::io::Write;

    /// A scratch file holding `bytes`, removed when the guard drops.
    pub(crate) struct Scratch(pub std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    pub(crate) fn file(bytes: &[u8]) -> (Scratch, File) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "kvm-dev-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        File::create(&path).unwrap().write_all(bytes).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (Scratch(path), f)
    }

    fn two_ranges(f: File, writable: bool) -> MappedFile {
        // PA 0x1000..0x1800 at offset 0x800, PA 0x4000..0x4800 at offset 0.
        let ranges = vec![
            MapRange {
                start: 0x4000,
                len: 0x800,
                value: 0,
            },
            MapRange {
                start: 0x1000,
                len: 0x800,
                value: 0x800,
            },
        ];
        MappedFile::new(f, ranges, writable, SourceInfo::new("test", Endian::Little))
    }

    #[test]
    fn reads_follow_the_ranges_and_stop_at_their_end() {
        let bytes: Vec<u8> = (0..0x1000u32).map(|i| (i / 0x800) as u8 + 1).collect();
        let (_t, f) = file(&bytes);
        let m = two_ranges(f, false);
        let mut b = [0u8; 16];
        assert_eq!(m.read_phys(PhysAddr(0x1000), &mut b), Ok(16));
        assert_eq!(b, [2; 16]);
        assert_eq!(m.read_phys(PhysAddr(0x4000), &mut b), Ok(16));
        assert_eq!(b, [1; 16]);
        // Short at the end of a range: the next one is not contiguous.
        assert_eq!(m.read_phys(PhysAddr(0x17f8), &mut b), Ok(8));
        assert_eq!(
            m.read_phys(PhysAddr(0x2000), &mut b),
            Err(Error::NotInMemory { pa: 0x2000 })
        );
    }

    #[test]
    fn writes_go_to_the_file_and_are_refused_when_read_only() {
        let (t, f) = file(&[0u8; 0x1000]);
        let m = two_ranges(f, true);
        assert_eq!(m.write_phys(PhysAddr(0x1004), b"abcd"), Ok(4));
        let on_disk = std::fs::read(&t.0).unwrap();
        assert_eq!(&on_disk[0x804..0x808], b"abcd");
        // The next read sees it: nothing is cached.
        let mut b = [0u8; 4];
        m.read_phys(PhysAddr(0x1004), &mut b).unwrap();
        assert_eq!(&b, b"abcd");
        assert_eq!(
            m.write_phys(PhysAddr(0x3000), b"x"),
            Err(Error::NotInMemory { pa: 0x3000 })
        );
        let (_t2, f2) = file(&[0u8; 0x1000]);
        let ro = two_ranges(f2, false);
        assert!(ro.phys_write().is_none());
        assert_eq!(ro.write_phys(PhysAddr(0x1000), b"x"), Err(Error::ReadOnly));
    }
}
