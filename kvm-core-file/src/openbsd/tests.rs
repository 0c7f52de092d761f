//! Round trips through the writer and hostile headers.

use super::*;
use crate::write::openbsd::{write_kcore, KcoreHeader};
use alloc::vec;
use core::ops::ControlFlow;
use kvm_core::arch::{i386, x86_64};
use kvm_core::{PhysReadExt, Prot, SparseMem, VirtAddr};

/// The ranges of present pages of `mem`, joined.
fn ranges_of(mem: &SparseMem) -> Vec<MapRange> {
    let mut out: Vec<MapRange> = Vec::new();
    for (pa, _) in mem.pages() {
        match out.last_mut() {
            Some(r) if r.end() == pa.0 => r.len += 0x1000,
            _ => out.push(MapRange {
                start: pa.0,
                len: 0x1000,
                value: 0,
            }),
        }
    }
    out
}

fn write(mem: &SparseMem, hdr: &KcoreHeader) -> Vec<u8> {
    let mut out = Vec::new();
    let s = write_kcore(&mut out, hdr, mem, &mut |_, _| {}).unwrap();
    assert_eq!(s.file_size, out.len() as u64);
    out
}

/// Every page of `mem` reads the same from `d`; returns the count.
fn pages_equal(mem: &SparseMem, d: &dyn Source) -> usize {
    let mut n = 0;
    let mut b = [0u8; 0x1000];
    for (pa, page) in mem.pages() {
        d.read_phys_exact(pa, &mut b).unwrap();
        assert_eq!(&b[..], page, "page {:#x}", pa.0);
        n += 1;
    }
    n
}

