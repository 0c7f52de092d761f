//! The fake kernel's physical memory: a `SparseMem` parts of which can be
//! lost afterwards, reading as a dump tool's excluded pages do
//! (`Error::Excluded`), as a filtered dump's `task_struct` pages may. Lost
//! to the byte (the fake packs many objects into a page; a real dump
//! loses whole pages).

use kvm_core::{Error, PhysAddr, PhysRead, Result, SparseMem};

/// Memory with lost ranges.
#[derive(Debug, Default)]
pub struct Holed {
    mem: SparseMem,
    /// `[start, end)` physical ranges.
    lost: Vec<(u64, u64)>,
}

impl Holed {
    /// Writes `data` at `pa` (lost ranges stay lost).
    pub fn write(&mut self, pa: PhysAddr, data: &[u8]) -> Result<()> {
        self.mem.write(pa, data)
    }

    /// Loses `[pa, pa + len)`.
    pub fn lose(&mut self, pa: u64, len: u64) {
        self.lost.push((pa, pa + len));
    }
}

impl PhysRead for Holed {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        let end = pa.0.saturating_add(buf.len() as u64);
        let first_lost = self
            .lost
            .iter()
            .filter(|&&(s, e)| s < end && e > pa.0)
            .map(|&(s, _)| s.max(pa.0))
            .min();
        match first_lost {
            Some(s) if s == pa.0 => Err(Error::Excluded { pa: pa.0 }),
            // Short, up to the lost range.
            Some(s) => self.mem.read_phys(pa, &mut buf[..(s - pa.0) as usize]),
            None => self.mem.read_phys(pa, buf),
        }
    }
}
