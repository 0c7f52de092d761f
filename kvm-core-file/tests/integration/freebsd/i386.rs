//! i386 minidumps, which no real dump exists for: one derived from
//! libkdumpfile's ia32 PAE translation vector, and minidumps of tables
//! built with kvm-core's i386 `Builder`, whose translations and walks must
//! equal those of the tables themselves.

use super::writer::Minidump;
use core::ops::ControlFlow;
use kvm_core::arch::i386::{Builder, I386};
use kvm_core::{
    Error, PageRun, PhysAddr, PhysRead, PhysReadExt, Prot, SparseMem, Translate, VirtAddr,
};
use kvm_core_file::minidump::MinidumpDump;
use kvm_core_file::Source;

/// libkdumpfile's xlat-linux-ia32-pae.data, read from kvm-core's test data
/// (see its README.md and SOURCE.md): `@0xADDR` then one 64-bit hex entry
/// a line.
fn vector() -> SparseMem {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../kvm-core/tests/data/libkdumpfile-xlat/xlat-linux-ia32-pae.data"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut mem = SparseMem::new();
    let mut at = 0u64;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(a) = line.strip_prefix("@0x") {
            at = u64::from_str_radix(a, 16).unwrap();
            continue;
        }
        let v = u64::from_str_radix(line, 16).unwrap();
        mem.write(PhysAddr(at), &v.to_le_bytes()).unwrap();
        at += 8;
    }
    mem
}

/// The raw PTE mapping `va` under PAE tables at `root`, as FreeBSD's
/// minidumpsys writes it (4 KiB entries only here), else 0.
fn raw_pte(mem: &SparseMem, root: u64, va: u64) -> u64 {
    let frame = |e: u64| e & 0x000f_ffff_ffff_f000;
    let Ok(pdpte) = mem.read_u64_le(PhysAddr(root + (va >> 30) * 8)) else {
        return 0;
    };
    if pdpte & 1 == 0 {
        return 0;
    }
    let Ok(pde) = mem.read_u64_le(PhysAddr(frame(pdpte) + ((va >> 21) & 511) * 8)) else {
        return 0;
    };
    if pde & 1 == 0 || pde & 0x80 != 0 {
        return 0;
    }
    mem.read_u64_le(PhysAddr(frame(pde) + ((va >> 12) & 511) * 8))
        .unwrap_or(0)
}

#[test]
fn libkdumpfile_ia32_pae_vector_as_a_minidump() {
    let mem = vector();
    let root = 0x92_6000;
    let tables = I386::new_pae(PhysAddr(root));
    // A kernel at 0xc0000000 (the vector's Linux 3 GiB split), 4 MiB of
    // PTEs derived from its tables.
    let kernbase = 0xc000_0000u64;
    let mut md = Minidump::i386(true, 2, kernbase);
    md.avail = Some(vec![(0, 0x100_0000)]);
    for i in 0..1024u64 {
        md.pmap
            .extend_from_slice(&raw_pte(&mem, root, kernbase + i * 4096).to_le_bytes());
    }
    // The page the vector maps (physical 0), with content.
    md.pages = vec![(0, (0..4096).map(|i| i as u8).collect())];
    md.bitmap_bytes = 512;
    let d = MinidumpDump::open(md.write()).unwrap();
    assert!(d.header().pae);
    // What libkdumpfile expects: 0xc0000000 → physical 0, one page,
    // writable, not executable (PTE 0x8000000000000163).
    let t = d.translate(&d, VirtAddr(0xc000_0123)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x123));
    assert_eq!(t.prot, Prot::READ | Prot::WRITE);
    assert_eq!(d.read_u8(t.pa), Ok(0x23));
    // Every page of the 4 MiB agrees with the vector's own tables.
    let mut mapped = 0;
    for i in 0..1024u64 {
        let va = VirtAddr(kernbase + i * 4096 + 0x10);
        match (d.translate(&d, va), tables.translate(&mem, va)) {
            (Ok(a), Ok(b)) => {
                assert_eq!((a.pa, a.prot), (b.pa, b.prot), "{va:?}");
                mapped += 1;
            }
            (Err(Error::Unmapped { .. }), Err(_)) => {}
            (a, b) => panic!("{va:?}: minidump {a:?}, tables {b:?}"),
        }
    }
    assert_eq!(mapped, 1);
    // Below kernbase and past the section: not in the minidump.
    assert_eq!(
        d.translate(&d, VirtAddr(0xbfff_f000)),
        Err(Error::Unmapped { va: 0xbfff_f000 })
    );
    assert_eq!(
        d.translate(&d, VirtAddr(0xc040_0000)),
        Err(Error::Unmapped { va: 0xc040_0000 })
    );
    assert_eq!(
        d.translate(&d, VirtAddr(1 << 32)),
        Err(Error::NonCanonical { va: 1 << 32 })
    );
}

