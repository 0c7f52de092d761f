//! The translators against libkdumpfile's page-table translation vectors
//! (`tests/data/libkdumpfile-xlat/`, provenance and license in SOURCE.md
//! there).
//!
//! Each case is sparse physical memory (`.data`), the symbols libkdumpfile's
//! driver gives it (`.sym`), and what libkdumpfile expects (`.expect`): the
//! page-table root and layout (`@rootpgt`), and address ranges that follow a
//! linear offset (the direct map, kernel text). A small strict loader reads
//! all three notations: any line it does not understand fails the test.
//!
//! # What is checked, and why that is sound
//!
//! libkdumpfile describes a LINEAR range as the span it *treats* as linear;
//! the page tables excerpted in `.data` may leave holes in it (x86_64-5l's
//! direct map leaves most of 1.5–2 GiB and the PCI hole at 2–4 GiB unmapped:
//! not-present entries in the data). So for every KV -> PHYS range
//! mapped to a LINEAR method, every page is translated and:
//!
//! 1. a page that translates must land exactly at `va + off` (mod 2^64), at
//!    its start, at its last byte and (for huge pages) at every sub-step in
//!    between: every smallest-page start for pages up to 512 small pages
//!    (2 MiB on x86-64, so every 4 KiB start of a 4 KiB/2 MiB-mapped direct
//!    map), every `size / 512` for larger ones (every 2 MiB of a 1 GiB page);
//!    its size must be one the `fields=` layout allows;
//! 2. a page that does not translate must fail with `Unmapped` (a
//!    not-present entry in the data), never with an unreadable table, a bad
//!    entry or a non-canonical address;
//! 3. the first and last page of the range translate (libkdumpfile's ranges
//!    end at mapped pages);
//! 4. the pages found, by size, equal a per-case table written below from a
//!    reading of the `.data` file (the comments show the arithmetic), so a
//!    translator that wrongly reported `Unmapped` cannot pass;
//! 5. `walk` reports exactly the same pages (VA, PA, size, rights) in the
//!    range.
//!
//! Each KPHYS -> DIRECT range mapped to a LINEAR method is the inverse view
//! of the same map: its image in the kernel space (`pa + off`) must be a
//! KV -> PHYS LINEAR range with the opposite offset, checked as above. Where
//! KV -> PHYS has no such range (ia32-pae: the data holds one page of the
//! direct map) the image is checked with rules 1, 2, 4 and 5: every direct-map
//! address that translates maps back to its physical address, and the page
//! count table says how many do. x86_64-ktext-1G has an empty KPHYS -> DIRECT.
//!
//! Around each LINEAR range, the page just below and the page just above must
//! not translate to the linear value (aarch64-5.8-va48's `ffff00003ffff000`
//! has an invalid PTE) unless the case lists it: x86_64-ktext-1G's data maps
//! `ffffffffc0000000` linearly on purpose ("this page should be ignored,
//! although it extends the linear map") and libkdumpfile ends the kernel-text
//! range at 1 GiB regardless.
//!
//! Ranges the `.expect` maps to NONE (in KV -> HW and KV -> PHYS) must give
//! `NonCanonical` (both ends and 63 points between); `@rootpgt` ranges must
//! not. The arm64 user half is `@userpgt` with no root: the kernel-half
//! (TTBR1) translator must call it `NonCanonical` too.
//!
//! Finally every page `walk` reports (in the whole space) is re-translated at
//! its first and last byte and must agree with the walk.
//!
//! Every translation whose result is asserted is counted; the counts are
//! printed per case and must reach a per-case minimum.

use kvm_core::arch::aarch64::{Aarch64, Granule};
use kvm_core::arch::i386::I386;
use kvm_core::arch::x86_64::X86_64;
use kvm_core::{Error, PageRun, PhysAddr, SparseMem, Translate, Translation, VirtAddr};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Instant;

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/libkdumpfile-xlat");

// ---------------------------------------------------------------------------
// Per-case parameters.
// ---------------------------------------------------------------------------

/// The options libkdumpfile's driver script passes to `xlat-os` for a case,
/// copied from the options table in SOURCE.md (fields not needed here, such
/// as `ostype=linux` and aarch64-5.8-va48's `osver`, are left out).
#[derive(Clone, Copy, Debug)]
enum Opts {
    /// `arch=x86_64 phys_base=…`: a KVADDR root is in the kernel-text
    /// mapping, `pa = va - __START_KERNEL_map + phys_base`.
    X86_64 { phys_base: u64 },
    /// `arch=aarch64 page_shift=…`.
    Aarch64 { page_shift: u32 },
    /// `arch=ia32 rootpgt=MACHPHYSADDR:…`.
    Ia32 { rootpgt_machphys: u64 },
}

/// x86-64 `__START_KERNEL_map`: the base of the kernel-text mapping.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// What one LINEAR range is expected to hold, in kernel-virtual addresses:
/// `(page size, number of pages)` translated inside `[lo, hi]`.
#[derive(Debug)]
struct LinearExpect {
    lo: u64,
    hi: u64,
    pages: &'static [(u64, u64)],
}

#[derive(Debug)]
struct Case {
    name: &'static str,
    opts: Opts,
    /// Translator variants to run: arm64 with 52-bit output addresses off and
    /// on (only where the descriptor format allows both readings).
    pa52: &'static [bool],
    linear: &'static [LinearExpect],
    /// Pages just outside a LINEAR range that the data maps linearly on
    /// purpose.
    extends: &'static [u64],
    /// Minimum number of checked translations (per variant).
    min_checks: u64,
}

const K4: u64 = 0x1000;
const K64: u64 = 0x1_0000;
const M2: u64 = 0x20_0000;
const G1: u64 = 0x4000_0000;

