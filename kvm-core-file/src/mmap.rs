//! Dump files memory-mapped (memmap2): a read is a copy out of the page
//! cache, no system call per page. The one module of this crate with
//! `unsafe`.
//!
//! What happens if the file changes underneath (another process writes or
//! truncates it while kvm reads):
//! - **Written**: the bytes copied may mix old and new contents, as a
//!   `pread` racing the same write may. Reads never form a Rust reference
//!   to the mapping: bytes are copied with `ptr::copy_nonoverlapping` from
//!   the mapping's base pointer, so no `&[u8]` is ever held over memory
//!   that can change (which would break the aliasing rules); what was
//!   copied is ordinary owned data.
//! - **Truncated**: touching a mapped page past the new end of file raises
//!   SIGBUS and the process ends. It never reads memory that is not the
//!   file's or returns made-up bytes. (A crash dump being cut while it is
//!   read is the one case; the readers re-check every offset against the
//!   size taken at open.)
//!
//! Bounded residency: every page a read touches stays mapped, and the
//! kernel maps up to 16 cached neighbours with it (fault-around,
//! `fault_around_bytes`, 64 KiB), all counted in the process's RSS; a
//! `kvm ps` over a 1 GiB ELF dump read wholly through the mapping had
//! 230 MiB resident (18 MiB with `pread`). So after every
//! [`RELEASE_EVERY`] pages read, the mapping's page-table entries are
//! dropped (`MADV_DONTNEED`: the file's pages stay in the page cache, the
//! next touch maps them again). At most 512 × 16 pages, 32 MiB, of the
//! file are resident through the mapping at any time.
//!
//! Files that cannot be mapped (`/proc/kcore`, pipes, some network file
//! systems) are read with `pread` instead: [`crate::FileReader`] decides.

#![allow(unsafe_code)]

use crate::{ReadAt, Result};
use std::fs::File;
use std::sync::atomic::{AtomicU32, Ordering};

/// Pages (4 KiB) read through a mapping between two releases of its
/// page-table entries (see the module text).
const RELEASE_EVERY: u32 = 512;

/// A whole file, mapped read-only.
#[derive(Debug)]
pub struct MappedReader {
    map: memmap2::Mmap,
    /// Pages read since the entries were last dropped.
    touched: AtomicU32,
}

impl MappedReader {
    /// Maps `file` (read-only, shared). Fails where the file system cannot
    /// map it, or the file is empty.
    pub fn map(file: &File) -> std::io::Result<Self> {
        // SAFETY: the mapping is read-only and private to this value; its
        // bytes are only ever copied out through a raw pointer, bounded by
        // the length taken here (see the module text for a file that
        // changes or shrinks meanwhile).
        let map = unsafe { memmap2::MmapOptions::new().map(file)? };
        if map.is_empty() {
            return Err(std::io::Error::other("an empty file is not mapped"));
        }
        Ok(MappedReader {
            map,
            touched: AtomicU32::new(0),
        })
    }

    /// Counts the pages a read of `n` bytes touched (one more where it
    /// straddles) and drops the mapping's page-table entries after every
    /// [`RELEASE_EVERY`].
    fn touched(&self, n: usize) {
        let pages = u32::try_from(n.div_ceil(4096) + 1).unwrap_or(u32::MAX);
        let was = self.touched.fetch_add(pages, Ordering::Relaxed);
        if was.saturating_add(pages) >= RELEASE_EVERY {
            self.touched.store(0, Ordering::Relaxed);
            // SAFETY: MADV_DONTNEED on a shared read-only file mapping
            // only unmaps: the next access maps the same file page again
            // (no data is discarded, unlike a private anonymous mapping).
            // A copy racing it on another thread reads the page again.
            // Failing to advise only leaves the pages resident.
            let _ = unsafe {
                self.map
                    .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
            };
        }
    }
}

impl ReadAt for MappedReader {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let len = self.map.len() as u64;
        if off >= len {
            return Ok(0);
        }
        let n = (len - off).min(buf.len() as u64) as usize;
        // SAFETY: `off + n <= len`: the source range lies inside the
        // mapping, the destination is `buf`, and the two cannot overlap
        // (the mapping is not memory Rust hands out elsewhere).
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(off as usize), buf.as_mut_ptr(), n);
        }
        self.touched(n);
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.map.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_are_bounded_by_the_file() {
        let path = std::env::temp_dir().join(std::format!("kvm-mmap-test-{}", std::process::id()));
        File::create(&path)
            .unwrap()
            .write_all(b"0123456789")
            .unwrap();
        let m = MappedReader::map(&File::open(&path).unwrap()).unwrap();
        let mut b = [0u8; 4];
        assert_eq!(m.read_at(8, &mut b), Ok(2));
        assert_eq!(&b[..2], b"89");
        assert_eq!(m.read_at(10, &mut b), Ok(0));
        assert_eq!(m.read_at(u64::MAX, &mut b), Ok(0));
        assert_eq!(m.size(), 10);
        std::fs::write(&path, b"").unwrap();
        let e = MappedReader::map(&File::open(&path).unwrap()).unwrap_err();
        assert_eq!(
            std::string::ToString::to_string(&e),
            "an empty file is not mapped"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn reads_past_a_release_of_the_entries_are_the_files_bytes() {
        let path =
            std::env::temp_dir().join(std::format!("kvm-mmap-release-{}", std::process::id()));
        let bytes: std::vec::Vec<u8> = (0..3 * RELEASE_EVERY * 4096)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        let m = MappedReader::map(&File::open(&path).unwrap()).unwrap();
        let mut page = [0u8; 4096];
        // Forwards over three releases, then backwards over them again.
        let pages = bytes.len() / 4096;
        for i in (0..pages).chain((0..pages).rev()) {
            assert_eq!(m.read_at(i as u64 * 4096, &mut page), Ok(4096));
            assert_eq!(&page[..], &bytes[i * 4096..(i + 1) * 4096], "page {i}");
        }
        assert!(m.touched.load(Ordering::Relaxed) < RELEASE_EVERY);
        std::fs::remove_file(&path).unwrap();
    }
}
