//! The OpenBSD kcore round trip: a Linux amd64 dump written by
//! `kvm convert --to openbsd` and read back must hold the same pages and
//! translate every mapped kernel page the same. Shared by the fixture test
//! (`tests/openbsd.rs`) and the lab test (`tests/lab/openbsd.rs`).

use kvm::core::arch::x86_64::X86_64;
use kvm::core::{Error, PhysAddr, PhysRead, Translate, VirtAddr};
use kvm::file::openbsd::DirectMap;
use kvm::Kvm;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one round trip compared.
#[derive(Debug, Default)]
pub struct Counts {
    /// Source pages read back byte for byte.
    pub equal: u64,
    /// Pages the source left out that read as zeros from the kcore.
    pub zeros: u64,
    /// Pages between source ranges (merged into segments) that read as zeros.
    pub gaps: u64,
    /// Source ranges, and the kcore segments they became.
    pub ranges: usize,
    pub segments: usize,
    /// Mapped kernel pages translated the same through both.
    pub translations: u64,
    /// Mapped pages inside OpenBSD's direct-map window, not compared (the
    /// kcore translator answers those from the window, as OpenBSD does).
    pub in_direct_map: u64,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("kvm-openbsd-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `kvm` binary.
pub fn kvm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(args)
        .output()
        .expect("run kvm")
}

/// Converts `core` through the CLI into `vmcore.openbsd` in a fresh
/// directory; returns the file and the directory's guard.
pub fn converted(core: &Path, name: &str) -> (PathBuf, TempDir) {
    let dir = TempDir::new(name);
    let out = dir.0.join("vmcore.openbsd");
    let r = kvm(&[
        "convert",
        "-M",
        core.to_str().unwrap(),
        "--to",
        "openbsd",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    (out, dir)
}

/// Converts `core`, reads the kcore back and compares it with the source;
/// panics (fails the test) on the first difference.
pub fn round_trip(core: &Path, name: &str) -> Counts {
    let (out, _dir) = converted(core, name);
    let linux = Kvm::open_dump(core).unwrap();
    let src = linux.source();
    let file = kvm::file::FileReader::open(&out).unwrap();
    let bsd = kvm::file::open(file).unwrap();
    assert_eq!(bsd.info().format, "openbsd-kcore");
    assert_eq!(bsd.info().os, Some(kvm::core::OsHint::OpenBsd));
    let mut c = Counts {
        ranges: src.ranges().len(),
        segments: bsd.ranges().len(),
        ..Counts::default()
    };

    // Pages: every 4 KiB of every source range reads the same; pages the
    // source left out read as zeros.
    let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
    for r in src.ranges() {
        let mut pa = r.start;
        while pa < r.end() {
            let n = (r.end() - pa).min(4096 - (pa & 0xfff)) as usize;
            bsd.read_phys(PhysAddr(pa), &mut b[..n]).unwrap();
            match src.read_phys(PhysAddr(pa), &mut a[..n]) {
                Ok(got) => {
                    assert_eq!(got, n, "short read at {pa:#x}");
                    assert_eq!(a[..n], b[..n], "page {pa:#x}");
                    c.equal += 1;
                }
                Err(Error::Excluded { .. } | Error::NotInMemory { .. }) => {
                    assert!(b[..n].iter().all(|&x| x == 0), "page {pa:#x}");
                    c.zeros += 1;
                }
                Err(e) => panic!("{pa:#x}: {e}"),
            }
            pa += n as u64;
        }
    }
    // The gaps between source ranges that merging put into segments (30
    // fit the CPU header) read as zeros.
    for r in bsd.ranges() {
        let mut pa = r.start;
        while pa < r.end() {
            let n = (r.end() - pa).min(4096 - (pa & 0xfff)) as usize;
            if !src.ranges().iter().any(|s| s.contains(pa)) {
                bsd.read_phys(PhysAddr(pa), &mut b[..n]).unwrap();
                assert!(b[..n].iter().all(|&x| x == 0), "gap page {pa:#x}");
                c.gaps += 1;
            }
            pa += n as u64;
        }
    }

    // Translations: every page the Linux kernel's tables map (walked from
    // the same root over the source) translates the same through the
    // kcore's translator, except inside OpenBSD's direct-map window.
    let root = linux.info().root.expect("the kernel's root");
    let tables = X86_64::new(PhysAddr(root), 4).unwrap();
    let t = bsd.translator().expect("kcore translator");
    tables
        .walk(src, &mut |run| {
            let mut va = run.va.0;
            while va - run.va.0 < run.len {
                if DirectMap::FOUR_SLOTS.contains(va) {
                    c.in_direct_map += 1;
                } else {
                    let want = tables.translate(src, VirtAddr(va)).unwrap();
                    let got = t.translate(&*bsd, VirtAddr(va)).unwrap();
                    assert_eq!(
                        (got.pa, got.page_size, got.prot),
                        (want.pa, want.page_size, want.prot),
                        "{va:#x}"
                    );
                    c.translations += 1;
                }
                va += 4096;
            }
            ControlFlow::Continue(())
        })
        .unwrap();

    // The kernel reads the same through both (a symbol of the kernel's
    // data, read through the kcore's own translator).
    let banner = linux.nlist(&["linux_banner"]).unwrap()[0].unwrap();
    let mut want = [0u8; 13];
    linux.read(banner, &mut want).unwrap();
    let x = t.translate(&*bsd, VirtAddr(banner)).unwrap();
    let mut got = [0u8; 13];
    bsd.read_phys(x.pa, &mut got).unwrap();
    assert_eq!(&got, b"Linux version");
    assert_eq!(got, want);
    eprintln!("{name}: {c:?}");
    c
}
