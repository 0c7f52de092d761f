//! The committed real-kernel fixtures (tests/data/{amd64,arm64}-kaslr, see
//! their README): the same checks the lab runs, on any machine.

mod common;

use common::check_dump;
use std::path::{Path, PathBuf};

/// The committed sets: Debian 6.1 on x86-64 and on arm64 (no data symbols
/// in its kallsyms), KASLR on.
const SETS: [&str; 2] = ["amd64-kaslr", "arm64-kaslr"];

fn data(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(set)
}

fn truth(set: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data(set).join("truth.json")).unwrap()).unwrap()
}

fn core(set: &str) -> String {
    data(set)
        .join("vmcore.kdump.xz")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn ps_loadavg_and_info_match_the_guest() {
    for set in SETS {
        let (summary, mismatches) = check_dump(&core(set), &truth(set), false);
        eprintln!("{set} fixture: {summary}");
        assert!(mismatches.is_empty(), "{set}: {mismatches:#?}");
    }
}

#[test]
fn nlist_resolves_the_guests_kallsyms() {
    for set in SETS {
        let text = std::fs::read_to_string(data(set).join("kallsyms-subset.txt")).unwrap();
        let mut args = vec![
            "nlist".to_owned(),
            "-M".to_owned(),
            core(set),
            "--json".to_owned(),
        ];
        let want: Vec<(String, String)> = text
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[2].to_owned(), format!("0x{}", f[0]))
            })
            .collect();
        assert!(want.len() >= 3, "{set}");
        args.extend(want.iter().map(|(n, _)| n.clone()));
        args.push("no_such_symbol_anywhere".to_owned());
        // The name not found makes the exit status 1; the JSON says null.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvm"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{set}");
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for (name, addr) in &want {
            assert_eq!(got[name].as_str(), Some(addr.as_str()), "{set}: {name}");
        }
        assert!(got["no_such_symbol_anywhere"].is_null(), "{set}");
    }
}

#[test]
fn linux_banner_reads_proc_version() {
    // amd64: its kallsyms has data symbols (arm64's does not).
    let set = "amd64-kaslr";
    let kd = kvm::Kvm::open_dump(core(set)).unwrap();
    let banner = kd.nlist(&["linux_banner"]).unwrap()[0].expect("linux_banner");
    let want = truth(set)["version"].as_str().unwrap().to_owned();
    let mut buf = vec![0u8; want.len()];
    assert_eq!(kd.read(banner, &mut buf).unwrap(), want.len());
    assert_eq!(String::from_utf8_lossy(&buf), want);
    // A page the cut left out reads as excluded, not as zeros.
    let mut b = [0u8; 8];
    let err = kd.read_phys(0x100_0000, &mut b).unwrap_err();
    assert_eq!(
        err.core_error(),
        Some(kvm_core::Error::Excluded { pa: 0x100_0000 }),
        "{err}"
    );
    assert!(kd.geterr().contains("excluded"), "{}", kd.geterr());
}

