//! A translation cache for immutable memory (dumps).
//!
//! Never wrap a translator for live memory in it: page tables change under a
//! running kernel and the cache has no way to notice.

use crate::{PageRun, PhysAddr, PhysRead, Prot, Result, Translate, Translation, VirtAddr};
use core::ops::ControlFlow;
use core::sync::atomic::{fence, AtomicU64, Ordering};

/// Cache line granularity of the tags: one slot per 4 KiB virtual page.
const TAG_SHIFT: u32 = 12;

/// One direct-mapped slot, guarded by a sequence lock made of atomics (no
/// `unsafe`, no allocation, `Sync`). `seq` is odd while a writer fills it.
#[derive(Debug, Default)]
struct Slot {
    seq: AtomicU64,
    /// `va >> TAG_SHIFT`, plus one so that 0 means empty.
    tag: AtomicU64,
    /// Physical address of the start of the leaf page.
    page_pa: AtomicU64,
    /// `page_shift | prot << 8`.
    meta: AtomicU64,
}

/// Wraps a translator with a direct-mapped cache of `N` recent leaf
/// translations (`N` a power of two). It implements [`Translate`] itself, so
/// it drops in wherever the translator went.
///
/// The cache assumes the page tables never change: use it for dumps only.
/// Lookups and fills are lock-free; concurrent readers of a `Sync` cache see
/// either a complete entry or a miss.
#[derive(Debug)]
pub struct CachedTranslate<T, const N: usize = 256> {
    inner: T,
    slots: [Slot; N],
}

impl<T: Translate, const N: usize> CachedTranslate<T, N> {
    /// Wraps `inner` with an empty cache.
    pub fn new(inner: T) -> Self {
        const { assert!(N.is_power_of_two(), "cache size must be a power of two") };
        CachedTranslate {
            inner,
            slots: core::array::from_fn(|_| Slot::default()),
        }
    }

    /// The wrapped translator.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Empties the cache (after switching to another memory source).
    pub fn clear(&mut self) {
        for s in &mut self.slots {
            *s.tag.get_mut() = 0;
        }
    }

    #[inline]
    fn slot(&self, key: u64) -> &Slot {
        // Fibonacci hashing: strided page numbers (one per table, one per
        // struct array element) spread over all slots instead of colliding.
        let h = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - N.trailing_zeros().max(1));
        &self.slots[(h as usize) & (N - 1)]
    }

    #[inline]
    fn lookup(&self, va: VirtAddr) -> Option<Translation> {
        let key = va.0 >> TAG_SHIFT;
        let s = self.slot(key);
        let seq = s.seq.load(Ordering::Acquire);
        if seq & 1 != 0 {
            return None;
        }
        let tag = s.tag.load(Ordering::Relaxed);
        let page_pa = s.page_pa.load(Ordering::Relaxed);
        let meta = s.meta.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if s.seq.load(Ordering::Relaxed) != seq || tag != key.wrapping_add(1) {
            return None;
        }
        let page_size = 1u64 << (meta & 0x3f);
        let off = va.0 & (page_size - 1);
        Some(Translation {
            pa: PhysAddr(page_pa | off),
            len: page_size - off,
            page_size,
            prot: Prot::from_bits_truncate((meta >> 8) as u8),
        })
    }

    #[inline]
    fn fill(&self, va: VirtAddr, t: &Translation) {
        if !t.page_size.is_power_of_two()
            || t.pa.0 & (t.page_size - 1) != t.len.wrapping_neg() & (t.page_size - 1)
        {
            return; // not a plain leaf page: do not cache
        }
        let key = va.0 >> TAG_SHIFT;
        let s = self.slot(key);
        let seq = s.seq.load(Ordering::Relaxed);
        if seq & 1 != 0
            || s.seq
                .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return; // another writer is filling this slot
        }
        fence(Ordering::Release);
        s.tag.store(key.wrapping_add(1), Ordering::Relaxed);
        s.page_pa
            .store(t.pa.0 & !(t.page_size - 1), Ordering::Relaxed);
        let shift = u64::from(t.page_size.trailing_zeros());
        s.meta
            .store(shift | u64::from(t.prot.bits()) << 8, Ordering::Relaxed);
        s.seq.store(seq + 2, Ordering::Release);
    }
}

impl<T: Translate, const N: usize> Translate for CachedTranslate<T, N> {
    #[inline]
    fn translate(&self, mem: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
        if let Some(t) = self.lookup(va) {
            return Ok(t);
        }
        let t = self.inner.translate(mem, va)?;
        self.fill(va, &t);
        Ok(t)
    }

    fn walk(
        &self,
        mem: &dyn PhysRead,
        f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
    ) -> Result<()> {
        self.inner.walk(mem, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, SliceMem};
    use core::cell::Cell;

    /// A translator that counts its calls and maps va → va + 0x1000_0000 in
    /// 2 MiB pages below 1 GiB.
    struct Counting(Cell<u32>);
    impl Translate for Counting {
        fn translate(&self, _: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
            self.0.set(self.0.get() + 1);
            if va.0 >= 1 << 30 {
                return Err(Error::Unmapped { va: va.0 });
            }
            let size = 1 << 21;
            let off = va.0 & (size - 1);
            Ok(Translation {
                pa: PhysAddr(va.0 + 0x1000_0000),
                len: size - off,
                page_size: size,
                prot: Prot::READ,
            })
        }
    }

    #[test]
    fn hits_misses_and_errors() {
        let mem = SliceMem::new(PhysAddr(0), &[]);
        let c: CachedTranslate<_, 64> = CachedTranslate::new(Counting(Cell::new(0)));
        let a = c.translate(&mem, VirtAddr(0x20_1234)).unwrap();
        let b = c.translate(&mem, VirtAddr(0x20_1238)).unwrap();
        assert_eq!(
            c.inner().0.get(),
            1,
            "second lookup in the same 4K page hits"
        );
        assert_eq!(a.pa.0 + 4, b.pa.0);
        assert_eq!(b.len, (1 << 21) - 0x1238);
        assert_eq!(b, c.inner().translate(&mem, VirtAddr(0x20_1238)).unwrap());
        // Errors are not cached.
        assert!(c.translate(&mem, VirtAddr(1 << 30)).is_err());
        assert!(c.translate(&mem, VirtAddr(1 << 30)).is_err());
        assert_eq!(c.inner().0.get(), 4);
    }
}
