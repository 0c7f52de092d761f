//! Hostile x86-64 page tables (4- and 5-level paging): entries pointing at
//! their own table or an ancestor, fully self-referencing tables, tables
//! outside memory or cut short, large pages where the format forbids them
//! or misaligned, all-ones entries.

use super::{bad, page, run, walk_runs, RW, RWX};
use kvm_core::arch::x86_64::{self, X86_64};
use kvm_core::{Error, PageRun, PhysAddr, Prot, Translate, VirtAddr};
use std::ops::ControlFlow;

// ---------------------------------------------------------------- x86-64

mod x86 {
    use super::*;

    pub const P: u64 = 1;
    pub const RW_BIT: u64 = 2;
    pub const US: u64 = 4;
    pub const PS: u64 = 1 << 7;
    pub const NX: u64 = 1 << 63;

    /// A kernel address in the space of `levels`-level paging.
    pub fn base(levels: u32) -> u64 {
        if levels == 4 {
            0xffff_8880_1234_5000
        } else {
            0xff11_2233_4455_6000
        }
    }

    pub fn idx(va: u64, level: u32) -> u64 {
        (va >> (12 + 9 * (level - 1))) & 511
    }

    /// `va` with its index at `level` replaced.
    pub fn with_idx(va: u64, level: u32, i: u64) -> u64 {
        let sh = 12 + 9 * (level - 1);
        (va & !(511 << sh)) | (i << sh)
    }

    /// Builder with one 4 KiB page at `base(levels)`.
    pub fn one_page(levels: u32) -> x86_64::Builder {
        let mut b = x86_64::Builder::new(levels);
        b.map(VirtAddr(base(levels)), PhysAddr(0x20_0000), 0x1000, RW)
            .unwrap();
        b
    }

    pub fn the_page(levels: u32) -> Vec<PageRun> {
        vec![run(base(levels), 0x20_0000, 0x1000, RW)]
    }

    /// The table at `level` on the path of `va` (which must exist), found
    /// through an empty sibling slot `va` with index `i` at `level`.
    pub fn table(b: &mut x86_64::Builder, va: u64, level: u32, i: u64) -> u64 {
        let sib = with_idx(va, level, i);
        let epa = b.set_raw(VirtAddr(sib), level, 0).unwrap();
        epa - i * 8
    }
}

#[test]
fn x86_entry_pointing_at_its_own_table() {
    use x86::*;
    for levels in [4, 5] {
        let v = base(levels);
        for l in 2..=levels {
            let mut b = one_page(levels);
            let s = (idx(v, l) + 7) % 512;
            let t = table(&mut b, v, l, s);
            let e = t | P | RW_BIT | NX;
            b.set_raw(VirtAddr(with_idx(v, l, s)), l, e).unwrap();
            let (mem, tr) = b.finish();
            // Through the slot, then onto an empty entry of the same table.
            let mut q = with_idx(v, l, s);
            q = with_idx(q, l - 1, (s + 1) % 512);
            assert_eq!(
                tr.translate(&mem, VirtAddr(q)),
                Err(Error::Unmapped { va: q }),
                "{levels}-level, self-reference at {l}"
            );
            // Through the slot at every level below: the table itself.
            let mut q = v & !0xfff;
            for k in 1..=l {
                q = with_idx(q, k, s);
            }
            assert_eq!(
                tr.translate(&mem, VirtAddr(q + 0x18)),
                Ok(page(t, 0x18, 0x1000, RW)),
                "{levels}-level, recursive path at {l}"
            );
            // The real page is still there; the walk skips the slot.
            assert_eq!(
                tr.translate(&mem, VirtAddr(v)),
                Ok(page(0x20_0000, 0, 0x1000, RW))
            );
            assert_eq!(walk_runs(&mem, tr), the_page(levels));
        }
    }
}

#[test]
fn x86_entry_pointing_at_an_ancestor() {
    use x86::*;
    for levels in [4, 5] {
        let v = base(levels);
        for l in 3..=levels {
            for up in l..=levels {
                // The entry at level l - 1 on v's path, moved to index k,
                // points at the table `up` levels above it.
                let mut b = one_page(levels);
                let anc = table(&mut b, v, up, (idx(v, up) + 3) % 512);
                let k = (idx(v, l - 1) + 5) % 512;
                let e = anc | P | RW_BIT | US;
                b.set_raw(VirtAddr(with_idx(v, l - 1, k)), l - 1, e)
                    .unwrap();
                let (mem, tr) = b.finish();
                // Down the cycle, then onto an empty slot of the ancestor.
                let mut q = with_idx(v, l - 1, k);
                q = with_idx(q, l - 2, (idx(v, up) + 1) % 512);
                assert_eq!(
                    tr.translate(&mem, VirtAddr(q)),
                    Err(Error::Unmapped { va: q }),
                    "{levels}-level, level {} → level {up}",
                    l - 1
                );
                assert_eq!(walk_runs(&mem, tr), the_page(levels));
            }
        }
    }
}

