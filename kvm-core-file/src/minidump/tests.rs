//! Minidumps built here (every architecture and version the header
//! parser knows), and damaged ones. The real dumps are read by
//! kvm/tests/freebsd.rs.

use super::*;
use alloc::vec;
use kvm_core::{Arch, PhysReadExt, Prot, VirtAddr};

const PAGE: usize = 4096;

/// An i386 minidump: `ptes` (entries from kernbase `KB`), the physical
/// pages `pages` (pfn, fill byte) — version 2 with one dump_avail range
/// when `avail`.
const KB: u64 = 0x0080_0000;

fn i386(pae: bool, ptes: &[u64], pages: &[(u64, u8)], avail: bool) -> Vec<u8> {
    let mut f = vec![0u8; PAGE];
    f[..21].copy_from_slice(b"minidump FreeBSD/i386");
    let put = |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_le_bytes());
    put(&mut f, 24, if avail { 2 } else { 1 });
    put(&mut f, 28, 100); // msgbufsize
    put(&mut f, 32, 8); // bitmapsize: 64 pages
    let esize = if pae { 8 } else { 4 };
    put(&mut f, 36, (ptes.len() * esize) as u32);
    put(&mut f, 40, KB as u32);
    put(&mut f, 44, u32::from(pae));
    if avail {
        put(&mut f, 48, 32);
    }
    let section = |f: &mut Vec<u8>, bytes: &[u8]| {
        f.extend_from_slice(bytes);
        f.resize(f.len().next_multiple_of(PAGE), 0);
    };
    section(&mut f, &[b'm'; 100]);
    // dump_avail: physical pages 16..80 (bits 0..64).
    if avail {
        let mut a = Vec::new();
        for v in [16u64 * PAGE as u64, 80 * PAGE as u64, 0, 0] {
            a.extend_from_slice(&v.to_le_bytes());
        }
        section(&mut f, &a);
    }
    let base = if avail { 16 } else { 0 };
    let mut bits = 0u64;
    for (pfn, _) in pages {
        bits |= 1 << (pfn - base);
    }
    section(&mut f, &bits.to_le_bytes());
    let mut t = Vec::new();
    for e in ptes {
        t.extend_from_slice(&e.to_le_bytes()[..esize]);
    }
    section(&mut f, &t);
    let mut sorted = pages.to_vec();
    sorted.sort();
    for (_, fill) in sorted {
        f.extend_from_slice(&[fill; PAGE]);
    }
    f
}

#[test]
fn i386_both_entry_sizes_with_and_without_dump_avail() {
    for (pae, avail) in [(false, false), (false, true), (true, false), (true, true)] {
        // KB+0 → pfn 20, KB+0x1000 not present, KB+0x2000 → pfn 17.
        let ptes = [(20 * 0x1000) | 1, 0, (17 * 0x1000) | 3];
        let f = i386(pae, &ptes, &[(20, 0xaa), (17, 0xbb)], avail);
        let d = MinidumpDump::open(&f[..]).unwrap();
        assert_eq!(d.info().arch, Some(Arch::I386));
        assert_eq!(d.header().pae, pae);
        assert_eq!(d.msgbuf().unwrap(), vec![b'm'; 100]);
        let t = d.translate(&d, VirtAddr(KB + 0x10)).unwrap();
        assert_eq!(t.pa.0, 20 * 0x1000 + 0x10);
        assert_eq!(d.read_u8(t.pa), Ok(0xaa));
        let t = d.translate(&d, VirtAddr(KB + 0x2fff)).unwrap();
        assert_eq!((t.pa.0, t.len), (17 * 0x1000 + 0xfff, 1));
        assert!(t.prot.contains(Prot::WRITE));
        assert_eq!(d.read_u8(t.pa), Ok(0xbb));
        assert_eq!(
            d.translate(&d, VirtAddr(KB + 0x1000)),
            Err(Error::Unmapped { va: KB + 0x1000 })
        );
        assert_eq!(
            d.translate(&d, VirtAddr(KB + 0x3000)),
            Err(Error::Unmapped { va: KB + 0x3000 }),
            "past the PTE array"
        );
        assert_eq!(
            d.translate(&d, VirtAddr(KB - 1)),
            Err(Error::Unmapped { va: KB - 1 })
        );
        // A page not in the bitmap.
        assert_eq!(
            d.read_u8(PhysAddr(18 * 0x1000)),
            Err(Error::NotInMemory { pa: 18 * 0x1000 })
        );
        assert_eq!(
            d.ranges(),
            [
                MapRange {
                    start: 17 * 0x1000,
                    len: 0x1000,
                    value: f.len() as u64 - 0x2000
                },
                MapRange {
                    start: 20 * 0x1000,
                    len: 0x1000,
                    value: f.len() as u64 - 0x1000
                },
            ]
        );
        assert!(!d.info().incomplete);
    }
}

