//! The cache of decompressed pages, keyed by descriptor (used with
//! `std`, where readers share it behind a lock).

use super::header::PageDesc;
use alloc::vec::Vec;

/// Bytes of decompressed pages kept (std only).
const CACHE_BYTES: u64 = 4 << 20;

/// A cache of decompressed pages, keyed by descriptor (pages that share
/// data, like the zero page, share an entry): 4-way set-associative,
/// least recently used first out, so that a few hot pages that hash alike
/// (the blocks of a 64 KiB-block dump holding kallsyms, say) do not evict
/// each other.
#[derive(Debug)]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(super) struct PageCache {
    /// (descriptor, last use, page), [`WAYS`] per set.
    slots: Vec<(PageDesc, u64, Vec<u8>)>,
    /// Sets - 1 (a power of two).
    mask: usize,
    /// Use counter.
    clock: u64,
}

/// Entries per set of the [`PageCache`].
const WAYS: usize = 4;

#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl PageCache {
    pub(super) fn new(block_size: u64) -> Self {
        // At least 128 entries: dumps with 64 KiB blocks (QEMU on arm64)
        // would otherwise keep only 64.
        let n = (CACHE_BYTES / block_size).clamp(128, 1024);
        let sets = 1usize << (63 - (n / WAYS as u64).leading_zeros()); // a power of two
        let empty = PageDesc {
            offset: 0,
            size: 0,
            flags: 0,
            page_flags: 0,
        };
        PageCache {
            slots: (0..sets * WAYS).map(|_| (empty, 0, Vec::new())).collect(),
            mask: sets - 1,
            clock: 0,
        }
    }

    /// The entries of `d`'s set.
    fn set(&mut self, d: &PageDesc) -> &mut [(PageDesc, u64, Vec<u8>)] {
        let set = (d.offset.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & self.mask;
        self.slots
            .get_mut(set * WAYS..set * WAYS + WAYS)
            .unwrap_or_default()
    }

    /// Whether an entry keyed `k` holds the page of descriptor `d`.
    fn holds(k: &PageDesc, d: &PageDesc) -> bool {
        k.offset == d.offset && k.size == d.size && k.flags == d.flags
    }

    pub(super) fn get(&mut self, d: &PageDesc, off: u64, out: &mut [u8]) -> bool {
        self.clock += 1;
        let now = self.clock;
        let o = off as usize;
        for (k, used, page) in self.set(d) {
            if Self::holds(k, d) && !page.is_empty() {
                if let Some(src) = page.get(o..o + out.len()) {
                    out.copy_from_slice(src);
                    *used = now;
                    return true;
                }
            }
        }
        false
    }

    pub(super) fn put(&mut self, d: &PageDesc, page: &[u8]) {
        self.clock += 1;
        let now = self.clock;
        // Two readers may decompress the same page at once (the lock is
        // not held meanwhile): the second replaces the first's entry.
        let set = self.set(d);
        let slot = match set.iter().position(|s| Self::holds(&s.0, d)) {
            Some(i) => set.get_mut(i),
            None => set.iter_mut().min_by_key(|s| s.1),
        };
        if let Some(s) = slot {
            s.0 = *d;
            s.1 = now;
            s.2.clear();
            s.2.extend_from_slice(page);
        }
    }
}
