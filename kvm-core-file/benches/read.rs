//! Dump reading speed: open time, random and sequential 4 KiB page reads
//! per format, and the raw decompression speed of each kdump codec on the
//! same stored pages. Method and results: `benches/README.md`.
//!
//! ```text
//! cargo bench -p kvm-core-file --bench read            # everything
//! cargo bench -p kvm-core-file --bench read -- seq/    # one group
//! ```
//!
//! Inputs: the lab's dumps of one 256 MiB amd64 guest, under
//! `$KVM_LAB_DIR` (default `~/.cache/kvm-lab`): `sets/amd64-kaslr/vmcore.*`
//! (`KVM_BENCH_SET=amd64-scale`: the 1 GiB scale set's) and `bench/kdump-{raw,zlib,lzo,snappy,zstd}.{kdump,flat}` (made with
//! `kvm convert`, see the README). When none of them is there the bench
//! writes small synthetic dumps (ELF and every kdump compression, plain and
//! flattened) with the crate's writers into a temporary directory, says so,
//! and benchmarks those.
//!
//! Groups (criterion ids `GROUP/FILE`):
//! - `open/`   `kvm_core_file::open(FileReader::open(path))`;
//! - `random/` [`RANDOM_READS`] 4 KiB reads of present pages in a fixed
//!   pseudo-random order (xorshift64, seed [`SEED`]; the libkdumpfile script
//!   draws the same sequence);
//! - `seq/`    every present page once, in address order, 4 KiB at a time;
//! - `memcpy/` for each ELF dump, as many 4 KiB copies out of its bytes
//!   held in memory: the bound `seq/` of an ELF is measured against;
//! - `codec/`  decoding (only) each distinct stored page of a plain kdump
//!   file, read into memory beforehand, in the order the sequential read
//!   first meets them; throughput counts the decoded bytes.
//!
//! Clock: wall time, or with `KVM_BENCH_CLOCK=cpu` the CPU time of the
//! benchmarking thread (user + system, `CLOCK_THREAD_CPUTIME_ID`), which
//! other processes competing for the cores barely disturb.
//!
//! The page lists, their checksums and the stored-page statistics go to
//! `target/criterion/read-meta.json` for `libkdumpfile_read.py --compare`.

#![allow(missing_docs)] // criterion's generated items

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, Criterion, SamplingMode, Throughput};
use kvm_core::{Endian, MapRange, PhysAddr, PhysRead, PhysReadExt};
use kvm_core_file::codec::{self, Compression};
use kvm_core_file::kdump::{KdumpDump, PageState};
use kvm_core_file::write::kdump::{self as kw, KdumpOptions};
use kvm_core_file::write::{elf, IoSink};
use kvm_core_file::{Arch, CpuState, FileReader, ReadAt, Source, SourceInfo, VmCoreInfo};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Page size of every read.
const PAGE: u64 = 4096;
/// Random reads per iteration.
const RANDOM_READS: usize = 20_000;
/// xorshift64 seed of the random page sequence.
const SEED: u64 = 0x2545_f491_4f6c_dd1d;

/// One dump to measure.
struct Input {
    name: String,
    path: PathBuf,
}

/// The lab's dumps that exist, in table order.
fn lab_inputs() -> Vec<Input> {
    let lab = std::env::var_os("KVM_LAB_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/kvm-lab")))
        .unwrap_or_default();
    // `KVM_BENCH_SET=amd64-scale`: the 1 GiB scale set instead.
    let set = lab
        .join("sets")
        .join(std::env::var("KVM_BENCH_SET").unwrap_or_else(|_| "amd64-kaslr".to_owned()));
    let mut v: Vec<PathBuf> = [
        "vmcore.elf",
        "vmcore.kdump-zlib",
        "vmcore.kdump-zlib.flat",
        "vmcore.makedumpfile-lzo",
        "vmcore.makedumpfile-zlib-d31",
    ]
    .iter()
    .map(|f| set.join(f))
    .collect();
    for c in ["raw", "zlib", "lzo", "snappy", "zstd"] {
        for ext in ["kdump", "flat"] {
            v.push(lab.join(format!("bench/kdump-{c}.{ext}")));
        }
    }
    v.into_iter()
        .filter(|p| p.is_file())
        .map(|path| Input {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            path,
        })
        .collect()
}

