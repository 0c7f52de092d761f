//! Hostile page tables: self-references, cycles, entries pointing outside
//! memory, large pages where the format forbids them, misaligned frames and
//! reserved bits. Every translation must end with the exact error (or, where
//! the hardware would translate, the exact translation), and every `walk`
//! must terminate, within a time limit, with exactly the pages it can reach.
//!
//! A note on cycles: an entry that points back at its own table or at an
//! ancestor is what a recursive page-table slot is (FreeBSD/i386 PTmap,
//! Windows' self-map). The hardware follows it, and a translation through
//! it that loops all the way down ends in a *valid* page that maps the table
//! itself. Those paths are asserted to give exactly that page; the paths
//! that leave the cycle onto an empty or malformed entry give the error.
//! `walk` skips a table that is already on its path (see `radix::walk`), so
//! it reports the pages below a recursive slot once, at their first place.

use kvm_core::arch::aarch64::{self, Aarch64, Granule, Half};
use kvm_core::arch::i386::{self, I386};
use kvm_core::arch::x86_64::{self, X86_64};
use kvm_core::{
    Error, PageRun, PhysAddr, PhysReadExt, Prot, SparseMem, Translate, Translation, VirtAddr,
};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const RWX: Prot = RW.union(Prot::EXEC);

/// Walks on a worker thread and fails if the walk takes more than a few
/// seconds or reports more than a million pages.
fn walk_runs<T: Translate + Send + 'static>(mem: &SparseMem, tr: T) -> Vec<PageRun> {
    let mem = mem.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut runs = Vec::new();
        let r = tr.walk(&mem, &mut |run| {
            runs.push(run);
            if runs.len() > 1_000_000 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let _ = tx.send((r, runs, start.elapsed()));
    });
    let (r, runs, took) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("walk did not terminate");
    assert_eq!(r, Ok(()));
    assert!(runs.len() <= 1_000_000, "walk does not stop");
    assert!(took < Duration::from_secs(5), "walk took {took:?}");
    runs
}

fn run(va: u64, pa: u64, len: u64, prot: Prot) -> PageRun {
    PageRun {
        va: VirtAddr(va),
        pa: PhysAddr(pa),
        len,
        prot,
    }
}

/// The translation of an address at offset `off` in a page of `size` at `pa`.
fn page(pa: u64, off: u64, size: u64, prot: Prot) -> Translation {
    Translation {
        pa: PhysAddr(pa + off),
        len: size - off,
        page_size: size,
        prot,
    }
}

fn bad(va: u64, level: u8, entry: u64) -> Error {
    Error::BadEntry { va, level, entry }
}

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

// ----------------------------------------------------------------- arm64

mod arm {
    use super::*;

    pub const TABLE: u64 = 0b11;
    pub const BLOCK: u64 = 0b01;
    pub const AF: u64 = 1 << 10;
    pub const ROOT: u64 = 0x4000_0000;
    pub const VPA: u64 = 0x8000_0000;

    #[derive(Clone, Copy, Debug)]
    pub struct Cfg {
        pub g: Granule,
        pub va_bits: u32,
        pub pa52: bool,
        pub half: Half,
    }

    /// Every configuration, both halves.
    pub fn all() -> Vec<Cfg> {
        let mut v = Vec::new();
        for half in [Half::Kernel, Half::User] {
            for (g, va_bits, pa52) in [
                (Granule::K4, 39, false),
                (Granule::K4, 48, false),
                (Granule::K4, 48, true),
                (Granule::K4, 52, true),
                (Granule::K16, 36, false),
                (Granule::K16, 47, false),
                (Granule::K16, 47, true),
                (Granule::K16, 48, false),
                (Granule::K16, 52, true),
                (Granule::K64, 42, false),
                (Granule::K64, 42, true),
                (Granule::K64, 48, false),
                (Granule::K64, 48, true),
                (Granule::K64, 52, false),
                (Granule::K64, 52, true),
            ] {
                v.push(Cfg {
                    g,
                    va_bits,
                    pa52,
                    half,
                });
            }
        }
        v
    }

