//! Writing raw memory images, as QEMU's `pmemsave` does: the bytes from
//! the first range's start on, each range at its physical address minus
//! that start, the gaps between ranges as zeros. No metadata at all.

use super::{copy_range, Sink};
use crate::Result;
use kvm_core::{Error, MapRange, PhysRead};

/// Zeros written at a time for a gap.
const ZEROS: usize = 1 << 16;
/// The largest gap written as zeros: beyond it the ranges are no longer
/// one machine's RAM (x86 dumps carry the BIOS ROM just below 4 GiB).
pub const MAX_GAP: u64 = 1 << 30;

/// Writes `ranges` (sorted) of `mem` as a raw image starting at the first
/// range's address; fails where a range cannot be read completely.
/// `progress` is told the bytes of memory written (gaps not counted).
pub fn write_raw(
    out: &mut dyn Sink,
    mem: &dyn PhysRead,
    ranges: &[MapRange],
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let Some(first) = ranges.first() else {
        return Ok(());
    };
    let zeros = alloc::vec![0u8; ZEROS];
    let (mut pos, mut written) = (first.start, 0u64);
    // Checked before a byte is written.
    let mut end = first.start;
    for r in ranges.iter().filter(|r| r.len > 0) {
        if r.start < end {
            return Err(Error::Malformed(
                "raw image ranges overlap or are not sorted",
            ));
        }
        if r.start - end > MAX_GAP {
            return Err(Error::Unsupported(
                "a raw image of ranges more than 1 GiB apart (keep only the RAM: --keep START:LEN)",
            ));
        }
        end = r.end();
    }
    for r in ranges.iter().filter(|r| r.len > 0) {
        while pos < r.start {
            let n = (r.start - pos).min(ZEROS as u64) as usize;
            out.put(&zeros[..n])?;
            pos += n as u64;
        }
        copy_range(out, mem, r, &mut written, progress)?;
        pos = r.end();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use kvm_core::{PhysAddr, SparseMem};

    #[test]
    fn ranges_at_their_offsets_and_gaps_as_zeros() {
        let mut m = SparseMem::new();
        m.write(PhysAddr(0x4000_0000), &[1u8; 0x1000]).unwrap();
        m.write(PhysAddr(0x4000_3000), &[2u8; 0x1000]).unwrap();
        let r = [
            MapRange {
                start: 0x4000_0000,
                len: 0x1000,
                value: 0,
            },
            MapRange {
                start: 0x4000_3000,
                len: 0x1000,
                value: 0,
            },
        ];
        let mut out = Vec::new();
        write_raw(&mut out, &m, &r, &mut |_| {}).unwrap();
        assert_eq!(out.len(), 0x4000);
        assert!(out[..0x1000].iter().all(|&b| b == 1));
        assert!(out[0x1000..0x3000].iter().all(|&b| b == 0));
        assert!(out[0x3000..].iter().all(|&b| b == 2));
        let far = [
            r[0],
            MapRange {
                start: 0x8000_2000,
                len: 0x1000,
                value: 0,
            },
        ];
        assert_eq!(
            write_raw(&mut Vec::new(), &m, &far, &mut |_| {}),
            Err(Error::Unsupported(
                "a raw image of ranges more than 1 GiB apart (keep only the RAM: --keep START:LEN)"
            ))
        );
        let unsorted = [r[1], r[0]];
        assert_eq!(
            write_raw(&mut Vec::new(), &m, &unsorted, &mut |_| {}),
            Err(Error::Malformed(
                "raw image ranges overlap or are not sorted"
            ))
        );
    }
}