#[test]
fn bad_input_gives_one_line_errors() {
    let dir = std::env::temp_dir().join(format!("kvm-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown", b"this is not a dump at all".to_vec()),
        ("empty", Vec::new()),
        ("truncated-kdump", {
            let mut v = b"KDUMP   ".to_vec();
            v.resize(100, 0);
            v
        }),
        ("truncated-elf", b"\x7fELF\x02\x01\x01".to_vec()),
    ];
    // A real memory image whose kernel kvm cannot identify (LiME: no
    // VMCOREINFO, no architecture).
    let lime = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../kvm-core-file/tests/data/lime/deb-x86_64-slice.lime"),
    )
    .unwrap();
    let cases = cases.into_iter().chain([("unsupported-kernel.lime", lime)]);
    for (name, bytes) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvm"))
            .args(["ps", "-M"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains(p.to_str().unwrap()),
            "{name}: error names the file: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_m_the_live_kernel_is_read() {
    // No /proc/kcore in a test sandbox: KVM_KCORE stands in for it, and the
    // same checks hold with the translation cache off.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(["ps", "--json"])
        .env("KVM_KCORE", core("amd64-kaslr"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        ps.as_array().unwrap().len(),
        truth("amd64-kaslr")["processes"].as_array().unwrap().len()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(["ps"])
        .env("KVM_KCORE", "/nonexistent/kcore")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/kcore") && err.contains("-M CORE"),
        "{err}"
    );
}

#[test]
fn getprocs_selects_as_the_bsd_ops_do() {
    use kvm::ProcOp;
    use std::collections::BTreeSet;
    for set in SETS {
        let kd = kvm::Kvm::open_dump(core(set)).unwrap();
        let truth = truth(set);
        let procs = truth["processes"].as_array().unwrap();
        let want = |f: &dyn Fn(&serde_json::Value) -> bool| -> BTreeSet<u32> {
            procs
                .iter()
                .filter(|p| f(p))
                .map(|p| p["pid"].as_u64().unwrap() as u32)
                .collect()
        };
        let got = |op: ProcOp| -> BTreeSet<u32> {
            kd.getprocs(op).unwrap().iter().map(|p| p.pid).collect()
        };
        let all = got(ProcOp::All);
        assert_eq!(all, want(&|_| true), "{set}");
        let user = want(&|p| p["uid"] == 1000);
        assert_eq!(user.len(), 1, "{set}: the workload's uid-1000 process");
        // No set-uid program runs: effective and real ids select alike.
        assert_eq!(got(ProcOp::Uid(1000)), user, "{set}");
        assert_eq!(got(ProcOp::Ruid(1000)), user, "{set}");
        assert_eq!(got(ProcOp::Uid(0)), want(&|p| p["uid"] == 0), "{set}");
        assert_eq!(
            got(ProcOp::Kthread),
            want(&|p| p["kthread"] == true),
            "{set}"
        );
        for p in procs.iter().filter(|p| p["kthread"] == false) {
            let (pid, pgid, sid) = (&p["pid"], &p["pgid"], &p["sid"]);
            let n = |v: &serde_json::Value| v.as_u64().unwrap() as u32;
            assert_eq!(got(ProcOp::Pid(n(pid))), BTreeSet::from([n(pid)]), "{set}");
            assert_eq!(
                got(ProcOp::Pgrp(n(pgid))),
                want(&|q| q["pgid"] == *pgid),
                "{set}"
            );
            assert_eq!(
                got(ProcOp::Session(n(sid))),
                want(&|q| q["sid"] == *sid),
                "{set}"
            );
        }
        assert!(got(ProcOp::Pid(99_999)).is_empty());
        // Terminals: truth.json has none; kvm's own listing is the reference.
        let listed = kd.getprocs(ProcOp::All).unwrap();
        let mut ttys: BTreeSet<u32> = listed.iter().filter_map(|p| p.tty_nr).collect();
        ttys.insert((4 << 8) | 64); // ttyS0, which the workload leaves unused
        for tty in ttys {
            let same: BTreeSet<u32> = listed
                .iter()
                .filter(|q| q.tty_nr == Some(tty))
                .map(|q| q.pid)
                .collect();
            assert_eq!(got(ProcOp::Tty(tty)), same, "{set}");
        }
    }
}

#[test]
fn btf_the_cut_left_out_is_an_error_not_a_missing_type() {
    // The fixture holds the part of the kernel's BTF that ps reads; a
    // search for a type that is not there reads on into pages the cut
    // left out: an error naming the cause, never "no such type".
    let kd = kvm::Kvm::open_dump(core("amd64-kaslr")).unwrap();
    let (off, size) = kd.type_info("task_struct.pid").unwrap().unwrap();
    assert_eq!((off.is_some(), size), (true, 4));
    let err = kd.type_info("no_such_struct.member").unwrap_err();
    assert!(err.to_string().contains("excluded"), "{err}");
    // The failure belongs to that call: the next ones still work.
    assert_eq!(kd.type_info("task_struct.pid").unwrap(), Some((off, size)));
    assert!(!kd.getprocs(kvm::ProcOp::All).unwrap().is_empty());
}
