//! In-memory kallsyms: synthetic tables in every encoding, byte order,
//! pointer size, name-length encoding and layout, read back through a
//! `SparseMem` + `Translated` address space; the table search; corrupt
//! tables.

use crate::within;
use kvm_core::arch::x86_64::Builder;
use kvm_core::{Endian, PhysAddr, Prot, SparseMem, Translated, VirtAddr, VirtRead};
use kvm_elf::fuzz::Identity;
use kvm_elf::kallsyms::{
    self, AddrEncoding, KallsymsOptions, KallsymsTables, NameLen, KSYM_NAME_LEN,
};
use kvm_elf::write::{KallsymsBuilder, KallsymsImage, KallsymsLayout};
use kvm_elf::AddrSpace;

const WORDS: &[&str] = &[
    "do_",
    "sys_",
    "__x64_",
    "kmem_cache_",
    "alloc",
    "free",
    "init",
    "exit",
    "page",
    "task",
    "sched_",
    "irq",
    "timer",
    "net_",
    "dev",
    "lock",
    "unlock",
    "read",
    "write",
    "_fn",
];

/// A pseudo-random but fixed symbol list: `_text`/`_stext` first, text,
/// data, per-CPU symbols (type `A`, addresses from 0) when asked, and one
/// long name when `long` (more than 128 tokens after compression).
fn symbols(base: u64, n: usize, percpu: bool, long: bool) -> Vec<(u8, String, u64)> {
    let mut v = vec![
        (b'T', "_text".to_string(), base),
        (b'T', "_stext".to_string(), base + 0x1000),
    ];
    if percpu {
        for (i, name) in [
            "fixed_percpu_data",
            "cpu_number",
            "runqueues",
            "__per_cpu_end",
        ]
        .iter()
        .enumerate()
        {
            v.push((b'A', name.to_string(), 0x1000 * i as u64));
        }
    }
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut addr = base + 0x1000;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut name = String::new();
        for k in 0..(2 + x % 3) {
            name.push_str(WORDS[((x >> (8 * k)) % WORDS.len() as u64) as usize]);
        }
        name.push_str(&format!("{i}"));
        let kind = [b'T', b't', b'D', b'd', b'B', b'r', b'R', b'W'][(x >> 40) as usize % 8];
        // Some symbols share an address.
        if !x.is_multiple_of(7) {
            addr += 16 + (x >> 50) % 512;
        }
        v.push((kind, name, addr));
    }
    if long {
        // 400 characters with little repetition.
        let mut name = String::from("long_");
        let mut y = 7u32;
        while name.len() < 400 {
            y = y.wrapping_mul(1_103_515_245).wrapping_add(12345);
            name.push(b"abcdefghijklmnopqrstuvwxyz0123456789_"[(y >> 16) as usize % 37] as char);
        }
        v.push((b't', name, addr + 8));
    }
    v
}

fn build(
    e: Endian,
    ptr: u8,
    enc: AddrEncoding,
    nl: NameLen,
    layout: KallsymsLayout,
    syms: &[(u8, String, u64)],
    at: u64,
) -> KallsymsImage {
    let mut b = KallsymsBuilder::new(e, ptr)
        .encoding(enc)
        .name_len(nl)
        .layout(layout);
    for (k, n, a) in syms {
        b.push(*k, n, *a);
    }
    b.build(VirtAddr(at)).unwrap()
}

