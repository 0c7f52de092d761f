//! The two bitmaps (1st: memory present; 2nd: pages saved) and the
//! prefix-popcount rank index over the 2nd, which turns a PFN into
//! its [`PageState`] and a saved page into its descriptor index.

use crate::{ReadAt, Result};
use alloc::vec::Vec;
use kvm_core::MapRange;

/// PFNs per rank-index entry (eight 64-bit words).
const RANK_BLOCK: u64 = 512;

/// What a kdump file says about one PFN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageState {
    /// No memory there (1st bitmap clear).
    Hole,
    /// Memory the dump left out (1st bitmap set, 2nd clear), or lost in
    /// an incomplete dump.
    Excluded,
    /// Saved: the value is the page's descriptor index.
    Dumpable(u64),
}

/// The two bitmaps of a kdump file and the rank index over the 2nd.
#[derive(Debug)]
pub(super) struct Bitmaps {
    /// One past the highest PFN the bitmaps describe.
    max_pfn: u64,
    /// 1st bitmap as words (empty for single-bitmap dumps).
    present: Vec<u64>,
    /// 2nd bitmap as words, limited to this part of a split dump.
    dumpable: Vec<u64>,
    /// Set bits of `dumpable` before each block of eight words.
    rank: Vec<u64>,
    /// Descriptors actually in the file (less than the dumpable pages
    /// only in incomplete dumps).
    descs: u64,
}

/// Reads `nbits` bits of a bitmap at `off` as little-endian words.
pub(super) fn read_bitmap<R: ReadAt>(f: &R, off: u64, nbits: u64) -> Result<Vec<u64>> {
    let nbytes = nbits.div_ceil(8);
    let bytes = f.read_vec_at(off, nbytes, "kdump bitmap extends past the end of the file")?;
    let mut words: Vec<u64> = bytes
        .chunks(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(a)
        })
        .collect();
    if !nbits.is_multiple_of(64) {
        if let Some(last) = words.last_mut() {
            *last &= (1u64 << (nbits % 64)) - 1;
        }
    }
    Ok(words)
}

fn bit(words: &[u64], pfn: u64) -> bool {
    usize::try_from(pfn / 64)
        .ok()
        .and_then(|i| words.get(i))
        .is_some_and(|w| w >> (pfn % 64) & 1 != 0)
}

/// The first PFN set in `dumpable` but clear in `present` (the 2nd bitmap
/// must be a subset of the 1st); `None` for single-bitmap dumps
/// (`present` empty) or consistent ones.
pub(super) fn first_saved_hole(present: &[u64], dumpable: &[u64]) -> Option<u64> {
    if present.is_empty() {
        return None;
    }
    dumpable.iter().enumerate().find_map(|(i, &d)| {
        let stray = d & !present.get(i).copied().unwrap_or(0);
        (stray != 0).then(|| i as u64 * 64 + u64::from(stray.trailing_zeros()))
    })
}

/// Clears the bits outside `[start, end)`.
pub(super) fn keep_only(words: &mut [u64], start: u64, end: u64) {
    for (i, w) in words.iter_mut().enumerate() {
        let lo = i as u64 * 64;
        let hi = lo + 64;
        if hi <= start || lo >= end {
            *w = 0;
            continue;
        }
        if lo < start {
            *w &= !0u64 << (start - lo);
        }
        if hi > end {
            *w &= (1u64 << (end - lo)) - 1;
        }
    }
}

/// Calls `f(first, count)` for each run of set bits, over at most `limit`
/// set bits in all.
pub(super) fn runs(words: &[u64], limit: u64, mut f: impl FnMut(u64, u64)) {
    let mut left = limit;
    let mut cur: Option<(u64, u64)> = None;
    for (i, &w) in words.iter().enumerate() {
        let base = i as u64 * 64;
        let mut w = w;
        while w != 0 && left > 0 {
            let at = w.trailing_zeros();
            let ones = (w >> at).trailing_ones();
            let n = u64::from(ones).min(left);
            let start = base + u64::from(at);
            match &mut cur {
                Some(r) if r.0 + r.1 == start => r.1 += n,
                _ => {
                    if let Some(r) = cur.take() {
                        f(r.0, r.1);
                    }
                    cur = Some((start, n));
                }
            }
            left -= n;
            w = if at + ones >= 64 {
                0
            } else {
                w & (!0u64 << (at + ones))
            };
        }
        if left == 0 {
            break;
        }
    }
    if let Some(r) = cur {
        f(r.0, r.1);
    }
}

