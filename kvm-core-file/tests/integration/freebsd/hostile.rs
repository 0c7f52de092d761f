//! Damaged minidumps: sizes beyond the file, bad dump_avail, and flips of
//! every byte of the header, dump_avail and bitmap pages; each gives its
//! error, and reads, translations and walks of what opens never panic.

use super::writer::Minidump;
use core::ops::ControlFlow;
use kvm_core::{Arch, Error, PhysAddr, PhysRead, Translate, VirtAddr};
use kvm_core_file::minidump::MinidumpDump;
use kvm_core_file::Source;

/// A small amd64 v3 minidump: one PDE with a PTE page, one 2 MiB page.
fn amd64() -> Minidump {
    let kernbase = 0xffff_fe00_0000_0000;
    let mut pmap = vec![0u8; 4096];
    pmap[..8].copy_from_slice(&(0x1000u64 | 3).to_le_bytes());
    pmap[8..16].copy_from_slice(&(0x20_0000u64 | 0x83).to_le_bytes());
    let mut pte = vec![0u8; 4096];
    pte[..8].copy_from_slice(&(0x2000u64 | 3).to_le_bytes());
    Minidump {
        arch: Arch::X86_64,
        version: 3,
        page: 4096,
        kernbase,
        dmapphys: 0,
        dmapbase: 0xffff_f800_0000_0000,
        dmapend: 0xffff_fc00_0000_0000,
        flags: 0,
        pae: false,
        msgbuf: b"<6>hello\n".to_vec(),
        avail: Some(vec![(0, 0x9f000), (0x10_0000, 0x80_0000)]),
        pmap,
        pages: vec![(0x1000, pte), (0x2000, vec![0x42; 4096])],
        bitmap_bytes: 256,
    }
}

/// A small arm64 v3 minidump with 16 KiB pages.
fn arm64() -> Minidump {
    let mut pmap = vec![0u8; 16384];
    pmap[..8].copy_from_slice(&(0x4000_4000u64 | 0x403).to_le_bytes());
    Minidump {
        arch: Arch::Aarch64,
        version: 3,
        page: 16384,
        kernbase: 0xffff_0000_0000_0000,
        dmapphys: 0x4000_0000,
        dmapbase: 0xffff_a000_0000_0000,
        dmapend: 0xffff_a000_4000_0000,
        flags: 1,
        pae: false,
        msgbuf: b"log".to_vec(),
        avail: Some(vec![(0x4000_0000, 0x4800_0000)]),
        pmap,
        pages: vec![(0x4000_4000, vec![7; 16384])],
        bitmap_bytes: 64,
    }
}

/// Opens, reads, translates and walks; whether it opened.
fn exercise(f: Vec<u8>) -> bool {
    let Ok(d) = MinidumpDump::open(f) else {
        return false;
    };
    let _ = d.msgbuf();
    let mut buf = [0u8; 300];
    for r in d.ranges().iter().take(16) {
        let _ = d.read_phys(PhysAddr(r.start), &mut buf);
        let _ = d.read_phys(PhysAddr(r.end().saturating_sub(7)), &mut buf);
    }
    let h = *d.header();
    let t = d.translator().unwrap();
    for va in [
        h.kernbase,
        h.kernbase + 0x20_1234,
        h.dmapbase + 0x2000,
        0,
        u64::MAX,
    ] {
        if let Ok(x) = t.translate(&d, VirtAddr(va)) {
            let _ = d.read_phys(x.pa, &mut buf);
        }
    }
    let mut n = 0;
    let _ = t.walk(&d, &mut |_| {
        n += 1;
        if n > 5000 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    true
}

fn err(f: Vec<u8>) -> Error {
    MinidumpDump::open(f).map(|_| ()).unwrap_err()
}

#[test]
fn the_samples_open() {
    let d = MinidumpDump::open(amd64().write()).unwrap();
    let t = d.translate(&d, VirtAddr(0xffff_fe00_0000_0010)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x2010));
    assert_eq!(d.msgbuf().unwrap(), b"<6>hello\n");
    let d = MinidumpDump::open(arm64().write()).unwrap();
    assert_eq!(d.info().page_size, Some(16384));
    let t = d.translate(&d, VirtAddr(0xffff_0000_0000_0010)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x4000_4010));
    assert!(exercise(amd64().write()) && exercise(arm64().write()));
}

#[test]
fn sizes_beyond_the_file() {
    let past = Error::Malformed("FreeBSD minidump sections extend past the end of the file");
    for (off, what) in [
        (28usize, "msgbufsize"),
        (32, "bitmapsize"),
        (36, "pmapsize"),
        (64, "dumpavailsize"),
    ] {
        for v in [0x100_0000u32, 0xffff_f000, 0xffff_fff8] {
            let mut f = amd64().write();
            f[off..off + 4].copy_from_slice(&v.to_le_bytes());
            // dump_avail is bounded before the file is: the kernel's
            // array is small.
            let want = match what {
                "dumpavailsize" => {
                    Error::Malformed("FreeBSD minidump dump_avail larger than 64 KiB")
                }
                _ => past,
            };
            assert_eq!(err(f), want, "{what} = {v:#x}");
        }
    }
    // pmapsize not a whole number of entries.
    let mut f = amd64().write();
    f[36..40].copy_from_slice(&4097u32.to_le_bytes());
    assert_eq!(
        err(f),
        Error::Malformed("FreeBSD minidump page-table section is not a whole number of entries")
    );
}

#[test]
fn bad_dump_avail() {
    let not_ascending = Error::Malformed("FreeBSD minidump dump_avail ranges are not ascending");
    for pairs in [
        vec![(0x2000, 0x1000)],
        vec![(0x10_0000, 0x20_0000), (0x1000, 0x2000)],
        vec![(0x10_0000, 0x20_0000), (0x1f_f000, 0x30_0000)],
    ] {
        let mut m = amd64();
        m.avail = Some(pairs.clone());
        m.pages.clear();
        assert_eq!(err(m.write()), not_ascending, "{pairs:x?}");
    }
    // Ranges past 2^64 pages' worth of bits.
    let mut m = amd64();
    m.avail = Some(vec![(0, u64::MAX - 0xfff), (u64::MAX - 0xfff, u64::MAX)]);
    m.pages.clear();
    let f = m.write();
    assert!(exercise(f));
}

#[test]
fn truncated_and_flipped_files_never_panic() {
    for m in [amd64(), arm64()] {
        let f = m.write();
        let page = m.page as usize;
        // Truncation at every header field boundary, and through every
        // section.
        for cut in (0..84).step_by(4).chain((0..f.len()).step_by(512)) {
            let _ = exercise(f[..cut].to_vec());
        }
        // Flips of every byte of the header page's fields, dump_avail
        // and bitmap.
        let avail = page + m.msgbuf.len().next_multiple_of(page);
        for byte in (0..84)
            .chain(avail..avail + 64)
            .chain(avail + page..avail + page + 64)
        {
            for bit in [0x01u8, 0x80] {
                let mut g = f.clone();
                g[byte] ^= bit;
                let _ = exercise(g);
            }
        }
    }
    // The magic's every byte.
    for byte in 0..24 {
        let mut f = amd64().write();
        f[byte] ^= 0x20;
        let e = err(f);
        assert!(
            matches!(e, Error::Malformed(_) | Error::Unsupported(_)),
            "byte {byte}: {e:?}"
        );
    }
}