/// The image in kernel memory: real x86-64 page tables for little-endian
/// 64-bit images (one 4 KiB page at a time, physical pages scattered), an
/// identity address space otherwise. `keep` bytes of the image are
/// mapped.
fn memory(img: &KallsymsImage, e: Endian, ptr: u8, keep: usize) -> Box<dyn VirtRead> {
    let bytes = &img.bytes[..keep];
    if e == Endian::Little && ptr == 8 {
        let mut b = Builder::new(4);
        let first = img.base.0 & !0xfff;
        let mut va = first;
        let mut i = 0u64;
        while va < img.base.0 + keep as u64 {
            // Pages in reverse physical order.
            let pa = 0x4000_0000 - 0x1000 * i;
            b.map(VirtAddr(va), PhysAddr(pa), 0x1000, Prot::READ)
                .unwrap();
            b.mem_mut().touch(PhysAddr(pa));
            let lo = va.max(img.base.0);
            let hi = (va + 0x1000).min(img.base.0 + keep as u64);
            let s = (lo - img.base.0) as usize;
            let d = (hi - img.base.0) as usize;
            b.mem_mut()
                .write(PhysAddr(pa + (lo - va)), &bytes[s..d])
                .unwrap();
            va += 0x1000;
            i += 1;
        }
        let (mem, paging) = b.finish();
        Box::new(Translated::new(mem, paging))
    } else {
        let mut mem = SparseMem::new();
        mem.write(PhysAddr(img.base.0), bytes).unwrap();
        Box::new(Translated::new(mem, Identity))
    }
}

fn base_for(ptr: u8) -> u64 {
    if ptr == 8 {
        0xffff_ffff_8100_0000
    } else {
        0xc100_0000
    }
}

fn tables_at(ptr: u8) -> u64 {
    // Tables in .rodata, 0x123 bytes past a page boundary.
    if ptr == 8 {
        0xffff_ffff_8260_0123
    } else {
        0xc160_0123
    }
}

fn check_table(k: &kallsyms::Kallsyms, syms: &[(u8, String, u64)]) {
    assert_eq!(k.table.space(), AddrSpace::Runtime);
    assert_eq!(k.table.len(), syms.len());
    for (kind, name, addr) in syms {
        assert!(
            k.table
                .lookup_all(name)
                .any(|s| s.addr.0 == *addr && s.kind == *kind && s.size.is_none()),
            "{name} at {addr:#x} ({})",
            *kind as char
        );
    }
    // Reverse lookups over the decoded table.
    let (_, name, addr) = &syms[syms.len() / 2];
    let n = k.table.nearest(VirtAddr(addr + 1)).unwrap();
    assert_eq!(n.symbol.addr.0, *addr, "{name}");
}

