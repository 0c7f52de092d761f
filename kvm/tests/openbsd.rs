//! OpenBSD savecore files written by `kvm convert --to openbsd` from the
//! committed amd64 Linux fixture, read back: every page of the source's
//! ranges and every translation of the kernel's page tables must agree.
//! (No dump written by OpenBSD itself could be had: these are round trips.)

use kvm::core::arch::x86_64::X86_64;
use kvm::core::{Error, PhysAddr, PhysRead, Translate, VirtAddr};
use kvm::file::openbsd::DirectMap;
use kvm::{Kvm, OpenFlags};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/amd64-kaslr/vmcore.kdump.xz")
}

fn kvm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(args)
        .output()
        .expect("run kvm")
}

/// Converts the fixture (through the CLI) into a file in a fresh
/// directory; returns it and the directory guard.
fn converted(name: &str) -> (PathBuf, TempDir) {
    let dir = TempDir::new(name);
    let out = dir.0.join("vmcore.openbsd");
    let core = fixture();
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

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
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

#[test]
fn amd64_fixture_round_trip() {
    let (out, _dir) = converted("round-trip");
    let linux = Kvm::open_dump(fixture()).unwrap();
    let src = linux.source();
    let file = kvm::file::FileReader::open(&out).unwrap();
    let bsd = kvm::file::open(file).unwrap();
    assert_eq!(bsd.info().format, "openbsd-kcore");
    assert_eq!(bsd.info().os, Some(kvm::core::OsHint::OpenBsd));

    // Pages: every 4 KiB of every source range reads the same; pages the
    // cut-down source left out read as zeros.
    let (mut equal, mut zeros) = (0u64, 0u64);
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
                    equal += 1;
                }
                Err(Error::Excluded { .. } | Error::NotInMemory { .. }) => {
                    assert!(b[..n].iter().all(|&x| x == 0), "page {pa:#x}");
                    zeros += 1;
                }
                Err(e) => panic!("{pa:#x}: {e}"),
            }
            pa += n as u64;
        }
    }
    // The gaps between source ranges that merging put into segments
    // (30 fit the CPU header) read as zeros.
    let mut gaps = 0u64;
    for r in bsd.ranges() {
        let mut pa = r.start;
        while pa < r.end() {
            let n = (r.end() - pa).min(4096 - (pa & 0xfff)) as usize;
            let in_src = src.ranges().iter().any(|s| s.contains(pa));
            if !in_src {
                bsd.read_phys(PhysAddr(pa), &mut b[..n]).unwrap();
                assert!(b[..n].iter().all(|&x| x == 0), "gap page {pa:#x}");
                gaps += 1;
            }
            pa += n as u64;
        }
    }
    eprintln!(
        "pages: {equal} equal, {zeros} excluded in the source and zero in the kcore, {gaps} gap pages zero; {} source ranges in {} segments",
        src.ranges().len(),
        bsd.ranges().len()
    );
    assert!(equal > 200, "{equal}");

    // Translations: every page the Linux kernel's tables map (walked from
    // the same root over the source) translates the same through the
    // kcore's translator, except inside OpenBSD's direct-map window.
    let root = linux.info().root.expect("the kernel's root");
    let tables = X86_64::new(PhysAddr(root), 4).unwrap();
    let t = bsd.translator().expect("kcore translator");
    let (mut compared, mut excluded) = (0u64, 0u64);
    tables
        .walk(src, &mut |run| {
            let mut va = run.va.0;
            while va - run.va.0 < run.len {
                if DirectMap::FOUR_SLOTS.contains(va) {
                    excluded += 1;
                } else {
                    let want = tables.translate(src, VirtAddr(va)).unwrap();
                    let got = t.translate(&*bsd, VirtAddr(va)).unwrap();
                    assert_eq!(
                        (got.pa, got.page_size, got.prot),
                        (want.pa, want.page_size, want.prot),
                        "{va:#x}"
                    );
                    compared += 1;
                }
                va += 4096;
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    eprintln!(
        "translations: {compared} pages compared, {excluded} in the direct-map window skipped"
    );
    assert!(compared > 1000, "{compared}");

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
}

#[test]
fn info_says_openbsd() {
    let (out, _dir) = converted("info");
    let r = kvm(&["info", "-M", out.to_str().unwrap(), "--json"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["format"], "openbsd-kcore");
    assert_eq!(v["arch"], "x86_64");
    assert_eq!(v["os"], "openbsd");
    assert_eq!(v["page_size"], 4096);
}

#[test]
fn dump_header_calls() {
    let linux = Kvm::open_dump(fixture()).unwrap();
    let h = linux.dump_mkheader().unwrap();
    assert_eq!(h.arch(), kvm::core::Arch::X86_64);
    assert_eq!(Some(h.ptdpaddr()), linux.info().root);
    assert!(h.segments().len() <= 30);
    let mut head = Vec::new();
    let n = linux.dump_wrtheader(&mut head, h.memory_len()).unwrap();
    assert_eq!((n, head.len() as u64), (536, 536));
    assert_eq!(head, h.header_bytes(h.memory_len()).unwrap());
    // A dump file is read-only: dump_inval says so, and geterr keeps it.
    let e = linux.dump_inval().unwrap_err();
    assert_eq!(e.core_error(), Some(Error::ReadOnly));
    assert!(linux.geterr().ends_with("the source is read-only"));
    let rw = Kvm::openfiles(None, Some(&fixture()), OpenFlags::ReadWrite).unwrap();
    assert_eq!(
        rw.dump_inval().unwrap_err().core_error(),
        Some(Error::ReadOnly)
    );
}

#[test]
fn other_architectures_are_refused() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/arm64-kaslr/vmcore.kdump.xz");
    let arm = Kvm::open_dump(&core).unwrap();
    assert_eq!(
        arm.dump_mkheader().unwrap_err().core_error(),
        Some(Error::Unsupported(
            "OpenBSD kcore: only amd64 and i386 kernels can be written"
        ))
    );
    let dir = TempDir::new("arm64");
    let out = dir.0.join("x.openbsd");
    let r = kvm(&[
        "convert",
        "-M",
        core.to_str().unwrap(),
        "--to",
        "openbsd",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("OpenBSD kcore: only amd64 and i386 kernels can be written"),
        "{err}"
    );
}
