//! Which physical pages a minidump holds: a bitmap over the `dump_avail`
//! ranges (one bit per page, ranges back to back), and where each held
//! page is — the count of set bits before its own (its rank) in
//! page-sized slots after the page-table section (FORMATS.md §3.3).
//!
//! The rank is O(1): a running count every [`BLOCK`] words, then at most
//! that many word popcounts.

use alloc::vec::Vec;
use kvm_core::{Error, MapRange, Result};

/// Words per rank block (512 bits).
const BLOCK: usize = 8;

/// The bitmap and the physical ranges its bits stand for.
#[derive(Debug)]
pub struct Bitmap {
    words: Vec<u64>,
    /// Set bits in all words before each block.
    ranks: Vec<u64>,
    /// `(first pfn, pages, first bit)` of each `dump_avail` range.
    avail: Vec<(u64, u64, u64)>,
    page: u64,
}

impl Bitmap {
    /// The bitmap of the `len` bytes at `off` of `file` over the
    /// `dump_avail` ranges `avail` (from [`avail_ranges`]; `None`: one
    /// range from physical 0 covering every bit, as versions without
    /// dump_avail have). Read a MiB at a time, never held twice: a bitmap
    /// is as large as the machine's memory divided by 32 Ki.
    pub fn read(
        file: &dyn crate::ReadAt,
        off: u64,
        len: u64,
        avail: Option<&[(u64, u64)]>,
        page: u64,
    ) -> Result<Bitmap> {
        let end = off
            .checked_add(len)
            .filter(|&e| e <= file.size())
            .ok_or(Error::Malformed("FreeBSD minidump bitmap truncated"))?;
        let mut words = Vec::with_capacity(len.div_ceil(8) as usize);
        let mut chunk = alloc::vec![0u8; 1 << 20];
        let mut at = off;
        while at < end {
            let n = (end - at).min(chunk.len() as u64) as usize;
            file.read_exact_at(at, &mut chunk[..n], "FreeBSD minidump bitmap truncated")?;
            push_words(&mut words, &chunk[..n]);
            at += n as u64;
        }
        Ok(Bitmap::from_words(words, avail, page))
    }

    fn from_words(words: Vec<u64>, avail: Option<&[(u64, u64)]>, page: u64) -> Bitmap {
        let mut ranks = Vec::with_capacity(words.len() / BLOCK + 1);
        let mut total = 0u64;
        for (i, w) in words.iter().enumerate() {
            if i % BLOCK == 0 {
                ranks.push(total);
            }
            total += u64::from(w.count_ones());
        }
        let bits = words.len() as u64 * 64;
        let ranges = match avail {
            None => alloc::vec![(0, bits, 0)],
            Some(a) => {
                // Ranges back to back in the bits (their sum is checked
                // by avail_ranges); pages past the bitmap's last bit are
                // not held: a range is cut there (so a hostile end costs
                // nothing).
                let mut bit = 0u64;
                a.iter()
                    .map(|&(first, pages)| {
                        let r = (first, pages.min(bits.saturating_sub(bit)), bit);
                        bit += pages;
                        r
                    })
                    .collect()
            }
        };
        Bitmap {
            words,
            ranks,
            avail: ranges,
            page,
        }
    }

    /// Set bits: the pages the dump says it holds.
    pub fn count(&self) -> u64 {
        self.ranks.last().copied().unwrap_or(0)
            + self.words[self.ranks.len().saturating_sub(1) * BLOCK..]
                .iter()
                .map(|w| u64::from(w.count_ones()))
                .sum::<u64>()
    }

    /// The bit of the page at `pa`, if a range covers it.
    fn bit(&self, pa: u64) -> Option<u64> {
        let pfn = pa / self.page;
        self.avail
            .iter()
            .find(|&&(first, n, _)| pfn >= first && pfn - first < n)
            .map(|&(first, _, bit)| bit + pfn - first)
    }

    fn is_set(&self, bit: u64) -> bool {
        let w = usize::try_from(bit / 64)
            .ok()
            .and_then(|w| self.words.get(w));
        w.is_some_and(|w| w >> (bit % 64) & 1 != 0)
    }

    /// The slot of the page at `pa` (its rank among held pages), or
    /// `None` when the dump does not hold it.
    pub fn slot(&self, pa: u64) -> Option<u64> {
        let bit = self.bit(pa).filter(|&b| self.is_set(b))?;
        let word = (bit / 64) as usize;
        let block = word / BLOCK;
        let mut rank = self.ranks[block];
        for w in &self.words[block * BLOCK..word] {
            rank += u64::from(w.count_ones());
        }
        let below = self.words[word] & ((1u64 << (bit % 64)) - 1);
        Some(rank + u64::from(below.count_ones()))
    }

    /// The held pages as physical ranges (merged runs; `value` = slot of
    /// the run's first page).
    pub fn ranges(&self) -> Vec<MapRange> {
        let mut out: Vec<MapRange> = Vec::new();
        let mut slot = 0u64;
        for &(first, n, bit0) in &self.avail {
            for i in 0..n {
                if !self.is_set(bit0 + i) {
                    continue;
                }
                let Some(pa) = (first + i).checked_mul(self.page) else {
                    break;
                };
                match out.last_mut() {
                    Some(r) if r.end() == pa => r.len += self.page,
                    _ => out.push(MapRange {
                        start: pa,
                        len: self.page,
                        value: slot,
                    }),
                }
                slot += 1;
            }
        }
        out
    }
}

/// The `dump_avail` pairs in `avail` (`(start, end)` physical addresses,
/// end exclusive, ended by a pair whose end is 0) as `(first pfn, pages)`:
/// ascending, and with a page count that fits the bits a bitmap can
/// number.
pub fn avail_ranges(avail: &[u8], page: u64) -> Result<Vec<(u64, u64)>> {
    let u = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let (mut prev_end, mut pages) = (0u64, 0u64);
    let mut out = Vec::new();
    for pair in avail.chunks_exact(16) {
        let (start, end) = (u(&pair[..8]), u(&pair[8..]));
        if end == 0 {
            break;
        }
        if end < start || start < prev_end {
            return Err(Error::Malformed(
                "FreeBSD minidump dump_avail ranges are not ascending",
            ));
        }
        let (first, last) = (start / page, end.div_ceil(page));
        pages = pages
            .checked_add(last - first)
            .ok_or(Error::Malformed("FreeBSD minidump dump_avail overflows"))?;
        out.push((first, last - first));
        prev_end = end;
    }
    Ok(out)
}

/// `bytes` as little-endian words appended to `words` (a short last
/// word zero-padded; chunks other than the last are whole words).
fn push_words(words: &mut Vec<u64>, bytes: &[u8]) {
    words.extend(bytes.chunks(8).map(|c| {
        let mut a = [0u8; 8];
        a[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(a)
    }));
}
