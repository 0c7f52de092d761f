//! LiME memory images (`format=lime`): for each System RAM range a 32-byte
//! little-endian header (magic 0x4C694D45, version 1, first and *last*
//! physical address) followed by the range's bytes (FORMATS.md §5).
//!
//! No metadata beyond the ranges: no architecture, no VMCOREINFO.

use crate::raw::RawDump;
use crate::{ReadAt, Result};
use alloc::vec::Vec;
use kvm_core::{Endian, Error, MapRange, OsHint, SourceInfo};

/// `"EMiL"` on disk: 0x4C694D45 little-endian.
pub const MAGIC: u32 = 0x4C69_4D45;
const HEADER: u64 = 32;

/// A LiME file as a dump: once its range headers are read, a raw image
/// of those ranges.
pub type LimeDump<R> = RawDump<R>;

/// Opens a LiME file: reads the range headers (one per range; the walk is
/// bounded by the file size since each range takes at least 33 bytes).
pub fn open<R: ReadAt>(file: R) -> Result<LimeDump<R>> {
    let size = file.size();
    let mut ranges: Vec<MapRange> = Vec::new();
    let mut off = 0u64;
    while off < size {
        let mut h = [0u8; HEADER as usize];
        file.read_exact_at(off, &mut h, "LiME range header truncated")?;
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(a)
        };
        if u32_at(0) != MAGIC {
            return Err(Error::Malformed("LiME range header has the wrong magic"));
        }
        if u32_at(4) != 1 {
            return Err(Error::Unsupported("LiME version other than 1"));
        }
        let (first, last) = (u64_at(8), u64_at(16));
        if last < first {
            return Err(Error::Malformed("LiME range ends before it starts"));
        }
        let len = (last - first)
            .checked_add(1)
            .ok_or(Error::Malformed("LiME range covers all of memory"))?;
        let data = off + HEADER;
        let end = data
            .checked_add(len)
            .filter(|&e| e <= size)
            .ok_or(Error::Malformed(
                "LiME range extends past the end of the file",
            ))?;
        if ranges.last().is_some_and(|p| p.end() > first) {
            return Err(Error::Malformed("LiME ranges overlap or are out of order"));
        }
        ranges.push(MapRange {
            start: first,
            len,
            value: data,
        });
        off = end;
    }
    if ranges.is_empty() {
        return Err(Error::Malformed("LiME file holds no range"));
    }
    let info = SourceInfo {
        // LiME is a Linux kernel module.
        os: Some(OsHint::Linux),
        ..SourceInfo::new("lime", Endian::Little)
    };
    Ok(RawDump::new(file, ranges, info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_core::PhysReadExt;
    use kvm_core::{PhysAddr, PhysRead, Source};

    /// The real LiME slice (see tests/data/lime/SOURCE.md).
    const SLICE: &[u8] = include_bytes!("../tests/data/lime/deb-x86_64-slice.lime");
    /// What volatility3 read at physical 0x1000, 128 bytes.
    const VOL3: &[u8] =
        include_bytes!("../tests/data/lime/deb-x86_64-slice_0x1000_volatility3_out");

    #[test]
    fn reads_what_volatility3_read() {
        let d = open(SLICE).unwrap();
        assert_eq!(d.info().os, Some(OsHint::Linux));
        assert_eq!(
            d.ranges(),
            &[MapRange {
                start: 0x1000,
                len: 0x9f000,
                value: 32
            }]
        );
        let mut b = [0u8; 128];
        d.read_phys_exact(PhysAddr(0x1000), &mut b).unwrap();
        assert_eq!(&b[..], VOL3);
        // Below the first range: a hole; across the end: a short read.
        assert_eq!(
            d.read_phys(PhysAddr(0xfff), &mut b),
            Err(Error::NotInMemory { pa: 0xfff })
        );
        assert_eq!(d.read_phys(PhysAddr(0x9ffc0), &mut b), Ok(0x40));
        assert_eq!(
            d.read_phys(PhysAddr(0xa0000), &mut b),
            Err(Error::NotInMemory { pa: 0xa0000 })
        );
    }

    #[test]
    fn damaged_headers() {
        // Each cut names what it cut: no range at all, a header cut short,
        // or a range's bytes cut short.
        for (cut, why) in [
            (0usize, "LiME file holds no range"),
            (1, "LiME range header truncated"),
            (31, "LiME range header truncated"),
            (32, "LiME range extends past the end of the file"),
            (33, "LiME range extends past the end of the file"),
            (
                SLICE.len() - 1,
                "LiME range extends past the end of the file",
            ),
        ] {
            assert_eq!(
                open(&SLICE[..cut]).err(),
                Some(Error::Malformed(why)),
                "cut at {cut}"
            );
        }
        for byte in 0..32 {
            let mut f = SLICE.to_vec();
            f[byte] ^= 0x80;
            if let Ok(d) = open(f) {
                let mut b = [0u8; 16];
                let _ = d.read_phys(PhysAddr(0x1000), &mut b);
            }
        }
    }
}