const CASES: &[Case] = &[
    Case {
        name: "x86_64-4.13-kaslr",
        opts: Opts::X86_64 {
            phys_base: 0x1300_0000,
        },
        pa52: &[false],
        linear: &[
            // Direct map, PML4[305] -> PDPT 0x263cb000 [337], [338]:
            // [337] = PD 0x263cc000: PT 0x263cd000 (512 x 4K), 511 x 2M;
            // [338] = PD 0x263cf000: 2M runs 57+3+42+8+2+6+4+1+2+15+86 = 226,
            // PTs 3+1+2+2+2+6+9+2+1+1 = 29 full (14848 x 4K) and PT
            // 0x263d0000 with 480 x 4K: 737 x 2M, 512+14848+480 = 15840 x 4K
            // = 0x5ffe0000 bytes, the whole range.
            LinearExpect {
                lo: 0xffff_98d4_4000_0000,
                hi: 0xffff_98d4_9ffd_ffff,
                pages: &[(K4, 15840), (M2, 737)],
            },
            // Kernel text, PD 0x25c0d000 [144..=153]: 7 x 2M and PTs
            // 0x5296a000, 0x36e3c000, 0x53048000 (3 x 512 x 4K) = 20 MiB.
            LinearExpect {
                lo: 0xffff_ffff_9200_0000,
                hi: 0xffff_ffff_933f_ffff,
                pages: &[(K4, 1536), (M2, 7)],
            },
        ],
        extends: &[],
        min_checks: 400_000,
    },
    Case {
        name: "x86_64-5l",
        opts: Opts::X86_64 {
            phys_base: 0x13_5560_0000,
        },
        pa52: &[false],
        linear: &[
            // Direct map, PML5[307] -> P4D 0x1362002000 [340], [341].
            // P4D[340] = PUD 0x1362003000: [257] PD 0x1362004000 (PT of
            // 512 x 4K, 511 x 2M); [258] PD 0x1362009000 (254 x 2M, PT with
            // 371 x 4K, 124 empty, PT with 1 x 4K, 132 empty); [259], [260]
            // empty (the PCI hole); [261] PD 0x7f160ff000 (4 x 2M, PT of
            // 512 x 4K, 507 x 2M); [262..=511] 250 x 1G.
            // P4D[341] = PUD 0x1362008000: 258 x 1G, [258] PD 0x7f081c1000
            // (512 x 2M).
            // 4K: 512+371+1+512 = 1396; 2M: 511+254+4+507+512 = 1788;
            // 1G: 250+258 = 508.
            LinearExpect {
                lo: 0xff33_aa40_4000_0000,
                hi: 0xff33_aac0_bfff_ffff,
                pages: &[(K4, 1396), (M2, 1788), (G1, 508)],
            },
            // Kernel text, PD 0x1360a10000 [80..=101]: 16 x 2M and 6 PTs
            // (0x1361208000, 0x13603ff000, 0x1361fff000, 0x4081e96000,
            // 0x7f6db78000, 0x7f1f8c1000) of 512 x 4K = 44 MiB.
            LinearExpect {
                lo: 0xffff_ffff_8a00_0000,
                hi: 0xffff_ffff_8cbf_ffff,
                pages: &[(K4, 3072), (M2, 16)],
            },
        ],
        extends: &[],
        min_checks: 1_000_000,
    },
    Case {
        name: "x86_64-ktext-1G",
        opts: Opts::X86_64 { phys_base: 0 },
        pa52: &[false],
        linear: &[
            // Kernel text, PD 0x1e12000 [8..=511]: 504 x 2M.
            LinearExpect {
                lo: 0xffff_ffff_8100_0000,
                hi: 0xffff_ffff_bfff_ffff,
                pages: &[(M2, 504)],
            },
        ],
        // PDPT[511] -> PD 0x1e13000 [0] maps 0x40000000, continuing the
        // kernel-text offset; the .data file says "this page should be
        // ignored, although it extends the linear map".
        extends: &[0xffff_ffff_c000_0000],
        min_checks: 250_000,
    },
    Case {
        name: "aarch64-5.8-va48",
        opts: Opts::Aarch64 { page_shift: 12 },
        pa52: &[false],
        linear: &[
            // Direct map, L0[0] -> L1 0x6fff9000 [0] -> L2 0x6fff8000:
            // [0] L3 0x6fff7000 (512 x 4K), [1..=510] 510 x 2M blocks,
            // [511] L3 0x6fdfe000 (511 x 4K and one invalid descriptor).
            LinearExpect {
                lo: 0xffff_0000_0000_0000,
                hi: 0xffff_0000_3fff_efff,
                pages: &[(K4, 1023), (M2, 510)],
            },
        ],
        extends: &[],
        min_checks: 250_000,
    },
    Case {
        name: "aarch64-5.16-64k",
        opts: Opts::Aarch64 { page_shift: 16 },
        // Booted with 48-bit VAs on a 52-bit-VA kernel, which may use 52-bit
        // PAs (FEAT_LPA: OA[51:48] in bits 15:12, zero in this data): both
        // readings must give the same translations.
        pa52: &[false, true],
        linear: &[
            // Direct map, L1[8] -> L2 0xbffd0000 [7057..=7060] -> four L3
            // tables of 8192 x 64K.
            LinearExpect {
                lo: 0xffff_2372_2000_0000,
                hi: 0xffff_2372_9fff_ffff,
                pages: &[(K64, 32768)],
            },
        ],
        extends: &[],
        min_checks: 65_000,
    },
    Case {
        name: "ia32-pae",
        opts: Opts::Ia32 {
            rootpgt_machphys: 0x92_6000,
        },
        pa52: &[false],
        linear: &[
            // KPHYS -> DIRECT 0-3fffffff seen from the kernel space; the data
            // holds one page of it: PDPT[3] -> PD 0x923000 [0] -> PT 0xa28000
            // [0] maps 0xc0000000 to 0.
            LinearExpect {
                lo: 0xc000_0000,
                hi: 0xffff_ffff,
                pages: &[(K4, 1)],
            },
        ],
        extends: &[],
        min_checks: 250_000,
    },
];

#[test]
fn x86_64_4_13_kaslr() {
    run_case("x86_64-4.13-kaslr");
}

#[test]
fn x86_64_5l() {
    run_case("x86_64-5l");
}

#[test]
fn x86_64_ktext_1g() {
    run_case("x86_64-ktext-1G");
}

#[test]
fn aarch64_5_8_va48() {
    run_case("aarch64-5.8-va48");
}

#[test]
fn aarch64_5_16_64k() {
    run_case("aarch64-5.16-64k");
}

#[test]
fn ia32_pae() {
    run_case("ia32-pae");
}

/// Every data file in the directory belongs to a case in [`CASES`], and every
/// case has its files.
#[test]
fn every_vector_has_a_case() {
    let mut stems = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(DATA_DIR).expect("vector directory") {
        let name = entry.expect("directory entry").file_name();
        let name = name.to_str().expect("UTF-8 file name");
        if let Some(rest) = name.strip_prefix("xlat-linux-") {
            let stem = rest
                .strip_suffix(".data")
                .or_else(|| rest.strip_suffix(".expect"))
                .or_else(|| rest.strip_suffix(".sym"))
                .unwrap_or_else(|| panic!("unexpected file {name}"));
            stems.insert(stem.to_owned());
        } else {
            assert!(
                name == "SOURCE.md" || name == "README.md",
                "unexpected file {name}"
            );
        }
    }
    let cases: std::collections::BTreeSet<String> =
        CASES.iter().map(|c| c.name.to_owned()).collect();
    assert_eq!(stems, cases);
}

