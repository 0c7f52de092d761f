//! The consistency an ELF core's program headers must have, whatever
//! wrote them: a segment's bytes never lie over the headers or the notes,
//! and two segments that share file bytes or physical addresses agree on
//! them (the same physical address at the same file offset: QEMU's
//! paging dumps alias one physical range under several virtual ones
//! that way). A flipped `p_offset` or `p_paddr` breaks that agreement and
//! would otherwise shift what every read there returns, in silence.

use crate::elf::Segment;
use alloc::vec::Vec;
use kvm_core::{Error, Result};

/// `p_paddr` of a segment with no physical address (kcore).
const NO_PADDR: u64 = u64::MAX;

/// Checks the PT_LOADs `loads` against each other and against the file
/// bytes `reserved` (the ELF and program headers, the notes) they must
/// not cover.
pub(crate) fn check(loads: &[Segment], reserved: &[(u64, u64)]) -> Result<()> {
    let held: Vec<&Segment> = loads.iter().filter(|s| s.filesz > 0).collect();
    for s in &held {
        let end = s.offset.saturating_add(s.filesz);
        if reserved.iter().any(|&(a, b)| s.offset < b && end > a) {
            return Err(Error::Malformed(
                "an ELF PT_LOAD's data lies over the headers or notes (damaged program headers)",
            ));
        }
    }
    // Where the same physical byte is, it is the same file byte: the
    // difference paddr - offset is shared by overlapping segments.
    let delta = |s: &Segment| s.paddr.wrapping_sub(s.offset);
    let overlapping = |key: fn(&Segment) -> u64| -> Result<()> {
        let mut by: Vec<&Segment> = held
            .iter()
            .copied()
            .filter(|s| s.paddr != NO_PADDR)
            .collect();
        by.sort_unstable_by_key(|s| key(s));
        // The segment reaching furthest so far: any later one starting
        // before its end overlaps it.
        let mut reach: Option<&Segment> = None;
        for s in by {
            if let Some(r) = reach {
                if key(s) < key(r).saturating_add(r.filesz) && delta(s) != delta(r) {
                    return Err(Error::Malformed(
                        "two ELF PT_LOADs disagree on where the same memory is (damaged program headers)",
                    ));
                }
            }
            let ends = |x: &Segment| key(x).saturating_add(x.filesz);
            if reach.is_none_or(|r| ends(s) > ends(r)) {
                reach = Some(s);
            }
        }
        Ok(())
    };
    overlapping(|s| s.offset)?;
    // A core with segments that have no physical address is a view of
    // virtual memory (/proc/kcore: vmalloc has none): its kernel text and
    // its direct map alias the same physical pages at different file
    // offsets, read live, and its segments need not start on pages. The
    // physical rules are a dump's.
    if held.iter().any(|s| s.paddr == NO_PADDR) {
        return Ok(());
    }
    overlapping(|s| s.paddr)?;
    // Physical memory is dumped in pages: where every other segment
    // starts on a page, one that starts inside one is damage (real
    // producers are consistent; a kdump of an odd e820 map has all its
    // odd starts, not one).
    let phys: Vec<&&Segment> = held.iter().collect();
    let odd = phys.iter().filter(|s| s.paddr % 4096 != 0).count();
    if odd > 0 && odd * 8 < phys.len() {
        return Err(Error::Malformed(
            "an ELF PT_LOAD starts inside a page where the others start on pages (damaged program headers)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(offset: u64, paddr: u64, filesz: u64) -> Segment {
        Segment {
            offset,
            vaddr: 0,
            paddr,
            filesz,
            memsz: filesz,
        }
    }

    const BAD: Error = Error::Malformed(
        "two ELF PT_LOADs disagree on where the same memory is (damaged program headers)",
    );

    #[test]
    fn aliases_agree_and_damage_does_not() {
        // QEMU paging dumps: one physical range under two virtual ones,
        // same file bytes.
        let alias = [seg(0x1000, 0, 0x8000), seg(0x3000, 0x2000, 0x1000)];
        assert_eq!(check(&alias, &[(0, 0x1000)]), Ok(()));
        // A p_offset moved by 0x97 bytes into its neighbour's data.
        let moved = [seg(0x1000, 0, 0x1000), seg(0x1f97, 0x1000, 0x1000)];
        assert_eq!(check(&moved, &[(0, 0x1000)]), Err(BAD));
        // A p_paddr moved into another segment's physical range.
        let moved = [
            seg(0x1000, 0x10_0000, 0x2000),
            seg(0x3000, 0x10_1000, 0x1000),
        ];
        assert_eq!(check(&moved, &[]), Err(BAD));
        // Over the notes.
        assert_eq!(
            check(&[seg(0x100, 0, 0x1000)], &[(0x40, 0x200)]),
            Err(Error::Malformed(
                "an ELF PT_LOAD's data lies over the headers or notes (damaged program headers)"
            ))
        );
        // One segment of many starting inside a page.
        let mut many: Vec<Segment> = (0..16)
            .map(|i| seg(0x1000 * i, 0x1000 * i, 0x1000))
            .collect();
        assert_eq!(check(&many, &[]), Ok(()));
        many[3].paddr += 0xff;
        many[3].offset += 0xff;
        assert_eq!(
            check(&many, &[]),
            Err(Error::Malformed(
                "an ELF PT_LOAD starts inside a page where the others start on pages (damaged program headers)"
            ))
        );
        // kcore: its text and direct map alias the same physical pages
        // at other file offsets, and vmalloc has no physical address.
        let kcore = [
            seg(0x1000, 0x100_0000, 0x2000),
            seg(0x9000, 0x100_0000, 0x1000),
            seg(0xa000, NO_PADDR, 0x1000),
        ];
        assert_eq!(check(&kcore, &[]), Ok(()));
        assert_eq!(check(&kcore[..2], &[]), Err(BAD));
    }
}