    impl Cfg {
        pub fn ps(&self) -> u32 {
            self.g.shift()
        }
        pub fn gran(&self) -> u64 {
            1 << self.ps()
        }
        pub fn levels(&self) -> u32 {
            (self.va_bits - self.ps()).div_ceil(self.ps() - 3)
        }
        pub fn shift(&self, l: u32) -> u32 {
            self.ps() + (l - 1) * (self.ps() - 3)
        }
        pub fn count(&self, l: u32) -> u64 {
            1 << (self.ps() - 3).min(self.va_bits - self.shift(l))
        }
        pub fn idx(&self, va: u64, l: u32) -> u64 {
            (va >> self.shift(l)) & (self.count(l) - 1)
        }
        pub fn with_idx(&self, va: u64, l: u32, i: u64) -> u64 {
            let sh = self.shift(l);
            (va & !((self.count(l) - 1) << sh)) | i << sh
        }
        /// The VA of index bits `bits`.
        pub fn va(&self, bits: u64) -> u64 {
            match self.half {
                Half::Kernel => bits | !((1u64 << self.va_bits) - 1),
                Half::User => bits,
            }
        }
        /// The mapped page: a different index at every level.
        pub fn base(&self) -> u64 {
            let bits = (1..=self.levels())
                .map(|l| ((5 * u64::from(l) + 1) % self.count(l)) << self.shift(l))
                .sum();
            self.va(bits)
        }
        /// Whether the architecture allows a block at `l` (Arm ARM D8.3:
        /// level 2 always; 1 GiB blocks with 4K; level 0 (4K) and level 1
        /// (16K, 64K) blocks only with 52-bit output addresses).
        pub fn block_ok(&self, l: u32) -> bool {
            match (self.g, l) {
                (_, 2) | (Granule::K4, 3) => true,
                (Granule::K4, 4) | (Granule::K16 | Granule::K64, 3) => self.pa52,
                _ => false,
            }
        }
        /// The output-address field of a descriptor for `pa`.
        pub fn enc(&self, pa: u64) -> u64 {
            const OA48: u64 = 0x0000_ffff_ffff_ffff;
            const OA50: u64 = 0x0003_ffff_ffff_ffff;
            match (self.pa52, self.g) {
                (false, _) => {
                    assert!(pa < 1 << 48);
                    pa
                }
                (true, Granule::K64) => (pa & OA48) | (pa >> 48 & 0xf) << 12,
                (true, _) => (pa & OA50) | (pa >> 50 & 3) << 8,
            }
        }
        /// The address a descriptor's output-address field holds.
        pub fn dec(&self, e: u64) -> u64 {
            let page = !(self.gran() - 1);
            match (self.pa52, self.g) {
                (false, _) => e & 0x0000_ffff_ffff_ffff & page,
                (true, Granule::K64) => (e & 0x0000_ffff_ffff_ffff & page) | (e >> 12 & 0xf) << 48,
                (true, _) => (e & 0x0003_ffff_ffff_ffff & page) | (e >> 8 & 3) << 50,
            }
        }
        pub fn builder(&self) -> aarch64::Builder {
            aarch64::Builder::new(self.g, self.va_bits, self.half, self.pa52).unwrap()
        }
        pub fn one_page(&self) -> aarch64::Builder {
            let mut b = self.builder();
            b.map(VirtAddr(self.base()), PhysAddr(VPA), self.gran(), RWX)
                .unwrap();
            b
        }
        pub fn the_page(&self) -> Vec<PageRun> {
            vec![run(self.base(), VPA, self.gran(), RWX)]
        }
        /// The table at `l` on the path of `va`, found through slot `i`.
        pub fn table(&self, b: &mut aarch64::Builder, va: u64, l: u32, i: u64) -> u64 {
            let epa = b.set_raw(VirtAddr(self.with_idx(va, l, i)), l, 0).unwrap();
            epa - i * 8
        }
        /// An index at level `l` other than those in `not`.
        pub fn other(&self, l: u32, start: u64, not: &[u64]) -> u64 {
            (start..start + self.count(l))
                .map(|i| i % self.count(l))
                .find(|i| !not.contains(i))
                .expect("a free index")
        }
        /// A translator of this configuration at `root`.
        pub fn at(&self, root: u64) -> Aarch64 {
            Aarch64::new(PhysAddr(root), self.g, self.va_bits, self.half)
                .unwrap()
                .with_pa52(self.pa52)
        }
    }
}