// ---------------------------------------------------------------------------
// Running one case.
// ---------------------------------------------------------------------------

fn read(name: &str, ext: &str) -> Option<String> {
    let path = format!("{DATA_DIR}/xlat-linux-{name}.{ext}");
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{path}: {e}"),
    }
}

fn run_case(name: &str) {
    let case = CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"));
    let file = |ext: &str| format!("xlat-linux-{name}.{ext}");
    let data = read(name, "data").unwrap_or_else(|| panic!("{} missing", file("data")));
    let expect = read(name, "expect").unwrap_or_else(|| panic!("{} missing", file("expect")));
    let chunks = parse_data(&data).unwrap_or_else(|e| panic!("{}: {e}", file("data")));
    let expect = parse_expect(&expect).unwrap_or_else(|e| panic!("{}: {e}", file("expect")));
    let syms = match read(name, "sym") {
        Some(s) => parse_sym(&s).unwrap_or_else(|e| panic!("{}: {e}", file("sym"))),
        None => BTreeMap::new(),
    };
    let mut mem = SparseMem::new();
    for c in &chunks {
        mem.write(PhysAddr(c.addr), &c.bytes)
            .unwrap_or_else(|e| panic!("{}: line {}: {e}", file("data"), c.line));
    }
    for &pa52 in case.pa52 {
        let start = Instant::now();
        let label = if case.pa52.len() > 1 {
            format!("{name} (pa52={pa52})")
        } else {
            name.to_owned()
        };
        let layout = Layout::new(case, &expect, &syms, pa52)
            .unwrap_or_else(|e| panic!("{label}: translator: {e}"));
        let mut ctx = Ctx {
            label: &label,
            mem: &mem,
            layout: &layout,
            checks: 0,
            walked: 0,
        };
        ctx.check_all(case, &expect);
        eprintln!(
            "libkdumpfile vector {label}: {} checked translations ({} walked pages) in {:.2?}",
            ctx.checks,
            ctx.walked,
            start.elapsed()
        );
        assert!(
            ctx.checks >= case.min_checks,
            "{label}: only {} checked translations (minimum {})",
            ctx.checks,
            case.min_checks
        );
    }
}

/// The translator of a case and what its `fields=` say about it.
struct Layout {
    xlat: Box<dyn Translate>,
    /// Page shift, then index widths from the bottom level up.
    fields: Vec<u32>,
    /// Whether the translator serves the whole space (x86) or only the
    /// kernel half (arm64 TTBR1).
    kernel_half_only: bool,
}

impl Layout {
    fn new(
        case: &Case,
        expect: &Expect,
        syms: &BTreeMap<String, u64>,
        pa52: bool,
    ) -> Result<Layout, String> {
        let Some(Method::Pgt {
            target_as,
            root,
            fields,
            pte_format,
            pte_mask,
        }) = expect.methods.get("rootpgt")
        else {
            return Err("no @rootpgt PGT method".into());
        };
        // The translators output machine-physical addresses.
        if *target_as != AddrSpace::MachPhys {
            return Err(format!("@rootpgt maps into {target_as:?}"));
        }
        if *pte_mask != 0 {
            return Err(format!("pte_mask={pte_mask:#x} is not supported"));
        }
        let Root::Addr(space, root_addr) = *root else {
            return Err("@rootpgt has no root".into());
        };
        let sym = |n: &str| {
            syms.get(n)
                .copied()
                .ok_or_else(|| format!("symbol {n} missing"))
        };
        // The root's physical address.
        let root_pa = match (space, case.opts) {
            (AddrSpace::KVirt, Opts::X86_64 { phys_base }) => {
                let text_off = root_addr
                    .checked_sub(START_KERNEL_MAP)
                    .ok_or("KVADDR root below __START_KERNEL_map")?;
                // The symbol that names the root (init_top_pgt since 4.13).
                let named = sym("init_top_pgt").or_else(|_| sym("init_level4_pgt"))?;
                if named != root_addr {
                    return Err(format!("root {root_addr:#x} != symbol {named:#x}"));
                }
                text_off
                    .checked_add(phys_base)
                    .ok_or("root beyond the physical space")?
            }
            (AddrSpace::KVirt, _) => return Err("KVADDR root outside x86-64".into()),
            (AddrSpace::KPhys | AddrSpace::MachPhys, _) => {
                if space == AddrSpace::KPhys
                    && expect.linear_off("KPHYS -> MACHPHYS", root_addr)? != 0
                {
                    return Err("KPHYS and MACHPHYS differ at the root".into());
                }
                root_addr
            }
        };
        if !fields.iter().all(|&f| f > 0) || fields.len() < 2 {
            return Err(format!("bad fields {fields:?}"));
        }
        let va_bits: u32 = fields.iter().sum();
        let levels = u32::try_from(fields.len() - 1).map_err(|e| e.to_string())?;
        let (xlat, kernel_half_only): (Box<dyn Translate>, bool) =
            match (pte_format.as_str(), case.opts) {
                ("x86_64", Opts::X86_64 { .. }) => {
                    if fields[..] != [12, 9, 9, 9, 9] && fields[..] != [12, 9, 9, 9, 9, 9] {
                        return Err(format!("x86_64 fields {fields:?}"));
                    }
                    if let Ok(l5) = sym("pgtable_l5_enabled") {
                        if (l5 == 1) != (levels == 5) {
                            return Err("pgtable_l5_enabled disagrees with fields".into());
                        }
                    }
                    let x = X86_64::new(PhysAddr(root_pa), levels).map_err(|e| e.to_string())?;
                    if x.root() != PhysAddr(root_pa) {
                        return Err("x86-64 root not page-aligned".into());
                    }
                    (Box::new(x), false)
                }
                ("ia32_pae", Opts::Ia32 { rootpgt_machphys }) => {
                    if fields[..] != [12, 9, 9, 2] {
                        return Err(format!("ia32_pae fields {fields:?}"));
                    }
                    if space != AddrSpace::MachPhys || root_pa != rootpgt_machphys {
                        return Err("root differs from the driver's rootpgt option".into());
                    }
                    (Box::new(I386::new_pae(PhysAddr(root_pa))), false)
                }
                ("ia32", Opts::Ia32 { rootpgt_machphys }) => {
                    if fields[..] != [12, 10, 10] {
                        return Err(format!("ia32 fields {fields:?}"));
                    }
                    if space != AddrSpace::MachPhys || root_pa != rootpgt_machphys {
                        return Err("root differs from the driver's rootpgt option".into());
                    }
                    (Box::new(I386::new(PhysAddr(root_pa))), false)
                }
                ("aarch64", Opts::Aarch64 { page_shift }) => {
                    let granule = match page_shift {
                        12 => Granule::K4,
                        14 => Granule::K16,
                        16 => Granule::K64,
                        _ => return Err(format!("page_shift={page_shift}")),
                    };
                    if fields[0] != page_shift {
                        return Err("fields disagree with page_shift".into());
                    }
                    // Every level but the top resolves page_shift - 3 bits.
                    let (top, mid) = fields[1..].split_last().ok_or("no levels")?;
                    if mid.iter().any(|&f| f != page_shift - 3) || *top > page_shift - 3 {
                        return Err(format!("aarch64 fields {fields:?}"));
                    }
                    // The VA size: TCR_EL1.T1SZ when the kernel booted with fewer
                    // bits than configured, else VA_BITS.
                    let sym_va = match sym("TCR_EL1_T1SZ") {
                        Ok(t1sz) => 64u64.checked_sub(t1sz).ok_or("TCR_EL1_T1SZ > 64")?,
                        Err(_) => sym("VA_BITS")?,
                    };
                    if sym_va != u64::from(va_bits) {
                        return Err(format!("VA size {sym_va} != fields total {va_bits}"));
                    }
                    // swapper_pg_dir is a kernel-image address: pa = va - kimage_voffset.
                    let swapper = sym("swapper_pg_dir")?.wrapping_sub(sym("kimage_voffset")?);
                    if swapper != root_pa {
                        return Err(format!("swapper_pg_dir at {swapper:#x}, root {root_pa:#x}"));
                    }
                    let a = Aarch64::kernel(PhysAddr(root_pa), granule, va_bits)
                        .map_err(|e| e.to_string())?
                        .with_pa52(pa52);
                    if a.levels() != levels || a.root() != PhysAddr(root_pa) {
                        return Err("arm64 translator disagrees with fields".into());
                    }
                    (Box::new(a), true)
                }
                (f, o) => return Err(format!("pte_format={f} with options {o:?}")),
            };
        Ok(Layout {
            xlat,
            fields: fields.clone(),
            kernel_half_only,
        })
    }

