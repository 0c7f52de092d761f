//! Translations per second for each architecture, uncached and through
//! `CachedTranslate`, over page tables held in one byte slice.
//!
//! Run with `cargo bench -p kvm-core --bench translate`; criterion reports
//! throughput in translations (elements) per second.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kvm_core::arch::aarch64::{self, Aarch64, Granule, Half};
use kvm_core::arch::{i386, x86_64};
use kvm_core::{
    CachedTranslate, PhysAddr, PhysRead, Prot, SliceMem, SparseMem, Translate, VirtAddr,
};

/// Pages mapped per configuration: 64 MiB of 4 KiB pages (or 1 GiB of
/// 64 KiB pages), so a random lookup touches different last-level tables.
const PAGES: u64 = 16384;
/// Queries per iteration.
const QUERIES: usize = 4096;

/// Copies the pages of `mem` (the tables, allocated contiguously by the
/// builders) into one contiguous byte slice starting at the first page.
fn flatten(mem: &SparseMem) -> (u64, Vec<u8>) {
    let base = mem.pages().next().map(|(pa, _)| pa.0).unwrap_or(0);
    let mut out = Vec::new();
    for (pa, bytes) in mem.pages() {
        let off = (pa.0 - base) as usize;
        out.resize(off, 0);
        out.extend_from_slice(bytes);
    }
    (base, out)
}

/// Pseudo-random virtual addresses inside `[base, base + span)` (xorshift,
/// fixed seed: every run asks the same questions).
fn queries(base: u64, span: u64, distinct_pages: u64, page: u64) -> Vec<VirtAddr> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..QUERIES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pg = (x % distinct_pages) * (span / page / distinct_pages).max(1);
            VirtAddr(base + pg * page + (x >> 40) % page)
        })
        .collect()
}

fn run<T: Translate>(
    c: &mut Criterion,
    name: &str,
    t: T,
    mem: &dyn PhysRead,
    base: u64,
    page: u64,
) {
    let span = PAGES * page;
    let mut g = c.benchmark_group(format!("translate/{name}"));
    g.throughput(Throughput::Elements(QUERIES as u64));
    let random = queries(base, span, PAGES, page);
    g.bench_function(BenchmarkId::new("uncached", "random"), |b| {
        b.iter(|| {
            for &va in &random {
                black_box(t.translate(mem, va).unwrap());
            }
        })
    });
    // A working set that fits the cache: what reading one structure after
    // another in the same few pages looks like.
    let hot = queries(base, span, 64, page);
    let cached: CachedTranslate<&T, 1024> = CachedTranslate::new(&t);
    g.bench_function(BenchmarkId::new("cached", "hot"), |b| {
        b.iter(|| {
            for &va in &hot {
                black_box(cached.translate(mem, va).unwrap());
            }
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let rw = Prot::READ | Prot::WRITE;
    for levels in [4, 5] {
        let base = if levels == 4 {
            0xffff_8880_0000_0000
        } else {
            0xff11_0000_0000_0000
        };
        let mut b = x86_64::Builder::new(levels);
        for i in 0..PAGES {
            b.map(VirtAddr(base + i * 4096), PhysAddr(i * 4096), 4096, rw)
                .unwrap();
        }
        let (mem, t) = b.finish();
        let (mbase, bytes) = flatten(&mem);
        let flat = SliceMem::new(PhysAddr(mbase), &bytes);
        run(c, &format!("x86_64-{levels}level-4k"), t, &flat, base, 4096);
    }
    {
        let base = 0xc000_0000;
        let mut b = i386::Builder::new(true);
        for i in 0..PAGES {
            b.map(VirtAddr(base + i * 4096), PhysAddr(i * 4096), 4096, rw)
                .unwrap();
        }
        let (mem, t) = b.finish();
        let (mbase, bytes) = flatten(&mem);
        let flat = SliceMem::new(PhysAddr(mbase), &bytes);
        run(c, "i386-pae-4k", t, &flat, base, 4096);
    }
    for (name, granule, va_bits, base) in [
        ("aarch64-4k-va48", Granule::K4, 48, 0xffff_0000_0000_0000u64),
        (
            "aarch64-64k-va48",
            Granule::K64,
            48,
            0xffff_0000_0000_0000u64,
        ),
    ] {
        let page = 1u64 << granule.shift();
        let mut b = aarch64::Builder::new(granule, va_bits, Half::Kernel, false).unwrap();
        for i in 0..PAGES {
            b.map(VirtAddr(base + i * page), PhysAddr(i * page), page, rw)
                .unwrap();
        }
        let (mem, t): (_, Aarch64) = b.finish();
        let (mbase, bytes) = flatten(&mem);
        let flat = SliceMem::new(PhysAddr(mbase), &bytes);
        run(c, name, t, &flat, base, page);
    }
}

criterion_group!(translate, benches);
criterion_main!(translate);