#[test]
fn a_truncated_file_keeps_what_it_holds() {
    let f = i386(
        false,
        &[(20 * 0x1000) | 1],
        &[(20, 0xaa), (30, 0xcc)],
        false,
    );
    let cut = &f[..f.len() - 0x800];
    let d = MinidumpDump::open(cut).unwrap();
    assert!(d.info().incomplete);
    assert_eq!(
        d.info().remarks,
        ["truncated: the file ends 2048 bytes short of the 2 pages the bitmap lists"]
    );
    let mut b = [0u8; 0x1000];
    // The half that is there reads; the read stops where the file does.
    assert_eq!(d.read_phys(PhysAddr(30 * 0x1000), &mut b), Ok(0x800));
    assert_eq!(d.read_u8(PhysAddr(20 * 0x1000)), Ok(0xaa));
}

#[test]
fn damaged_headers_give_their_error() {
    let f = i386(true, &[1], &[(20, 1)], true);
    let open = |f: &[u8]| MinidumpDump::open(f).map(|_| ());
    // Every field boundary of the largest header (arm64's, 80 bytes).
    for cut in (0..80).step_by(4).chain([79]) {
        assert_eq!(
            open(&f[..cut]),
            Err(Error::Malformed("FreeBSD minidump header truncated")),
            "cut at {cut}"
        );
    }
    // Cut inside the sections.
    assert_eq!(
        open(&f[..PAGE * 2]),
        Err(Error::Malformed(
            "FreeBSD minidump sections extend past the end of the file"
        ))
    );
    let with = |o: usize, v: &[u8]| {
        let mut g = f.clone();
        g[o..o + v.len()].copy_from_slice(v);
        g
    };
    assert_eq!(
        open(&with(9, b"Net")),
        Err(Error::Malformed(
            "FreeBSD minidump magic is not amd64, arm64 or i386"
        ))
    );
    assert_eq!(
        open(&with(22, b"x")),
        Err(Error::Malformed(
            "FreeBSD minidump magic is not amd64, arm64 or i386"
        )),
        "padding must be NUL"
    );
    assert_eq!(
        open(&with(24, &3u32.to_le_bytes())),
        Err(Error::Unsupported(
            "FreeBSD/i386 minidump version other than 1-2"
        ))
    );
    assert_eq!(
        open(&with(32, &u32::MAX.to_le_bytes())),
        Err(Error::Malformed(
            "FreeBSD minidump sections extend past the end of the file"
        ))
    );
    assert_eq!(
        open(&with(36, &12u32.to_le_bytes())),
        Err(Error::Malformed(
            "FreeBSD minidump page-table section is not a whole number of entries"
        ))
    );
    // A kernel base inside a page would shift every translation (the
    // damage sweep found a flipped direct-map base giving wrong pids).
    assert_eq!(
        open(&with(40, &0xc000_00ffu32.to_le_bytes())),
        Err(Error::Malformed(
            "FreeBSD minidump kernel or direct map base is not page-aligned"
        ))
    );
    // A bitmap larger than the memory dump_avail lists (64 pages: one
    // long; the header says two pages of bitmap): the damage sweep's
    // flipped bitmapsize, which read into memory would cost as much as
    // the file holds.
    let mut big = with(32, &(2 * PAGE as u32).to_le_bytes());
    big.extend(vec![0u8; PAGE]);
    assert_eq!(
        open(&big),
        Err(Error::Malformed(
            "FreeBSD minidump bitmap larger than the memory dump_avail lists"
        ))
    );
    // A dump_avail section of 16 MiB (a flipped dumpavailsize): far
    // beyond the kernel's array.
    assert_eq!(
        open(&with(48, &(16u32 << 20).to_le_bytes())),
        Err(Error::Malformed(
            "FreeBSD minidump dump_avail larger than 64 KiB"
        ))
    );
    // dump_avail going backwards.
    let mut back = Vec::new();
    for v in [0x10_0000u64, 0x20_0000, 0x1000, 0x2000] {
        back.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(
        open(&with(2 * PAGE, &back)),
        Err(Error::Malformed(
            "FreeBSD minidump dump_avail ranges are not ascending"
        ))
    );
    // A range reaching the top of memory costs nothing: it is cut at the
    // bitmap's end.
    let mut huge = Vec::new();
    for v in [0u64, u64::MAX - 0xfff] {
        huge.extend_from_slice(&v.to_le_bytes());
    }
    let g = with(2 * PAGE, &huge);
    let d = MinidumpDump::open(&g[..]).unwrap();
    assert_eq!(d.ranges().len(), 1);
    // amd64 and arm64 versions.
    let mut g = f.clone();
    g[..24].copy_from_slice(b"minidump FreeBSD/amd64\0\0");
    g[24..28].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(
        open(&g),
        Err(Error::Unsupported(
            "FreeBSD/amd64 minidump version other than 1-3"
        ))
    );
    g[..24].copy_from_slice(b"minidump FreeBSD/arm64\0\0");
    assert_eq!(
        open(&g),
        Err(Error::Unsupported(
            "FreeBSD/arm64 minidump version other than 1-3"
        ))
    );
    g[24..28].copy_from_slice(&3u32.to_le_bytes());
    g[76..80].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(
        open(&g),
        Err(Error::Unsupported(
            "FreeBSD/arm64 minidump page size other than 4K or 16K"
        ))
    );
}

#[test]
fn every_flip_of_the_header_page_is_survived() {
    let f = i386(
        true,
        &[(20 * 0x1000) | 1, (17 * 0x1000) | 1],
        &[(20, 1), (17, 2)],
        true,
    );
    for i in 0..96 {
        for bit in [0x01u8, 0x80] {
            let mut g = f.clone();
            g[i] ^= bit;
            if let Ok(d) = MinidumpDump::open(&g[..]) {
                let mut b = [0u8; 64];
                for va in [KB, KB + 0x1000, 0xffff_f000] {
                    if let Ok(t) = d.translate(&d, VirtAddr(va)) {
                        let _ = d.read_phys(t.pa, &mut b);
                    }
                }
            }
        }
    }
}

/// An i386 minidump of `mem` as FreeBSD writes one: the leaf PTEs of
/// `pages` pages of KVA from [`KB`] (large pages split into 4 KiB
/// entries, as the kernel does), every page of `mem` in the bitmap
/// (version 1: bit = pfn).
fn i386_of(
    pae: bool,
    mem: &kvm_core::SparseMem,
    paging: &kvm_core::arch::i386::I386,
    pages: u64,
) -> Vec<u8> {
    let mut ptes = Vec::new();
    for i in 0..pages {
        let e = match paging.translate(mem, VirtAddr(KB + i * 0x1000)) {
            Ok(t) => {
                let mut e = (t.pa.0 & !0xfff) | 1;
                if t.prot.contains(Prot::WRITE) {
                    e |= 2;
                }
                if pae && !t.prot.contains(Prot::EXEC) {
                    e |= 1 << 63;
                }
                e
            }
            Err(_) => 0,
        };
        ptes.push(e);
    }
    let max_pfn = mem.pages().map(|(pa, _)| pa.0 / 0x1000).max().unwrap();
    let bitmap_len = (max_pfn / 64 + 1) * 8;
    let mut f = vec![0u8; PAGE];
    f[..21].copy_from_slice(b"minidump FreeBSD/i386");
    let put = |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_le_bytes());
    let esize = if pae { 8 } else { 4 };
    put(&mut f, 24, 1);
    put(&mut f, 32, bitmap_len as u32);
    put(&mut f, 36, (ptes.len() * esize) as u32);
    put(&mut f, 40, KB as u32);
    put(&mut f, 44, u32::from(pae));
    let mut bits = vec![0u8; bitmap_len as usize];
    for (pa, _) in mem.pages() {
        let pfn = (pa.0 / 0x1000) as usize;
        bits[pfn / 8] |= 1 << (pfn % 8);
    }
    f.extend_from_slice(&bits);
    f.resize(f.len().next_multiple_of(PAGE), 0);
    for e in &ptes {
        f.extend_from_slice(&e.to_le_bytes()[..esize]);
    }
    f.resize(f.len().next_multiple_of(PAGE), 0);
    for (_, bytes) in mem.pages() {
        f.extend_from_slice(bytes);
    }
    f
}