    fn min_page(&self) -> u64 {
        1 << self.fields[0]
    }

    /// Whether `size` is the size a leaf at some level below the top maps.
    fn is_page_size(&self, size: u64) -> bool {
        let mut shift = 0;
        self.fields[..self.fields.len() - 1].iter().any(|f| {
            shift += f;
            size == 1 << shift
        })
    }
}

struct Ctx<'a> {
    label: &'a str,
    mem: &'a SparseMem,
    layout: &'a Layout,
    checks: u64,
    /// Pages reported by `walk`.
    walked: usize,
}

/// One LINEAR range to check, in kernel-virtual addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LinRange {
    lo: u64,
    hi: u64,
    off: u64,
    /// From KV -> PHYS (its ends must be mapped).
    kv: bool,
}

impl Ctx<'_> {
    fn tr(&mut self, va: u64) -> Result<Translation, Error> {
        self.checks += 1;
        self.layout.xlat.translate(self.mem, VirtAddr(va))
    }

    fn check_all(&mut self, case: &Case, expect: &Expect) {
        let label = self.label;
        let ranges = linear_ranges(expect).unwrap_or_else(|e| panic!("{label}: {e}"));
        // The per-case table describes exactly these ranges.
        let listed: Vec<(u64, u64)> = case.linear.iter().map(|l| (l.lo, l.hi)).collect();
        let found: Vec<(u64, u64)> = ranges.iter().map(|r| (r.lo, r.hi)).collect();
        assert_eq!(listed, found, "{label}: LINEAR ranges of the .expect file");
        // Translated addresses are machine-physical; LINEAR targets are
        // KPHYS. They must be the same space over each range's image.
        for r in &ranges {
            for a in [r.lo.wrapping_add(r.off), r.hi.wrapping_add(r.off)] {
                for map in ["KPHYS -> MACHPHYS", "MACHPHYS -> KPHYS"] {
                    let off = expect
                        .linear_off(map, a)
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                    assert_eq!(off, 0, "{label}: {map} at {a:#x}");
                }
            }
        }

        let mut walked = Vec::new();
        self.layout
            .xlat
            .walk(self.mem, &mut |run| {
                walked.push(run);
                ControlFlow::Continue(())
            })
            .unwrap_or_else(|e| panic!("{label}: walk: {e}"));
        self.walked = walked.len();

        for (r, want) in ranges.iter().zip(case.linear) {
            let pages = self.check_linear(r, case.extends);
            let mut by_size: BTreeMap<u64, u64> = BTreeMap::new();
            for p in &pages {
                *by_size.entry(p.len).or_default() += 1;
            }
            let want_sizes: BTreeMap<u64, u64> = want.pages.iter().copied().collect();
            assert_eq!(
                by_size, want_sizes,
                "{label}: pages (size -> count) translated in {:#x}-{:#x}",
                r.lo, r.hi
            );
            let in_walk: Vec<PageRun> = walked
                .iter()
                .filter(|p| p.va.0 <= r.hi && p.va.0.wrapping_add(p.len - 1) >= r.lo)
                .copied()
                .collect();
            assert_eq!(
                in_walk, pages,
                "{label}: walk vs translate in {:#x}-{:#x}",
                r.lo, r.hi
            );
        }

        self.check_canonical(expect);
        self.check_walk(&walked, expect);
    }

    /// Rules 1–3 for one LINEAR range; returns the pages found, in VA order.
    fn check_linear(&mut self, r: &LinRange, extends: &[u64]) -> Vec<PageRun> {
        let label = self.label;
        let p = self.layout.min_page();
        assert!(
            r.lo.is_multiple_of(p) && r.hi.wrapping_add(1).is_multiple_of(p),
            "{label}: range {:#x}-{:#x} not page-aligned",
            r.lo,
            r.hi
        );
        let lin = |va: u64| va.wrapping_add(r.off);
        let mut pages: Vec<PageRun> = Vec::new();
        let mut va = r.lo;
        while va <= r.hi {
            match self.tr(va) {
                Ok(t) => {
                    let ps = t.page_size;
                    assert!(
                        self.layout.is_page_size(ps),
                        "{label}: {va:#x}: page size {ps:#x}"
                    );
                    let start = va & !(ps - 1);
                    let end = start.wrapping_add(ps - 1); // last byte of the page
                    assert_eq!(t.len, end - va + 1, "{label}: {va:#x}: len");
                    assert_eq!(t.pa.0, lin(va), "{label}: {va:#x}");
                    // Sub-steps inside the page, and the last byte of each.
                    let last = end.min(r.hi);
                    let sub = (ps / 512).max(p);
                    let mut s = va;
                    while s <= last {
                        for a in [s, s + sub - 1] {
                            if a == va {
                                continue;
                            }
                            let u = self.tr(a).unwrap_or_else(|e| {
                                panic!("{label}: {a:#x} in a mapped page: {e}")
                            });
                            assert_eq!(u.pa.0, lin(a), "{label}: {a:#x}");
                            assert_eq!(u.page_size, ps, "{label}: {a:#x}: page size");
                            assert_eq!(u.len, end - a + 1, "{label}: {a:#x}: len");
                            assert_eq!(u.prot, t.prot, "{label}: {a:#x}: rights");
                        }
                        match s.checked_add(sub) {
                            Some(n) => s = n,
                            None => break,
                        }
                    }
                    pages.push(PageRun {
                        va: VirtAddr(start),
                        pa: PhysAddr(lin(start)),
                        len: ps,
                        prot: t.prot,
                    });
                    match end.checked_add(1) {
                        Some(n) => va = n,
                        None => break,
                    }
                }
                Err(Error::Unmapped { va: e }) => {
                    assert_eq!(e, va, "{label}: error address");
                    let a = va + p - 1;
                    assert_eq!(
                        self.tr(a),
                        Err(Error::Unmapped { va: a }),
                        "{label}: end of an unmapped page"
                    );
                    match va.checked_add(p) {
                        Some(n) => va = n,
                        None => break,
                    }
                }
                Err(e) => panic!("{label}: {va:#x} in a LINEAR range: {e}"),
            }
        }
        if r.kv {
            let first = pages.first().map(|p| p.va.0);
            let last = pages.last().map(|p| p.va.0.wrapping_add(p.len - 1));
            assert!(
                first.is_some_and(|f| f <= r.lo) && last.is_some_and(|l| l >= r.hi),
                "{label}: range {:#x}-{:#x} does not start and end with mapped pages",
                r.lo,
                r.hi
            );
        }
        // The pages just outside.
        let below = r.lo.checked_sub(p);
        let above = r.hi.checked_add(1);
        for a in [below, above].into_iter().flatten() {
            let res = self.tr(a);
            let linear = matches!(res, Ok(t) if t.pa.0 == lin(a));
            assert_eq!(
                linear,
                extends.contains(&a),
                "{label}: page {a:#x} outside {:#x}-{:#x}: {res:?}",
                r.lo,
                r.hi
            );
        }
        pages
    }

    /// NONE ranges are non-canonical; `@rootpgt` ranges are not.
    fn check_canonical(&mut self, expect: &Expect) {
        let label = self.label;
        let mut seen = Vec::new();
        for map in ["KV -> HW", "KV -> PHYS"] {
            let ranges = expect
                .maps
                .get(map)
                .unwrap_or_else(|| panic!("{label}: no {map} map"));
            for rg in ranges {
                let want_noncanonical = match &rg.target {
                    Target::None => true,
                    Target::Method(m) => match expect.methods.get(m) {
                        Some(Method::Pgt {
                            root: Root::NoAddr, ..
                        }) => {
                            // Another root's half (arm64 TTBR0).
                            assert!(self.layout.kernel_half_only, "{label}: @{m} has no root");
                            true
                        }
                        Some(Method::Pgt { .. }) => false,
                        // LINEAR ranges are checked page by page.
                        _ => continue,
                    },
                };
                if seen.contains(&(rg.lo, rg.hi)) {
                    continue;
                }
                seen.push((rg.lo, rg.hi));
                let span = u128::from(rg.hi - rg.lo);
                for k in 0..=64u128 {
                    let a = rg.lo + u64::try_from(span * k / 64).expect("within the range");
                    let res = self.tr(a);
                    let nc = res == Err(Error::NonCanonical { va: a });
                    assert_eq!(
                        nc, want_noncanonical,
                        "{label}: {map} {:#x}-{:#x}: {a:#x} gives {res:?}",
                        rg.lo, rg.hi
                    );
                }
            }
        }
    }

    /// Every walked page re-translates to itself, in a canonical range, in
    /// increasing order.
    fn check_walk(&mut self, walked: &[PageRun], expect: &Expect) {
        let label = self.label;
        assert!(!walked.is_empty(), "{label}: walk found nothing");
        let hw = &expect.maps["KV -> HW"];
        let mut prev_end: Option<u64> = None;
        for run in walked {
            let first = run.va.0;
            let last = first
                .checked_add(run.len - 1)
                .unwrap_or_else(|| panic!("{label}: walked page {run:?} wraps"));
            assert!(
                prev_end.is_none_or(|e| first > e),
                "{label}: walk out of order at {run:?}"
            );
            prev_end = Some(last);
            let rg = hw
                .iter()
                .find(|r| r.lo <= first && first <= r.hi)
                .expect("the KV -> HW map covers every address");
            assert!(
                rg.target == Target::Method("rootpgt".into()) && last <= rg.hi,
                "{label}: walked page {run:?} outside @rootpgt"
            );
            for a in [first, last] {
                let t = self
                    .tr(a)
                    .unwrap_or_else(|e| panic!("{label}: walked page {run:?}: {a:#x}: {e}"));
                assert_eq!(
                    (t.pa.0, t.page_size, t.len, t.prot),
                    (
                        run.pa.0.wrapping_add(a - first),
                        run.len,
                        last - a + 1,
                        run.prot
                    ),
                    "{label}: walked page {run:?} at {a:#x}"
                );
            }
        }
    }
}

