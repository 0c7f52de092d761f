//! The real LLDB dumps at this level: minidump headers and layouts, kernel
//! addresses through each minidump's own translator, the walk of its
//! mappings, and the amd64 full dump (an ELF core) through the kernel's
//! own page tables from `KPML4phys`.
//!
//! Symbol values (`nm` of the kernels in kvm-elf/tests/data, or
//! /work/shared's kernel-arm64.yaml): amd64 `hz` 0xffffffff81cd4c0c,
//! `KPML4phys` 0xffffffff81d47eb8, `kernbase` 0xffffffff80000000; arm64
//! `hz` 0xffff000000e2651c.

use super::data::{unpack, AMD64_FULL, AMD64_MINI, ARM64_MINI};
use core::ops::ControlFlow;
use kvm_core::arch::x86_64::X86_64;
use kvm_core::{Arch, Error, PhysAddr, PhysReadExt, Translate, VirtAddr};
use kvm_core_file::elf::ElfDump;
use kvm_core_file::minidump::MinidumpDump;
use kvm_core_file::{FileReader, OsHint, Source};

const AMD64_HZ: u64 = 0xffff_ffff_81cd_4c0c;
const AMD64_KPML4PHYS: u64 = 0xffff_ffff_81d4_7eb8;
const AMD64_KERNBASE: u64 = 0xffff_ffff_8000_0000;
const ARM64_HZ: u64 = 0xffff_0000_00e2_651c;

fn open(d: (&str, u64)) -> MinidumpDump<FileReader> {
    MinidumpDump::open(FileReader::open(unpack(d)).unwrap()).unwrap()
}

/// An i32 at `va` through the source's own translator.
fn read_i32(src: &dyn Source, va: u64) -> i32 {
    let t = src
        .translator()
        .expect("a minidump translates")
        .translate(src, VirtAddr(va))
        .unwrap();
    let mut b = [0u8; 4];
    src.read_phys_exact(t.pa, &mut b).unwrap();
    i32::from_le_bytes(b)
}

#[test]
fn amd64_minidump() {
    let d = open(AMD64_MINI);
    let h = d.header();
    assert_eq!((h.arch, h.version, h.page), (Arch::X86_64, 3, 4096));
    assert_eq!(
        (h.msgbufsize, h.bitmapsize, h.pmapsize, h.dumpavailsize),
        (0x17fb8, 0x1000, 0x7f_f000, 0x1000)
    );
    assert_eq!(
        (h.kernbase, h.dmapbase, h.dmapend),
        (
            0xffff_fe00_0000_0000,
            0xffff_f800_0000_0000,
            0xffff_fc00_0000_0000
        )
    );
    let info = d.info();
    assert_eq!(info.format, "freebsd-minidump");
    assert_eq!(info.arch, Some(Arch::X86_64));
    assert_eq!(info.page_size, Some(4096));
    assert_eq!(info.os, Some(OsHint::FreeBsd));
    // The bitmap marks 24,144 pages; the minimised file holds 22,751 and
    // a half: it opens, marked incomplete.
    assert!(info.incomplete, "{:?}", info.remarks);
    let held: u64 = d.ranges().iter().map(|r| r.len).sum();
    assert_eq!(held, 22_751 * 4096 + 2048);
    assert_eq!(read_i32(&d, AMD64_HZ), 100);
    // The message buffer section: struct msgbuf's magic (MSG_MAGIC
    // 0x063062) heads it.
    let msgbuf = d.msgbuf().unwrap();
    assert_eq!(msgbuf.len(), 0x17fb8);
    // Addresses below kernbase outside the direct map are not in a
    // minidump.
    let t = d.translator().unwrap();
    assert_eq!(
        t.translate(&d, VirtAddr(0x40_0000)),
        Err(Error::Unmapped { va: 0x40_0000 })
    );
    // The direct map: va − dmapbase.
    let dm = t.translate(&d, VirtAddr(h.dmapbase + 0x1234)).unwrap();
    assert_eq!(dm.pa, PhysAddr(0x1234));
    let (kernel, dmap) = walk_agrees(&d, 20_000);
    eprintln!("amd64 minidump walk: {kernel} kernel runs, {dmap} direct-map pages");
    assert!(kernel > 1000, "{kernel} kernel runs");
}