/// Every page `tables` maps translates the same through `d`'s translator,
/// except in `skip`; returns (compared, skipped).
fn translations_equal(
    tables: &dyn Translate,
    mem: &SparseMem,
    d: &dyn Source,
    skip: Option<DirectMap>,
) -> (usize, usize) {
    let t = d.translator().expect("translator");
    let (mut n, mut skipped) = (0, 0);
    tables
        .walk(mem, &mut |run| {
            let mut va = run.va.0;
            while va - run.va.0 < run.len {
                if skip.is_some_and(|w| w.contains(va)) {
                    skipped += 1;
                } else {
                    let want = tables.translate(mem, VirtAddr(va)).unwrap();
                    let got = t.translate(d, VirtAddr(va)).unwrap();
                    assert_eq!((got.pa, got.page_size), (want.pa, want.page_size));
                    n += 1;
                }
                va += 0x1000;
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    (n, skipped)
}

/// amd64 memory: 4 KiB, 2 MiB and 1 GiB kernel mappings, two RAM ranges,
/// text in the pages.
fn amd64_mem() -> (SparseMem, x86_64::X86_64) {
    let mut b = x86_64::Builder::with_table_base(4, PhysAddr(0x10_0000));
    let kern = 0xffff_ffff_8000_0000u64;
    b.map(VirtAddr(kern), PhysAddr(0x20_0000), 0x20_0000, Prot::READ)
        .unwrap();
    for i in 0..4u64 {
        b.map(
            VirtAddr(kern + 0x40_0000 + i * 0x1000),
            PhysAddr(0x8000 + i * 0x1000),
            0x1000,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    }
    b.map(
        VirtAddr(0xffff_8000_0000_0000),
        PhysAddr(0x4000_0000),
        0x4000_0000,
        Prot::READ,
    )
    .unwrap();
    // Inside OpenBSD's direct map: translated without tables there.
    b.map(
        VirtAddr(DirectMap::FOUR_SLOTS.base + 0x1000_0000),
        PhysAddr(0x9000),
        0x1000,
        Prot::READ,
    )
    .unwrap();
    let m = b.mem_mut();
    for i in 0..4u64 {
        m.write(PhysAddr(0x8000 + i * 0x1000), b"low page").unwrap();
    }
    m.write(PhysAddr(0x20_0000), &[0x5a; 0x20_0000]).unwrap();
    m.write(PhysAddr(0x4000_0000), b"first page of the 1 GiB one")
        .unwrap();
    m.write(PhysAddr(0x7fff_f000), b"last page of the 1 GiB one")
        .unwrap();
    b.finish()
}

#[test]
fn amd64_round_trip() {
    let (mem, tables) = amd64_mem();
    let ranges = ranges_of(&mem);
    let hdr = KcoreHeader::new(Arch::X86_64, tables.root().0, false, &ranges).unwrap();
    let f = write(&mem, &hdr);
    let d = crate::open(f.clone()).unwrap();
    let i = d.info();
    assert_eq!(
        (i.format, i.arch, i.os, i.page_size, i.endian, i.incomplete),
        (
            "openbsd-kcore",
            Some(Arch::X86_64),
            Some(OsHint::OpenBsd),
            Some(4096),
            Endian::Little,
            false
        )
    );
    assert!(i.remarks.is_empty(), "{:?}", i.remarks);
    // The sparse pages join into ranges; each reads back.
    assert_eq!(d.ranges().len(), ranges.len());
    assert_eq!(pages_equal(&mem, &*d), mem.page_count());
    let (n, skipped) = translations_equal(&tables, &mem, &*d, Some(DirectMap::FOUR_SLOTS));
    assert_eq!((n, skipped), (512 + 4 + 0x4_0000, 1));
    // The direct map reads physical memory without tables.
    let t = d.translator().unwrap();
    let dm = t
        .translate(&*d, VirtAddr(DirectMap::FOUR_SLOTS.base + 0x4000_0000))
        .unwrap();
    assert_eq!(dm.pa, PhysAddr(0x4000_0000));
    let k = KcoreDump::open(f).unwrap();
    assert_eq!(k.ptdpaddr(), Some(0x10_0000));
    assert_eq!(k.dump_offset(), 536);
    assert_eq!(k.paging(), Some(Paging::X86_64(tables)));
    assert_eq!(k.segments().len(), ranges.len());
}

#[test]
fn i386_round_trips() {
    for pae in [false, true] {
        let mut b = i386::Builder::new(pae);
        let big = if pae { 0x20_0000 } else { 0x40_0000 };
        b.map(VirtAddr(0xd000_0000), PhysAddr(0x80_0000), big, Prot::READ)
            .unwrap();
        for i in 0..8u64 {
            b.map(
                VirtAddr(0xc000_0000 + i * 0x1000),
                PhysAddr(0x30_0000 + i * 0x1000),
                0x1000,
                Prot::READ | Prot::WRITE,
            )
            .unwrap();
        }
        b.mem_mut()
            .write(PhysAddr(0x30_0000), b"i386 kernel page")
            .unwrap();
        b.mem_mut()
            .write(PhysAddr(0x80_0000), &[7; 0x1000])
            .unwrap();
        let (mut mem, tables) = b.finish();
        mem.touch(PhysAddr(0x80_0000 + big - 0x1000));
        let ranges = ranges_of(&mem);
        let hdr = KcoreHeader::new(Arch::I386, tables.root().0, pae, &ranges).unwrap();
        let f = write(&mem, &hdr);
        let d = KcoreDump::open(f.clone()).unwrap();
        // A flat image up to the last range.
        assert_eq!(
            f.len() as u64,
            d.dump_offset() + ranges.last().unwrap().end()
        );
        assert_eq!(d.dump_offset(), 532);
        assert_eq!(d.info().arch, Some(Arch::I386));
        assert_eq!(d.ranges().len(), ranges.len());
        let pages = pages_equal(&mem, &d);
        assert_eq!(pages, mem.page_count());
        // Outside the ranges: not in memory, though the file has zeros.
        assert_eq!(
            d.read_phys(PhysAddr(0x1000), &mut [0u8; 4]),
            Err(Error::NotInMemory { pa: 0x1000 })
        );
        let (n, skipped) = translations_equal(&tables, &mem, &d, None);
        assert_eq!((n, skipped), (8 + (big / 0x1000) as usize, 0), "pae {pae}");
        assert_eq!(d.paging(), Some(Paging::I386(tables)));

        // The same file as OpenBSD writes it: no record in the CPU data.
        let mut bare = f.clone();
        bare[20..20 + 8].fill(0xa5);
        let d = KcoreDump::open(bare).unwrap();
        assert_eq!(d.cpu_header(), &CpuHeader::I386Bare);
        assert!(d.translator().is_none());
        assert_eq!(
            d.ranges(),
            &[MapRange {
                start: 0,
                len: ranges.last().unwrap().end(),
                value: 532
            }]
        );
        assert!(d.info().remarks[0].contains("_PTDpaddr"));
        let mut b = [0u8; 16];
        d.read_phys_exact(PhysAddr(0x30_0000), &mut b).unwrap();
        assert_eq!(&b, b"i386 kernel page");
    }
}

/// A small valid amd64 file: two segments ([0, 0x4000) and
/// [0x10_0000, 0x10_2000)), root at 0x1000.
fn small_amd64() -> Vec<u8> {
    let mut mem = SparseMem::new();
    for pa in [0u64, 0x1000, 0x2000, 0x3000, 0x10_0000, 0x10_1000] {
        mem.write(PhysAddr(pa), &pa.to_le_bytes()).unwrap();
    }
    let hdr = KcoreHeader::new(Arch::X86_64, 0x1000, false, &ranges_of(&mem)).unwrap();
    write(&mem, &hdr)
}

fn err(f: &[u8]) -> Error {
    KcoreDump::open(f).map(|_| ()).unwrap_err()
}

fn put_u64(f: &mut [u8], off: usize, v: u64) {
    f[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

const M: fn(&'static str) -> Error = Error::Malformed;

#[test]
fn truncated_at_every_field() {
    let f = small_amd64();
    assert_eq!(f.len(), 536 + 0x6000);
    let cases: &[(usize, &str)] = &[
        (0, "OpenBSD kcore: file shorter than kcore_hdr_t (12 bytes)"),
        (4, "OpenBSD kcore: file shorter than kcore_hdr_t (12 bytes)"),
        (6, "OpenBSD kcore: file shorter than kcore_hdr_t (12 bytes)"),
        (8, "OpenBSD kcore: file shorter than kcore_hdr_t (12 bytes)"),
        (
            11,
            "OpenBSD kcore: file shorter than kcore_hdr_t (12 bytes)",
        ),
        (12, "OpenBSD kcore: file ends inside the CPU segment header"),
        (16, "OpenBSD kcore: file ends inside the CPU segment header"),
        (20, "OpenBSD kcore: file ends inside the CPU segment header"),
        (23, "OpenBSD kcore: file ends inside the CPU segment header"),
        (24, "OpenBSD kcore: file ends inside the CPU segment"),
        (32, "OpenBSD kcore: file ends inside the CPU segment"),
        (40, "OpenBSD kcore: file ends inside the CPU segment"),
        (56, "OpenBSD kcore: file ends inside the CPU segment"),
        (527, "OpenBSD kcore: file ends inside the CPU segment"),
        (
            528,
            "OpenBSD kcore: file ends inside the data segment header",
        ),
        (
            532,
            "OpenBSD kcore: file ends inside the data segment header",
        ),
        (
            535,
            "OpenBSD kcore: file ends inside the data segment header",
        ),
    ];
    for &(cut, msg) in cases {
        assert_eq!(err(&f[..cut]), M(msg), "cut at {cut}");
    }
    // Headers whole, memory cut: the missing pages are missing.
    let nim = Err(Error::NotInMemory { pa: 0x10_1ff8 });
    for (cut, kept, last) in [
        (536usize, 0u64, nim),
        (536 + 0x2800, 0x2800, nim),
        (f.len() - 1, 0x5fff, Ok(7)),
    ] {
        let d = KcoreDump::open(&f[..cut]).unwrap();
        assert!(d.info().incomplete, "cut at {cut}");
        assert!(d.info().remarks[0].contains("short of the memory"));
        assert_eq!(
            d.ranges().iter().map(|r| r.len).sum::<u64>(),
            kept,
            "cut at {cut}"
        );
        let mut b = [0u8; 8];
        assert_eq!(d.read_phys(PhysAddr(0x10_1ff8), &mut b), last);
    }
}

#[test]
fn flipped_and_hostile_fields() {
    let f = small_amd64();
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut g = f.clone();
        edit(&mut g);
        g
    };
    let cases: Vec<(Vec<u8>, Error)> = vec![
        (
            with(&|g| g[3] ^= 1),
            M("OpenBSD kcore: kcore_hdr_t magic is not KCORE_MAGIC (0x8fca)"),
        ),
        (
            with(&|g| g[1] ^= 1),
            Error::Unsupported("OpenBSD kcore: machine id is neither amd64 (157) nor i386 (134)"),
        ),
        (
            with(&|g| g[0] ^= 4),
            M("OpenBSD kcore: kcore_hdr_t flag is not 0"),
        ),
        (with(&|g| g[8] = 3), M("OpenBSD kcore: c_nseg is not 2")),
        (with(&|g| g[8] = 1), M("OpenBSD kcore: c_nseg is not 2")),
        (
            with(&|g| g[4] = 11),
            M("OpenBSD kcore: c_hdrsize is outside 12..=4096"),
        ),
        (
            with(&|g| g[4..6].copy_from_slice(&4097u16.to_le_bytes())),
            M("OpenBSD kcore: c_hdrsize is outside 12..=4096"),
        ),
        (
            with(&|g| g[6] = 7),
            M("OpenBSD kcore: c_seghdrsize is outside 8..=4096"),
        ),
        (
            with(&|g| g[19] ^= 1),
            M("OpenBSD kcore: CPU segment header magic is not KCORESEG_MAGIC (0x8fac)"),
        ),
        (
            with(&|g| g[16] = 0x08),
            M("OpenBSD kcore: first segment is not CORE_CPU"),
        ),
        (
            with(&|g| g[20..24].copy_from_slice(&15u32.to_le_bytes())),
            M("OpenBSD kcore: CPU segment c_size is outside 16..=65536"),
        ),
        (
            with(&|g| g[20..24].copy_from_slice(&65537u32.to_le_bytes())),
            M("OpenBSD kcore: CPU segment c_size is outside 16..=65536"),
        ),
        (
            // A longer CPU segment: the data header is not where it says.
            with(&|g| g[20..24].copy_from_slice(&512u32.to_le_bytes())),
            M("OpenBSD kcore: data segment header magic is not KCORESEG_MAGIC (0x8fac)"),
        ),
        (
            with(&|g| g[531] ^= 1),
            M("OpenBSD kcore: data segment header magic is not KCORESEG_MAGIC (0x8fac)"),
        ),
        (
            with(&|g| g[528] = 0x04),
            M("OpenBSD kcore: second segment is not CORE_DATA"),
        ),
        (
            with(&|g| put_u64(g, 32, 0)),
            M("OpenBSD kcore: nmemsegs is 0"),
        ),
        (
            with(&|g| put_u64(g, 32, 31)),
            M("OpenBSD kcore: nmemsegs does not fit the CPU segment"),
        ),
        (
            with(&|g| put_u64(g, 32, u64::MAX)),
            M("OpenBSD kcore: nmemsegs does not fit the CPU segment"),
        ),
        (
            // The second segment starts inside the first.
            with(&|g| put_u64(g, 56, 0x3000)),
            M("OpenBSD kcore: RAM segments overlap"),
        ),
        (
            with(&|g| put_u64(g, 56, u64::MAX - 0xfff)),
            M("OpenBSD kcore: a RAM segment wraps around the address space"),
        ),
        (
            with(&|g| put_u64(g, 48, 0)),
            M("OpenBSD kcore: a RAM segment has size 0"),
        ),
        (
            // Packed offsets: the first segment's end overflows them.
            with(&|g| put_u64(g, 48, u64::MAX - 0x10)),
            M("OpenBSD kcore: RAM segments reach past the largest file offset"),
        ),
        (
            with(&|g| put_u64(g, 24, 0x5000)),
            M("OpenBSD kcore: ptdpaddr is outside every RAM segment"),
        ),
        (
            with(&|g| put_u64(g, 24, 0x1008)),
            M("OpenBSD kcore: ptdpaddr is not aligned to its table"),
        ),
        (
            with(&|g| put_u64(g, 24, 1 << 60)),
            M("OpenBSD kcore: ptdpaddr is beyond the physical address width"),
        ),
    ];
    for (i, (g, want)) in cases.iter().enumerate() {
        assert_eq!(err(g), *want, "case {i}");
    }
    // The data segment's size is a hint: a wrong one is a remark.
    let g = with(&|g| g[532..536].fill(0));
    let d = KcoreDump::open(g).unwrap();
    assert!(!d.info().incomplete);
    assert!(d.info().remarks[0].starts_with("the data segment's c_size (0x0)"));
    // Through detection: the OpenBSD error, not "unknown format".
    assert_eq!(
        crate::open(with(&|g| g[8] = 3)).map(|_| ()),
        Err(M("OpenBSD kcore: c_nseg is not 2"))
    );
    // A kcore of another machine is not taken for this format (the
    // list of formats in the message grows as formats are added).
    match crate::open(with(&|g| g[1] = 159)).map(|_| ()) {
        Err(Error::Unsupported(m)) => assert!(m.starts_with("unknown dump format"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_i386_record() {
    let mut mem = SparseMem::new();
    mem.write(PhysAddr(0x1000), b"pd").unwrap();
    let hdr = KcoreHeader::new(Arch::I386, 0x1000, false, &ranges_of(&mem)).unwrap();
    let f = write(&mem, &hdr);
    // Record: tag @20, ptdpaddr @28, flags @36, nmemsegs @44, segs @52.
    let mut g = f.clone();
    put_u64(&mut g, 36, 2);
    assert_eq!(
        err(&g),
        Error::Unsupported("OpenBSD kcore: unknown flags in kvm's i386 record")
    );
    let mut g = f.clone();
    put_u64(&mut g, 28, 0x1_0000_1000);
    assert_eq!(
        err(&g),
        M("OpenBSD kcore: ptdpaddr is beyond the physical address width")
    );
    let mut g = f.clone();
    put_u64(&mut g, 44, 30);
    assert_eq!(
        err(&g),
        M("OpenBSD kcore: nmemsegs does not fit the CPU segment")
    );
    // An OpenBSD i386 dump with nothing after the headers and no size.
    let mut g = f[..532].to_vec();
    g[20..28].fill(0);
    g[528..532].fill(0);
    assert_eq!(err(&g), M("OpenBSD kcore: no memory follows the headers"));
}

/// Writes small seed files for the `openbsd_kcore` fuzz target into the
/// directory `$KVM_OPENBSD_SEEDS`, when it is set (corpora are not kept
/// in the repository).
#[test]
fn fuzz_seeds() {
    let Some(dir) = std::env::var_os("KVM_OPENBSD_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mut seeds = vec![("two-segments.amd64", small_amd64())];
    let mut b = x86_64::Builder::with_table_base(4, PhysAddr(0x1000));
    b.map(
        VirtAddr(0xffff_ffff_8000_0000),
        PhysAddr(0),
        0x1000,
        Prot::READ,
    )
    .unwrap();
    b.mem_mut().write(PhysAddr(0), b"kernel text").unwrap();
    let (mem, t) = b.finish();
    let h = KcoreHeader::new(Arch::X86_64, t.root().0, false, &ranges_of(&mem)).unwrap();
    seeds.push(("tables.amd64", write(&mem, &h)));
    // i386 tables by hand, low in memory: 0xc0000000 -> 0x4000.
    for pae in [false, true] {
        let mut mem = SparseMem::new();
        if pae {
            mem.write(PhysAddr(0x1000 + 3 * 8), &0x2001u64.to_le_bytes())
                .unwrap();
            mem.write(PhysAddr(0x2000), &0x3003u64.to_le_bytes())
                .unwrap();
            mem.write(PhysAddr(0x3000), &0x4003u64.to_le_bytes())
                .unwrap();
        } else {
            mem.write(PhysAddr(0x1000 + 0x300 * 4), &0x2003u32.to_le_bytes())
                .unwrap();
            mem.write(PhysAddr(0x2000), &0x4003u32.to_le_bytes())
                .unwrap();
            mem.touch(PhysAddr(0x3000));
        }
        mem.write(PhysAddr(0x4000), b"i386 page").unwrap();
        let h = KcoreHeader::new(Arch::I386, 0x1000, pae, &ranges_of(&mem)).unwrap();
        let f = write(&mem, &h);
        let d = KcoreDump::open(f.clone()).unwrap();
        let t = d.translator().unwrap();
        assert_eq!(
            t.translate(&d, VirtAddr(0xc000_0010)).unwrap().pa,
            PhysAddr(0x4010)
        );
        let mut bare = f.clone();
        bare[20..28].fill(0);
        seeds.push((if pae { "pae.i386" } else { "nonpae.i386" }, f));
        seeds.push((if pae { "bare-pae.i386" } else { "bare.i386" }, bare));
    }
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
