//! Hostile i386 page tables, with and without PAE: reserved PDPTE bits,
//! large pages with bad frames, self-references and cycles, tables outside
//! memory.

use super::{bad, page, run, walk_runs, RW, RWX};
use kvm_core::arch::i386::{self, I386};
use kvm_core::{Error, PageRun, PhysAddr, PhysReadExt, Prot, Translate, VirtAddr};

// ------------------------------------------------------------------ i386

mod x32 {
    use super::*;

    pub const P: u64 = 1;
    pub const RW_BIT: u64 = 2;
    pub const PS: u64 = 1 << 7;
    pub const ROOT: u64 = 0x10_0000;
    /// The mapped page.
    pub const V: u64 = 0xc012_3000;
    pub const VPA: u64 = 0x0080_0000;

    pub fn idx(pae: bool, va: u64, level: u32) -> u64 {
        match (pae, level) {
            (false, l) => (va >> (12 + 10 * (l - 1))) & 1023,
            (true, 3) => (va >> 30) & 3,
            (true, l) => (va >> (12 + 9 * (l - 1))) & 511,
        }
    }

    pub fn esz(pae: bool) -> u64 {
        if pae {
            8
        } else {
            4
        }
    }

    pub fn one_page(pae: bool) -> i386::Builder {
        let mut b = i386::Builder::new(pae);
        b.map(VirtAddr(V), PhysAddr(VPA), 0x1000, RW).unwrap();
        b
    }

    pub fn prot(pae: bool) -> Prot {
        if pae {
            RW
        } else {
            RWX // no NX without PAE
        }
    }

    pub fn the_page(pae: bool) -> Vec<PageRun> {
        vec![run(V, VPA, 0x1000, prot(pae))]
    }

    /// Reads the entry at `pa`.
    pub fn entry(b: &mut i386::Builder, pae: bool, pa: u64) -> u64 {
        let m = b.mem_mut();
        if pae {
            m.read_u64_le(PhysAddr(pa)).unwrap()
        } else {
            u64::from(m.read_u32_le(PhysAddr(pa)).unwrap())
        }
    }

    /// The page directory (non-PAE) or the PD of `V` (PAE).
    pub fn pd(b: &mut i386::Builder, pae: bool) -> u64 {
        if pae {
            entry(b, true, ROOT + idx(true, V, 3) * 8) & 0x000f_ffff_ffff_f000
        } else {
            ROOT
        }
    }
}

#[test]
fn i386_pae_pdpte_reserved_bits() {
    use x32::*;
    let e0 = entry(&mut one_page(true), true, ROOT + 3 * 8);
    assert_eq!(e0 & 0xfff, P);
    // The flag bits, one frame bit, and the bits above the frame.
    for bit in (1..12).chain([40]).chain(52..64) {
        let mut b = one_page(true);
        let e = e0 | 1 << bit;
        b.set_raw(VirtAddr(V), 3, e).unwrap();
        let (mem, tr) = b.finish();
        let got = tr.translate(&mem, VirtAddr(V));
        let reserved = matches!(bit, 1 | 2 | 5..=8 | 52..=63);
        if reserved {
            assert_eq!(got, Err(bad(V, 3, e)), "bit {bit}");
            assert_eq!(walk_runs(&mem, tr), vec![]);
        } else if (12..52).contains(&bit) {
            // Another (absent) page directory.
            let pa = (e & 0x000f_ffff_ffff_f000) + idx(true, V, 2) * 8;
            assert_eq!(got, Err(Error::TableNotReadable { va: V, pa }), "bit {bit}");
        } else {
            // PWT, PCD, and the ignored bits 9..11.
            assert_eq!(got, Ok(page(VPA, 0, 0x1000, RW)), "bit {bit}");
            assert_eq!(walk_runs(&mem, tr), the_page(true));
        }
    }
}

#[test]
fn i386_large_pages_with_bad_frames() {
    use x32::*;
    let s = 0x4000_0000u64;
    let off = 0x1_2345;
    // Non-PAE 4 MiB: bits 20:13 are PA 39:32 (PSE-36), 12 is PAT, 21 is
    // reserved.
    for bit in 12..22 {
        let mut b = one_page(false);
        let e = 0x0c00_0000 | 1 << bit | P | RW_BIT | PS;
        b.set_raw(VirtAddr(s), 2, e).unwrap();
        let (mem, tr) = b.finish();
        let got = tr.translate(&mem, VirtAddr(s + off));
        let pa = match bit {
            12 => 0x0c00_0000,
            21 => {
                assert_eq!(got, Err(bad(s + off, 2, e)));
                assert_eq!(walk_runs(&mem, tr), the_page(false));
                continue;
            }
            b => 0x0c00_0000 | 1 << (b - 13 + 32),
        };
        assert_eq!(got, Ok(page(pa, off, 0x40_0000, RWX)), "bit {bit}");
        assert_eq!(
            walk_runs(&mem, tr),
            vec![run(s, pa, 0x40_0000, RWX), the_page(false)[0]]
        );
    }
    // PAE 2 MiB: bit 12 is PAT, bits 20:13 must be zero.
    for bit in 12..21 {
        let mut b = one_page(true);
        let e = 0x1_0c00_0000 | 1 << bit | P | RW_BIT | PS;
        b.set_raw(VirtAddr(s), 2, e).unwrap();
        let (mem, tr) = b.finish();
        let got = tr.translate(&mem, VirtAddr(s + off));
        if bit == 12 {
            assert_eq!(got, Ok(page(0x1_0c00_0000, off, 0x20_0000, RWX)));
        } else {
            assert_eq!(got, Err(bad(s + off, 2, e)), "bit {bit}");
            assert_eq!(walk_runs(&mem, tr), the_page(true));
        }
    }
}

