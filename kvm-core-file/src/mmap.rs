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
//! kernel maps the cached pages around it with it (fault-around: the
//! aligned 64 KiB window, `fault_around_bytes`' default), all counted in
//! the process's RSS; a `kvm ps` over a 1 GiB ELF dump had 230 MiB
//! resident that way. So the reader counts the distinct 64 KiB windows
//! its reads touched, and after `RELEASE_AFTER` (256) of them drops the
//! mapping's page-table entries (`MADV_DONTNEED`: the file's pages stay in
//! the page cache, the next touch maps them again). At most 256 windows,
//! 16 MiB, of the file are resident through the mapping at any time; a
//! walk that keeps coming back to the same pages (page tables, the
//! kernel's lists) is not counted again for them.
//!
//! Sequential passes: once reads have followed each other for 256 KiB
//! (each starting where the last ended: not an open's few headers), the
//! next 2 MiB of the mapping are populated at once (`MADV_POPULATE_READ`,
//! one call instead of 32 faults; counted in the budget like any window),
//! so a pass pays a system call per 2 MiB, not a fault per 64 KiB.
//!
//! Files that cannot be mapped (`/proc/kcore`, pipes, some network file
//! systems) are read with `pread` instead: [`crate::FileReader`] decides.

#![allow(unsafe_code)]

use crate::{ReadAt, Result};
use std::boxed::Box;
use std::fs::File;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Distinct windows touched between two releases of the mapping's
/// page-table entries (see the module text).
const RELEASE_AFTER: u32 = 256;
/// The window: what one fault maps at most (fault-around's default).
const WINDOW_SHIFT: u32 = 16;
/// Slots of the table of windows touched since the last release.
const SEEN: usize = 1024;
/// What a sequential pass has populated ahead of it at once.
const AHEAD: u64 = 2 << 20;
/// How long reads must have followed each other to be a pass.
const PASS: u64 = 256 << 10;

/// A whole file, mapped read-only.
#[derive(Debug)]
pub struct MappedReader {
    map: memmap2::Mmap,
    /// Distinct windows touched since the entries were last dropped.
    touched: AtomicU32,
    /// The windows touched since then, by window number % `SEEN` (the
    /// number + 1; 0: none). Two windows sharing a slot are counted each
    /// time they alternate: a release comes early, never late.
    seen: Box<[AtomicU64]>,
    /// Where the last read ended: a read starting there is sequential.
    last_end: AtomicU64,
    /// Where the current run of sequential reads started.
    run_start: AtomicU64,
    /// The end of what was populated ahead of a sequential pass (0 after
    /// a release).
    populated: AtomicU64,
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
            seen: (0..SEEN).map(|_| AtomicU64::new(0)).collect(),
            last_end: AtomicU64::new(u64::MAX),
            run_start: AtomicU64::new(0),
            populated: AtomicU64::new(0),
        })
    }

    /// Populates the [`AHEAD`] bytes of the mapping from `off`'s window
    /// on (the file is `len` bytes), counted as the windows they are.
    fn populate(&self, off: u64, len: u64) {
        let from = off >> WINDOW_SHIFT << WINDOW_SHIFT;
        let to = from.saturating_add(AHEAD).min(len);
        // Counted first: a release it brings comes before, not after.
        self.touched(from, (to - from) as usize);
        // Failing (a kernel before 5.14) leaves the pages to their faults.
        let _ = self.map.advise_range(
            memmap2::Advice::PopulateRead,
            from as usize,
            (to - from) as usize,
        );
        self.populated.store(to, Ordering::Relaxed);
    }

    /// Counts the new windows a read of `n` bytes at `off` touched and
    /// drops the mapping's page-table entries after [`RELEASE_AFTER`].
    /// Concurrent readers may miscount by a few: the bound is the
    /// module's, give or take a window per thread.
    fn touched(&self, off: u64, n: usize) {
        let first = off >> WINDOW_SHIFT;
        let last = (off + n as u64 - 1) >> WINDOW_SHIFT;
        let mut new = 0;
        for w in first..=last {
            let slot = &self.seen[(w % SEEN as u64) as usize];
            if slot.swap(w + 1, Ordering::Relaxed) != w + 1 {
                new += 1;
            }
        }
        if new == 0 {
            return;
        }
        let was = self.touched.fetch_add(new, Ordering::Relaxed);
        if was.saturating_add(new) >= RELEASE_AFTER {
            self.touched.store(0, Ordering::Relaxed);
            self.populated.store(0, Ordering::Relaxed);
            for slot in self.seen.iter() {
                slot.store(0, Ordering::Relaxed);
            }
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
        let end = off + n as u64;
        if self.last_end.swap(end, Ordering::Relaxed) != off {
            self.run_start.store(off, Ordering::Relaxed);
        } else if end - self.run_start.load(Ordering::Relaxed).min(off) >= PASS
            && end > self.populated.load(Ordering::Relaxed)
        {
            self.populate(off, len);
        }
        // SAFETY: `off + n <= len`: the source range lies inside the
        // mapping, the destination is `buf`, and the two cannot overlap
        // (the mapping is not memory Rust hands out elsewhere).
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(off as usize), buf.as_mut_ptr(), n);
        }
        if n > 0 {
            self.touched(off, n);
        }
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
        use std::io::{Seek, SeekFrom};
        let path =
            std::env::temp_dir().join(std::format!("kvm-mmap-release-{}", std::process::id()));
        // A sparse file of 2.5 releases' windows, each starting with its
        // own number.
        let windows = u64::from(RELEASE_AFTER) * 5 / 2;
        let mut f = File::create(&path).unwrap();
        f.set_len(windows << WINDOW_SHIFT).unwrap();
        for w in 0..windows {
            f.seek(SeekFrom::Start(w << WINDOW_SHIFT)).unwrap();
            f.write_all(&w.to_le_bytes()).unwrap();
        }
        drop(f);
        let m = MappedReader::map(&File::open(&path).unwrap()).unwrap();
        let mut b = [0u8; 16];
        // Forwards over two releases, then backwards; a hot window read
        // between the others is counted once.
        for w in (0..windows).chain((0..windows).rev()) {
            for at in [w, 0] {
                assert_eq!(m.read_at(at << WINDOW_SHIFT, &mut b), Ok(16));
                assert_eq!(b[..8], at.to_le_bytes(), "window {at}");
                assert_eq!(b[8..], [0; 8]);
            }
            assert!(m.touched.load(Ordering::Relaxed) < RELEASE_AFTER);
        }
        std::fs::remove_file(&path).unwrap();
    }
}