#[test]
fn arm64_blocks_at_every_level() {
    for c in arm::all() {
        let v = c.base();
        for l in 1..=c.levels() {
            let size = 1u64 << c.shift(l);
            let s = c.with_idx(v, l, c.other(l, c.idx(v, l) + 1, &[c.idx(v, l)])) & !(size - 1);
            let off = size / 2 + 0x18;
            // Aligned to any block size; only the level can make it bad.
            let pa = if c.pa52 { 1 << 51 } else { 1 << 47 };
            let e = c.enc(pa) | arm::AF | arm::BLOCK;
            let mut b = c.one_page();
            b.set_raw(VirtAddr(s), l, e).unwrap();
            let (mem, tr) = b.finish();
            let got = tr.translate(&mem, VirtAddr(s + off));
            let mut runs = c.the_page();
            if l >= 2 && c.block_ok(l) {
                assert_eq!(got, Ok(page(pa, off, size, RWX)), "{c:?} level {l}");
                runs.push(run(s, pa, size, RWX));
                runs.sort_by_key(|r| r.va);
            } else {
                assert_eq!(got, Err(bad(s + off, l as u8, e)), "{c:?} level {l}");
            }
            assert_eq!(walk_runs(&mem, tr), runs, "{c:?} level {l}");
        }
    }
}

#[test]
fn arm64_misaligned_blocks() {
    for c in arm::all() {
        let v = c.base();
        for l in (2..=c.levels()).filter(|&l| c.block_ok(l)) {
            let size = 1u64 << c.shift(l);
            let s = c.with_idx(v, l, c.other(l, c.idx(v, l) + 1, &[c.idx(v, l)])) & !(size - 1);
            let top = if c.pa52 { 1 << 50 } else { 1 << 46 };
            for mis in [c.gran(), size / 2, size >> 3, top + c.gran()] {
                let pa = top + mis;
                let e = c.enc(pa) | arm::AF | arm::BLOCK;
                let mut b = c.one_page();
                b.set_raw(VirtAddr(s), l, e).unwrap();
                let (mem, tr) = b.finish();
                assert_eq!(
                    tr.translate(&mem, VirtAddr(s)),
                    Err(bad(s, l as u8, e)),
                    "{c:?} level {l} pa {pa:#x}"
                );
                assert_eq!(walk_runs(&mem, tr), c.the_page());
            }
        }
    }
}

