//! The radix-tree walk shared by all architectures.

use crate::{Endian, Error, PageRun, PhysAddr, PhysRead, Prot, Result, Translation, VirtAddr};
use core::ops::ControlFlow;

/// One decoded page-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Not present: the address is unmapped.
    Invalid,
    /// Points to the next-level table at `pa`, restricting rights to `prot`.
    Table {
        /// Physical address of the next table.
        pa: u64,
        /// Rights this level allows below it.
        prot: Prot,
    },
    /// Maps a page (or block) at `pa`, whose size is given by the level.
    Leaf {
        /// Physical address of the page.
        pa: u64,
        /// Rights of the page.
        prot: Prot,
    },
    /// Malformed for its level (reserved encoding, misaligned output).
    Bad,
}

/// An architecture's page-table format, as data plus an entry decoder.
pub(crate) trait Mmu {
    /// Byte size of an entry: 4 or 8.
    fn entry_size(&self) -> u64;
    /// Byte order of entries.
    fn endian(&self) -> Endian {
        Endian::Little
    }
    /// Number of levels of this configuration (≤ 6).
    fn levels(&self) -> u32;
    /// The shift of the lowest VA bit that indexes level `level` (1-based
    /// from the bottom) and the number of index bits.
    fn index(&self, level: u32) -> (u32, u32);
    /// Physical address of the top table.
    fn root(&self) -> u64;
    /// Checks that `va` is in the translated space; returns the bits to
    /// index with (for arm64 TTBR1 the VA without its all-ones top).
    fn check_va(&self, va: u64) -> Result<u64>;
    /// Rebuilds a full VA from index bits (sign extension, top bits).
    fn make_va(&self, bits: u64) -> u64;
    /// Decodes `entry` found at `level`.
    fn decode(&self, level: u32, entry: u64) -> Entry;
}

#[inline]
fn read_entry<M: Mmu + ?Sized>(mmu: &M, mem: &dyn PhysRead, pa: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    let n = usize::try_from(mmu.entry_size()).ok()?;
    let buf = b.get_mut(..n)?;
    match mem.read_phys(PhysAddr(pa), buf) {
        Ok(k) if k == n => {}
        _ => return None,
    }
    Some(match n {
        4 => u64::from(mmu.endian().u32([b[0], b[1], b[2], b[3]])),
        _ => mmu.endian().u64(b),
    })
}

/// Translates `va`: at most `levels()` table reads, so any table contents
/// (self-references, cycles) end after a bounded number of steps.
#[inline]
pub(crate) fn translate<M: Mmu + ?Sized>(
    mmu: &M,
    mem: &dyn PhysRead,
    va: u64,
) -> Result<Translation> {
    let bits = mmu.check_va(va)?;
    let mut table = mmu.root();
    let mut prot = super::ALL_RIGHTS;
    let mut level = mmu.levels();
    while level >= 1 {
        let (shift, nbits) = mmu.index(level);
        let idx = (bits >> shift) & ((1u64 << nbits) - 1);
        let epa = table.wrapping_add(idx * mmu.entry_size());
        let entry = read_entry(mmu, mem, epa).ok_or(Error::TableNotReadable { va, pa: epa })?;
        match mmu.decode(level, entry) {
            Entry::Invalid => return Err(Error::Unmapped { va }),
            Entry::Bad => {
                return Err(Error::BadEntry {
                    va,
                    level: level as u8,
                    entry,
                })
            }
            Entry::Table { pa, prot: p } => {
                if level == 1 {
                    return Err(Error::BadEntry {
                        va,
                        level: level as u8,
                        entry,
                    });
                }
                table = pa;
                prot = prot_and(prot, p);
            }
            Entry::Leaf { pa, prot: p } => {
                let page_size = 1u64 << shift;
                let off = va & (page_size - 1);
                return Ok(Translation {
                    pa: PhysAddr(pa | off),
                    len: page_size - off,
                    page_size,
                    prot: prot_and(prot, p),
                });
            }
        }
        level -= 1;
    }
    Err(Error::Malformed("page-table walk has no levels"))
}

