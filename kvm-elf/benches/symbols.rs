//! Symbol lookups per second (name → address, address → nearest symbol),
//! text and in-memory kallsyms decoding, lookups through the kallsyms
//! sequence index, and BTF parse and member lookups, whole and lazy.
//!
//! Inputs: this machine's `/proc/kallsyms` when it shows addresses (run as
//! root), else a synthetic 200 000-symbol table; `/sys/kernel/btf/vmlinux`
//! when present, else the committed task_struct closure. Run with
//! `cargo bench -p kvm-elf --bench symbols`.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kvm_core::{Endian, PhysAddr, SparseMem, Translated, VirtAddr};
use kvm_elf::fuzz::Identity;
use kvm_elf::kallsyms::{self, AddrEncoding, KallsymsOptions, KallsymsTables, NameIndex};
use kvm_elf::write::{KallsymsBuilder, KallsymsLayout};
use kvm_elf::{Btf, LazyBtf, SymbolTable};
use std::io::Read;

const QUERIES: usize = 4096;

fn synthetic_map(n: usize) -> String {
    let mut s = String::new();
    let mut addr = 0xffff_ffff_8100_0000u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        addr += 16 + (x >> 52);
        let kind = [b'T', b't', b'D', b'd', b'B', b'r'][(x >> 8) as usize % 6] as char;
        s.push_str(&format!("{addr:016x} {kind} sym_{:x}_{i}\n", x >> 40));
    }
    s
}

fn symbol_text() -> (String, &'static str) {
    if let Ok(t) = std::fs::read_to_string("/proc/kallsyms") {
        if SymbolTable::from_proc_kallsyms(t.as_bytes()).is_ok() {
            return (t, "proc-kallsyms");
        }
    }
    (synthetic_map(200_000), "synthetic-200k")
}

fn lookups(c: &mut Criterion) {
    let (text, what) = symbol_text();
    let table = SymbolTable::from_proc_kallsyms(text.as_bytes()).unwrap();
    eprintln!("symbols: {what}, {} symbols", table.len());
    let all: Vec<(String, u64)> = table
        .iter()
        .map(|s| (s.name.to_string(), s.addr.0))
        .collect();
    let mut x = 12345u64;
    let picks: Vec<usize> = (0..QUERIES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % all.len() as u64) as usize
        })
        .collect();
    let names: Vec<&str> = picks.iter().map(|&i| all[i].0.as_str()).collect();
    let addrs: Vec<VirtAddr> = picks.iter().map(|&i| VirtAddr(all[i].1 + 3)).collect();

    let mut g = c.benchmark_group("symbols");
    g.throughput(Throughput::Elements(QUERIES as u64));
    g.bench_function(format!("name->addr/{what}"), |b| {
        b.iter(|| {
            let mut n = 0u64;
            for name in &names {
                n ^= table.addr(black_box(name)).map_or(0, |a| a.0);
            }
            n
        })
    });
    g.bench_function(format!("addr->nearest/{what}"), |b| {
        b.iter(|| {
            let mut n = 0u64;
            for &a in &addrs {
                n ^= table.nearest(black_box(a)).map_or(0, |s| s.offset);
            }
            n
        })
    });
    g.finish();

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(10);
    g.bench_function(format!("kallsyms-text/{what}"), |b| {
        b.iter(|| {
            SymbolTable::from_proc_kallsyms(black_box(text.as_bytes()))
                .unwrap()
                .len()
        })
    });
    g.finish();
}

