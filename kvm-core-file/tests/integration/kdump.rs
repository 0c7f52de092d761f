//! kdump-compressed round trips: sources built in memory (an ELF core, or
//! memory with excluded pages) written with every compression, plain and
//! flattened, in every header layout and version, and read back page by
//! page.

use crate::common::{elf_core, expected_page, memory, x86_info, Mem};
use kvm_core::{Endian, Error, PhysAddr, PhysRead};
use kvm_core_file::codec::Compression;
use kvm_core_file::elf::ElfDump;
use kvm_core_file::kdump::{KdumpDump, PageState, SubHeaderLayout};
use kvm_core_file::write::kdump::{self as kw, KdumpOptions, WriteSummary};
use kvm_core_file::{Arch, FlatReader, ReadAt, Source, SourceInfo, VmCoreInfo};
use std::io::Cursor;

pub fn write_plain(src: &dyn Source, opts: &KdumpOptions) -> (Vec<u8>, WriteSummary) {
    let mut c = Cursor::new(Vec::new());
    let s = kw::write(src, opts, &mut c).unwrap();
    (c.into_inner(), s)
}

pub fn write_flat(src: &dyn Source, opts: &KdumpOptions) -> (Vec<u8>, WriteSummary) {
    let mut v = Vec::new();
    let s = kw::write_flattened(src, opts, &mut v).unwrap();
    (v, s)
}

/// Every PFN up to a little past the end: identical pages where the source
/// has memory, NotInMemory in holes, Excluded where `excluded(pfn)`.
fn check_pages(d: &dyn Source, m: &Mem, ps: u64, excluded: &dyn Fn(u64) -> bool) -> u64 {
    let max = m.map.iter().map(|r| r.end().div_ceil(ps)).max().unwrap();
    let mut page = vec![0u8; ps as usize];
    let mut checked = 0;
    for pfn in 0..max + 3 {
        let r = d.read_phys(PhysAddr(pfn * ps), &mut page);
        match expected_page(m, pfn, ps) {
            _ if excluded(pfn) => {
                assert_eq!(r, Err(Error::Excluded { pa: pfn * ps }), "pfn {pfn}")
            }
            Some(want) => {
                assert_eq!(r, Ok(ps as usize), "pfn {pfn}");
                assert!(page == want, "pfn {pfn} differs");
                checked += 1;
            }
            None => match r {
                // A page the source excludes is excluded in the kdump too.
                Err(Error::Excluded { .. })
                    if m.excluded
                        .iter()
                        .any(|&(s, l)| pfn * ps >= s && pfn * ps < s + l) => {}
                _ => assert_eq!(r, Err(Error::NotInMemory { pa: pfn * ps }), "pfn {pfn}"),
            },
        }
    }
    checked
}

#[test]
fn every_compression_plain_and_flattened_from_an_elf_core() {
    let m = memory(4096, 240, 0, x86_info());
    let elf = elf_core(&m);
    let src = ElfDump::open(elf.as_slice()).unwrap();
    assert_eq!(src.info().cpus, m.info.cpus);
    let npages = (0..1000)
        .filter(|&p| expected_page(&m, p, 4096).is_some())
        .count() as u64;
    for c in Compression::ALL {
        let opts = KdumpOptions::new(c);
        let (plain, s1) = write_plain(&src, &opts);
        let (flat, s2) = write_flat(&src, &opts);
        assert_eq!(s1, s2);
        assert_eq!(s1.pages, npages);
        assert!(s1.zero_pages > 0);
        if c == Compression::None {
            assert_eq!(s1.compressed, 0);
        } else {
            assert!(s1.compressed > 0 && s1.raw > 0, "{c:?}: {s1:?}");
        }
        // The flattened stream rebuilds exactly the plain file.
        let f = FlatReader::open(flat.as_slice()).unwrap();
        let mut logical = vec![0u8; f.size() as usize];
        f.read_exact_at(0, &mut logical, "flat").unwrap();
        assert_eq!(logical.len(), plain.len(), "{c:?}");
        assert!(logical == plain, "{c:?}: flattened differs from plain");
        for (bytes, format) in [(plain, "kdump"), (flat, "kdump-flattened")] {
            let d = kvm_core_file::open(bytes).unwrap();
            let info = d.info();
            assert_eq!(info.format, format);
            assert_eq!(info.os, Some(kvm_core::OsHint::Linux));
            assert_eq!(info.arch, Some(Arch::X86_64));
            assert_eq!(info.page_size, Some(4096));
            assert_eq!(info.release.as_deref(), Some("6.1.0-test"));
            assert_eq!(info.cpus, m.info.cpus, "{c:?} {format}");
            assert_eq!(info.vmcoreinfo, m.info.vmcoreinfo);
            assert!(!info.incomplete);
            assert_eq!(info.remarks, Vec::<String>::new());
            assert_eq!(check_pages(&*d, &m, 4096, &|_| false), npages);
            // Ranges are the saved pages.
            let saved: u64 = d.ranges().iter().map(|r| r.len / 4096).sum();
            assert_eq!(saved, npages);
        }
    }
}

