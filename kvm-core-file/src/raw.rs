//! Raw memory images (`format=raw`): physical memory with no header at
//! all, each range at a file offset the opener decided (QEMU's `pmemsave`
//! writes the RAM from its base; kvm-dev's RAM-file door finds the base
//! from the kernel's VMCOREINFO in the image).

use crate::{ReadAt, Result};
use alloc::vec::Vec;
use kvm_core::{Error, MapRange, PhysAddr, PhysRead, Source, SourceInfo};

/// A raw image: `ranges` (their `value` the file offset of `start`) of
/// `file`.
#[derive(Debug)]
pub struct RawDump<R> {
    file: R,
    ranges: Vec<MapRange>,
    info: SourceInfo,
}

impl<R: ReadAt> RawDump<R> {
    /// The image `file` with `ranges` (sorted, disjoint) and `info`.
    pub fn new(file: R, mut ranges: Vec<MapRange>, info: SourceInfo) -> Self {
        ranges.sort_by_key(|r| r.start);
        RawDump { file, ranges, info }
    }

    /// The same file with other ranges (once the layout is known).
    pub fn with_ranges(self, ranges: Vec<MapRange>) -> Self {
        RawDump::new(self.file, ranges, self.info)
    }

    /// The facts, to amend.
    pub fn info_mut(&mut self) -> &mut SourceInfo {
        &mut self.info
    }
}

impl<R: ReadAt> PhysRead for RawDump<R> {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        crate::io::read_ranges(&self.file, &self.ranges, pa.0, buf)?
            .ok_or(Error::NotInMemory { pa: pa.0 })
    }
}

impl<R: ReadAt + Send + Sync + core::fmt::Debug> Source for RawDump<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use kvm_core::Endian;

    #[test]
    fn ranges_at_their_offsets() {
        let bytes: Vec<u8> = (0..0x2000u32).map(|i| (i >> 12) as u8 + 1).collect();
        let info = SourceInfo::new("raw", Endian::Little);
        let whole = vec![MapRange {
            start: 0,
            len: 0x2000,
            value: 0,
        }];
        let d = RawDump::new(&bytes[..], whole, info);
        let mut b = [0u8; 2];
        d.read_phys(PhysAddr(0xfff), &mut b).unwrap();
        assert_eq!(b, [1, 2]);
        let d = d.with_ranges(vec![MapRange {
            start: 0x4000_0000,
            len: 0x2000,
            value: 0,
        }]);
        d.read_phys(PhysAddr(0x4000_1000), &mut b).unwrap();
        assert_eq!(b, [2, 2]);
        assert_eq!(
            d.read_phys(PhysAddr(0x1000), &mut b),
            Err(Error::NotInMemory { pa: 0x1000 })
        );
        assert_eq!(d.read_phys(PhysAddr(0x4000_1fff), &mut b), Ok(1));
    }
}