/// Synthetic memory: RAM ranges with a hole, pages of text, pointers,
/// noise, zeros, repeated bytes (roughly a kernel's mix).
#[derive(Debug)]
struct Synth {
    info: SourceInfo,
    ranges: Vec<MapRange>,
    data: Vec<Vec<u8>>,
}

impl PhysRead for Synth {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> kvm_core::Result<usize> {
        for (r, d) in self.ranges.iter().zip(&self.data) {
            if r.contains(pa.0) {
                let o = (pa.0 - r.start) as usize;
                let n = buf.len().min(d.len() - o);
                buf[..n].copy_from_slice(&d[o..o + n]);
                return Ok(n);
            }
        }
        Err(kvm_core::Error::NotInMemory { pa: pa.0 })
    }
}

impl Source for Synth {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &self.ranges
    }
}

fn synth(pages: u64) -> Synth {
    let mut x = SEED;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let layout = [
        (0u64, 159u64),
        (256, pages / 2),
        (256 + pages / 2 + 64, pages / 2),
    ];
    let mut ranges = Vec::new();
    let mut data = Vec::new();
    for &(first, n) in &layout {
        let mut d = Vec::with_capacity((n * PAGE) as usize);
        for p in 0..n {
            let pfn = first + p;
            match next() % 8 {
                0..=2 => d.extend(std::iter::repeat_n(0u8, 4096)),
                3 => d.extend((0..4096).map(|i| b"kernel memory text "[(i + pfn as usize) % 19])),
                4 => d.extend((0..512u64).flat_map(|i| {
                    (0xffff_8880_0000_0000 + pfn * 4096 + (i % 9) * 64).to_le_bytes()
                })),
                5 => d.extend((0..4096).map(|_| next() as u8)),
                6 => d.extend((0..4096).map(|i| if i % 64 < 8 { next() as u8 } else { 0 })),
                _ => d.extend(std::iter::repeat_n(pfn as u8, 4096)),
            }
        }
        ranges.push(MapRange {
            start: first * PAGE,
            len: n * PAGE,
            value: 0,
        });
        data.push(d);
    }
    let mut info = SourceInfo::new("elf", Endian::Little);
    info.arch = Some(Arch::X86_64);
    info.page_size = Some(PAGE);
    info.vmcoreinfo = VmCoreInfo::parse(b"OSRELEASE=6.1.0-synth\nPAGESIZE=4096\n").ok();
    info.cpus = vec![CpuState {
        pid: 1,
        pc: 0xffff_ffff_8100_0000,
        sp: 0xffff_c900_0000_3f00,
        fp: None,
        regs: Vec::new(),
        cr3: Some(0x2a0a000),
        cr4: Some(0x3606f0),
    }];
    Synth { info, ranges, data }
}

/// Writes the synthetic dumps into `dir`.
fn synthetic_inputs(dir: &Path) -> Vec<Input> {
    std::fs::create_dir_all(dir).expect("temporary directory");
    let mem = synth(16_384);
    let mut v = Vec::new();
    let path = dir.join("synth.elf");
    let notes = kw::notes_for(&mem.info, Endian::Little);
    let mut sink = IoSink(std::io::BufWriter::new(
        std::fs::File::create(&path).unwrap(),
    ));
    let opts = elf::ElfOptions {
        is64: true,
        endian: Endian::Little,
        machine: 62,
    };
    elf::write_elf(&mut sink, opts, &mem, &mem.ranges, &notes, &mut |_| {}).unwrap();
    sink.0.flush().unwrap();
    v.push(path);
    for c in Compression::ALL {
        let name = if c == Compression::None {
            "raw"
        } else {
            c.name()
        };
        let plain = dir.join(format!("kdump-{name}.kdump"));
        kw::write(
            &mem,
            &KdumpOptions::new(c),
            std::fs::File::create(&plain).unwrap(),
        )
        .unwrap();
        let flat = dir.join(format!("kdump-{name}.flat"));
        kw::write_flattened(
            &mem,
            &KdumpOptions::new(c),
            std::fs::File::create(&flat).unwrap(),
        )
        .unwrap();
        v.push(plain);
        v.push(flat);
    }
    v.into_iter()
        .map(|path| Input {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            path,
        })
        .collect()
}

