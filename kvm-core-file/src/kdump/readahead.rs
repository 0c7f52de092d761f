//! Read-ahead of the descriptor table and of the page data: windows that
//! grow while reads continue each other, so that a sequential scan costs
//! about one `pread` per window, for up to two interleaved readers.

use crate::{ReadAt, Result};
use alloc::vec::Vec;

/// Read-ahead for up to [`STREAMS`] interleaved sequential readers (two
/// threads scanning different tables, say): each read goes to the slot
/// whose stream it continues, else replaces the least recently used one.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(super) struct Streams {
    pub(super) slots: [ReadAhead; STREAMS],
    used: [u64; STREAMS],
    tick: u64,
}

/// Sequential streams followed at once.
const STREAMS: usize = 2;

#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl Streams {
    /// The slot that serves a read at `off`.
    pub(super) fn pick(&mut self, off: u64) -> usize {
        self.tick += 1;
        let continues = |s: &ReadAhead| {
            s.last_end == off || (off >= s.start && off - s.start < s.filled as u64)
        };
        let i = self
            .slots
            .iter()
            .position(continues)
            .unwrap_or_else(|| (0..STREAMS).min_by_key(|&i| self.used[i]).unwrap_or(0));
        self.used[i] = self.tick;
        i
    }
}

/// Read-ahead for one stream of reads (the descriptor table, or the page
/// data). A read that starts where the previous one ended is served from
/// a window read in one call, twice the previous size on each such
/// continuation up to a maximum; other reads go straight to the file at
/// the size asked for. So a sequential scan costs one `pread` per window,
/// while random reads (and a read crossing into one next page) cost what
/// they did.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(super) struct ReadAhead {
    buf: Vec<u8>,
    /// File offset of `buf[0]`; `buf[..filled]` is valid.
    start: u64,
    filled: usize,
    /// Where the previous read ended.
    last_end: u64,
    /// Consecutive reads that continued the previous one.
    streak: u32,
}

/// A read-ahead window lent out of its [`ReadAhead`].
#[derive(Debug)]
pub(super) struct Lent {
    pub(super) buf: Vec<u8>,
    start: u64,
    filled: usize,
}

#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl ReadAhead {
    /// Where `len` bytes at `off` lie in the window, after refilling it
    /// (at most `max` bytes) when this read continues the previous one;
    /// `None` when the read should go to the file.
    pub(super) fn locate<R: ReadAt>(
        &mut self,
        file: &R,
        off: u64,
        len: usize,
        max: usize,
    ) -> Result<Option<usize>> {
        let Some(end) = off.checked_add(len as u64) else {
            return Ok(None);
        };
        self.streak = if off == self.last_end {
            self.streak.saturating_add(1)
        } else {
            0
        };
        self.last_end = end;
        if let Some(i) = off
            .checked_sub(self.start)
            .filter(|&i| i.saturating_add(len as u64) <= self.filled as u64)
        {
            return Ok(Some(i as usize));
        }
        if self.streak == 0 || len >= max {
            return Ok(None);
        }
        let want = len.saturating_mul(1 << self.streak.min(16)).min(max);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let n = file.read_at(off, &mut self.buf[..want])?;
        self.start = off;
        self.filled = n;
        Ok((n >= len).then_some(0))
    }

    /// [`ReadAt::read_at`] through the window.
    pub(super) fn read_at<R: ReadAt>(
        &mut self,
        file: &R,
        off: u64,
        out: &mut [u8],
        max: usize,
    ) -> Result<usize> {
        match self.locate(file, off, out.len(), max)? {
            Some(i) => {
                out.copy_from_slice(&self.buf[i..i + out.len()]);
                Ok(out.len())
            }
            None => file.read_at(off, out),
        }
    }

    /// Lends the window out (it reads as empty meanwhile).
    pub(super) fn lend(&mut self) -> Lent {
        let filled = core::mem::take(&mut self.filled);
        Lent {
            buf: core::mem::take(&mut self.buf),
            start: self.start,
            filled,
        }
    }

    /// Takes a lent window back, unless another read made a new one.
    pub(super) fn give_back(&mut self, w: Lent) {
        if self.buf.is_empty() {
            self.buf = w.buf;
            self.start = w.start;
            self.filled = w.filled;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Counts the reads that reach the file.
    struct Counted<'a>(&'a [u8], core::cell::Cell<usize>);

    impl ReadAt for Counted<'_> {
        fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
            self.1.set(self.1.get() + 1);
            self.0.read_at(off, buf)
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
    }

    #[test]
    fn read_ahead_serves_what_the_file_holds() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let f = Counted(&data, core::cell::Cell::new(0));
        let mut ra = ReadAhead::default();
        let check = |ra: &mut ReadAhead, off: u64, len: usize| {
            let mut b = vec![0u8; len];
            let n = ra.read_at(&f, off, &mut b, 4096).unwrap();
            let want = &data[(off as usize).min(data.len())..(off as usize + len).min(data.len())];
            assert_eq!(&b[..n], want, "{off} {len}");
        };
        // A sequential scan in 24-byte steps: windows grow to 4096 bytes,
        // so far fewer file reads than steps.
        let mut off = 0;
        while off < 50_000 {
            check(&mut ra, off, 24);
            off += 24;
        }
        let seq_reads = f.1.get();
        assert!(seq_reads < 50_000 / 24 / 100, "{seq_reads} file reads");
        // Random reads go to the file, one each, at the size asked.
        let mut x = 0x1234_5678u64;
        for _ in 0..500 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(&mut ra, x % 110_000, (x >> 40) as usize % 5000 + 1);
        }
        // Up to and past the end of the file.
        let mut off = 99_000;
        while off < 100_100 {
            check(&mut ra, off, 100);
            off += 100;
        }
        // A lent window reads as empty; given back, it serves again.
        check(&mut ra, 10_000, 24);
        check(&mut ra, 10_024, 24);
        let i = ra.locate(&f, 10_048, 24, 4096).unwrap().unwrap();
        let w = ra.lend();
        assert_eq!(&w.buf[i..i + 24], &data[10_048..10_072]);
        let before = f.1.get();
        assert_eq!(ra.locate(&f, 20_000, 24, 4096).unwrap(), None);
        ra.give_back(w);
        check(&mut ra, 10_048, 24);
        assert_eq!(f.1.get(), before);
    }
}