#[test]
fn excluded_pages_and_keep() {
    let m = memory(4096, 200, 6, x86_info());
    let keep = |pfn: u64| pfn % 5 != 3;
    for c in [Compression::Zlib, Compression::Snappy] {
        let mut opts = KdumpOptions::new(c);
        opts.keep = Some(Box::new(keep));
        opts.dump_level = 31;
        for (bytes, s) in [write_plain(&m, &opts), write_flat(&m, &opts)] {
            assert!(s.excluded > 6, "{s:?}");
            let d = KdumpDump::open(bytes.as_slice()).unwrap();
            let excluded = |pfn: u64| !keep(pfn) && expected_page(&m, pfn, 4096).is_some();
            check_pages(&d, &m, 4096, &excluded);
            assert_eq!(d.header().sub.as_ref().unwrap().1.dump_level, 31);
            // The 1st bitmap keeps every page of memory, excluded or not.
            let mem: u64 = d.memory_ranges().iter().map(|r| r.len / 4096).sum();
            assert_eq!(mem, s.pages + s.excluded);
            assert_eq!(d.dumpable_pages(), s.pages);
            // Rewriting the filtered kdump with its memory ranges keeps
            // the excluded pages excluded.
            let mut again = Cursor::new(Vec::new());
            let s2 = kw::write_from(
                &d,
                d.info(),
                &d.memory_ranges(),
                &KdumpOptions::new(c),
                &mut again,
            )
            .unwrap();
            assert_eq!((s2.pages, s2.excluded), (s.pages, s.excluded));
            let d2 = KdumpDump::open(again.into_inner()).unwrap();
            for pfn in 0..d.max_pfn() {
                assert_eq!(d.page_state(pfn), d2.page_state(pfn), "pfn {pfn}");
            }
            check_pages(&d2, &m, 4096, &excluded);
        }
    }
}

/// A source for each layout: machine name, arch, byte order, 64-bit.
fn layout_info(arch: Arch, e: Endian, page: u64) -> SourceInfo {
    let mut info = x86_info();
    info.arch = Some(arch);
    info.endian = e;
    info.page_size = Some(page);
    if arch == Arch::Aarch64 {
        info.vmcoreinfo = Some(
            VmCoreInfo::parse(
                format!(
                    "OSRELEASE=6.12.0-arm\nPAGESIZE={page}\nSYMBOL(swapper_pg_dir)=ffff800081a5c000\n\
NUMBER(kimage_voffset)=0xffff7fff40000000\nNUMBER(VA_BITS)=48\nNUMBER(PHYS_OFFSET)=0x40000000\n"
                )
                .as_bytes(),
            )
            .unwrap(),
        );
    }
    if arch != Arch::X86_64 {
        for c in &mut info.cpus {
            c.cr3 = None;
            c.cr4 = None;
            if arch == Arch::I386 {
                c.pc &= 0xffff_ffff;
                c.sp &= 0xffff_ffff;
                c.fp = c.fp.map(|f| f & 0xffff_ffff);
                // i386's pr_reg: 17 words, ebp 5th, eip 12th, esp 15th.
                let mut r: Vec<u64> = (0..17).map(|i| 0x3300 + i).collect();
                (r[5], r[12], r[15]) = (c.fp.unwrap_or(0), c.pc, c.sp);
                c.regs = r;
            }
        }
    }
    info
}