/// The LINEAR ranges to check: KV -> PHYS ranges with a LINEAR method, and
/// the kernel-space image of KPHYS -> DIRECT LINEAR ranges that are not one
/// of those.
fn linear_ranges(expect: &Expect) -> Result<Vec<LinRange>, String> {
    // The offset of a LINEAR target, checking the space it maps into.
    let off_of = |target: &Target, space: AddrSpace| match target {
        Target::Method(m) => match expect.methods.get(m) {
            Some(Method::Linear { off, target_as }) if *target_as == space => Ok(Some(*off)),
            Some(Method::Linear { target_as, .. }) => {
                Err(format!("@{m} maps into {target_as:?}, not {space:?}"))
            }
            _ => Ok(None),
        },
        Target::None => Ok(None),
    };
    let mut out = Vec::new();
    for rg in expect.maps.get("KV -> PHYS").ok_or("no KV -> PHYS map")? {
        if let Some(off) = off_of(&rg.target, AddrSpace::KPhys)? {
            out.push(LinRange {
                lo: rg.lo,
                hi: rg.hi,
                off,
                kv: true,
            });
        }
    }
    let direct = expect
        .maps
        .get("KPHYS -> DIRECT")
        .ok_or("no KPHYS -> DIRECT map")?;
    for rg in direct {
        match &rg.target {
            Target::None => {}
            t => {
                let off =
                    off_of(t, AddrSpace::KVirt)?.ok_or("KPHYS -> DIRECT to a non-LINEAR method")?;
                let lo = rg.lo.wrapping_add(off);
                let hi = rg.hi.wrapping_add(off);
                if hi < lo {
                    return Err("KPHYS -> DIRECT image wraps".into());
                }
                let back = off.wrapping_neg();
                match out.iter().find(|r| r.lo == lo && r.hi == hi) {
                    Some(r) if r.off == back => {} // the same map, seen backwards
                    Some(r) => {
                        return Err(format!(
                            "KPHYS -> DIRECT image {lo:#x}-{hi:#x} has off {:#x}, not {back:#x}",
                            r.off
                        ))
                    }
                    None => {
                        if out.iter().any(|r| r.lo <= hi && lo <= r.hi) {
                            return Err("KPHYS -> DIRECT image overlaps a KV range".into());
                        }
                        out.push(LinRange {
                            lo,
                            hi,
                            off: back,
                            kv: false,
                        });
                    }
                }
            }
        }
    }
    out.sort_by_key(|r| r.lo);
    Ok(out)
}