#[test]
fn every_encoding_round_trips() {
    let mut cases = 0;
    for (e, ptr) in [
        (Endian::Little, 8),
        (Endian::Big, 8),
        (Endian::Little, 4),
        (Endian::Big, 4),
    ] {
        for enc in [
            AddrEncoding::Absolute,
            AddrEncoding::BaseRelative,
            AddrEncoding::AbsolutePercpu,
            AddrEncoding::PlaceRelative,
        ] {
            for nl in [NameLen::OneByte, NameLen::TwoByte] {
                for layout in [
                    KallsymsLayout::Old,
                    KallsymsLayout::Seqs,
                    KallsymsLayout::New,
                ] {
                    let base = base_for(ptr);
                    let percpu = enc == AddrEncoding::AbsolutePercpu;
                    // One-byte lengths cannot hold the long name.
                    let syms = symbols(base, 700, percpu, nl == NameLen::TwoByte);
                    let img = build(e, ptr, enc, nl, layout, &syms, tables_at(ptr));
                    let mem = memory(&img, e, ptr, img.bytes.len());
                    let known = [("_stext", base + 0x1000)];
                    let mut o = KallsymsOptions::new(e, ptr);
                    o.known = &known;
                    let what = format!("{e:?} {ptr} {enc:?} {nl:?} {layout:?}");
                    // Everything detected.
                    let k = kallsyms::decode(&*mem, &img.tables, &o)
                        .unwrap_or_else(|err| panic!("{what}: {err}"));
                    assert_eq!(k.encoding, enc, "{what}");
                    assert!(k.markers_checked);
                    check_table(&k, &syms);
                    // Everything given.
                    o.encoding = Some(enc);
                    o.name_len = nl;
                    let k = kallsyms::decode(&*mem, &img.tables, &o).unwrap();
                    check_table(&k, &syms);
                    // Without markers and without known symbols: detected
                    // from the data alone.
                    let t = KallsymsTables {
                        markers: None,
                        ..img.tables
                    };
                    let o = KallsymsOptions::new(e, ptr);
                    let k = kallsyms::decode(&*mem, &t, &o)
                        .unwrap_or_else(|err| panic!("{what} no markers: {err}"));
                    assert_eq!(k.encoding, enc, "{what}");
                    check_table(&k, &syms);
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 96);
}

#[test]
fn two_byte_lengths_are_really_exercised() {
    let base = base_for(8);
    let syms = symbols(base, 10, false, true);
    let img = build(
        Endian::Little,
        8,
        AddrEncoding::BaseRelative,
        NameLen::TwoByte,
        KallsymsLayout::New,
        &syms,
        tables_at(8),
    );
    let mem = memory(&img, Endian::Little, 8, img.bytes.len());
    let o = KallsymsOptions::le64();
    let k = kallsyms::decode(&*mem, &img.tables, &o).unwrap();
    assert_eq!(k.name_len, NameLen::TwoByte);
    let long = &syms.last().unwrap().1;
    assert!(long.len() >= 400);
    assert!(k.table.addr(long).is_some());
    // Read as one-byte lengths, the stream cannot be decoded consistently.
    let mut o1 = o;
    o1.name_len = NameLen::OneByte;
    assert!(kallsyms::decode(&*mem, &img.tables, &o1).is_err());
}

#[test]
fn a_known_symbol_rejects_a_wrong_table() {
    let base = base_for(8);
    let syms = symbols(base, 300, false, false);
    let img = build(
        Endian::Little,
        8,
        AddrEncoding::BaseRelative,
        NameLen::TwoByte,
        KallsymsLayout::New,
        &syms,
        tables_at(8),
    );
    let mem = memory(&img, Endian::Little, 8, img.bytes.len());
    let known = [("_stext", base + 0x2000)];
    let mut o = KallsymsOptions::le64();
    o.known = &known;
    assert!(kallsyms::decode(&*mem, &img.tables, &o).is_err());
    let known = [("no_such_symbol", base)];
    o.known = &known;
    assert!(kallsyms::decode(&*mem, &img.tables, &o).is_err());
    // Forcing a wrong encoding: absolute per-CPU finds no relative
    // entries; place-relative offsets look sorted too, but the known
    // symbol is elsewhere.
    let mut o = KallsymsOptions::le64();
    o.encoding = Some(AddrEncoding::AbsolutePercpu);
    assert!(kallsyms::decode(&*mem, &img.tables, &o).is_err());
    let known = [("_stext", base + 0x1000)];
    o.known = &known;
    o.encoding = Some(AddrEncoding::PlaceRelative);
    assert!(kallsyms::decode(&*mem, &img.tables, &o).is_err());
    o.encoding = Some(AddrEncoding::BaseRelative);
    assert!(kallsyms::decode(&*mem, &img.tables, &o).is_ok());
}

/// VMCOREINFO-style lookups build the table set.
#[test]
fn tables_from_vmcoreinfo_symbols() {
    let info = "SYMBOL(kallsyms_names)=ffffffff82600200\nSYMBOL(kallsyms_num_syms)=ffffffff82600100\nSYMBOL(kallsyms_token_table)=ffffffff82700000\nSYMBOL(kallsyms_token_index)=ffffffff82710000\nSYMBOL(kallsyms_offsets)=ffffffff82500000\nSYMBOL(kallsyms_relative_base)=ffffffff82580000\n";
    let get = |n: &str| {
        info.lines().find_map(|l| {
            let v = l.strip_prefix(&format!("SYMBOL({n})="))?;
            u64::from_str_radix(v, 16).ok()
        })
    };
    let t = KallsymsTables::from_symbols(get).unwrap();
    assert_eq!(t.names, VirtAddr(0xffff_ffff_8260_0200));
    assert_eq!(t.markers, None);
    assert_eq!(t.addresses, None);
    assert_eq!(t.relative_base, Some(VirtAddr(0xffff_ffff_8258_0000)));
    assert!(KallsymsTables::from_symbols(|_| None).is_none());
    assert!(KallsymsTables::from_symbols(|n| (n != "kallsyms_offsets").then_some(1)).is_some());
    assert!(KallsymsTables::from_symbols(|n| {
        (n != "kallsyms_offsets" && n != "kallsyms_addresses").then_some(1)
    })
    .is_none());
}

#[test]
fn search_finds_the_tables() {
    let mut cases = 0;
    for (e, ptr) in [(Endian::Little, 8), (Endian::Big, 8), (Endian::Little, 4)] {
        for enc in [
            AddrEncoding::Absolute,
            AddrEncoding::BaseRelative,
            AddrEncoding::AbsolutePercpu,
        ] {
            for layout in [
                KallsymsLayout::Old,
                KallsymsLayout::Seqs,
                KallsymsLayout::New,
            ] {
                for wide in [false, true] {
                    if wide && layout != KallsymsLayout::Old {
                        continue; // only old kernels had `unsigned long` counts
                    }
                    let base = base_for(ptr);
                    let syms = symbols(base, 900, enc == AddrEncoding::AbsolutePercpu, true);
                    let mut b = KallsymsBuilder::new(e, ptr)
                        .encoding(enc)
                        .layout(layout)
                        .wide_counts(wide);
                    for (k, n, a) in &syms {
                        b.push(*k, n, *a);
                    }
                    let region = tables_at(ptr) & !0xfff;
                    let at = region + 0x1_2008;
                    let img = b.build(VirtAddr(at)).unwrap();
                    // The region: pseudo-random bytes, zeros, the tables, more bytes.
                    let mut mem = SparseMem::new();
                    let mut junk = vec![0u8; 0x1_2008];
                    let mut x = 99u32;
                    for (i, j) in junk.iter_mut().enumerate() {
                        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        *j = if (i / 4096) % 2 == 0 {
                            (x >> 24) as u8
                        } else {
                            0
                        };
                    }
                    mem.write(PhysAddr(region), &junk).unwrap();
                    mem.write(PhysAddr(at), &img.bytes).unwrap();
                    let end = at + img.bytes.len() as u64;
                    mem.write(PhysAddr(end), &junk[..0x3000]).unwrap();
                    let space = Translated::new(mem, Identity);
                    let len = end + 0x3000 - region;
                    let known = [("_stext", base + 0x1000)];
                    let mut o = KallsymsOptions::new(e, ptr);
                    o.known = &known;
                    let what = format!("{e:?} {ptr} {enc:?} {layout:?} wide={wide}");
                    let (t, k) = within(20, || kallsyms::search(&space, VirtAddr(region), len, &o))
                        .unwrap_or_else(|err| panic!("{what}: {err}"));
                    assert_eq!(t, img.tables, "{what}");
                    assert_eq!(k.encoding, enc, "{what}");
                    check_table(&k, &syms);
                    // Without known symbols the structure alone decides.
                    let o = KallsymsOptions::new(e, ptr);
                    let (t, _) = kallsyms::search(&space, VirtAddr(region), len, &o)
                        .unwrap_or_else(|err| panic!("{what} unknown: {err}"));
                    assert_eq!(t, img.tables, "{what}");
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 36);
}

#[test]
fn search_without_tables_fails_cleanly() {
    let mut mem = SparseMem::new();
    let junk: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    mem.write(PhysAddr(0x10_0000), &junk).unwrap();
    let space = Translated::new(mem, Identity);
    let o = KallsymsOptions::le64();
    assert!(within(10, || kallsyms::search(
        &space,
        VirtAddr(0x10_0000),
        400_000,
        &o
    ))
    .is_err());
    assert!(kallsyms::search(&space, VirtAddr(0), 1 << 40, &o).is_err());
    assert!(kallsyms::search(&space, VirtAddr(u64::MAX - 10), 100, &o).is_err());
}

/// A base-relative image and what is where in it.
fn sample() -> (KallsymsImage, Vec<(u8, String, u64)>) {
    let base = base_for(8);
    let syms = symbols(base, 600, false, true);
    let img = build(
        Endian::Little,
        8,
        AddrEncoding::BaseRelative,
        NameLen::TwoByte,
        KallsymsLayout::New,
        &syms,
        tables_at(8),
    );
    (img, syms)
}

fn off(img: &KallsymsImage, va: VirtAddr) -> usize {
    (va.0 - img.base.0) as usize
}

/// Memory that ends exactly at the end of a byte slice (page-based
/// memories read zeros up to the page end).
struct Exact<'a> {
    base: u64,
    bytes: &'a [u8],
}

impl VirtRead for Exact<'_> {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> kvm_core::Result<usize> {
        let un = kvm_core::Error::Unmapped { va: va.0 };
        let off = va.0.checked_sub(self.base).ok_or(un)? as usize;
        let src = self.bytes.get(off..).filter(|s| !s.is_empty()).ok_or(un)?;
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
}

fn decode_bytes(img: &KallsymsImage, bytes: &[u8], t: &KallsymsTables) -> kvm_core::Result<usize> {
    let mem = Exact {
        base: img.base.0,
        bytes,
    };
    within(10, || kallsyms::decode(&mem, t, &KallsymsOptions::le64())).map(|k| k.table.len())
}

#[test]
fn truncated_tables_are_errors() {
    let (img, syms) = sample();
    assert_eq!(decode_bytes(&img, &img.bytes, &img.tables), Ok(syms.len()));
    // The decoder needs everything up to the end of relative_base (the
    // sequence table after it is not read).
    let needed = off(&img, img.tables.relative_base.unwrap()) + 8;
    for keep in (0..needed).step_by(61).chain([needed - 1]) {
        assert!(
            decode_bytes(&img, &img.bytes[..keep], &img.tables).is_err(),
            "decoded from {keep} of {} bytes",
            img.bytes.len()
        );
    }
}

#[test]
fn corrupt_tables_are_errors() {
    let (img, syms) = sample();
    let t = img.tables;
    let n = syms.len() as u32;
    let set32 =
        |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());

    // Wrong counts: 0, above the cap, one too few, one too many, a marker's worth more.
    for bad in [0, u32::MAX, 1 << 23, n - 1, n + 1, n + 256] {
        let mut b = img.bytes.clone();
        set32(&mut b, off(&img, t.num_syms), bad);
        assert!(decode_bytes(&img, &b, &t).is_err(), "num_syms {bad}");
    }
    // A token index beyond the token table.
    let mut b = img.bytes.clone();
    let ti = off(&img, t.token_index);
    b[ti + 10..ti + 12].copy_from_slice(&0xfff0u16.to_le_bytes());
    assert!(decode_bytes(&img, &b, &t).is_err());
    // Token strings without their NULs.
    let mut b = img.bytes.clone();
    let tt = off(&img, t.token_table);
    for x in &mut b[tt..ti] {
        *x = b'a';
    }
    assert!(decode_bytes(&img, &b, &t).is_err());
    // A name of length 0; a name longer than KSYM_NAME_LEN.
    let nm = off(&img, t.names);
    let mut b = img.bytes.clone();
    b[nm] = 0;
    assert!(decode_bytes(&img, &b, &t).is_err());
    let mut b = img.bytes.clone();
    b[nm] = 0xff;
    b[nm + 1] = 0x7f;
    assert!(0x7f_u64 << 7 > KSYM_NAME_LEN as u64);
    assert!(decode_bytes(&img, &b, &t).is_err());
    // A wrong marker.
    let mut b = img.bytes.clone();
    let mk = off(&img, t.markers.unwrap());
    set32(&mut b, mk + 4, 12345);
    assert!(decode_bytes(&img, &b, &t).is_err());
    // Offsets out of order, and an offset far out of range.
    let of = off(&img, t.offsets.unwrap());
    let mut b = img.bytes.clone();
    let (x, y) = (of + 4 * 100, of + 4 * 101);
    let vx: [u8; 4] = b[x..x + 4].try_into().unwrap();
    set32(&mut b, x, 0x7fff_ffff);
    assert!(decode_bytes(&img, &b, &t).is_err());
    set32(&mut b, x, u32::from_le_bytes(vx));
    b.copy_within(y..y + 4, x);
    set32(&mut b, y, 0);
    assert!(decode_bytes(&img, &b, &t).is_err());
    // Tables pointing outside memory, or wrapping around it.
    for bad in [
        KallsymsTables {
            relative_base: Some(VirtAddr(0x1000)),
            ..t
        },
        KallsymsTables {
            offsets: Some(VirtAddr(u64::MAX - 8)),
            ..t
        },
        KallsymsTables {
            names: VirtAddr(u64::MAX - 1),
            ..t
        },
        KallsymsTables {
            token_table: VirtAddr(0x1000),
            ..t
        },
        KallsymsTables {
            offsets: None,
            addresses: None,
            ..t
        },
    ] {
        assert!(decode_bytes(&img, &img.bytes, &bad).is_err(), "{bad:?}");
    }
    // A bad pointer size.
    let mem = memory(&img, Endian::Little, 8, img.bytes.len());
    assert!(kallsyms::decode(&*mem, &t, &KallsymsOptions::new(Endian::Little, 2)).is_err());
}

#[test]
fn bit_flips_never_panic_or_hang() {
    let base = base_for(8);
    let syms = symbols(base, 40, true, false);
    let img = build(
        Endian::Little,
        8,
        AddrEncoding::AbsolutePercpu,
        NameLen::TwoByte,
        KallsymsLayout::Old,
        &syms,
        tables_at(8),
    );
    within(60, || {
        for i in 0..img.bytes.len() {
            let mut b = img.bytes.clone();
            b[i] ^= 1 << (i % 8);
            let mut mem = SparseMem::new();
            mem.write(PhysAddr(img.base.0), &b).unwrap();
            let space = Translated::new(mem, Identity);
            let _ = kallsyms::decode(&space, &img.tables, &KallsymsOptions::le64());
        }
    });
}

#[test]
fn name_index_finds_what_the_decoded_table_does() {
    use kallsyms::NameIndex;
    let mut cases = 0;
    for (e, ptr) in [
        (Endian::Little, 8),
        (Endian::Big, 8),
        (Endian::Little, 4),
        (Endian::Big, 4),
    ] {
        for (layout, enc) in [
            (KallsymsLayout::Seqs, AddrEncoding::Absolute),
            (KallsymsLayout::Seqs, AddrEncoding::BaseRelative),
            (KallsymsLayout::Seqs, AddrEncoding::AbsolutePercpu),
            (KallsymsLayout::New, AddrEncoding::Absolute),
            (KallsymsLayout::New, AddrEncoding::AbsolutePercpu),
            (KallsymsLayout::New, AddrEncoding::PlaceRelative),
        ] {
            let base = base_for(ptr);
            let mut syms = symbols(base, 1500, enc == AddrEncoding::AbsolutePercpu, true);
            // Names shared by a local and a global symbol, and by two
            // locals: the global one, else the first, is preferred.
            syms.push((b't', "shared".into(), base + 0x2000));
            syms.push((b'T', "shared".into(), base + 0x9000));
            syms.push((b'd', "twice".into(), base + 0x3000));
            syms.push((b'd', "twice".into(), base + 0x8000));
            syms.sort_by_key(|s| s.2);
            let what = format!("{e:?} {ptr} {enc:?} {layout:?}");
            let img = build(e, ptr, enc, NameLen::TwoByte, layout, &syms, tables_at(ptr));
            let mem = memory(&img, e, ptr, img.bytes.len());
            let known = [("_stext", base + 0x1000)];
            let mut o = KallsymsOptions::new(e, ptr);
            o.known = &known;
            let full = kallsyms::decode(&*mem, &img.tables, &o).unwrap().table;
            // As VMCOREINFO gives the tables: no markers.
            let t = KallsymsTables {
                markers: None,
                ..img.tables
            };
            let idx = NameIndex::new(&*mem, &t, &o).unwrap_or_else(|err| panic!("{what}: {err}"));
            assert_eq!(idx.encoding(), enc, "{what}");
            assert_eq!(idx.len() as usize, syms.len());
            for (_, name, _) in &syms {
                let want = full.lookup(name).map(|s| (s.addr, s.kind));
                assert_eq!(idx.lookup(&*mem, name).unwrap(), want, "{what} {name}");
            }
            assert_eq!(
                idx.lookup(&*mem, "shared").unwrap(),
                Some((VirtAddr(base + 0x9000), b'T'))
            );
            assert_eq!(
                idx.lookup(&*mem, "twice").unwrap(),
                Some((VirtAddr(base + 0x3000), b'd'))
            );
            for absent in ["", "a", "shared_", "zzzz", "_stex", "~"] {
                assert_eq!(idx.lookup(&*mem, absent).unwrap(), None, "{what} {absent}");
            }
            // By address: as the decoded table's first alias, just at,
            // and past every symbol.
            for &(_, _, a) in &syms {
                for probe in [a, a + 1, a.wrapping_sub(1)] {
                    let want = full
                        .nearest_first(VirtAddr(probe))
                        .map(|n| (n.symbol.name.to_string(), n.symbol.addr, n.symbol.kind));
                    assert_eq!(
                        idx.nearest(&*mem, probe).unwrap(),
                        want,
                        "{what} {probe:#x}"
                    );
                }
            }
            assert_eq!(
                idx.nearest(&*mem, 0).unwrap(),
                full.nearest_first(VirtAddr(0)).map(|n| (
                    n.symbol.name.to_string(),
                    n.symbol.addr,
                    n.symbol.kind
                ))
            );
            // Without a known symbol to check it, or without the sequence
            // table (kernels before 6.2), there is no index.
            assert!(NameIndex::new(&*mem, &t, &KallsymsOptions::new(e, ptr)).is_err());
            let old = build(
                e,
                ptr,
                enc,
                NameLen::TwoByte,
                KallsymsLayout::Old,
                &syms,
                tables_at(ptr),
            );
            let old_mem = memory(&old, e, ptr, old.bytes.len());
            assert!(
                NameIndex::new(&*old_mem, &old.tables, &o).is_err(),
                "{what}"
            );
            // A wrong known address rejects it.
            let wrong = [("_stext", base + 0x1001)];
            let mut w = KallsymsOptions::new(e, ptr);
            w.known = &wrong;
            assert!(NameIndex::new(&*mem, &t, &w).is_err());
            cases += 1;
        }
    }
    assert_eq!(cases, 24);
}

#[test]
fn name_index_on_clang_lto_order() {
    use kallsyms::NameIndex;
    // scripts/kallsyms of 6.2 on clang-LTO kernels sorts by the name cut at
    // its first '.', so `foo` sits among `foo.*` by address.
    let base = base_for(8);
    let mut syms = symbols(base, 600, false, false);
    let top = syms.iter().map(|s| s.2).max().unwrap();
    for (i, name) in [
        "foo.constprop.0",
        "foo",
        "foo.isra.1",
        "foo_bar",
        "fo",
        "foo.llvm.77",
    ]
    .iter()
    .enumerate()
    {
        syms.push((b't', name.to_string(), top + 0x100 * (i as u64 + 1)));
    }
    let mut b = KallsymsBuilder::new(Endian::Little, 8)
        .layout(KallsymsLayout::Seqs)
        .lto_sort(true);
    for (k, n, a) in &syms {
        b.push(*k, n, *a);
    }
    let img = b.build(VirtAddr(tables_at(8))).unwrap();
    let mem = memory(&img, Endian::Little, 8, img.bytes.len());
    let known = [("_stext", base + 0x1000)];
    let mut o = KallsymsOptions::le64();
    o.known = &known;
    let t = KallsymsTables {
        markers: None,
        ..img.tables
    };
    let idx = NameIndex::new(&*mem, &t, &o).unwrap();
    for (name, at) in [("foo", 2), ("foo_bar", 4), ("fo", 5)] {
        assert_eq!(
            idx.lookup(&*mem, name).unwrap(),
            Some((VirtAddr(top + 0x100 * at), b't')),
            "{name}"
        );
    }
    assert_eq!(idx.lookup(&*mem, "fooo").unwrap(), None);
}