fn open(path: &Path) -> Box<dyn Source> {
    kvm_core_file::open(FileReader::open(path).expect("open")).expect("dump")
}

/// Every 4 KiB page wholly inside the dump's ranges, in address order.
fn present_pages(d: &dyn Source) -> Vec<u64> {
    let mut v = Vec::new();
    for r in d.ranges() {
        v.extend(r.start.div_ceil(PAGE)..r.end() / PAGE);
    }
    v
}

/// The random sequence: [`RANDOM_READS`] picks from `pages`.
fn random_sequence(pages: &[u64]) -> Vec<u64> {
    let mut x = SEED;
    (0..RANDOM_READS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pages[(x % pages.len() as u64) as usize]
        })
        .collect()
}

/// The distinct stored pages of a plain kdump file, in the order the
/// sequential read first meets them: (compression, stored bytes).
struct Stored {
    pages: Vec<(Compression, Vec<u8>)>,
    stored_bytes: u64,
}

fn stored_pages(path: &Path, pfns: &[u64]) -> Option<Stored> {
    let f = FileReader::open(path).ok()?;
    let k = KdumpDump::open(f).ok()?;
    if k.is_flattened() || k.block_size() != PAGE {
        return None;
    }
    let file = FileReader::open(path).ok()?;
    let mut seen = HashSet::new();
    let mut pages = Vec::new();
    let mut stored_bytes = 0;
    for &pfn in pfns {
        let PageState::Dumpable(i) = k.page_state(pfn) else {
            continue;
        };
        let Ok(Some(d)) = k.page_desc(i) else {
            continue;
        };
        if !seen.insert(d.offset) {
            continue;
        }
        let mut b = vec![0u8; d.size as usize];
        file.read_exact_at(d.offset, &mut b, "page").ok()?;
        stored_bytes += b.len() as u64;
        pages.push((Compression::from_flags(d.flags).ok()?, b));
    }
    Some(Stored {
        pages,
        stored_bytes,
    })
}

/// The criterion output directory (`target/criterion`).
fn criterion_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // target/release/deps/read-HASH
            let exe = std::env::current_exe().ok()?;
            Some(exe.ancestors().nth(3)?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("criterion")
}