// ---------------------------------------------------------------------------
// The loader: `.data`, `.sym`, `.expect`. Errors say which line.
// ---------------------------------------------------------------------------

/// Bytes to store at a physical address.
#[derive(Debug, PartialEq, Eq)]
struct Chunk {
    addr: u64,
    bytes: Vec<u8>,
    /// Line of the `@ADDR` header.
    line: usize,
}

fn parse_hex(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// `0x`-prefixed hex.
fn parse_0x(s: &str) -> Option<u64> {
    parse_hex(s.strip_prefix("0x")?)
}

/// A repeat count: decimal (no leading zero, as C's `strtoul(…, 0)` would
/// read it as octal) or `0x` hex; at least 1.
fn parse_count(s: &str) -> Option<u64> {
    let n = if s.starts_with("0x") {
        parse_0x(s)?
    } else if !s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()?
    } else {
        return None;
    };
    (n >= 1).then_some(n)
}

/// One value token: `HEX`, `HEX*N`, `HEX*N+STEP`, `HEX*N-STEP`.
fn push_value(tok: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let (hex, rep) = match tok.split_once('*') {
        Some((h, r)) => (h, Some(r)),
        None => (tok, None),
    };
    if hex.len() % 2 != 0 {
        return Err(format!("odd digit count in {tok:?}"));
    }
    let v = parse_hex(hex).ok_or_else(|| format!("bad value {tok:?}"))?;
    let width = hex.len() / 2;
    let mask = if width == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    let (count, step, add) = match rep {
        None => (1, 0, true),
        Some(r) => {
            let (n, step, add) = match r.find(['+', '-']) {
                Some(i) => {
                    let step =
                        parse_hex(&r[i + 1..]).ok_or_else(|| format!("bad step in {tok:?}"))?;
                    (&r[..i], step, r.as_bytes()[i] == b'+')
                }
                None => (r, 0, true),
            };
            let n = parse_count(n).ok_or_else(|| format!("bad repeat count in {tok:?}"))?;
            (n, step, add)
        }
    };
    if count > 1 << 20 {
        return Err(format!("repeat count too large in {tok:?}"));
    }
    let mut v = v;
    for _ in 0..count {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
        v = if add {
            v.wrapping_add(step)
        } else {
            v.wrapping_sub(step)
        } & mask;
    }
    Ok(())
}

/// Parses a `.data` file (little-endian values).
fn parse_data(text: &str) -> Result<Vec<Chunk>, String> {
    let mut chunks: Vec<Chunk> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |m: String| format!("line {line}: {m}");
        let mut rest = raw.trim_start();
        if let Some(addr) = rest.strip_prefix('@') {
            let addr = addr.split('#').next().unwrap_or_default().trim();
            let addr = parse_0x(addr).ok_or_else(|| err(format!("bad address {raw:?}")))?;
            chunks.push(Chunk {
                addr,
                bytes: Vec::new(),
                line,
            });
            continue;
        }
        loop {
            rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                break;
            }
            let chunk = chunks
                .last_mut()
                .ok_or_else(|| err("data before any @ADDR".into()))?;
            if let Some(s) = rest.strip_prefix('"') {
                let end = s
                    .find('"')
                    .ok_or_else(|| err("unterminated string".into()))?;
                let body = &s[..end];
                if body.contains('\\') {
                    return Err(err("escapes in strings are not supported".into()));
                }
                chunk.bytes.extend_from_slice(body.as_bytes());
                rest = &s[end + 1..];
                if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
                    return Err(err("text after a string".into()));
                }
            } else {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                push_value(&rest[..end], &mut chunk.bytes).map_err(err)?;
                rest = &rest[end..];
            }
        }
    }
    // Chunks must not overlap (an overlap means a miscount somewhere).
    let mut spans: Vec<(u64, u64, usize)> = Vec::new();
    for c in &chunks {
        let len = u64::try_from(c.bytes.len()).map_err(|e| e.to_string())?;
        let end = c
            .addr
            .checked_add(len)
            .ok_or_else(|| format!("line {}: chunk wraps", c.line))?;
        spans.push((c.addr, end, c.line));
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(format!(
                "line {}: overlaps the chunk of line {}",
                w[1].2, w[0].2
            ));
        }
    }
    Ok(chunks)
}

