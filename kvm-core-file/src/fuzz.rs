//! Entry points for the fuzz targets in `fuzz/`, kept in the library so
//! that regressions replay as ordinary tests. Each must never panic, hang
//! or allocate by a size read from the input.

use crate::{ReadAt, Source};
use alloc::vec::Vec;
use kvm_core::PhysAddr;

/// Reads a little of every range of an opened dump, touching every
/// accessor.
fn exercise(d: &dyn Source) {
    let mut buf = [0u8; 256];
    for r in d.ranges().iter().take(64) {
        let _ = d.read_phys(PhysAddr(r.start), &mut buf);
        let _ = d.read_phys(PhysAddr(r.end().saturating_sub(8)), &mut buf);
    }
    let _ = d.info().kernel_release();
}

/// Any input through content detection ([`crate::open`]).
pub fn open(data: &[u8]) {
    if let Ok(d) = crate::open(Vec::from(data)) {
        exercise(&*d);
    }
}

/// An ELF core.
pub fn elf(data: &[u8]) {
    if let Ok(d) = crate::elf::ElfDump::open(data) {
        exercise(&d);
        let mut b = [0u8; 64];
        for r in d.virt_ranges().iter().take(16) {
            let _ = kvm_core::VirtRead::read_virt(&d, kvm_core::VirtAddr(r.start), &mut b);
        }
    }
}

/// A LiME image.
pub fn lime(data: &[u8]) {
    if let Ok(d) = crate::lime::open(data) {
        exercise(&d);
    }
}

/// A FreeBSD minidump: its header, bitmap and page-table section, then
/// translations of addresses in each region it covers.
pub fn freebsd_minidump(data: &[u8]) {
    use kvm_core::{Translate, VirtAddr};
    if let Ok(d) = crate::minidump::MinidumpDump::open(data) {
        exercise(&d);
        let _ = d.msgbuf();
        let h = *d.header();
        for va in [
            h.kernbase,
            h.kernbase.wrapping_add(0x20_1000),
            h.dmapbase,
            u64::MAX - 0xfff,
        ] {
            if let Ok(t) = d.translate(&d, VirtAddr(va)) {
                let mut b = [0u8; 16];
                let _ = kvm_core::PhysRead::read_phys(&d, t.pa, &mut b);
            }
        }
        // The walk, in increasing VA order, for its first runs.
        let (mut n, mut last) = (0u32, None);
        let _ = d.walk(&d, &mut |r| {
            assert!(last.is_none_or(|l| r.va.0 >= l), "walk out of order");
            last = Some(r.va.0.saturating_add(r.len));
            n += 1;
            if n < 2048 {
                core::ops::ControlFlow::Continue(())
            } else {
                core::ops::ControlFlow::Break(())
            }
        });
    }
}

/// A FreeBSD dump-device image: the `kerneldumpheader` leader (parsed,
/// re-encoded and parsed again), the trailer, and the body it opens.
pub fn freebsd_dumpheader(data: &[u8]) {
    use crate::freebsd::dumpheader::{DeviceDump, KernelDumpHeader, HEADER_SIZE};
    if let Some(b) = data.get(..HEADER_SIZE) {
        let mut h = [0u8; HEADER_SIZE];
        h.copy_from_slice(b);
        if let Ok(k) = KernelDumpHeader::parse(&h) {
            // Strings are read lossily and cut to their field, so only
            // the numbers must survive a round trip.
            let again = KernelDumpHeader::parse(&k.encode()).expect("an encoded header parses");
            let nums = |h: &KernelDumpHeader| {
                let b = h.encode();
                let mut n = b;
                n[20..32].fill(0);
                // The strings: v1 60..508, v4 64..495.
                n[60..if h.version == 1 { 508 } else { 495 }].fill(0);
                n[508..].fill(0);
                (
                    h.magic,
                    h.version,
                    h.dump_length,
                    h.dump_extent,
                    h.block_size,
                    n,
                )
            };
            assert_eq!(nums(&again), nums(&k));
            let _ = (k.body_offset(), k.trailer_offset(), k.encode_block().len());
        }
    }
    if let Ok(d) = DeviceDump::open(Vec::from(data)) {
        exercise(&d);
        let _ = (d.header(), d.body().info());
        if let Some(t) = d.translator() {
            for va in [
                0u64,
                0xffff_fe00_0000_0000,
                0xffff_f800_0000_0000,
                0x80_0000,
            ] {
                if let Ok(x) = t.translate(&d, kvm_core::VirtAddr(va)) {
                    let mut b = [0u8; 16];
                    let _ = kvm_core::PhysRead::read_phys(&d, x.pa, &mut b);
                }
            }
        }
    }
}