#[test]
fn every_layout_and_version() {
    let cases: &[(Arch, Endian, bool, bool, &str)] = &[
        (Arch::X86_64, Endian::Little, true, false, "x86_64"),
        (Arch::Other(22), Endian::Big, true, false, "s390x"),
        (Arch::I386, Endian::Little, false, false, "i686"),
        (Arch::I386, Endian::Little, false, true, "i686"),
        (Arch::Other(20), Endian::Big, false, false, "ppc"),
        (Arch::Other(40), Endian::Big, false, true, "armv7b"),
    ];
    for &(arch, e, is64, padded, machine) in cases {
        let info = layout_info(arch, e, 4096);
        let m = memory(4096, 40, 2, info);
        for version in 0..=6 {
            let mut opts = KdumpOptions::new(Compression::Zlib);
            opts.is64 = Some(is64);
            opts.padded32 = padded;
            opts.version = version;
            opts.machine = Some(machine.into());
            let (bytes, _) = write_plain(&m, &opts);
            let d = KdumpDump::open(bytes.as_slice())
                .unwrap_or_else(|err| panic!("{machine} v{version}: {err}"));
            let h = d.header();
            assert_eq!(
                (h.version, h.is64, h.endian),
                (version, is64, e),
                "{machine}"
            );
            assert_eq!(h.machine, machine);
            let layout = h.sub.as_ref().map(|s| s.0);
            let want = match (version, is64, padded) {
                (0, ..) => None,
                (_, true, _) => Some(SubHeaderLayout::Bits64),
                // Up to version 2 the 32-bit layouts are the same.
                (1..=2, false, _) | (_, false, false) => Some(SubHeaderLayout::Packed32),
                (_, false, true) => Some(SubHeaderLayout::Padded32),
            };
            assert_eq!(layout, want, "{machine} v{version}");
            let info = d.info();
            assert_eq!(
                info.vmcoreinfo.is_some(),
                version >= 3,
                "{machine} v{version}"
            );
            let want_arch = if let Arch::Other(_) = arch {
                arch
            } else {
                arch
            };
            assert_eq!(info.arch, Some(want_arch));
            if version >= 4 && matches!(arch, Arch::X86_64 | Arch::I386) {
                assert_eq!(info.cpus, m.info.cpus, "{machine} v{version}");
            }
            check_pages(&d, &m, 4096, &|_| false);
        }
    }
}

#[test]
fn large_pages_arm64() {
    for page in [16384u64, 65536] {
        let m = memory(
            page,
            24,
            1,
            layout_info(Arch::Aarch64, Endian::Little, page),
        );
        for c in Compression::ALL {
            let (bytes, _) = write_flat(&m, &KdumpOptions::new(c));
            let d = kvm_core_file::open(bytes).unwrap();
            assert_eq!(d.info().arch, Some(Arch::Aarch64));
            assert_eq!(d.info().page_size, Some(page));
            check_pages(&*d, &m, page, &|_| false);
        }
    }
}

#[test]
fn partial_and_concurrent_reads() {
    let m = memory(4096, 64, 0, x86_info());
    let (bytes, _) = write_plain(&m, &KdumpOptions::new(Compression::Lzo));
    let d = KdumpDump::open(bytes).unwrap();
    // Reads at odd offsets and lengths, across pages and into holes.
    let mut rng = crate::common::Rng(99);
    let end = m.map.iter().map(|r| r.end()).max().unwrap() + 8192;
    for _ in 0..2000 {
        let pa = rng.next() % end;
        let len = (rng.next() % 9000) as usize + 1;
        let mut got = vec![0u8; len];
        let r = d.read_phys(PhysAddr(pa), &mut got);
        // What a byte-by-byte reading of the source gives.
        let mut want = Vec::new();
        for i in 0..len as u64 {
            let a = pa + i;
            match expected_page(&m, a / 4096, 4096) {
                Some(p) => want.push(p[(a % 4096) as usize]),
                None => break,
            }
        }
        match r {
            Ok(n) => {
                assert_eq!(n, want.len(), "pa {pa:#x} len {len}");
                assert_eq!(got[..n], want[..]);
            }
            Err(e) => {
                assert!(want.is_empty(), "pa {pa:#x}: {e}");
                assert_eq!(e, Error::NotInMemory { pa });
            }
        }
    }
    // Threads share one dump (and its page cache).
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (d, m) = (&d, &m);
            s.spawn(move || {
                let mut page = vec![0u8; 4096];
                for i in 0..400u64 {
                    let pfn = (i * 7 + t) % 70;
                    let r = d.read_phys(PhysAddr(pfn * 4096), &mut page);
                    if let Some(want) = expected_page(m, pfn, 4096) {
                        assert_eq!(r, Ok(4096));
                        assert!(page == want);
                    }
                }
            });
        }
    });
}