fn kallsyms_decode(c: &mut Criterion) {
    let (text, what) = symbol_text();
    let table = SymbolTable::from_proc_kallsyms(text.as_bytes()).unwrap();
    // The kernel's own symbols (no modules), re-encoded as in-memory
    // kallsyms (absolute per-CPU, as x86-64 6.1).
    let mut b = KallsymsBuilder::new(Endian::Little, 8).encoding(AddrEncoding::AbsolutePercpu);
    let mut n = 0;
    for s in table.iter().filter(|s| s.module.is_none()) {
        let kind = if s.addr.0 < 0x1_0000_0000 {
            b'A'
        } else {
            s.kind
        };
        if kind == b'A' && s.addr.0 >= 0x8000_0000 {
            continue;
        }
        b.push(kind, s.name, s.addr.0);
        n += 1;
    }
    // With kallsyms_seqs_of_names (6.2+, and 6.1 stable with the backport).
    let img = b
        .layout(KallsymsLayout::Seqs)
        .build(VirtAddr(0xffff_ffff_8260_0000))
        .unwrap();
    let mut mem = SparseMem::new();
    mem.write(PhysAddr(img.base.0), &img.bytes).unwrap();
    let space = Translated::new(mem, Identity);
    let o = KallsymsOptions::le64();
    eprintln!("kallsyms image: {n} symbols, {} bytes", img.bytes.len());
    let mut g = c.benchmark_group("kallsyms");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function(format!("decode/{what}"), |bch| {
        bch.iter(|| {
            kallsyms::decode(&space, &img.tables, &o)
                .unwrap()
                .table
                .len()
        })
    });
    g.finish();

    // By name through the sequence index, as `kvm ps` and `kvm nlist` do:
    // the same names the table lookups above use.
    let known = [table.iter().next().map(|s| (s.name, s.addr.0)).unwrap()];
    let mut ko = KallsymsOptions::le64();
    ko.known = &known;
    let t = KallsymsTables {
        markers: None, // as VMCOREINFO gives them
        ..img.tables
    };
    let idx = NameIndex::new(&space, &t, &ko).unwrap();
    let names: Vec<&str> = table
        .iter()
        .filter(|s| s.module.is_none())
        .step_by(n as usize / 256 + 1)
        .map(|s| s.name)
        .collect();
    let mut g = c.benchmark_group("kallsyms");
    g.throughput(Throughput::Elements(names.len() as u64));
    g.bench_function(format!("index-lookup/{what}"), |bch| {
        bch.iter(|| {
            let mut x = 0;
            for name in &names {
                x ^= idx
                    .lookup(&space, black_box(name))
                    .unwrap()
                    .map_or(0, |a| a.0 .0);
            }
            x
        })
    });
    g.finish();
}

fn btf_blob() -> (Vec<u8>, &'static str) {
    if let Ok(b) = std::fs::read("/sys/kernel/btf/vmlinux") {
        return (b, "sys-vmlinux");
    }
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/task-closure-6.18.btf.gz"
    );
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    (out, "task-closure")
}

fn btf(c: &mut Criterion) {
    let (blob, what) = btf_blob();
    let parsed = Btf::parse(&blob).unwrap();
    eprintln!("btf: {what}, {} bytes, {} types", blob.len(), parsed.len());
    let mut g = c.benchmark_group("btf");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(blob.len() as u64));
    g.bench_function(format!("parse/{what}"), |b| {
        b.iter(|| Btf::parse(black_box(&blob)).unwrap().len())
    });
    g.finish();
    let paths = [
        ("task_struct", "mm"),
        ("task_struct", "se.exec_start"),
        ("task_struct", "comm"),
        ("mm_struct", "arg_start"),
        ("task_struct", "pid_links[1]"),
        ("signal_struct", "nr_threads"),
    ];
    // What the process walker asks, on a blob read lazily from memory
    // (opened afresh each time: the cost kvm ps pays once).
    let base = 0xffff_ffff_8300_0000u64;
    let mut mem = SparseMem::new();
    mem.write(PhysAddr(base), &blob).unwrap();
    let space = Translated::new(mem, Identity);
    let walker = [
        "task_struct.tasks",
        "task_struct.pid",
        "task_struct.comm",
        "task_struct.mm",
        "task_struct.real_cred",
        "task_struct.signal",
        "task_struct.__state",
        "task_struct.thread_node",
        "mm_struct.arg_start",
        "mm_struct.env_end",
        "cred.uid",
        "signal_struct.pids",
        "pid.numbers",
        "upid.nr",
    ];
    let mut g = c.benchmark_group("btf");
    g.sample_size(20);
    g.bench_function(format!("lazy-walker-layout/{what}"), |b| {
        b.iter(|| {
            let mut lazy = LazyBtf::new(&space, VirtAddr(base), blob.len() as u64).unwrap();
            let mut n = 0;
            for p in walker {
                n += lazy.member_path(&space, p).unwrap().map_or(0, |m| m.offset);
            }
            (n, lazy.loaded())
        })
    });
    g.bench_function(format!("parse-walker-layout/{what}"), |b| {
        b.iter(|| {
            let btf = Btf::parse(black_box(&blob)).unwrap();
            let mut n = 0;
            for p in walker {
                n += btf.member_path(p).unwrap().map_or(0, |m| m.offset);
            }
            n
        })
    });
    g.finish();
    let mut g = c.benchmark_group("btf");
    g.throughput(Throughput::Elements(paths.len() as u64));
    g.bench_function(format!("member/{what}"), |b| {
        b.iter(|| {
            let mut n = 0;
            for (t, p) in paths {
                n += parsed
                    .member(black_box(t), black_box(p))
                    .unwrap()
                    .unwrap()
                    .offset;
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, lookups, kallsyms_decode, btf);
criterion_main!(benches);