#[test]
fn x86_table_outside_memory() {
    use x86::*;
    for levels in [4, 5] {
        let v = base(levels);
        for l in 2..=levels {
            let mut b = one_page(levels);
            let s = with_idx(v, l, (idx(v, l) + 9) % 512);
            let far = 0x000d_ead0_0000_0000;
            b.set_raw(VirtAddr(s), l, far | P | RW_BIT).unwrap();
            let (mem, tr) = b.finish();
            assert_eq!(
                tr.translate(&mem, VirtAddr(s)),
                Err(Error::TableNotReadable {
                    va: s,
                    pa: far + idx(s, l - 1) * 8
                })
            );
            assert_eq!(walk_runs(&mem, tr), the_page(levels));
        }
        // The root itself is not in memory.
        let (mem, _) = one_page(levels).finish();
        let root = 0x7_0000_0000_0000;
        let tr = X86_64::new(PhysAddr(root), levels).unwrap();
        assert_eq!(
            tr.translate(&mem, VirtAddr(v)),
            Err(Error::TableNotReadable {
                va: v,
                pa: root + idx(v, levels) * 8
            })
        );
        assert_eq!(walk_runs(&mem, tr), vec![]);
    }
}

#[test]
fn x86_large_page_bit_at_the_top_levels() {
    use x86::*;
    for levels in [4, 5] {
        let v = base(levels);
        for l in 4..=levels {
            let mut b = one_page(levels);
            let s = with_idx(v, l, (idx(v, l) + 1) % 512);
            let e = 0x80_0000_0000 | P | RW_BIT | PS;
            b.set_raw(VirtAddr(s), l, e).unwrap();
            let (mem, tr) = b.finish();
            assert_eq!(
                tr.translate(&mem, VirtAddr(s + 0x1234)),
                Err(bad(s + 0x1234, l as u8, e))
            );
            assert_eq!(walk_runs(&mem, tr), the_page(levels));
        }
    }
}

#[test]
fn x86_misaligned_large_pages() {
    use x86::*;
    for levels in [4, 5] {
        let v = base(levels);
        for (l, size) in [(2u32, 1u64 << 21), (3, 1 << 30)] {
            let frame = 7 * size;
            let s = with_idx(v, l, (idx(v, l) + 2) % 512) & !(size - 1);
            let off = size / 2 + 0x345;
            let size_bits = size.trailing_zeros();
            // Bit 12 is PAT: allowed. Bits 13 .. size_bits must be zero.
            for bit in 12..size_bits {
                let mut b = one_page(levels);
                let e = frame | 1 << bit | P | PS | NX;
                b.set_raw(VirtAddr(s), l, e).unwrap();
                let (mem, tr) = b.finish();
                let got = tr.translate(&mem, VirtAddr(s + off));
                if bit == 12 {
                    assert_eq!(got, Ok(page(frame, off, size, Prot::READ)));
                    let runs = walk_runs(&mem, tr);
                    assert!(runs.contains(&run(s, frame, size, Prot::READ)));
                    assert_eq!(runs.len(), 2);
                } else {
                    assert_eq!(got, Err(bad(s + off, l as u8, e)), "bit {bit} at {l}");
                    assert_eq!(walk_runs(&mem, tr), the_page(levels));
                }
            }
        }
    }
}

#[test]
fn x86_all_ones_entries() {
    use x86::*;
    let levels = 4;
    let v = base(levels);
    for l in 1..=levels {
        let mut b = one_page(levels);
        let s = with_idx(v, l, (idx(v, l) + 1) % 512);
        b.set_raw(VirtAddr(s), l, u64::MAX).unwrap();
        let (mem, tr) = b.finish();
        let want = match l {
            // A PTE: the frame is bits 51:12, NX is set.
            1 => Ok(page(0x000f_ffff_ffff_f000, 0, 0x1000, RW.union(Prot::USER))),
            // PS with a misaligned frame (2M, 1G) or at the PML4.
            _ => Err(bad(s, l as u8, u64::MAX)),
        };
        assert_eq!(tr.translate(&mem, VirtAddr(s)), want, "level {l}");
        let mut runs = walk_runs(&mem, tr);
        runs.retain(|r| r.va.0 != s);
        assert_eq!(runs, the_page(levels));
    }
}