/// Parses a `.sym` file: `@VALUE(name)` or `@NUMBER(name)`, then a hex value
/// on the next line.
fn parse_sym(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    let mut pending: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match pending.take() {
            None => {
                let name = t
                    .strip_prefix("@VALUE(")
                    .or_else(|| t.strip_prefix("@NUMBER("))
                    .and_then(|r| r.strip_suffix(')'))
                    .filter(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    })
                    .ok_or_else(|| {
                        format!("line {line}: expected @VALUE(name) or @NUMBER(name)")
                    })?;
                pending = Some((name.to_owned(), line));
            }
            Some((name, _)) => {
                let v = parse_hex(t).ok_or_else(|| format!("line {line}: bad value {t:?}"))?;
                if out.insert(name.clone(), v).is_some() {
                    return Err(format!("line {line}: {name} given twice"));
                }
            }
        }
    }
    if let Some((name, line)) = pending {
        return Err(format!("line {line}: {name} has no value"));
    }
    Ok(out)
}

/// An address space of the `.expect` notation: `KVADDR`, `KPHYSADDR`,
/// `MACHPHYSADDR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddrSpace {
    KVirt,
    KPhys,
    MachPhys,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    NoAddr,
    Addr(AddrSpace, u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Method {
    Pgt {
        target_as: AddrSpace,
        root: Root,
        pte_mask: u64,
        pte_format: String,
        fields: Vec<u32>,
    },
    Linear {
        target_as: AddrSpace,
        off: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    None,
    Method(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Range {
    lo: u64,
    hi: u64,
    target: Target,
}

#[derive(Debug, Default)]
struct Expect {
    methods: BTreeMap<String, Method>,
    maps: BTreeMap<String, Vec<Range>>,
}

impl Expect {
    /// The offset of the LINEAR method that `map` uses at `addr`.
    fn linear_off(&self, map: &str, addr: u64) -> Result<u64, String> {
        let rg = self
            .maps
            .get(map)
            .ok_or_else(|| format!("no {map} map"))?
            .iter()
            .find(|r| r.lo <= addr && addr <= r.hi)
            .ok_or_else(|| format!("{map} does not cover {addr:#x}"))?;
        match &rg.target {
            Target::Method(m) => match self.methods.get(m) {
                Some(Method::Linear { off, .. }) => Ok(*off),
                _ => Err(format!("{map} at {addr:#x} is not LINEAR")),
            },
            Target::None => Err(format!("{map} at {addr:#x} is NONE")),
        }
    }
}

const MAPS: [&str; 5] = [
    "KV -> HW",
    "KV -> PHYS",
    "KPHYS -> DIRECT",
    "MACHPHYS -> KPHYS",
    "KPHYS -> MACHPHYS",
];

fn parse_space(s: &str) -> Option<AddrSpace> {
    match s {
        "KVADDR" => Some(AddrSpace::KVirt),
        "KPHYSADDR" => Some(AddrSpace::KPhys),
        "MACHPHYSADDR" => Some(AddrSpace::MachPhys),
        _ => None,
    }
}

fn build_method(kind: &str, keys: &BTreeMap<String, String>) -> Result<Method, String> {
    let get = |k: &str| {
        keys.get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("{kind}: no {k}="))
    };
    let space = |k: &str| -> Result<AddrSpace, String> {
        let v = get(k)?;
        parse_space(v).ok_or_else(|| format!("bad {k}={v}"))
    };
    let allowed: &[&str] = match kind {
        "PGT" => &["target_as", "root", "pte_mask", "pte_format", "fields"],
        "LINEAR" => &["target_as", "off"],
        _ => return Err(format!("unknown method kind {kind}")),
    };
    if let Some(k) = keys.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("{kind}: unknown key {k}"));
    }
    Ok(match kind {
        "PGT" => {
            let root = match get("root")? {
                "NOADDR" => Root::NoAddr,
                r => {
                    let (s, a) = r.split_once(':').ok_or_else(|| format!("bad root={r}"))?;
                    let s = parse_space(s).ok_or_else(|| format!("bad root={r}"))?;
                    Root::Addr(s, parse_0x(a).ok_or_else(|| format!("bad root={r}"))?)
                }
            };
            let fields = get("fields")?
                .split(',')
                .map(|f| f.parse::<u32>().ok().filter(|&n| (1..=20).contains(&n)))
                .collect::<Option<Vec<u32>>>()
                .ok_or("bad fields=")?;
            Method::Pgt {
                target_as: space("target_as")?,
                root,
                pte_mask: parse_0x(get("pte_mask")?).ok_or("bad pte_mask=")?,
                pte_format: get("pte_format")?.to_owned(),
                fields,
            }
        }
        _ => Method::Linear {
            target_as: space("target_as")?,
            off: parse_0x(get("off")?).ok_or("bad off=")?,
        },
    })
}

/// Parses an `.expect` file: methods (`@name: KIND` and indented `key=value`
/// lines), then maps (`A -> B:` and `LO-HI: @method|NONE` lines).
fn parse_expect(text: &str) -> Result<Expect, String> {
    let mut e = Expect::default();
    // The method being read: name, kind, keys.
    let mut method: Option<(String, String, BTreeMap<String, String>)> = None;
    let mut map: Option<String> = None;
    let finish = |e: &mut Expect, m: Option<(String, String, BTreeMap<String, String>)>| {
        if let Some((name, kind, keys)) = m {
            let built = build_method(&kind, &keys).map_err(|x| format!("@{name}: {x}"))?;
            if e.methods.insert(name.clone(), built).is_some() {
                return Err(format!("@{name} defined twice"));
            }
        }
        Ok::<(), String>(())
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |m: &str| format!("line {line}: {m}: {raw:?}");
        let t = raw.trim_end();
        if t.trim_start().starts_with('#') {
            continue;
        }
        if t.is_empty() {
            finish(&mut e, method.take()).map_err(|m| err(&m))?;
            continue;
        }
        if t.starts_with(char::is_whitespace) {
            let (_, _, keys) = method.as_mut().ok_or_else(|| err("key outside a method"))?;
            let (k, v) = t
                .trim_start()
                .split_once('=')
                .ok_or_else(|| err("expected key=value"))?;
            if keys.insert(k.to_owned(), v.to_owned()).is_some() {
                return Err(err("key given twice"));
            }
            continue;
        }
        finish(&mut e, method.take()).map_err(|m| err(&m))?;
        if let Some(h) = t.strip_prefix('@') {
            if map.is_some() {
                return Err(err("method after the maps"));
            }
            let (name, kind) = h
                .split_once(": ")
                .ok_or_else(|| err("expected @name: KIND"))?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(err("bad method name"));
            }
            method = Some((name.to_owned(), kind.to_owned(), BTreeMap::new()));
        } else if let Some(name) = t.strip_suffix(':').filter(|n| n.contains(" -> ")) {
            if !MAPS.contains(&name) {
                return Err(err("unknown map"));
            }
            if e.maps.insert(name.to_owned(), Vec::new()).is_some() {
                return Err(err("map given twice"));
            }
            map = Some(name.to_owned());
        } else {
            let name = map.as_ref().ok_or_else(|| err("range outside a map"))?;
            let (span, target) = t
                .split_once(": ")
                .ok_or_else(|| err("expected LO-HI: TARGET"))?;
            let (lo, hi) = span.split_once('-').ok_or_else(|| err("expected LO-HI"))?;
            let (lo, hi) = match (parse_hex(lo), parse_hex(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
                _ => return Err(err("bad range")),
            };
            let target = match target {
                "NONE" => Target::None,
                m => Target::Method(
                    m.strip_prefix('@')
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| err("expected @method or NONE"))?
                        .to_owned(),
                ),
            };
            let ranges = e.maps.get_mut(name).expect("map inserted above");
            let next = match ranges.last() {
                None => Some(0),
                Some(r) => r.hi.checked_add(1),
            };
            if next != Some(lo) {
                return Err(err("ranges must be contiguous from 0"));
            }
            ranges.push(Range { lo, hi, target });
        }
    }
    finish(&mut e, method.take())?;
    for (name, ranges) in &e.maps {
        if let Some(r) = ranges.last() {
            if r.hi != u64::MAX {
                return Err(format!("{name} does not reach the end of the space"));
            }
        }
        for r in ranges {
            if let Target::Method(m) = &r.target {
                if !e.methods.contains_key(m) {
                    return Err(format!("{name}: unknown method @{m}"));
                }
            }
        }
    }
    if let Some(missing) = MAPS.iter().find(|m| !e.maps.contains_key(**m)) {
        return Err(format!("no {missing} map"));
    }
    Ok(e)
}