/// Every 4 KiB page of `run`.
fn pages_of(r: PageRun) -> impl Iterator<Item = (u64, u64, Prot)> {
    (0..r.len / 4096).map(move |k| (r.va.0 + k * 4096, r.pa.0 + k * 4096, r.prot))
}

/// A minidump of `b`'s tables from `kernbase` over `span` bytes: the PTE
/// array (large pages split into PTEs, as the kernel writes them), and
/// every page the tables map.
fn minidump_of(pae: bool, mem: &SparseMem, paging: I386, kernbase: u64, span: u64) -> Minidump {
    let mut md = Minidump::i386(pae, 2, kernbase);
    md.avail = Some(vec![(0, 0x80_0000), (0x100_0000, 0x200_0000)]);
    md.bitmap_bytes = 1024;
    let mut pages = std::collections::BTreeMap::new();
    for i in 0..span / 4096 {
        let va = kernbase + i * 4096;
        let e = match paging.translate(mem, VirtAddr(va)) {
            Ok(t) => {
                let mut e = (t.pa.0 & !0xfff) | 1;
                if t.prot.contains(Prot::WRITE) {
                    e |= 2;
                }
                if t.prot.contains(Prot::USER) {
                    e |= 4;
                }
                if pae && !t.prot.contains(Prot::EXEC) {
                    e |= 1 << 63;
                }
                let mut page = vec![0u8; 4096];
                mem.read_phys(PhysAddr(t.pa.0 & !0xfff), &mut page).unwrap();
                pages.insert(t.pa.0 & !0xfff, page);
                e
            }
            Err(_) => 0,
        };
        if pae {
            md.pmap.extend_from_slice(&e.to_le_bytes());
        } else {
            md.pmap.extend_from_slice(&(e as u32).to_le_bytes());
        }
    }
    md.pages = pages.into_iter().collect();
    md
}

#[test]
fn builder_tables_round_trip_translations_and_walks() {
    for pae in [false, true] {
        let mut b = Builder::new(pae);
        let kernbase = 0x80_0000u64;
        let large = if pae { 0x20_0000 } else { 0x40_0000 };
        let rw = Prot::READ | Prot::WRITE;
        for (va, pa, size, prot) in [
            (kernbase, 0x30_0000, 0x1000, rw),
            (
                kernbase + 0x1000,
                0x31_0000,
                0x1000,
                Prot::READ | Prot::EXEC,
            ),
            (kernbase + 0x5000, 0x100_0000, 0x1000, rw | Prot::USER),
            (kernbase + 0x40_0000, 0x140_0000, large, rw),
            (kernbase + 0x80_0000, 0x7f_f000, 0x1000, Prot::READ),
        ] {
            b.map(VirtAddr(va), PhysAddr(pa), size, prot).unwrap();
            for k in 0..size / 4096 {
                let (v, p) = (va + k * 4096, pa + k * 4096);
                b.mem_mut()
                    .write(PhysAddr(p + 8), &v.to_le_bytes())
                    .unwrap();
            }
        }
        let (mem, paging) = b.finish();
        let span = 0x100_0000;
        let md = minidump_of(pae, &mem, paging, kernbase, span);
        let d = MinidumpDump::open(md.write()).unwrap();
        assert_eq!(d.header().pae, pae);
        // The walks agree page for page.
        let mut want = Vec::new();
        paging
            .walk(&mem, &mut |r| {
                if r.va.0 >= kernbase && r.va.0 < kernbase + span {
                    want.extend(pages_of(r));
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        let mut got = Vec::new();
        d.walk(&d, &mut |r| {
            got.extend(pages_of(r));
            ControlFlow::Continue(())
        })
        .unwrap();
        let norm = |v: &mut Vec<(u64, u64, Prot)>| {
            for p in v.iter_mut() {
                // Non-PAE i386 has no NX: everything executes.
                if !pae {
                    p.2 = p.2 | Prot::EXEC;
                }
            }
        };
        norm(&mut want);
        norm(&mut got);
        let first = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            got.len() == want.len() && first.is_none(),
            "pae {pae}: {} vs {} pages, first difference at {first:?}: {:x?} vs {:x?}",
            got.len(),
            want.len(),
            first.map(|i| got[i]),
            first.map(|i| want[i]),
        );
        assert!(want.len() > 500);
        // Every mapped page translates alike and reads its content.
        for &(va, pa, _) in &want {
            let t = d.translate(&d, VirtAddr(va + 8)).unwrap();
            assert_eq!(t.pa, PhysAddr(pa + 8));
            let mut a = [0u8; 4096];
            let mut e = [0u8; 4096];
            d.read_phys_exact(PhysAddr(pa), &mut a).unwrap();
            mem.read_phys_exact(PhysAddr(pa), &mut e).unwrap();
            assert_eq!(a, e, "page {pa:#x}");
        }
        // Every dumped page is a range.
        let held: u64 = d.ranges().iter().map(|r| r.len).sum();
        assert_eq!(held, md.pages.len() as u64 * 4096);
    }
}
