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
//! Files that cannot be mapped (`/proc/kcore`, pipes, some network file
//! systems) are read with `pread` instead: [`crate::FileReader`] decides.

#![allow(unsafe_code)]

use crate::{ReadAt, Result};
use std::fs::File;

/// A whole file, mapped read-only.
#[derive(Debug)]
pub struct MappedReader {
    map: memmap2::Mmap,
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
        Ok(MappedReader { map })
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
}