#[test]
fn i386_self_references_and_cycles() {
    use x32::*;
    // Non-PAE: the classic recursive slot, PD[1023] → PD.
    let mut b = one_page(false);
    let pt = entry(&mut b, false, ROOT + idx(false, V, 2) * 4) & 0xffff_f000;
    b.set_raw(VirtAddr(0xffc0_0000), 2, ROOT | P | RW_BIT)
        .unwrap();
    let (mem, tr) = b.finish();
    let empty = 0xffc0_5000 + 0x10;
    assert_eq!(
        tr.translate(&mem, VirtAddr(empty)),
        Err(Error::Unmapped { va: empty })
    );
    // PTmap: V's page table, and the directory itself.
    let ptmap = 0xffc0_0000 + idx(false, V, 2) * 0x1000;
    assert_eq!(
        tr.translate(&mem, VirtAddr(ptmap + 8)),
        Ok(page(pt, 8, 0x1000, RWX))
    );
    assert_eq!(
        tr.translate(&mem, VirtAddr(0xffff_f000)),
        Ok(page(ROOT, 0, 0x1000, RWX))
    );
    assert_eq!(walk_runs(&mem, tr), the_page(false));

    // PAE: a PD entry pointing at its own PD, and one pointing at the PDPT.
    for target_is_pdpt in [false, true] {
        let mut b = one_page(true);
        let pd = pd(&mut b, true);
        let target = if target_is_pdpt { ROOT } else { pd };
        let slot = (V & !0x3fff_ffff) | 500 << 21;
        b.set_raw(VirtAddr(slot), 2, target | P | RW_BIT).unwrap();
        let (mem, tr) = b.finish();
        let empty = slot | 5 << 12;
        assert_eq!(
            tr.translate(&mem, VirtAddr(empty)),
            Err(Error::Unmapped { va: empty })
        );
        // Back through the slot at the last level.
        let (q, pa, prot) = if target_is_pdpt {
            // PDPT[3] read as a PTE: only P set, so read-only, executable.
            (slot | 3 << 12, pd, Prot::READ.union(Prot::EXEC))
        } else {
            (slot | 500 << 12, pd, RWX)
        };
        assert_eq!(
            tr.translate(&mem, VirtAddr(q)),
            Ok(page(pa, 0, 0x1000, prot))
        );
        assert_eq!(walk_runs(&mem, tr), the_page(true));
    }

    // Every PD entry pointing at the PD (1024 of them).
    let mut b = one_page(false);
    let all: Vec<u8> = (0..1024)
        .flat_map(|_| ((ROOT | P) as u32).to_le_bytes())
        .collect();
    b.mem_mut().write(PhysAddr(ROOT), &all).unwrap();
    let (mem, tr) = b.finish();
    for va in [0, V, 0xffff_ffff] {
        assert_eq!(
            tr.translate(&mem, VirtAddr(va)),
            Ok(page(ROOT, va & 0xfff, 0x1000, Prot::READ.union(Prot::EXEC)))
        );
    }
    assert_eq!(
        tr.translate(&mem, VirtAddr(1 << 32)),
        Err(Error::NonCanonical { va: 1 << 32 })
    );
    assert_eq!(walk_runs(&mem, tr), vec![]);
}

#[test]
fn i386_tables_outside_memory() {
    use x32::*;
    for pae in [false, true] {
        for l in 2..=if pae { 3 } else { 2 } {
            let mut b = one_page(pae);
            let far = 0xfff0_0000;
            let s = if l == 3 { 0x4000_0000 } else { 0xc040_0000 };
            b.set_raw(VirtAddr(s), l, far | P).unwrap();
            let (mem, tr) = b.finish();
            let pa = far + idx(pae, s, l - 1) * esz(pae);
            assert_eq!(
                tr.translate(&mem, VirtAddr(s)),
                Err(Error::TableNotReadable { va: s, pa })
            );
            assert_eq!(walk_runs(&mem, tr), the_page(pae));
        }
        let (mem, _) = one_page(pae).finish();
        let root = 0xfff0_0000;
        let tr = if pae {
            I386::new_pae(PhysAddr(root))
        } else {
            I386::new(PhysAddr(root))
        };
        let top = if pae { 3 } else { 2 };
        assert_eq!(
            tr.translate(&mem, VirtAddr(V)),
            Err(Error::TableNotReadable {
                va: V,
                pa: root + idx(pae, V, top) * esz(pae)
            })
        );
        assert_eq!(walk_runs(&mem, tr), vec![]);
    }
}