// ---------------------------------------------------------------------------
// The loader itself: malformed input is an error, never skipped.
// ---------------------------------------------------------------------------

#[test]
fn loader_data_notation() {
    let d = parse_data(
        "# comment\n@0x1000\n0102 03 # tail\n00000010*3+10\n\"ab\"\n@0x2000\nffff*2-1\n",
    )
    .unwrap();
    assert_eq!(
        d,
        vec![
            Chunk {
                addr: 0x1000,
                bytes: vec![2, 1, 3, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0x30, 0, 0, 0, b'a', b'b'],
                line: 2,
            },
            Chunk {
                addr: 0x2000,
                bytes: vec![0xff, 0xff, 0xfe, 0xff],
                line: 6,
            },
        ]
    );
    // Values wrap within their width.
    assert_eq!(
        parse_data("@0x0\nff*2+1\n").unwrap()[0].bytes,
        vec![0xff, 0]
    );
    for bad in [
        "0000\n",                          // no @ADDR yet
        "@1000\n",                         // address without 0x
        "@0x1000\n123\n",                  // odd digit count
        "@0x1000\n00*0\n",                 // zero repeat
        "@0x1000\n00*010\n",               // octal-looking repeat
        "@0x1000\n00*2+\n",                // empty step
        "@0x1000\n00*2+1+1\n",             // trailing junk
        "@0x1000\n0g\n",                   // not hex
        "@0x1000\n\"ab\n",                 // unterminated string
        "@0x1000\n0000*2\n@0x1002\n00\n",  // overlap
        "@0x1000\n00000000000000000000\n", // wider than 8 bytes
    ] {
        assert!(parse_data(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn loader_sym_notation() {
    let s = parse_sym("@VALUE(a_b)\nffff0000\n# c\n@NUMBER(N)\n30\n").unwrap();
    assert_eq!(s.get("a_b"), Some(&0xffff_0000));
    assert_eq!(s.get("N"), Some(&0x30));
    for bad in [
        "@VALUE(a)\n",
        "@VALUE(a)\n0x10\n",
        "@SIZE(a)\n10\n",
        "VALUE(a)\n10\n",
        "@VALUE(a)\n1\n@VALUE(a)\n2\n",
    ] {
        assert!(parse_sym(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn loader_expect_notation() {
    let maps =
        "KV -> HW:\n0-ffffffffffffffff: @p\n\nKV -> PHYS:\n0-f: @l\n10-ffffffffffffffff: NONE\n\n\
                KPHYS -> DIRECT:\n\nMACHPHYS -> KPHYS:\n0-ffffffffffffffff: @l\n\n\
                KPHYS -> MACHPHYS:\n0-ffffffffffffffff: @l\n";
    let methods = "@p: PGT\n  target_as=MACHPHYSADDR\n  root=KPHYSADDR:0x1000\n  pte_mask=0x0\n  \
                   pte_format=x86_64\n  fields=12,9,9,9,9\n\n@l: LINEAR\n  target_as=KPHYSADDR\n  off=0x10\n\n";
    let e = parse_expect(&format!("{methods}{maps}")).unwrap();
    assert_eq!(
        e.methods["l"],
        Method::Linear {
            target_as: AddrSpace::KPhys,
            off: 0x10
        }
    );
    assert_eq!(e.maps["KPHYS -> DIRECT"], vec![]);
    assert_eq!(e.linear_off("KV -> PHYS", 5), Ok(0x10));
    for (from, to) in [
        ("off=0x10", "off=10"),        // offset without 0x
        ("off=0x10", "offset=0x10"),   // unknown key
        ("@l: LINEAR", "@l: LINEAR2"), // unknown kind
        ("  pte_mask=0x0\n", ""),      // missing key
        ("0-f: @l", "0-e: @l"),        // gap
        ("0-f: @l", "0-f: @nothere"),  // unknown method
        ("0-f: @l", "0-f @l"),         // no colon
        ("10-ffffffffffffffff: NONE", "10-fffffffffffffffe: NONE"), // short
        ("KV -> HW:", "KV -> XX:"),    // unknown map
        ("fields=12,9,9,9,9", "fields=12,9,,9"), // empty field
    ] {
        let text = format!("{methods}{maps}").replacen(from, to, 1);
        assert_ne!(text, format!("{methods}{maps}"), "{from} not found");
        assert!(parse_expect(&text).is_err(), "accepted {to:?}");
    }
}