/// VMCOREINFO text and an ELF note stream.
pub fn notes(data: &[u8]) {
    if let Ok(v) = crate::VmCoreInfo::parse(data) {
        let _ = (
            v.osrelease(),
            v.page_size(),
            v.kernel_offset(),
            v.symbol("swapper_pg_dir"),
            v.number("phys_base"),
        );
    }
    for e in [kvm_core::Endian::Little, kvm_core::Endian::Big] {
        for n in crate::notes::Notes::new(data, e).take(1024) {
            let Ok(n) = n else { break };
            for a in [crate::Arch::X86_64, crate::Arch::Aarch64, crate::Arch::I386] {
                let _ = crate::notes::prstatus(a, n.desc, e);
            }
            let _ = crate::notes::qemu_cpu_state(n.desc);
        }
    }
    let _ = data.size();
}

/// A kdump-compressed file, plain or flattened: headers, bitmaps, rank
/// index, descriptors and page decoding, through [`crate::KdumpDump`].
pub fn kdump(data: &[u8]) {
    use kvm_core::PhysRead as _;
    let Ok(d) = crate::KdumpDump::open(data) else {
        return;
    };
    exercise(&d);
    let _ = d.eraseinfo();
    let mut page = [0u8; 4096];
    // Every state the bitmaps give for the first PFNs; reads that start
    // inside a page and cross into the next.
    for pfn in 0..d.max_pfn().min(64) {
        if let crate::kdump::PageState::Dumpable(i) = d.page_state(pfn) {
            let _ = d.page_desc(i);
        }
        let pa = pfn.saturating_mul(d.block_size()).saturating_add(7);
        let _ = d.read_phys(PhysAddr(pa), &mut page[..100]);
    }
    for r in d.ranges().iter().take(8) {
        let _ = d.read_phys(PhysAddr(r.end().saturating_sub(16)), &mut page);
    }
    let _ = d.read_phys(PhysAddr(u64::MAX - 3), &mut page[..8]);
    let _ = d.memory_ranges().len();
}

/// An OpenBSD kcore: headers, CPU data, segment list, reads through it,
/// and the translator (the direct map and the table walk).
pub fn openbsd_kcore(data: &[u8]) {
    use crate::openbsd::{DirectMap, KcoreDump};
    use kvm_core::PhysRead as _;
    let Ok(d) = KcoreDump::open(data) else {
        return;
    };
    exercise(&d);
    let _ = (
        d.ptdpaddr(),
        d.segments().len(),
        d.paging(),
        d.data_seg_size(),
    );
    let mut b = [0u8; 16];
    if let Some(t) = Source::translator(&d) {
        for va in [
            0,
            0xc000_0000,
            0xffff_8000_0000_0000,
            DirectMap::FOUR_SLOTS.base + 0x1ff8,
            DirectMap::FOUR_SLOTS.end - 1,
            0xffff_ffff_8000_0000,
            u64::MAX,
        ] {
            if let Ok(x) = t.translate(&d, kvm_core::VirtAddr(va)) {
                let _ = d.read_phys(x.pa, &mut b);
            }
        }
    }
    let d = d.with_direct_map(DirectMap::SLOT_509);
    if let Some(t) = Source::translator(&d) {
        let _ = t.translate(&d, kvm_core::VirtAddr(DirectMap::SLOT_509.base));
    }
}