/// Offsets of the parts of a written kdump (64-bit little-endian, v6).
pub struct Parts {
    pub bs: u64,
    pub bitmap_start: u64,
    pub data_offset: u64,
    pub table_end: u64,
}

pub fn parts(bytes: &[u8]) -> Parts {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as u64;
    let bs = u32_at(428);
    let sub = u32_at(432);
    let bitmap = u32_at(436);
    let d = KdumpDump::open(bytes).unwrap();
    let data_offset = (1 + sub + bitmap) * bs;
    Parts {
        bs,
        bitmap_start: (1 + sub) * bs,
        data_offset,
        table_end: data_offset + 24 * d.dumpable_pages(),
    }
}

#[test]
fn incomplete_dumps_lose_pages_as_excluded() {
    let m = memory(4096, 80, 0, x86_info());
    let (mut bytes, _) = write_plain(&m, &KdumpOptions::new(Compression::Zlib));
    let p = parts(&bytes);
    // Zero the descriptors of dumpable pages 3 and 4.
    bytes[(p.data_offset + 3 * 24) as usize..(p.data_offset + 5 * 24) as usize].fill(0);
    // Not marked incomplete (nor cut short): open works, the damaged
    // pages are errors.
    let d = KdumpDump::open(bytes.as_slice()).unwrap();
    assert!(!d.info().incomplete);
    let mut page = vec![0u8; 4096];
    let dumpable: Vec<u64> = (0..d.max_pfn())
        .filter(|&p| matches!(d.page_state(p), PageState::Dumpable(_)))
        .collect();
    let r = d.read_phys(PhysAddr(dumpable[3] * 4096), &mut page);
    assert!(matches!(r, Err(Error::Malformed(_))), "{r:?}");
    // Marked incomplete and cut in the middle of the page data: the same
    // pages are excluded, and those the cut lost, the others read.
    let cut = p.table_end + (bytes.len() as u64 - p.table_end) / 2;
    bytes.truncate(cut as usize);
    bytes[424] |= 0x8;
    let d = KdumpDump::open(bytes.as_slice()).unwrap();
    assert!(d.info().incomplete);
    let (mut ok, mut lost) = (0, 0);
    for &pfn in &dumpable {
        match d.read_phys(PhysAddr(pfn * 4096), &mut page) {
            Ok(4096) => {
                assert!(page == expected_page(&m, pfn, 4096).unwrap());
                ok += 1;
            }
            Err(Error::Excluded { .. }) => lost += 1,
            other => panic!("pfn {pfn}: {other:?}"),
        }
    }
    assert_eq!(
        d.read_phys(PhysAddr(dumpable[4] * 4096), &mut page),
        Err(Error::Excluded {
            pa: dumpable[4] * 4096
        })
    );
    assert!(ok > 10 && lost > 2, "{ok} {lost}");
    // Cut inside the descriptor table, flagged or not: the ten whole
    // descriptors are kept (their data is gone), the dump says it is cut.
    let mut short = bytes[..(p.data_offset + 24 * 10 + 5) as usize].to_vec();
    for flagged in [false, true] {
        if flagged {
            short[424] |= 0x8;
        } else {
            short[424] &= !0x8;
        }
        let d = KdumpDump::open(short.as_slice()).unwrap();
        assert!(d.info().incomplete);
        let saved: u64 = d.ranges().iter().map(|r| r.len / 4096).sum();
        assert_eq!(saved, 10);
    }
}

