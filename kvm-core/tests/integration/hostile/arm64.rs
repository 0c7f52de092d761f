//! Hostile arm64 page tables, in every granule and half: blocks at every
//! level and misaligned ones, entries pointing at their own table, an
//! ancestor or the root, tables outside memory or partly missing, all-ones
//! descriptors, 52-bit output addresses and roots above 48 bits.

use super::{bad, page, run, walk_runs, RW, RWX};
use kvm_core::arch::aarch64::{self, Aarch64, Granule, Half};
use kvm_core::{Error, PageRun, PhysAddr, Prot, SparseMem, Translate, VirtAddr};

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
