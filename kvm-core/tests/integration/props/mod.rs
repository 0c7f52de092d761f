//! Property tests of the translators against a model.
//!
//! For every paging variant (the table [`variants`]), random sets of
//! non-overlapping mappings of every page size the variant supports are laid
//! out in clusters (so that pages are often adjacent, often followed by a
//! hole, sometimes at the edges of the address space), built with the
//! builders, and checked:
//!
//! * `translate` of sampled addresses inside every page (first and last byte
//!   included) gives exactly the model's pa, len, page size and rights;
//! * unmapped addresses give `Unmapped`, addresses outside the space give
//!   `NonCanonical`;
//! * `walk` enumerates exactly the model, in VA order, and stops on `Break`;
//! * `CachedTranslate` (two sizes) answers exactly like the translator, asked
//!   twice;
//! * `Translated` reads back bytes written at the mapped physical addresses,
//!   across adjacent pages, and stops exactly at a hole.

mod variants;

use kvm_core::arch::aarch64::{Granule, Half};
use kvm_core::{
    CachedTranslate, Error, PageRun, PhysAddr, Prot, Translate, Translated, Translation, VirtAddr,
    VirtRead, VirtReadExt,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use variants::{variants, Kind, Space, Variant};

/// Cases per variant (34 variants in all: 4 x86, 15 arm64 configurations
/// times 2 halves).
const CASES: u32 = 64;

/// One mapping of the model.
#[derive(Clone, Copy, Debug)]
struct Map {
    idx: u64,
    va: u64,
    pa: u64,
    size: u64,
    prot: Prot,
}

/// The mappings, keyed by index (which orders them as their VAs).
struct Model {
    space: Space,
    maps: BTreeMap<u64, Map>,
}

impl Model {
    fn containing(&self, idx: u64) -> Option<&Map> {
        self.maps
            .range(..=idx)
            .next_back()
            .map(|(_, m)| m)
            .filter(|m| idx - m.idx < m.size)
    }

    /// What translating `va` must give.
    fn expect(&self, va: u64) -> kvm_core::Result<Translation> {
        let idx = self.space.index(va).ok_or(Error::NonCanonical { va })?;
        let m = self.containing(idx).ok_or(Error::Unmapped { va })?;
        let off = idx - m.idx;
        Ok(Translation {
            pa: PhysAddr(m.pa + off),
            len: m.size - off,
            page_size: m.size,
            prot: m.prot,
        })
    }

    fn overlaps(&self, idx: u64, size: u64) -> bool {
        let before = self
            .maps
            .range(..=idx)
            .next_back()
            .is_some_and(|(_, m)| idx - m.idx < m.size);
        let after = self
            .maps
            .range(idx..)
            .next()
            .is_some_and(|(_, m)| m.idx - idx < size);
        before || after
    }
}

/// One requested mapping, before layout.
#[derive(Clone, Debug)]
struct Item {
    /// Picks the page size (biased to small pages).
    size: u8,
    /// Empty pages of this size left before it.
    gap: u8,
    /// Picks the physical address.
    pa: u64,
    /// WRITE, EXEC, USER bits.
    prot: u8,
    /// Starts a new cluster somewhere else.
    cluster: Option<u64>,
}

#[derive(Clone, Debug)]
struct Input {
    /// Where the first cluster starts.
    start: u64,
    items: Vec<Item>,
    /// Seeds of extra probe addresses.
    probes: Vec<u64>,
    /// Seeds of offsets inside pages.
    picks: Vec<u64>,
}

fn input() -> impl Strategy<Value = Input> {
    let item = (
        any::<u8>(),
        prop_oneof![3 => Just(0u8), 1 => 1u8..4],
        any::<u64>(),
        0u8..8,
        prop::option::weighted(0.2, any::<u64>()),
    )
        .prop_map(|(size, gap, pa, prot, cluster)| Item {
            size,
            gap,
            pa,
            prot,
            cluster,
        });
    (
        any::<u64>(),
        prop::collection::vec(item, 1..14),
        prop::collection::vec(any::<u64>(), 8..16),
        prop::collection::vec(any::<u64>(), 4),
    )
        .prop_map(|(start, items, probes, picks)| Input {
            start,
            items,
            probes,
            picks,
        })
}

fn pick_size(v: &Variant, s: u8) -> (u64, u64) {
    let i = match s {
        0..=119 => 0,
        120..=199 => 1,
        200..=239 => 2,
        _ => 3,
    };
    v.sizes[i.min(v.sizes.len() - 1)]
}

/// Where a new cluster starts (an index), chosen so that the first and last
/// pages of the space (and of the lower half on x86-64) get mapped too.
fn cluster_start(space: Space, seed: u64, small: u64) -> u64 {
    let near = ((seed >> 2) % 4 + 1) * small;
    match seed % 5 {
        0 | 1 => (seed >> 3) & space.mask(),
        2 => space.len() - near,
        3 => match space {
            Space::SignExt(_) => space.len() / 2 - near,
            _ => (seed >> 4) % 4 * small,
        },
        _ => space.len() / 2 + (seed >> 8) % 64 * small,
    }
}

/// A physical address for a page of `size`, below `limit`, away from the
/// tables.
fn place_pa(seed: u64, size: u64, limit: u64, (tbase, twin): (u64, u64)) -> u64 {
    let limit = match seed & 3 {
        0 => limit,
        1 => limit.min(1 << 36),
        _ => limit.min(1 << 33),
    }
    .max(size);
    let mut pa = ((seed >> 2) % (limit / size)) * size;
    if pa < tbase + twin && pa + size > tbase {
        pa = (tbase + twin).next_multiple_of(size);
    }
    pa
}

fn layout(v: &Variant, start: u64, items: &[Item]) -> Model {
    let space = v.space();
    let mut model = Model {
        space,
        maps: BTreeMap::new(),
    };
    let small = v.sizes[0].0;
    let mut cursor = 0;
    for (n, it) in items.iter().enumerate() {
        let (size, limit) = pick_size(v, it.size);
        if n == 0 || it.cluster.is_some() {
            cursor = cluster_start(space, it.cluster.unwrap_or(start), small);
        }
        let idx = cursor.next_multiple_of(size) + u64::from(it.gap) * size;
        if idx + size > space.len() {
            continue;
        }
        cursor = idx + size;
        if model.overlaps(idx, size) {
            continue;
        }
        let prot = Prot::from_bits_truncate(1 | it.prot << 1).union(v.forced());
        let pa = place_pa(it.pa, size, limit, v.table_window());
        model.maps.insert(
            idx,
            Map {
                idx,
                va: space.va(idx),
                pa,
                size,
                prot,
            },
        );
    }
    model
}

/// The byte test data holds at physical address `pa`.
fn pattern(pa: u64) -> u8 {
    (pa.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

fn pattern_at(pa: u64, len: u64) -> Vec<u8> {
    (pa..pa + len).map(pattern).collect()
}

/// One virtual read and what it must return.
struct Read {
    va: u64,
    /// Bytes the mapping provides (a read asks for `extra` more).
    want: Vec<u8>,
    /// Bytes asked for past the mapped ones (0: an exact read).
    extra: usize,
    /// The error of the exact read, when `extra` is not 0.
    err: Option<Error>,
    /// Number of pages the read touches.
    pages: usize,
}

/// The reads to check on a model: inside every page, across adjacent pages,
/// and up to the hole (or the end of the space) after a page.
fn plan_reads(model: &Model, picks: &[u64]) -> Vec<Read> {
    let mut reads = Vec::new();
    let maps: Vec<Map> = model.maps.values().copied().collect();
    for (i, m) in maps.iter().enumerate() {
        let pick = picks[i % picks.len()];
        let n = 16.min(m.size);
        for off in [0, m.size - n, (pick % (m.size - n + 1)) & !7] {
            reads.push(Read {
                va: m.va + off,
                want: pattern_at(m.pa + off, n),
                extra: 0,
                err: None,
                pages: 1,
            });
        }
        let tail = m.va + (m.size - 8);
        let end = m.va.checked_add(m.size);
        let next = maps.get(i + 1).filter(|x| Some(x.va) == end);
        match next {
            Some(x) => {
                // Across two adjacent pages (or three, when they are).
                let mut want = pattern_at(m.pa + m.size - 8, 8);
                want.extend(pattern_at(x.pa, 8.min(x.size)));
                reads.push(Read {
                    va: tail,
                    want,
                    extra: 0,
                    err: None,
                    pages: 2,
                });
                if let Some(y) = maps
                    .get(i + 2)
                    .filter(|y| x.size <= 1 << 16 && x.va.checked_add(x.size) == Some(y.va))
                {
                    let mut want = pattern_at(m.pa + m.size - 8, 8);
                    want.extend(pattern_at(x.pa, x.size));
                    want.extend(pattern_at(y.pa, 8));
                    reads.push(Read {
                        va: tail,
                        want,
                        extra: 0,
                        err: None,
                        pages: 3,
                    });
                }
            }
            None => {
                // A hole (or the end of the space) after the page.
                let err = match end {
                    None => Error::Malformed("read wraps around the address space"),
                    Some(e) => model.expect(e).expect_err("a hole after the page"),
                };
                reads.push(Read {
                    va: tail,
                    want: pattern_at(m.pa + m.size - 8, 8),
                    extra: 24,
                    err: Some(err),
                    pages: 1,
                });
            }
        }
    }
    reads
}

fn check(v: &Variant, inp: &Input) -> Result<(), TestCaseError> {
    let model = layout(v, inp.start, &inp.items);
    let space = model.space;
    let mut b = v.builder();
    for m in model.maps.values() {
        prop_assert_eq!(b.map(m.va, m.pa, m.size, m.prot), Ok(()), "{:x?}", m);
    }
    let (mut mem, tr) = b.finish();

    // Probe addresses: samples inside every page and around it, random
    // ones in and out of the space, and the edges of the space.
    let mut probes = Vec::new();
    for (i, m) in model.maps.values().enumerate() {
        let pick = inp.picks[i % inp.picks.len()];
        for off in [
            0,
            m.size - 1,
            m.size / 2,
            pick % m.size,
            (pick >> 20) % m.size,
        ] {
            probes.push(m.va + off);
        }
        probes.push(m.va.wrapping_sub(1));
        probes.push(m.va.wrapping_add(m.size));
        probes.push(m.va.wrapping_add(m.size).wrapping_add(pick % m.size));
    }
    for &p in &inp.probes {
        probes.push(space.va(p & space.mask()));
        probes.push(space.outside(p));
        probes.push(p);
    }
    probes.extend(space.edges());
    probes.extend([space.va(0), space.va(space.mask())]);

    // (a), (b): translate.
    let expected: Vec<_> = probes.iter().map(|&va| model.expect(va)).collect();
    for (&va, want) in probes.iter().zip(&expected) {
        prop_assert_eq!(tr.translate(&mem, VirtAddr(va)), *want, "va {:#x}", va);
    }
    let mapped = expected.iter().filter(|r| r.is_ok()).count();
    prop_assert!(mapped >= model.maps.len() * 5);

    // (c): walk.
    let want_runs: Vec<PageRun> = model
        .maps
        .values()
        .map(|m| PageRun {
            va: VirtAddr(m.va),
            pa: PhysAddr(m.pa),
            len: m.size,
            prot: m.prot,
        })
        .collect();
    let mut runs = Vec::new();
    prop_assert_eq!(
        tr.walk(&mem, &mut |r| {
            runs.push(r);
            ControlFlow::Continue(())
        }),
        Ok(())
    );
    prop_assert_eq!(&runs, &want_runs);
    let mut calls = 0;
    prop_assert_eq!(
        tr.walk(&mem, &mut |_| {
            calls += 1;
            ControlFlow::Break(())
        }),
        Ok(())
    );
    prop_assert_eq!(calls, want_runs.len().min(1), "walk goes on after Break");

    // (d): the cache, small (many collisions) and default, asked twice.
    let small: CachedTranslate<&dyn Translate, 4> = CachedTranslate::new(&*tr);
    let big: CachedTranslate<&dyn Translate> = CachedTranslate::new(&*tr);
    for pass in 0..2 {
        for (&va, want) in probes.iter().zip(&expected) {
            let at = VirtAddr(va);
            prop_assert_eq!(small.translate(&mem, at), *want, "small, pass {}", pass);
            prop_assert_eq!(big.translate(&mem, at), *want, "big, pass {}", pass);
        }
    }

    // (e): reads.
    let reads = plan_reads(&model, &inp.picks);
    // Write the data each read expects, page by page at the physical
    // addresses the model gives (aliased pages hold the same pattern).
    for r in &reads {
        let len = r.want.len() as u64;
        let mut k = 0;
        while k < len {
            let t = model.expect(r.va + k).expect("mapped");
            let n = t.len.min(len - k);
            mem.write(t.pa, &pattern_at(t.pa.0, n)).expect("write");
            k += n;
        }
    }
    let plain = Translated::new(&mem, &*tr);
    let cached = Translated::new(&mem, CachedTranslate::<_, 8>::new(&*tr));
    for r in &reads {
        for (which, space) in [
            ("plain", &plain as &dyn VirtRead),
            ("cached", &cached as &dyn VirtRead),
        ] {
            let mut buf = vec![0u8; r.want.len() + r.extra];
            let at = VirtAddr(r.va);
            if r.extra == 0 {
                prop_assert_eq!(space.read_virt_exact(at, &mut buf), Ok(()), "{}", which);
                prop_assert_eq!(&buf, &r.want, "{} at {:#x}", which, r.va);
            } else {
                prop_assert_eq!(space.read_virt(at, &mut buf), Ok(r.want.len()), "{}", which);
                prop_assert_eq!(&buf[..r.want.len()], &r.want[..], "{}", which);
                prop_assert_eq!(
                    space.read_virt_exact(at, &mut buf),
                    Err(r.err.expect("error")),
                    "{} at {:#x}",
                    which,
                    r.va
                );
            }
        }
    }
    Ok(())
}

/// Runs the property on every variant `pred` selects.
fn run(pred: impl Fn(&Variant) -> bool) {
    let vs: Vec<Variant> = variants().into_iter().filter(|v| pred(v)).collect();
    assert!(!vs.is_empty());
    for v in vs {
        let config = Config {
            failure_persistence: None,
            ..Config::with_cases(CASES)
        };
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&input(), |inp| check(&v, &inp)) {
            panic!("{}: {e}", v.name());
        }
    }
}

fn arm(g: Granule, h: Half) -> impl Fn(&Variant) -> bool {
    move |v| matches!(v.kind, Kind::Arm { granule, half, .. } if granule == g && half == h)
}

#[test]
fn x86_64_4_level() {
    run(|v| matches!(v.kind, Kind::X86 { levels: 4 }));
}

#[test]
fn x86_64_5_level() {
    run(|v| matches!(v.kind, Kind::X86 { levels: 5 }));
}

#[test]
fn i386_non_pae() {
    run(|v| matches!(v.kind, Kind::I386 { pae: false }));
}

#[test]
fn i386_pae() {
    run(|v| matches!(v.kind, Kind::I386 { pae: true }));
}

#[test]
fn arm64_4k_kernel() {
    run(arm(Granule::K4, Half::Kernel));
}

#[test]
fn arm64_4k_user() {
    run(arm(Granule::K4, Half::User));
}

#[test]
fn arm64_16k_kernel() {
    run(arm(Granule::K16, Half::Kernel));
}

#[test]
fn arm64_16k_user() {
    run(arm(Granule::K16, Half::User));
}

#[test]
fn arm64_64k_kernel() {
    run(arm(Granule::K64, Half::Kernel));
}

#[test]
fn arm64_64k_user() {
    run(arm(Granule::K64, Half::User));
}

/// The layout itself: clusters produce adjacent pages, holes, and pages at
/// both ends of the space, so the properties above are not vacuous.
#[test]
fn layouts_cover_the_interesting_shapes() {
    let mut runner = TestRunner::deterministic();
    let strategy = input();
    assert_eq!(variants().len(), 34);
    for v in variants() {
        let (mut adjacent, mut at_end, mut big, mut total) = (0, 0, 0, 0);
        let mut per_size = vec![0usize; v.sizes.len()];
        let (mut across2, mut across3, mut unmapped, mut outside, mut wraps) = (0, 0, 0, 0, 0);
        for _ in 0..200 {
            let inp = strategy.new_tree(&mut runner).expect("value").current();
            let model = layout(&v, inp.start, &inp.items);
            let maps: Vec<&Map> = model.maps.values().collect();
            total += maps.len();
            adjacent += maps
                .windows(2)
                .filter(|w| w[0].idx + w[0].size == w[1].idx)
                .count();
            at_end += maps
                .iter()
                .filter(|m| m.idx + m.size == model.space.len())
                .count();
            big += maps.iter().filter(|m| m.size > v.sizes[0].0).count();
            for r in plan_reads(&model, &inp.picks) {
                match (r.pages, r.err) {
                    (2, _) => across2 += 1,
                    (3, _) => across3 += 1,
                    (_, Some(Error::Unmapped { .. })) => unmapped += 1,
                    (_, Some(Error::NonCanonical { .. })) => outside += 1,
                    (_, Some(Error::Malformed(_))) => wraps += 1,
                    _ => {}
                }
            }
            for m in &maps {
                let i = v.sizes.iter().position(|&(s, _)| s == m.size);
                per_size[i.expect("a size of the variant")] += 1;
            }
        }
        let name = v.name();
        assert!(total > 1000, "{name}: {total} mappings");
        assert!(adjacent > 100, "{name}: {adjacent} adjacent pairs");
        assert!(at_end > 5, "{name}: {at_end} pages at the end of the space");
        assert!(big > 100, "{name}: {big} large pages");
        assert!(across2 > 100, "{name}: {across2} reads across two pages");
        assert!(across3 > 20, "{name}: {across3} reads across three pages");
        assert!(unmapped > 100, "{name}: {unmapped} reads up to a hole");
        // A read up to the end of the space: at its top end the VA wraps.
        let (want_outside, want_wraps) = match v.space() {
            Space::Low(_) => (true, false),
            Space::High(_) => (false, true),
            Space::SignExt(_) => (true, true),
        };
        assert_eq!(
            outside > 5,
            want_outside,
            "{name}: {outside} reads out of the space"
        );
        assert_eq!(wraps > 5, want_wraps, "{name}: {wraps} reads wrapping");
        assert!(
            per_size.iter().all(|&n| n > 20),
            "{name}: mappings per page size {per_size:?}"
        );
    }
}