#[test]
fn one_part_of_a_split_dump() {
    let m = memory(4096, 60, 0, x86_info());
    let (mut bytes, _) = write_plain(&m, &KdumpOptions::new(Compression::Zstd));
    let bs = 4096usize;
    // split = 1, PFNs [0, 20).
    bytes[bs + 12..bs + 16].copy_from_slice(&1u32.to_le_bytes());
    bytes[bs + 80..bs + 88].copy_from_slice(&0u64.to_le_bytes());
    bytes[bs + 88..bs + 96].copy_from_slice(&20u64.to_le_bytes());
    let d = KdumpDump::open(bytes.as_slice()).unwrap();
    assert!(d.info().remarks.iter().any(|r| r.contains("split")));
    check_pages(&d, &m, 4096, &|pfn| {
        pfn >= 20 && expected_page(&m, pfn, 4096).is_some()
    });
    // An empty or out-of-range part is malformed.
    bytes[bs + 88..bs + 96].copy_from_slice(&0u64.to_le_bytes());
    assert!(KdumpDump::open(bytes.as_slice()).is_err());
}

#[test]
fn qemu_style_header_takes_facts_from_vmcoreinfo() {
    let m = memory(4096, 30, 0, x86_info());
    let (mut bytes, _) = write_flat(&m, &KdumpOptions::new(Compression::Snappy));
    // The flattened stream ends with the header record (written last):
    // blank its utsname except machine, as QEMU does.
    let f = FlatReader::open(bytes.as_slice()).unwrap();
    let hdr_at = f.ranges()[0].value as usize;
    assert_eq!(f.ranges()[0].start, 0);
    bytes[hdr_at + 12..hdr_at + 272].fill(0);
    let d = kvm_core_file::open(bytes.clone()).unwrap();
    assert_eq!(d.info().release.as_deref(), Some("6.1.0-test"));
    assert!(d
        .info()
        .remarks
        .iter()
        .any(|r| r.contains("utsname.release")));
    // Even without a machine name, VMCOREINFO gives the architecture.
    bytes[hdr_at + 272..hdr_at + 337].fill(0);
    let d = kvm_core_file::open(bytes).unwrap();
    assert_eq!(d.info().arch, Some(Arch::X86_64));
    assert_eq!(d.info().cpus, m.info.cpus);
    assert!(d
        .info()
        .remarks
        .iter()
        .any(|r| r.contains("utsname.machine")));
    check_pages(&*d, &m, 4096, &|_| false);
}

/// Eight threads read random pages of one compressed kdump through one
/// shared reader, whose page cache (1,024 pages at most) is far smaller
/// than the 4,000 pages they read from: every page equals the memory it
/// was written from, as one thread reads it (drgn's libkdumpfile cache
/// once crashed on this).
#[test]
fn many_threads_share_one_small_cache() {
    let m = memory(4096, 4000, 0, x86_info());
    let elf = elf_core(&m);
    let src = ElfDump::open(elf.as_slice()).unwrap();
    for c in [Compression::Zlib, Compression::Zstd] {
        let (plain, _) = write_plain(&src, &KdumpOptions::new(c));
        let d = kvm_core_file::open(plain).unwrap();
        let pfns: Vec<u64> = (0..5000)
            .filter(|&p| expected_page(&m, p, 4096).is_some())
            .collect();
        assert!(pfns.len() > 3000);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let (d, m, pfns) = (&d, &m, &pfns);
                s.spawn(move || {
                    let mut rng = crate::common::Rng(0x9e37_79b9 + t);
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..3000 {
                        let pfn = pfns[(rng.next() % pfns.len() as u64) as usize];
                        let n = d.read_phys(PhysAddr(pfn * 4096), &mut buf).unwrap();
                        assert_eq!(n, 4096);
                        assert!(
                            Some(&buf) == expected_page(m, pfn, 4096).as_ref(),
                            "{c:?}: thread {t}, pfn {pfn}"
                        );
                    }
                });
            }
        });
    }
}