#[test]
fn x86_fully_self_referencing_tables() {
    use x86::*;
    for levels in [4, 5] {
        // Every root entry points at the root.
        let mut b = x86_64::Builder::new(levels);
        let root = b.paging().root().0;
        fill(&mut b, root, root | P | RW_BIT | NX);
        let (mem, tr) = b.finish();
        for va in [base(levels), 0, 0x7fff_f000, u64::MAX - 7] {
            assert_eq!(
                tr.translate(&mem, VirtAddr(va)),
                Ok(page(root, va & 0xfff, 0x1000, RW)),
                "{va:#x}"
            );
        }
        let out = 1u64 << (11 + 9 * levels);
        assert_eq!(
            tr.translate(&mem, VirtAddr(out)),
            Err(Error::NonCanonical { va: out })
        );
        assert_eq!(walk_runs(&mem, tr), vec![]);

        // A table below the root whose 512 entries all point at itself.
        for l in 2..levels {
            let v = base(levels);
            let mut b = one_page(levels);
            let t = table(&mut b, v, l, (idx(v, l) + 1) % 512);
            fill(&mut b, t, t | P | RW_BIT);
            let (mem, tr) = b.finish();
            // v's path now loops in t down to the last level.
            assert_eq!(
                tr.translate(&mem, VirtAddr(v + 0x10)),
                Ok(page(t, 0x10, 0x1000, RWX))
            );
            assert_eq!(walk_runs(&mem, tr), vec![]);
        }

        // A table below the root whose 512 entries all point at the root.
        for l in 2..levels {
            let v = base(levels);
            let mut b = one_page(levels);
            let t = table(&mut b, v, l, (idx(v, l) + 1) % 512);
            let root = b.paging().root().0;
            fill(&mut b, t, root | P | RW_BIT);
            let (mem, tr) = b.finish();
            // Into t, back to the root one level lower, onto an empty slot.
            let q = with_idx(v, l - 1, (idx(v, levels) + 1) % 512);
            assert_eq!(
                tr.translate(&mem, VirtAddr(q)),
                Err(Error::Unmapped { va: q })
            );
            assert_eq!(walk_runs(&mem, tr), vec![]);
        }
    }
}

/// Fills the 4 KiB table at `t` with 512 copies of `e`.
fn fill(b: &mut x86_64::Builder, t: u64, e: u64) {
    let all: Vec<u8> = (0..512).flat_map(|_| e.to_le_bytes()).collect();
    b.mem_mut().write(PhysAddr(t), &all).unwrap();
}

/// Memory that ends inside a page table, in the middle of the entries the
/// walk reads at once: the entries before the end still count.
#[test]
fn x86_table_cut_short() {
    use kvm_core::{PhysRead, SliceMem};
    use x86::*;
    let mut b = x86_64::Builder::new(4);
    let root = b.paging().root().0;
    let v = base(4) & !0x1f_ffff;
    let (a, z) = (v | 70 << 12, v | 120 << 12);
    b.map(VirtAddr(a), PhysAddr(0x20_0000), 0x1000, RW).unwrap();
    b.map(VirtAddr(z), PhysAddr(0x30_0000), 0x1000, RW).unwrap();
    let pt = table(&mut b, a, 1, 0);
    let (sparse, tr) = b.finish();
    // Everything from the root up to entry 100 of the page table.
    let mut bytes = vec![0u8; (pt + 100 * 8 - root) as usize];
    assert_eq!(
        sparse.read_phys(PhysAddr(root), &mut bytes),
        Ok(bytes.len())
    );
    let mem = SliceMem::new(PhysAddr(root), &bytes);
    assert_eq!(
        tr.translate(&mem, VirtAddr(a + 1)),
        Ok(page(0x20_0000, 1, 0x1000, RW))
    );
    assert_eq!(
        tr.translate(&mem, VirtAddr(z)),
        Err(Error::TableNotReadable {
            va: z,
            pa: pt + 120 * 8
        })
    );
    let mut runs = Vec::new();
    assert_eq!(
        tr.walk(&mem, &mut |r| {
            runs.push(r);
            ControlFlow::Continue(())
        }),
        Ok(())
    );
    assert_eq!(runs, vec![run(a, 0x20_0000, 0x1000, RW)]);
}
