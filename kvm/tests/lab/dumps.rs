//! Dump sources on real kernels: every format of one stopped VM holds the
//! same pages, and the kernel's banner reads through the page tables in
//! every dump.

use crate::sets;
use kvm::Kvm;

const PAGE: u64 = 4096;

/// The physical address of `needle` in the dump (a linear scan, used only
/// where the guest's kallsyms lacks the symbol: arm64 kernels without
/// CONFIG_KALLSYMS_ALL).
fn find_phys(kd: &Kvm, needle: &[u8]) -> Option<u64> {
    let chunk = 1 << 20;
    let mut buf = vec![0u8; chunk + needle.len()];
    for r in kd.source().ranges() {
        let mut at = r.start;
        while at < r.end() {
            let n = kd.read_phys(at, &mut buf).ok()?;
            if let Some(i) = buf[..n].windows(needle.len()).position(|w| w == needle) {
                return Some(at + i as u64);
            }
            at += chunk as u64;
        }
    }
    None
}

#[test]
fn linux_banner_reads_proc_version_in_every_dump() {
    let mut checked = 0;
    for set in sets() {
        let version = set.truth["version"]
            .as_str()
            .expect("version")
            .as_bytes()
            .to_vec();
        let elf = Kvm::open_dump(set.dir.join("vmcore.elf")).unwrap();
        let (banner, how) = match set.kallsyms("linux_banner") {
            Some(a) => (a, "kallsyms"),
            None => {
                // arm64 Debian kernels lack data symbols in kallsyms: find the
                // banner's physical copy and map it into the kernel image
                // (VA = PA + kimage_voffset), then read it back through the
                // page tables below.
                let pa = find_phys(&elf, &version).expect("banner text in physical memory");
                let vi = elf.source().info().vmcoreinfo.clone().expect("VMCOREINFO");
                let voff = vi.number("kimage_voffset").expect("kimage_voffset");
                (pa.wrapping_add(voff), "physical search + kimage_voffset")
            }
        };
        for (kind, path) in set.dumps() {
            let kd = Kvm::open_dump(&path).unwrap_or_else(|e| panic!("{}: {e}", set.name));
            let info = kd.info();
            assert_eq!(
                info.release.as_deref(),
                set.truth["release"].as_str(),
                "{}/{kind}",
                set.name
            );
            assert_eq!(info.arch, Some(set.arch()), "{}/{kind}", set.name);
            let mut buf = vec![0u8; version.len()];
            kd.read(banner, &mut buf)
                .unwrap_or_else(|e| panic!("{}/{kind}: linux_banner: {e}", set.name));
            assert_eq!(
                String::from_utf8_lossy(&buf),
                String::from_utf8_lossy(&version),
                "{}/{kind}: linux_banner at {banner:#x} ({how})",
                set.name
            );
            eprintln!(
                "{}/{kind}: linux_banner at {banner:#x} ({how}) reads /proc/version",
                set.name
            );
            checked += 1;
        }
    }
    eprintln!("linux_banner checked in {checked} dumps");
}

/// Page counts of one comparison.
#[derive(Default, Debug)]
struct Counts {
    identical: u64,
    excluded: u64,
    absent: u64,
}

#[test]
fn every_page_agrees_across_formats() {
    for set in sets() {
        let base = Kvm::open_dump(set.dir.join("vmcore.elf")).unwrap();
        // Pages of each ELF segment (QEMU writes one per RAM block or ROM).
        let segments: Vec<Vec<u64>> = base
            .source()
            .ranges()
            .iter()
            .map(|r| {
                (r.start.next_multiple_of(PAGE)..r.end())
                    .step_by(PAGE as usize)
                    .filter(|a| a + PAGE <= r.end())
                    .collect()
            })
            .collect();
        let total: usize = segments.iter().map(Vec::len).sum();
        for (kind, path) in set.dumps() {
            if kind == "elf" {
                continue;
            }
            let other = Kvm::open_dump(&path).unwrap();
            let mut c = Counts::default();
            let mut dropped_segments = 0;
            let (mut x, mut y) = (vec![0u8; PAGE as usize], vec![0u8; PAGE as usize]);
            for seg in &segments {
                let before = c.absent;
                for &pa in seg {
                    base.read_phys(pa, &mut x).unwrap();
                    match other.source().read_phys(kvm_core::PhysAddr(pa), &mut y) {
                        Ok(n) => {
                            assert_eq!(
                                n, PAGE as usize,
                                "{}/{kind}: short page at {pa:#x}",
                                set.name
                            );
                            assert!(
                                x == y,
                                "{}/{kind}: page {pa:#x} differs from the ELF dump",
                                set.name
                            );
                            c.identical += 1;
                        }
                        Err(kvm_core::Error::Excluded { .. }) => c.excluded += 1,
                        Err(kvm_core::Error::NotInMemory { .. }) => c.absent += 1,
                        Err(e) => panic!("{}/{kind}: page {pa:#x}: {e}", set.name),
                    }
                }
                let missing = c.absent - before;
                if missing == seg.len() as u64 && missing > 0 {
                    dropped_segments += 1;
                } else if kind.starts_with("makedumpfile") {
                    assert_eq!(
                        missing, 0,
                        "{}/{kind}: part of a segment is missing",
                        set.name
                    );
                }
            }
            eprintln!("{}/{kind} vs elf: {total} pages: {c:?}, whole segments not dumped: {dropped_segments}", set.name);
            match kind.as_str() {
                // makedumpfile keeps only the kernel's System RAM: it may drop
                // a whole non-RAM segment (QEMU's BIOS ROM), never part of one;
                // -d 31 also leaves out free, cache, user and zero pages.
                k if k.starts_with("makedumpfile") => {
                    assert!(
                        dropped_segments <= 1,
                        "{}/{kind}: {dropped_segments} segments missing",
                        set.name
                    );
                    if k.contains("d31") {
                        assert!(
                            c.excluded > 0 && c.identical > 0,
                            "{}/{kind}: {c:?}",
                            set.name
                        );
                    } else {
                        assert_eq!(
                            c.excluded, 0,
                            "{}/{kind}: unfiltered dump excludes pages",
                            set.name
                        );
                    }
                }
                // QEMU's paging ELF holds only pages mapped at dump time.
                "elf-paging" => assert!(
                    c.identical > 0 && c.excluded == 0,
                    "{}/{kind}: {c:?}",
                    set.name
                ),
                _ => assert_eq!(
                    (c.excluded, c.absent),
                    (0, 0),
                    "{}/{kind}: every page must be there",
                    set.name
                ),
            }
        }
    }
}