#[inline]
fn prot_and(a: Prot, b: Prot) -> Prot {
    Prot::from_bits_truncate(a.bits() & b.bits())
}

/// Entries read per chunk while enumerating a table.
const CHUNK: usize = 64;

/// Enumerates every leaf under the root, in VA order.
///
/// A table that appears again below itself (a recursive slot, as FreeBSD's
/// amd64 PML4 has, or a hostile cycle) is skipped there: its pages are
/// reported once, at their first place. Tables shared between siblings (as
/// KASAN's shadow does) are enumerated at every place they map, up to a
/// budget of [`MAX_WALK_TABLES`] table visits, after which the walk stops
/// with an error: hostile tables can make every entry of every level point
/// to one table, which would otherwise take 512^4 steps.
pub(crate) fn walk<M: Mmu + ?Sized>(
    mmu: &M,
    mem: &dyn PhysRead,
    f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
) -> Result<()> {
    let mut path = [u64::MAX; 8];
    let levels = mmu.levels();
    if levels as usize >= path.len() {
        return Err(Error::Malformed("too many page-table levels"));
    }
    let mut w = Walker {
        mmu,
        mem,
        f,
        path: &mut path,
        budget: MAX_WALK_TABLES,
        exhausted: false,
    };
    let _ = w.table(mmu.root(), levels, 0, super::ALL_RIGHTS);
    if w.exhausted {
        return Err(Error::Malformed(
            "page-table walk visits too many tables (shared or hostile tables)",
        ));
    }
    Ok(())
}

/// Table visits one walk may make. A real kernel's tables, even with a
/// multi-GiB direct map of 4 KiB pages, need a few thousand.
pub const MAX_WALK_TABLES: u32 = 1 << 20;

struct Walker<'a, M: ?Sized> {
    mmu: &'a M,
    mem: &'a dyn PhysRead,
    f: &'a mut dyn FnMut(PageRun) -> ControlFlow<()>,
    /// Tables on the path from the root, indexed by level.
    path: &'a mut [u64; 8],
    /// Table visits left.
    budget: u32,
    /// Whether the walk stopped for want of budget.
    exhausted: bool,
}

impl<M: Mmu + ?Sized> Walker<'_, M> {
    fn table(&mut self, table: u64, level: u32, prefix: u64, prot: Prot) -> ControlFlow<()> {
        if self.budget == 0 {
            self.exhausted = true;
            return ControlFlow::Break(());
        }
        self.budget -= 1;
        let mmu = self.mmu;
        let (shift, nbits) = mmu.index(level);
        let count = 1u64 << nbits;
        let esz = mmu.entry_size();
        let esz_us = esz as usize;
        self.path[level as usize] = table;
        let mut buf = [0u8; CHUNK * 8];
        let mut first = 0u64;
        while first < count {
            let n = (count - first).min(CHUNK as u64);
            let chunk = &mut buf[..(n * esz) as usize];
            let pa = table.wrapping_add(first * esz);
            // A partly readable chunk yields its readable entries.
            let got = self.mem.read_phys(PhysAddr(pa), chunk).unwrap_or(0) / esz_us;
            for (i, raw) in chunk.chunks_exact(esz_us).take(got).enumerate() {
                let entry = if esz_us == 4 {
                    u64::from(mmu.endian().u32([raw[0], raw[1], raw[2], raw[3]]))
                } else {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(raw);
                    mmu.endian().u64(b)
                };
                let va_bits = prefix | ((first + i as u64) << shift);
                match mmu.decode(level, entry) {
                    Entry::Table { pa, prot: p } if level > 1 => {
                        let on_path = self.path[level as usize..].contains(&pa);
                        if !on_path {
                            self.table(pa, level - 1, va_bits, prot_and(prot, p))?;
                            self.path[level as usize - 1] = u64::MAX;
                        }
                    }
                    Entry::Leaf { pa, prot: p } => (self.f)(PageRun {
                        va: VirtAddr(mmu.make_va(va_bits)),
                        pa: PhysAddr(pa),
                        len: 1u64 << shift,
                        prot: prot_and(prot, p),
                    })?,
                    _ => {}
                }
            }
            first += n;
        }
        ControlFlow::Continue(())
    }
}