#[test]
fn arm64_minidump() {
    let d = open(ARM64_MINI);
    let h = d.header();
    assert_eq!((h.arch, h.version, h.page), (Arch::Aarch64, 2, 4096));
    assert_eq!(
        (h.kernbase, h.dmapphys, h.dmapbase, h.dmapend),
        (
            0xffff_0000_0000_0000,
            0x4000_0000,
            0xffff_a000_0000_0000,
            0xffff_ff00_0000_0000
        )
    );
    assert_eq!(
        (h.bitmapsize, h.pmapsize, h.dumpavailsize),
        (0x2000, 0x6a_e000, 0x1000)
    );
    assert_eq!(d.info().os, Some(OsHint::FreeBsd));
    assert!(d.info().incomplete);
    // dump_avail starts at 0x40000000: the first dumped page is there.
    assert!(d.ranges()[0].start >= 0x4000_0000);
    assert_eq!(read_i32(&d, ARM64_HZ), 1000);
    // Through the direct map too: the same physical page.
    let t = d.translator().unwrap();
    let k = t.translate(&d, VirtAddr(ARM64_HZ)).unwrap();
    let via_dmap = t
        .translate(&d, VirtAddr(k.pa.0 - h.dmapphys + h.dmapbase))
        .unwrap();
    assert_eq!(via_dmap.pa, k.pa);
    // The minimised dump kept few L3 entries (LLDB kept only what it read).
    let (kernel, dmap) = walk_agrees(&d, 20_000);
    eprintln!("arm64 minidump walk: {kernel} kernel runs, {dmap} direct-map pages");
    assert!(kernel >= 1, "{kernel} kernel runs");
}

/// The walk is in increasing VA order and each run translates to itself;
/// checks up to `limit` runs of each window.
fn walk_agrees(d: &MinidumpDump<FileReader>, limit: usize) -> (usize, usize) {
    let t = d.translator().unwrap();
    let mut last = None;
    let (mut kernel, mut dmap) = (0usize, 0usize);
    let h = *d.header();
    t.walk(d, &mut |r| {
        if let Some(l) = last {
            assert!(r.va.0 >= l, "walk out of order at {:#x}", r.va.0);
        }
        last = Some(r.va.0 + r.len);
        let in_dmap = r.va.0 >= h.dmapbase && r.va.0 < h.dmapend;
        let n = if in_dmap { &mut dmap } else { &mut kernel };
        *n += 1;
        if *n <= limit {
            let x = t.translate(d, r.va).unwrap();
            assert_eq!((x.pa, x.page_size, x.prot), (r.pa, r.len, r.prot), "{r:?}");
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    // Every dumped page is in the direct map.
    let pages: u64 = d.ranges().iter().map(|r| r.len.div_ceil(4096)).sum();
    assert_eq!(dmap as u64, pages);
    (kernel, dmap)
}

#[test]
fn amd64_full_dump_through_the_kernels_tables() {
    let d = ElfDump::open(FileReader::open(unpack(AMD64_FULL)).unwrap()).unwrap();
    let info = d.info();
    // EI_OSABI 255 (ELFOSABI_STANDALONE), as FreeBSD's kern_dump.c writes.
    assert_eq!(info.os, Some(OsHint::FreeBsd));
    assert_eq!(info.arch, Some(Arch::X86_64));
    // p_vaddr == p_paddr: physical addresses, not kernel ones.
    assert!(d.kernel_virt().is_none());
    assert!(d.translator().is_none());
    // KERNBASE maps physical 0: KPML4phys is at its address − kernbase.
    let root = d
        .read_u64_le(PhysAddr(AMD64_KPML4PHYS - AMD64_KERNBASE))
        .unwrap();
    assert_eq!(root % 4096, 0, "KPML4phys {root:#x}");
    let paging = X86_64::new(PhysAddr(root), 4).unwrap();
    let t = paging.translate(&d, VirtAddr(AMD64_HZ)).unwrap();
    let mut b = [0u8; 4];
    d.read_phys_exact(t.pa, &mut b).unwrap();
    assert_eq!(i32::from_le_bytes(b), 100);
}