/// The rank index over the 2nd bitmap `dumpable`, and its set bits in
/// all.
pub(super) fn rank_index(dumpable: &[u64]) -> (Vec<u64>, u64) {
    // Rank index: set bits before each block of eight words.
    let mut rank = Vec::with_capacity(dumpable.len().div_ceil(8));
    let mut count = 0u64;
    for chunk in dumpable.chunks(8) {
        rank.push(count);
        count += chunk.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
    }
    (rank, count)
}

impl Bitmaps {
    /// The bitmaps of `max_pfn` PFNs, with the [`rank_index`] of
    /// `dumpable` and the number of descriptors in the file.
    pub(super) fn new(
        max_pfn: u64,
        present: Vec<u64>,
        dumpable: Vec<u64>,
        rank: Vec<u64>,
        descs: u64,
    ) -> Self {
        Bitmaps {
            max_pfn,
            present,
            dumpable,
            rank,
            descs,
        }
    }

    /// One past the highest PFN the bitmaps describe.
    pub(super) fn max_pfn(&self) -> u64 {
        self.max_pfn
    }

    /// Descriptors actually in the file.
    pub(super) fn descs(&self) -> u64 {
        self.descs
    }

    /// What the file says about `pfn`.
    pub(super) fn page_state(&self, pfn: u64) -> PageState {
        if pfn >= self.max_pfn {
            return PageState::Hole;
        }
        if bit(&self.dumpable, pfn) {
            let r = self.rank_of(pfn);
            return if r < self.descs {
                PageState::Dumpable(r)
            } else {
                PageState::Excluded
            };
        }
        if bit(&self.present, pfn) {
            PageState::Excluded
        } else {
            PageState::Hole
        }
    }

    fn rank_of(&self, pfn: u64) -> u64 {
        let block = pfn / RANK_BLOCK;
        let mut r = usize::try_from(block)
            .ok()
            .and_then(|b| self.rank.get(b))
            .copied()
            .unwrap_or(0);
        let first = (block * 8) as usize;
        let word = (pfn / 64) as usize;
        for w in self.dumpable.get(first..word).unwrap_or_default() {
            r += u64::from(w.count_ones());
        }
        let mask = (1u64 << (pfn % 64)) - 1;
        r + u64::from((self.dumpable.get(word).copied().unwrap_or(0) & mask).count_ones())
    }

    /// The physical ranges of memory (1st bitmap), excluded pages
    /// included, sorted, for PFNs of `1 << shift` bytes. Computed on each
    /// call.
    pub(super) fn memory_ranges(&self, shift: u32) -> Vec<MapRange> {
        let words = if self.present.is_empty() {
            &self.dumpable
        } else {
            &self.present
        };
        let mut v = Vec::new();
        runs(words, u64::MAX, |first, n| {
            v.push(MapRange {
                start: first << shift,
                len: n << shift,
                value: 0,
            })
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn runs_respect_the_limit() {
        let words = [u64::MAX, 0xf0f0, 1 << 63, 1, 0, u64::MAX];
        let mut all = Vec::new();
        runs(&words, u64::MAX, |s, n| all.push((s, n)));
        assert_eq!(all, vec![(0, 64), (68, 4), (76, 4), (191, 2), (320, 64)]);
        for limit in 0..=150 {
            let mut v = Vec::new();
            runs(&words, limit, |s, n| v.push((s, n)));
            let total: u64 = v.iter().map(|r| r.1).sum();
            assert_eq!(total, limit.min(138), "limit {limit}");
        }
        let mut w = [u64::MAX; 4];
        keep_only(&mut w, 70, 190);
        assert_eq!(w, [0, !0u64 << 6, (1 << 62) - 1, 0]);
    }
}
