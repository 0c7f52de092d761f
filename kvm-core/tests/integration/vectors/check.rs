//! Running one libkdumpfile case: its files loaded, the translator its
//! `@rootpgt` describes, and every check of the LINEAR, NONE and walked
//! ranges.

use kvm_core::arch::aarch64::{Aarch64, Granule};
use kvm_core::arch::i386::I386;
use kvm_core::arch::x86_64::X86_64;
use kvm_core::{Error, PageRun, PhysAddr, SparseMem, Translate, Translation, VirtAddr};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Instant;

use super::cases::{Case, Opts, CASES, DATA_DIR, START_KERNEL_MAP};
use super::loader::{parse_data, parse_expect, parse_sym, AddrSpace, Expect, Method, Root, Target};

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

pub(super) fn run_case(name: &str) {
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
