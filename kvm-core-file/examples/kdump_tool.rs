//! Makes and compares dumps, for the cross-check against libkdumpfile
//! (`tests/libkdumpfile_check.py`) and for real dumps:
//!
//! ```text
//! kdump_tool synth OUT.elf [PAGES]          a synthetic x86-64 ELF core
//! kdump_tool convert IN OUT COMP [flat] [keep=N]
//!                                            any dump → kdump (COMP: none zlib
//!                                            lzo snappy zstd; keep=N keeps
//!                                            PFNs with pfn % N != 0)
//! kdump_tool compare A B                    every page of A's memory read from
//!                                            both: identical, different, only
//!                                            in one, excluded
//! kdump_tool info DUMP                      format, arch, release, ranges
//! kdump_tool bench KDUMP                    open time, page read throughput
//! kdump_tool seeds DIR                      tiny kdumps (every compression,
//!                                            plain and flattened, 64-bit LE
//!                                            and 32-bit BE) as fuzz seeds
//! ```

use kvm_core::{Endian, Error, MapRange, PhysAddr, PhysRead};
use kvm_core_file::codec::Compression;
use kvm_core_file::kdump::{KdumpDump, PageState};
use kvm_core_file::write::kdump::{self as kw, KdumpOptions};
use kvm_core_file::write::{elf, IoSink};
use kvm_core_file::{Arch, CpuState, FileReader, Source, SourceInfo, VmCoreInfo};
use std::io::Write;
use std::process::ExitCode;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("synth") => synth(&args[1..]),
        Some("convert") => convert(&args[1..]),
        Some("compare") => compare(&args[1..]),
        Some("info") => info(&args[1..]),
        Some("seeds") => seeds(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => Err("usage: kdump_tool synth|convert|compare|info ... (see the source)".into()),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kdump_tool: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open(path: &str) -> Res<Box<dyn Source>> {
    let f = FileReader::open(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(kvm_core_file::open(f).map_err(|e| format!("{path}: {e}"))?)
}

/// Memory of a small synthetic machine: three RAM ranges with holes,
/// pages of text, pointers, noise, zeros.
struct Synth {
    ranges: Vec<(u64, Vec<u8>)>,
}

impl PhysRead for Synth {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> kvm_core::Result<usize> {
        for (s, d) in &self.ranges {
            if pa.0 >= *s && pa.0 - s < d.len() as u64 {
                let o = (pa.0 - s) as usize;
                let n = buf.len().min(d.len() - o);
                buf[..n].copy_from_slice(&d[o..o + n]);
                return Ok(n);
            }
        }
        Err(Error::NotInMemory { pa: pa.0 })
    }
}

fn synth(args: &[String]) -> Res<ExitCode> {
    let out = args.first().ok_or("synth OUT.elf [PAGES]")?;
    let pages: u64 = args.get(1).map_or(Ok(4096), |p| p.parse())?;
    let mut x = 0x2545_f491_4f6c_dd1du64;
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
    for &(first, n) in &layout {
        let mut d = Vec::with_capacity((n * 4096) as usize);
        for p in 0..n {
            let pfn = first + p;
            match next() % 6 {
                0 => d.extend(std::iter::repeat_n(0u8, 4096)),
                1 => d.extend((0..4096).map(|i| b"kernel memory text "[(i + pfn as usize) % 19])),
                2 => d.extend((0..512u64).flat_map(|i| {
                    (0xffff_8880_0000_0000 + pfn * 4096 + (i % 9) * 64).to_le_bytes()
                })),
                3 => d.extend((0..4096).map(|_| next() as u8)),
                4 => d.extend(std::iter::repeat_n(pfn as u8, 4096)),
                _ => {
                    let mut pg = vec![0u8; 4096];
                    pg[..8].copy_from_slice(&pfn.to_le_bytes());
                    pg[2000] = 1;
                    d.extend(pg);
                }
            }
        }
        ranges.push((first * 4096, d));
    }
    let mem = Synth { ranges };
    let map: Vec<MapRange> = mem
        .ranges
        .iter()
        .map(|(s, d)| MapRange {
            start: *s,
            len: d.len() as u64,
            value: 0,
        })
        .collect();
    let mut info = SourceInfo::new("elf", Endian::Little);
    info.arch = Some(Arch::X86_64);
    info.vmcoreinfo = Some(VmCoreInfo::parse(
        b"OSRELEASE=6.1.0-synth\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff82a0a000\nNUMBER(phys_base)=0\nKERNELOFFSET=0\n",
    )?);
    info.cpus = vec![CpuState {
        pid: 1,
        pc: 0xffff_ffff_8100_0000,
        sp: 0xffff_c900_0000_3f00,
        fp: None,
        regs: Vec::new(),
        cr3: Some(0x2a0a000),
        cr4: Some(0x3606f0),
    }];
    let notes = kw::notes_for(&info, Endian::Little);
    let f = std::fs::File::create(out)?;
    let mut sink = IoSink(std::io::BufWriter::new(f));
    let opts = elf::ElfOptions {
        is64: true,
        endian: Endian::Little,
        machine: 62,
    };
    elf::write_elf(&mut sink, opts, &mem, &map, &notes, &mut |_| {})?;
    sink.0.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn convert(args: &[String]) -> Res<ExitCode> {
    let [input, output, comp, rest @ ..] = args else {
        return Err("convert IN OUT COMP [flat] [keep=N]".into());
    };
    let c = Compression::ALL
        .into_iter()
        .find(|c| c.name() == comp)
        .ok_or_else(|| format!("unknown compression {comp}"))?;
    let src = open(input)?;
    let mut opts = KdumpOptions::new(c);
    let mut flat = false;
    for a in rest {
        if a == "flat" {
            flat = true;
        } else if let Some(n) = a.strip_prefix("keep=") {
            let n: u64 = n.parse()?;
            opts.keep = Some(Box::new(move |pfn| pfn % n != 0));
            opts.dump_level = 31;
        } else {
            return Err(format!("unknown option {a}").into());
        }
    }
    let t = std::time::Instant::now();
    let f = std::fs::File::create(output)?;
    // A kdump source keeps its excluded pages excluded: write every page
    // of its memory (1st bitmap), not only the saved ones.
    let kdump = KdumpDump::open(FileReader::open(input)?).ok();
    let ranges = match &kdump {
        Some(k) => k.memory_ranges(),
        None => src.ranges().to_vec(),
    };
    let s = if flat {
        kw::write_flattened_from(&*src, src.info(), &ranges, &opts, f)?
    } else {
        kw::write_from(&*src, src.info(), &ranges, &opts, f)?
    };
    println!(
        "{output}: {} pages saved ({} zero, {} compressed, {} raw), {} excluded, {} bytes, {:.2} s",
        s.pages,
        s.zero_pages,
        s.compressed,
        s.raw,
        s.excluded,
        s.file_size,
        t.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn compare(args: &[String]) -> Res<ExitCode> {
    let [a, b] = args else {
        return Err("compare A B".into());
    };
    let (da, db) = (open(a)?, open(b)?);
    let ps = da
        .info()
        .page_size
        .unwrap_or(4096)
        .min(db.info().page_size.unwrap_or(4096));
    // Memory of A: for a kdump, every page of its 1st bitmap.
    let ranges: Vec<MapRange> = match KdumpDump::open(FileReader::open(a)?) {
        Ok(k) => k.memory_ranges(),
        Err(_) => da.ranges().to_vec(),
    };
    let (mut same, mut differ, mut only_a, mut only_b, mut excl_a, mut excl_b, mut neither) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut pa_buf, mut pb_buf) = (vec![0u8; ps as usize], vec![0u8; ps as usize]);
    let t = std::time::Instant::now();
    for r in &ranges {
        let mut pa = r.start / ps * ps;
        while pa < r.end() {
            let ra = read_page(&*da, pa, &mut pa_buf);
            let rb = read_page(&*db, pa, &mut pb_buf);
            match (ra, rb) {
                (Ok(()), Ok(())) if pa_buf == pb_buf => same += 1,
                (Ok(()), Ok(())) => {
                    if differ < 5 {
                        eprintln!("differs at {pa:#x}");
                    }
                    differ += 1
                }
                (Ok(()), Err(Error::Excluded { .. })) => excl_b += 1,
                (Err(Error::Excluded { .. }), Ok(())) => excl_a += 1,
                (Ok(()), Err(_)) => only_a += 1,
                (Err(_), Ok(())) => only_b += 1,
                (Err(Error::Excluded { .. }), _) => excl_a += 1,
                (Err(_), _) => neither += 1,
            }
            pa += ps;
        }
    }
    println!(
        "{ps}-byte pages: {same} identical, {differ} different, {only_a} only in A, {only_b} only in B, \
{excl_a} excluded in A, {excl_b} excluded in B, {neither} in neither ({:.2} s)",
        t.elapsed().as_secs_f64()
    );
    Ok(if differ == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read_page(d: &dyn Source, pa: u64, buf: &mut [u8]) -> kvm_core::Result<()> {
    use kvm_core::PhysReadExt;
    d.read_phys_exact(PhysAddr(pa), buf)
}

fn info(args: &[String]) -> Res<ExitCode> {
    let path = args.first().ok_or("info DUMP")?;
    let d = open(path)?;
    let i = d.info();
    println!(
        "format {} arch {:?} release {:?} page_size {:?} cpus {} vmcoreinfo {} incomplete {}",
        i.format,
        i.arch,
        i.kernel_release(),
        i.page_size,
        i.cpus.len(),
        i.vmcoreinfo.is_some(),
        i.incomplete
    );
    for c in &i.cpus {
        println!(
            "  cpu pid {} pc {:#x} sp {:#x} cr3 {:x?}",
            c.pid, c.pc, c.sp, c.cr3
        );
    }
    for r in &i.remarks {
        println!("  remark: {r}");
    }
    let pages: u64 = d.ranges().iter().map(|r| r.len.div_ceil(4096)).sum();
    println!(
        "  {} ranges, {pages} 4K pages with content",
        d.ranges().len()
    );
    if let Ok(k) = KdumpDump::open(FileReader::open(path)?) {
        let h = k.header();
        let (mut excluded, mut holes) = (0u64, 0u64);
        for pfn in 0..k.max_pfn() {
            match k.page_state(pfn) {
                PageState::Excluded => excluded += 1,
                PageState::Hole => holes += 1,
                PageState::Dumpable(_) => {}
            }
        }
        println!(
            "  kdump v{} {} {:?} block {} max_pfn {:#x} dumpable {} excluded {excluded} holes {holes} \
status {:#x} machine {:?} release {:?} sub {:?}",
            h.version,
            if h.is64 { "64-bit" } else { "32-bit" },
            h.endian,
            h.block_size,
            k.max_pfn(),
            k.dumpable_pages(),
            h.status,
            h.machine,
            h.release,
            h.sub
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A tiny source: 6 pages in two ranges with a hole, and an excluded page.
#[derive(Debug)]
struct Tiny {
    info: SourceInfo,
    map: Vec<MapRange>,
}

impl PhysRead for Tiny {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> kvm_core::Result<usize> {
        let pfn = pa.0 / 4096;
        if pfn == 3 {
            return Err(Error::Excluded { pa: pa.0 });
        }
        if !self.map.iter().any(|r| r.contains(pa.0)) {
            return Err(Error::NotInMemory { pa: pa.0 });
        }
        let n = buf.len().min((4096 - pa.0 % 4096) as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = match pfn % 3 {
                0 => 0,
                1 => (i % 7) as u8,
                _ => (((pa.0 as usize + i) * 2_654_435_761) >> 13) as u8,
            };
        }
        Ok(n)
    }
}

impl Source for Tiny {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &self.map
    }
}

fn seeds(args: &[String]) -> Res<ExitCode> {
    let dir = std::path::Path::new(args.first().ok_or("seeds DIR")?);
    std::fs::create_dir_all(dir)?;
    let mut info = SourceInfo::new("seed", Endian::Little);
    info.arch = Some(Arch::X86_64);
    info.vmcoreinfo = Some(VmCoreInfo::parse(b"OSRELEASE=6.1.0\nPAGESIZE=4096\n")?);
    info.cpus = vec![CpuState {
        pid: 1,
        pc: 2,
        sp: 3,
        fp: None,
        regs: Vec::new(),
        cr3: Some(0x1000),
        cr4: Some(0),
    }];
    let map = vec![
        MapRange {
            start: 0,
            len: 4 * 4096,
            value: 0,
        },
        MapRange {
            start: 6 * 4096,
            len: 2 * 4096,
            value: 0,
        },
    ];
    let src = Tiny { info, map };
    for c in Compression::ALL {
        for (be, name) in [(false, "le64"), (true, "be32")] {
            let mut opts = KdumpOptions::new(c);
            if be {
                opts.endian = Some(Endian::Big);
                opts.is64 = Some(false);
                opts.machine = Some("ppc".into());
            }
            let plain = dir.join(format!("{}-{name}.kdump", c.name()));
            kw::write(&src, &opts, std::fs::File::create(&plain)?)?;
            let flat = dir.join(format!("{}-{name}.flat", c.name()));
            kw::write_flattened(&src, &opts, std::fs::File::create(&flat)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(args: &[String]) -> Res<ExitCode> {
    let path = args.first().ok_or("bench KDUMP")?;
    let t = std::time::Instant::now();
    let n = 20;
    for _ in 0..n {
        KdumpDump::open(FileReader::open(path)?)?;
    }
    let open = t.elapsed().as_secs_f64() / f64::from(n);
    let k = KdumpDump::open(FileReader::open(path)?)?;
    let bs = k.block_size();
    let mut page = vec![0u8; bs as usize];
    let pfns: Vec<u64> = (0..k.max_pfn())
        .filter(|&p| matches!(k.page_state(p), PageState::Dumpable(_)))
        .collect();
    let t = std::time::Instant::now();
    for &p in &pfns {
        k.read_phys(PhysAddr(p * bs), &mut page)?;
    }
    let seq = t.elapsed().as_secs_f64();
    // The same 512 pages again and again: served by the page cache.
    let t = std::time::Instant::now();
    for i in 0..pfns.len() {
        let p = pfns[(i * 7) % 512.min(pfns.len())];
        k.read_phys(PhysAddr(p * bs + 8), &mut page[..64])?;
    }
    let hot = t.elapsed().as_secs_f64();
    println!(
        "{path}: open {:.2} ms (max_pfn {:#x}); {} pages read in {:.3} s ({:.1} us/page, {:.0} MB/s); \
{} small reads of 512 hot pages {:.3} s ({:.2} us/read)",
        open * 1e3,
        k.max_pfn(),
        pfns.len(),
        seq,
        seq * 1e6 / pfns.len() as f64,
        (pfns.len() as f64 * bs as f64) / seq / 1e6,
        pfns.len(),
        hot,
        hot * 1e6 / pfns.len() as f64
    );
    Ok(ExitCode::SUCCESS)
}