#[test]
fn i386_round_trip_through_builder_made_tables() {
    use kvm_core::arch::i386::Builder;
    for pae in [false, true] {
        let mut b = Builder::new(pae);
        // 4 KiB pages scattered over physical memory, every third left out,
        // then one large page (4 MiB without PAE, 2 MiB with).
        for i in 0..96u64 {
            if i % 3 == 2 {
                continue;
            }
            let pa = 0x40_0000 + ((i * 37) % 96) * 0x1000;
            let prot = if i % 2 == 0 {
                Prot::READ | Prot::WRITE
            } else {
                Prot::READ
            };
            b.map(VirtAddr(KB + i * 0x1000), PhysAddr(pa), 0x1000, prot)
                .unwrap();
        }
        let large = if pae { 0x20_0000 } else { 0x40_0000 };
        b.map(
            VirtAddr(KB + 0x40_0000),
            PhysAddr(0x80_0000),
            large,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
        for i in 0..(0x80_0000 + large) / 0x1000 {
            let pa = 0x40_0000 + i * 0x1000;
            b.mem_mut().write(PhysAddr(pa), &pa.to_le_bytes()).unwrap();
        }
        let (mem, paging) = b.finish();
        let pages = (0x40_0000 + large) / 0x1000;
        let f = i386_of(pae, &mem, &paging, pages);
        let d = MinidumpDump::open(&f[..]).unwrap();
        let (mut mapped, mut holes) = (0, 0);
        for i in 0..pages + 4 {
            let va = VirtAddr(KB + i * 0x1000 + 0x18);
            match (paging.translate(&mem, va), d.translate(&d, va)) {
                (Ok(want), Ok(got)) => {
                    assert_eq!((got.pa, got.len), (want.pa, 0x1000 - 0x18), "{va:?}");
                    assert_eq!(
                        got.prot.contains(Prot::WRITE),
                        want.prot.contains(Prot::WRITE)
                    );
                    let mut a = [0u8; 8];
                    let mut b = [0u8; 8];
                    mem.read_phys_exact(want.pa, &mut a).unwrap();
                    d.read_phys_exact(got.pa, &mut b).unwrap();
                    assert_eq!(a, b);
                    mapped += 1;
                }
                (Err(_), Err(e)) => {
                    assert!(matches!(e, Error::Unmapped { .. }), "{e:?}");
                    holes += 1;
                }
                (want, got) => panic!("{va:?}: tables {want:?}, minidump {got:?}"),
            }
        }
        assert_eq!(mapped, 64 + large / 0x1000, "pae {pae}");
        assert_eq!(holes, pages + 4 - mapped);
    }
}