/// CPU time of the calling thread, user + system.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    #[allow(unsafe_code)]
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Criterion measurement: CPU time of the benchmarking thread.
struct CpuTime;

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, i: Duration) -> Duration {
        thread_cpu_time().saturating_sub(i)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

fn main() {
    let cpu = std::env::var("KVM_BENCH_CLOCK").is_ok_and(|v| v == "cpu");
    eprintln!(
        "read bench: clock {}",
        if cpu {
            "CPU time of the benchmarking thread"
        } else {
            "wall time"
        }
    );
    let c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    if cpu {
        run(c.with_measurement(CpuTime).configure_from_args());
    } else {
        run(c.configure_from_args());
    }
}

fn run<M: Measurement>(mut c: Criterion<M>) {
    let mut inputs = lab_inputs();
    let mut tmp = None;
    if inputs.is_empty() {
        let dir = std::env::temp_dir().join(format!("kvm-core-file-bench-{}", std::process::id()));
        eprintln!(
            "read bench: the lab dumps (~/.cache/kvm-lab or $KVM_LAB_DIR) are absent; \
             benchmarking synthetic dumps written to {} instead",
            dir.display()
        );
        inputs = synthetic_inputs(&dir);
        tmp = Some(dir);
    } else {
        eprintln!("read bench: {} lab dumps", inputs.len());
    }

    // Page lists, and the file contents in the OS page cache before timing.
    let mut meta = String::from("{\n");
    let mut prepared = Vec::new();
    for inp in &inputs {
        let _ = std::fs::read(&inp.path).map(black_box);
        let d = open(&inp.path);
        let pages = present_pages(&*d);
        let rnd = random_sequence(&pages);
        let stored = stored_pages(&inp.path, &pages);
        let (distinct, stored_bytes) = stored
            .as_ref()
            .map_or((0, 0), |s| (s.pages.len(), s.stored_bytes));
        let sum = |v: &[u64]| v.iter().fold(0u64, |a, &p| a.wrapping_add(p));
        eprintln!(
            "  {}: format {}, {} present pages (pfn sum {}), random sequence pfn sum {}, \
             {} distinct stored pages",
            inp.name,
            d.info().format,
            pages.len(),
            sum(&pages),
            sum(&rnd),
            distinct
        );
        let _ = writeln!(
            meta,
            "  {:?}: {{\"path\": {:?}, \"format\": {:?}, \"pages\": {}, \"pages_pfn_sum\": {}, \
             \"random_reads\": {}, \"random_pfn_sum\": {}, \"distinct_stored\": {}, \
             \"stored_bytes\": {}, \"synthetic\": {}}},",
            inp.name,
            inp.path.display().to_string(),
            d.info().format,
            pages.len(),
            sum(&pages),
            rnd.len(),
            sum(&rnd),
            distinct,
            stored_bytes,
            tmp.is_some()
        );
        prepared.push((inp, pages, rnd, stored));
    }
    if meta.ends_with(",\n") {
        meta.truncate(meta.len() - 2);
        meta.push('\n');
    }
    meta.push_str("}\n");
    let dir = criterion_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("read-meta.json"), meta);

    {
        let mut g = c.benchmark_group("open");
        for (inp, ..) in &prepared {
            g.bench_function(inp.name.as_str(), |b| {
                b.iter(|| {
                    let d = open(&inp.path);
                    black_box(d.ranges().len())
                })
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("random");
        g.sampling_mode(SamplingMode::Flat);
        for (inp, _, rnd, _) in &prepared {
            let d = open(&inp.path);
            let mut page = vec![0u8; PAGE as usize];
            g.throughput(Throughput::BytesDecimal(rnd.len() as u64 * PAGE));
            g.bench_function(inp.name.as_str(), |b| {
                b.iter(|| {
                    for &pfn in rnd {
                        d.read_phys_exact(PhysAddr(pfn * PAGE), &mut page).unwrap();
                    }
                    black_box(page[0])
                })
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("seq");
        g.sampling_mode(SamplingMode::Flat);
        for (inp, pages, ..) in &prepared {
            let d = open(&inp.path);
            let mut page = vec![0u8; PAGE as usize];
            g.throughput(Throughput::BytesDecimal(pages.len() as u64 * PAGE));
            g.bench_function(inp.name.as_str(), |b| {
                b.iter(|| {
                    for &pfn in pages {
                        d.read_phys_exact(PhysAddr(pfn * PAGE), &mut page).unwrap();
                    }
                    black_box(page[0])
                })
            });
        }
        g.finish();
    }
    {
        // The bound the ELF reads are measured against: the same number
        // of 4 KiB copies out of the file's bytes already in memory (a
        // plain memcpy, no format, no page lookup).
        let mut g = c.benchmark_group("memcpy");
        g.sampling_mode(SamplingMode::Flat);
        for (inp, pages, ..) in &prepared {
            if open(&inp.path).info().format != "elf" {
                continue;
            }
            let Ok(bytes) = std::fs::read(&inp.path) else {
                continue;
            };
            let n = (pages.len()).min(bytes.len() / PAGE as usize);
            let mut page = vec![0u8; PAGE as usize];
            g.throughput(Throughput::BytesDecimal(n as u64 * PAGE));
            g.bench_function(inp.name.as_str(), |b| {
                b.iter(|| {
                    for chunk in bytes.chunks_exact(PAGE as usize).take(n) {
                        page.copy_from_slice(black_box(chunk));
                    }
                    black_box(page[0])
                })
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("codec");
        g.sampling_mode(SamplingMode::Flat);
        for (inp, _, _, stored) in &prepared {
            let Some(s) = stored else { continue };
            let mut page = vec![0u8; PAGE as usize];
            g.throughput(Throughput::BytesDecimal(s.pages.len() as u64 * PAGE));
            g.bench_function(inp.name.as_str(), |b| {
                b.iter(|| {
                    for (comp, src) in &s.pages {
                        codec::decompress(*comp, src, &mut page).unwrap();
                    }
                    black_box(page[0])
                })
            });
        }
        g.finish();
    }

    c.final_summary();
    if let Some(dir) = tmp {
        let _ = std::fs::remove_dir_all(dir);
    }
}