#[test]
fn arm64_entry_pointing_at_its_own_table() {
    for c in arm::all() {
        let v = c.base();
        for l in 2..=c.levels() {
            let mut b = c.one_page();
            let iv = c.idx(v, l);
            let s = c.other(l, iv + 1, &[iv]);
            let t = c.table(&mut b, v, l, s);
            b.set_raw(VirtAddr(c.with_idx(v, l, s)), l, c.enc(t) | arm::TABLE)
                .unwrap();
            // A 2 MiB-style block next to it, read as a page below the loop.
            let blk = if l == 2 {
                c.other(l, s + 1, &[iv, s])
            } else {
                s
            };
            let be = c.enc(arm::VPA) | arm::AF | arm::BLOCK;
            if l == 2 {
                b.set_raw(VirtAddr(c.with_idx(v, l, blk)), l, be).unwrap();
            }
            let (mem, tr) = b.finish();
            let through = c.with_idx(v, l, s);
            // Onto an empty slot of the table.
            let j = c.other(l - 1, s + 2, &[iv, s, blk]);
            let q = c.with_idx(through, l - 1, j);
            assert_eq!(
                tr.translate(&mem, VirtAddr(q)),
                Err(Error::Unmapped { va: q }),
                "{c:?} level {l}"
            );
            // Onto the block, at the last level: a bad page descriptor.
            if l == 2 {
                let q = c.with_idx(through, 1, blk);
                assert_eq!(
                    tr.translate(&mem, VirtAddr(q)),
                    Err(bad(q, 1, be)),
                    "{c:?} level {l}"
                );
            }
            // Around the loop down to the last level: the table itself.
            let mut q = through & !(c.gran() - 1);
            for k in 1..l {
                q = c.with_idx(q, k, s);
            }
            assert_eq!(
                tr.translate(&mem, VirtAddr(q + 8)),
                Ok(page(t, 8, c.gran(), RWX)),
                "{c:?} level {l}"
            );
            let mut runs = c.the_page();
            if l == 2 {
                let bva = c.with_idx(v, 2, blk) & !((1 << c.shift(2)) - 1);
                runs.push(run(bva, arm::VPA, 1 << c.shift(2), RWX));
                runs.sort_by_key(|r| r.va);
            }
            assert_eq!(walk_runs(&mem, tr), runs, "{c:?} level {l}");
        }
    }
}

#[test]
fn arm64_entry_pointing_at_an_ancestor() {
    for c in arm::all() {
        let v = c.base();
        for l in 3..=c.levels() {
            for up in l..=c.levels() {
                let mut b = c.one_page();
                let iu = c.idx(v, up);
                let sib = c.other(up, iu + 1, &[iu]);
                let anc = c.table(&mut b, v, up, sib);
                let k = c.other(l - 1, c.idx(v, l - 1) + 1, &[c.idx(v, l - 1)]);
                let e = c.enc(anc) | arm::TABLE;
                b.set_raw(VirtAddr(c.with_idx(v, l - 1, k)), l - 1, e)
                    .unwrap();
                let (mem, tr) = b.finish();
                let through = c.with_idx(v, l - 1, k);
                let j = c.other(l - 2, iu + 1, &[iu, sib]);
                let q = c.with_idx(through, l - 2, j);
                assert_eq!(
                    tr.translate(&mem, VirtAddr(q)),
                    Err(Error::Unmapped { va: q }),
                    "{c:?} level {} → {up}",
                    l - 1
                );
                assert_eq!(walk_runs(&mem, tr), c.the_page());
            }
        }
    }
}

#[test]
fn arm64_tables_outside_memory() {
    for c in arm::all() {
        let v = c.base();
        let far = if c.pa52 {
            0x000f_dea0_0000_0000
        } else {
            0x0000_dea0_0000_0000
        };
        for l in 2..=c.levels() {
            let mut b = c.one_page();
            let s = c.with_idx(v, l, c.other(l, c.idx(v, l) + 1, &[c.idx(v, l)]));
            b.set_raw(VirtAddr(s), l, c.enc(far) | arm::TABLE).unwrap();
            let (mem, tr) = b.finish();
            assert_eq!(
                tr.translate(&mem, VirtAddr(s)),
                Err(Error::TableNotReadable {
                    va: s,
                    pa: far + c.idx(s, l - 1) * 8
                }),
                "{c:?} level {l}"
            );
            assert_eq!(walk_runs(&mem, tr), c.the_page());
        }
        let (mem, _) = c.one_page().finish();
        let tr = c.at(far);
        assert_eq!(
            tr.translate(&mem, VirtAddr(v)),
            Err(Error::TableNotReadable {
                va: v,
                pa: far + c.idx(v, c.levels()) * 8
            }),
            "{c:?} root"
        );
        assert_eq!(walk_runs(&mem, tr), vec![]);
    }
}

