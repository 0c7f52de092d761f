//! OpenBSD savecore files written by `kvm convert --to openbsd` from the
//! committed amd64 Linux fixture, read back: every page of the source's
//! ranges and every translation of the kernel's page tables must agree.
//! (No dump written by OpenBSD itself could be had: these are round trips.)

#[path = "common/openbsd_round_trip.rs"]
mod openbsd_round_trip;

use kvm::core::Error;
use kvm::{Kvm, OpenFlags};
use openbsd_round_trip::{converted, kvm, round_trip, TempDir};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/amd64-kaslr/vmcore.kdump.xz")
}

#[test]
fn amd64_fixture_round_trip() {
    let c = round_trip(&fixture(), "fixture");
    assert!(c.equal > 200, "{c:?}");
    assert!(c.translations > 1000, "{c:?}");
    assert!((1..=c.ranges).contains(&c.segments), "{c:?}");
}

#[test]
fn info_says_openbsd() {
    let (out, _dir) = converted(&fixture(), "info");
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
    assert!(linux
        .geterr()
        .contains(": the source is read-only (a dump is never written"));
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
