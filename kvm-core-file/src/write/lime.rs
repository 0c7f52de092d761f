//! Writing LiME images (FORMATS.md §5): per range a 32-byte header
//! (magic `EMiL`, version 1, first and last physical address, 8 reserved
//! bytes), then the range's bytes. No other metadata: a reader finds the
//! kernel by scanning the memory itself.

use super::{copy_range, Sink};
use crate::lime::MAGIC;
use crate::Result;
use kvm_core::{MapRange, PhysRead};

/// Writes `ranges` of `mem` as a LiME image; fails where a range cannot be
/// read completely. `progress` is told the bytes of memory written.
pub fn write_lime(
    out: &mut dyn Sink,
    mem: &dyn PhysRead,
    ranges: &[MapRange],
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut written = 0u64;
    for r in ranges.iter().filter(|r| r.len > 0) {
        let mut h = [0u8; 32];
        h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        h[4..8].copy_from_slice(&1u32.to_le_bytes());
        h[8..16].copy_from_slice(&r.start.to_le_bytes());
        h[16..24].copy_from_slice(&(r.start + (r.len - 1)).to_le_bytes());
        out.put(&h)?;
        copy_range(out, mem, r, &mut written, progress)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use kvm_core::{PhysAddr, Source, SparseMem};

    #[test]
    fn round_trips_through_the_reader() {
        let mut m = SparseMem::new();
        m.write(PhysAddr(0x1000), &[7u8; 0x2000]).unwrap();
        m.write(PhysAddr(0x10_0000), &[9u8; 0x1000]).unwrap();
        let ranges = [
            MapRange {
                start: 0x1000,
                len: 0x2000,
                value: 0,
            },
            MapRange {
                start: 0x10_0000,
                len: 0x1000,
                value: 0,
            },
        ];
        let mut out = Vec::new();
        let mut last = 0;
        write_lime(&mut out, &m, &ranges, &mut |w| last = w).unwrap();
        assert_eq!(last, 0x3000);
        assert_eq!(out.len(), 2 * 32 + 0x3000);
        let d = crate::lime::open(out).unwrap();
        assert_eq!(
            d.ranges()
                .iter()
                .map(|r| (r.start, r.len))
                .collect::<Vec<_>>(),
            [(0x1000, 0x2000), (0x10_0000, 0x1000)]
        );
        let mut b = [0u8; 2];
        d.read_phys(PhysAddr(0x2fff), &mut b[..1]).unwrap();
        assert_eq!(b[0], 7);
        d.read_phys(PhysAddr(0x10_0000), &mut b).unwrap();
        assert_eq!(b, [9, 9]);
    }

    #[test]
    fn a_hole_fails_the_write() {
        let m = SparseMem::new();
        let r = [MapRange {
            start: 0x1000,
            len: 0x1000,
            value: 0,
        }];
        let mut out = Vec::new();
        assert_eq!(
            write_lime(&mut out, &m, &r, &mut |_| {}),
            Err(kvm_core::Error::NotInMemory { pa: 0x1000 })
        );
    }
}
