//! A generic page-table builder over any [`Mmu`]: the write side of the
//! walkers, for tests, benchmarks and synthetic dumps.

use super::radix::{Entry, Mmu};
use crate::{Endian, Error, PhysAddr, PhysReadExt, Prot, Result, SparseMem};

/// How an architecture encodes the entries the builder writes.
pub(crate) trait Encode: Mmu {
    /// A table entry at `level` pointing to the table at `pa`, granting all rights.
    fn table_entry(&self, level: u32, pa: u64) -> u64;
    /// A leaf entry at `level` mapping `pa` with `prot`.
    fn leaf_entry(&self, level: u32, pa: u64, prot: Prot) -> u64;
    /// Bytes to allocate (and align to) for a table at `level`.
    fn table_size(&self, level: u32) -> u64;
}

/// Tables being built in sparse memory.
#[derive(Debug)]
pub(crate) struct Tables<M> {
    pub(crate) mmu: M,
    mem: SparseMem,
    next: u64,
}

impl<M: Encode> Tables<M> {
    /// `mmu` must already point at `base`, where the root table goes.
    pub(crate) fn new(mmu: M, base: u64) -> Self {
        let mut t = Tables {
            mmu,
            mem: SparseMem::new(),
            next: base,
        };
        let top = t.mmu.levels();
        let root = t.alloc(top);
        debug_assert_eq!(root, base);
        t
    }

    fn alloc(&mut self, level: u32) -> u64 {
        let size = self.mmu.table_size(level);
        let pa = self.next.next_multiple_of(size);
        self.next = pa + size;
        let mut at = pa;
        while at < pa + size {
            self.mem.touch(PhysAddr(at));
            at += 4096;
        }
        pa
    }

    fn read(&self, pa: u64) -> Result<u64> {
        match self.mmu.entry_size() {
            4 => self
                .mem
                .read_u32(PhysAddr(pa), self.mmu.endian())
                .map(u64::from),
            _ => self.mem.read_u64(PhysAddr(pa), self.mmu.endian()),
        }
    }

    fn write(&mut self, pa: u64, e: u64) -> Result<()> {
        let (b8, b4);
        let bytes: &[u8] = match (self.mmu.entry_size(), self.mmu.endian()) {
            (4, Endian::Little) => {
                b4 = (e as u32).to_le_bytes();
                &b4
            }
            (4, Endian::Big) => {
                b4 = (e as u32).to_be_bytes();
                &b4
            }
            (_, Endian::Little) => {
                b8 = e.to_le_bytes();
                &b8
            }
            (_, Endian::Big) => {
                b8 = e.to_be_bytes();
                &b8
            }
        };
        self.mem.write(PhysAddr(pa), bytes)
    }

    /// The physical address of the entry for `va` at `level`, creating the
    /// tables above it.
    fn slot(&mut self, va: u64, level: u32) -> Result<u64> {
        let bits = self.mmu.check_va(va)?;
        let mut table = self.mmu.root();
        let mut l = self.mmu.levels();
        loop {
            let (shift, nbits) = self.mmu.index(l);
            let epa = table + ((bits >> shift) & ((1 << nbits) - 1)) * self.mmu.entry_size();
            if l == level {
                return Ok(epa);
            }
            let e = self.read(epa)?;
            table = match self.mmu.decode(l, e) {
                Entry::Table { pa, .. } => pa,
                Entry::Invalid => {
                    let t = self.alloc(l - 1);
                    let e = self.mmu.table_entry(l, t);
                    self.write(epa, e)?;
                    t
                }
                _ => return Err(Error::Malformed("range already mapped by a larger page")),
            };
            l -= 1;
        }
    }

    pub(crate) fn map(&mut self, va: u64, pa: u64, size: u64, prot: Prot) -> Result<()> {
        let level = (1..=self.mmu.levels())
            .find(|&l| {
                let (shift, _) = self.mmu.index(l);
                1u64 << shift == size
            })
            .ok_or(Error::Unsupported(
                "page size not possible in this configuration",
            ))?;
        if !va.is_multiple_of(size) || !pa.is_multiple_of(size) {
            return Err(Error::Malformed("page not aligned to its size"));
        }
        let epa = self.slot(va, level)?;
        let old = self.read(epa)?;
        if self.mmu.decode(level, old) != Entry::Invalid {
            return Err(Error::Malformed("range already mapped"));
        }
        let e = self.mmu.leaf_entry(level, pa, prot);
        if !matches!(self.mmu.decode(level, e), Entry::Leaf { .. }) {
            return Err(Error::Unsupported(
                "page size not possible in this configuration",
            ));
        }
        self.write(epa, e)
    }

    pub(crate) fn set_raw(&mut self, va: u64, level: u32, entry: u64) -> Result<u64> {
        let epa = self.slot(va, level)?;
        self.write(epa, entry)?;
        Ok(epa)
    }

    pub(crate) fn mem_mut(&mut self) -> &mut SparseMem {
        &mut self.mem
    }

    pub(crate) fn into_mem(self) -> SparseMem {
        self.mem
    }
}