#[test]
fn arm64_all_ones_descriptors() {
    for c in arm::all() {
        let v = c.base();
        for l in 1..=c.levels() {
            let mut b = c.one_page();
            let s = c.with_idx(v, l, c.other(l, c.idx(v, l) + 1, &[c.idx(v, l)]));
            b.set_raw(VirtAddr(s), l, u64::MAX).unwrap();
            let (mem, tr) = b.finish();
            let oa = c.dec(u64::MAX);
            let want = if l == 1 {
                // A page: read-only, EL0, never executable.
                Ok(page(oa, 0, c.gran(), Prot::READ.union(Prot::USER)))
            } else {
                Err(Error::TableNotReadable {
                    va: s,
                    pa: oa + c.idx(s, l - 1) * 8,
                })
            };
            assert_eq!(tr.translate(&mem, VirtAddr(s)), want, "{c:?} level {l}");
            let mut runs = walk_runs(&mem, tr);
            runs.retain(|r| r.va.0 != s & !(c.gran() - 1));
            assert_eq!(runs, c.the_page(), "{c:?} level {l}");
        }
    }
}

/// Every entry of every table points at the root. The walk reports
/// nothing; a translation goes round the root down to the last level and
/// lands on the root page (a recursive mapping, not an error).
#[test]
fn arm64_every_entry_points_at_the_root() {
    for c in arm::all() {
        let mut b = c.one_page();
        // A few more pages, for more tables.
        for (n, bits) in [1u64 << (c.va_bits - 1), 1 << (c.va_bits - 2), 3 << 30]
            .into_iter()
            .enumerate()
        {
            let va = c.va(bits & ((1 << c.va_bits) - 1));
            b.map(
                VirtAddr(va),
                PhysAddr(arm::VPA + n as u64 * c.gran()),
                c.gran(),
                RW,
            )
            .unwrap();
        }
        let tables: Vec<u64> = {
            let m = b.mem_mut();
            m.pages()
                .map(|(pa, _)| pa.0)
                .filter(|&pa| (arm::ROOT..arm::ROOT + (64 << 20)).contains(&pa))
                .collect()
        };
        assert!(tables.len() as u64 >= c.levels() as u64 * c.gran() / 4096);
        let e = c.enc(arm::ROOT) | arm::TABLE;
        let page4k: Vec<u8> = (0..512).flat_map(|_| e.to_le_bytes()).collect();
        for &t in &tables {
            b.mem_mut().write(PhysAddr(t), &page4k).unwrap();
        }
        let (mem, tr) = b.finish();
        let mask = (1u64 << c.va_bits) - 1;
        for bits in [0, mask, 0x1234_5678_9abc & mask, c.base() & mask] {
            let va = c.va(bits);
            let off = va & (c.gran() - 1);
            assert_eq!(
                tr.translate(&mem, VirtAddr(va)),
                Ok(page(arm::ROOT, off, c.gran(), RWX)),
                "{c:?} {va:#x}"
            );
        }
        let out = c.va(0) ^ (1 << 63);
        assert_eq!(
            tr.translate(&mem, VirtAddr(out)),
            Err(Error::NonCanonical { va: out })
        );
        assert_eq!(walk_runs(&mem, tr), vec![], "{c:?}");
    }
}

/// 52-bit output addresses in table, block and page descriptors.
#[test]
fn arm64_52_bit_output_addresses() {
    for c in arm::all().into_iter().filter(|c| c.pa52) {
        let v = c.base();
        let hi = 0x000c_0000_0000_0000 | 1 << 48;
        // A page at a 52-bit address, through a table at one.
        let mut b = c.one_page();
        let s = c.with_idx(v, 1, c.other(1, c.idx(v, 1) + 1, &[c.idx(v, 1)]));
        b.set_raw(VirtAddr(s), 1, c.enc(hi) | arm::AF | arm::TABLE)
            .unwrap();
        b.mem_mut()
            .write(PhysAddr(hi + 0x10), b"fifty-two")
            .unwrap();
        let (mem, tr) = b.finish();
        assert_eq!(
            tr.translate(&mem, VirtAddr(s + 0x10)),
            Ok(page(hi, 0x10, c.gran(), RWX)),
            "{c:?}"
        );
        let kvm = kvm_core::Translated::new(&mem, tr);
        let mut buf = [0u8; 9];
        kvm_core::VirtReadExt::read_virt_exact(&kvm, VirtAddr(s + 0x10), &mut buf).unwrap();
        assert_eq!(&buf, b"fifty-two");

        // A table at a 52-bit address that is not in memory.
        let mut b = c.one_page();
        let l = 2;
        let s = c.with_idx(v, l, c.other(l, c.idx(v, l) + 1, &[c.idx(v, l)]));
        b.set_raw(VirtAddr(s), l, c.enc(hi) | arm::TABLE).unwrap();
        let (mem, tr) = b.finish();
        assert_eq!(
            tr.translate(&mem, VirtAddr(s)),
            Err(Error::TableNotReadable {
                va: s,
                pa: hi + c.idx(s, 1) * 8
            }),
            "{c:?}"
        );
    }
}

/// The root keeps bits 51:48 whether 52-bit addresses are enabled before or
/// after it is given, and drops them without 52-bit addresses.
#[test]
fn arm64_root_above_48_bits() {
    let hi = 0x000f_dea0_0001_0000;
    for g in [Granule::K4, Granule::K16, Granule::K64] {
        let a = Aarch64::kernel(PhysAddr(hi), g, 48).unwrap();
        assert_eq!(a.root(), PhysAddr(hi & 0x0000_ffff_ffff_ffff));
        assert_eq!(a.with_pa52(true).root(), PhysAddr(hi), "{g:?}");
        assert_eq!(a.with_pa52(true).with_pa52(false).root(), a.root());
        assert_eq!(
            a.with_pa52(true).with_root(PhysAddr(hi | 0x3f)).root(),
            PhysAddr(hi)
        );
    }
}

/// A table of which one 4 KiB part is missing from memory: its entries
/// there fail to translate, the walk reports the rest.
#[test]
fn arm64_partly_missing_table() {
    for half in [Half::Kernel, Half::User] {
        let c = arm::Cfg {
            g: Granule::K64,
            va_bits: 42,
            pa52: false,
            half,
        };
        assert_eq!(c.levels(), 2);
        let mut b = c.builder();
        let va = |i: u64| c.va(i << c.shift(2) | 3 << 16);
        for (n, i) in [100u64, 600, 1100].into_iter().enumerate() {
            let pa = arm::VPA + n as u64 * c.gran();
            b.map(VirtAddr(va(i)), PhysAddr(pa), c.gran(), RWX).unwrap();
        }
        let (full, tr) = b.finish();
        // Entries 512..1023 of the root live in its second 4 KiB page.
        let gone = arm::ROOT + 0x1000;
        let mut mem = SparseMem::new();
        for (pa, bytes) in full.pages().filter(|(pa, _)| pa.0 != gone) {
            mem.write(pa, bytes).unwrap();
        }
        assert_eq!(
            tr.translate(&mem, VirtAddr(va(600))),
            Err(Error::TableNotReadable {
                va: va(600),
                pa: arm::ROOT + 600 * 8
            })
        );
        assert_eq!(
            tr.translate(&mem, VirtAddr(va(1100) + 5)),
            Ok(page(arm::VPA + 2 * c.gran(), 5, c.gran(), RWX))
        );
        assert_eq!(
            walk_runs(&mem, tr),
            vec![
                run(va(100), arm::VPA, c.gran(), RWX),
                run(va(1100), arm::VPA + 2 * c.gran(), c.gran(), RWX),
            ]
        );
    }
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
