//! `kvm ps` options on the committed fixtures: `-p`, `-U`, `-C` pick
//! processes (their JSON the same objects as the whole listing's, only
//! picked), `-o` picks columns, `--forest` orders each process under its
//! parent, `-e` adds the environment, `-w`/`-ww` widen the lines.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const SETS: [&str; 2] = ["amd64-kaslr", "arm64-kaslr"];

fn core(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(set)
        .join("vmcore.kdump.xz")
}

fn truth(set: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(set)
        .join("truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn kvm(set: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(["ps", "-M", core(set).to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

fn json(set: &str, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = kvm(set, &a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn pids(v: &[Value]) -> Vec<u64> {
    v.iter().map(|p| p["pid"].as_u64().unwrap()).collect()
}

#[test]
fn selections_are_the_same_objects_only_picked() {
    for set in SETS {
        let all = json(set, &[]);
        let by_pid: BTreeMap<u64, &Value> = all
            .iter()
            .map(|p| (p["pid"].as_u64().unwrap(), p))
            .collect();
        let t = truth(set);
        let procs = t["processes"].as_array().unwrap();
        let want = |f: &dyn Fn(&Value) -> bool| -> Vec<u64> {
            let mut v: Vec<u64> = procs
                .iter()
                .filter(|p| f(p))
                .map(|p| p["pid"].as_u64().unwrap())
                .collect();
            v.sort();
            v
        };
        let cases: [(&[&str], Vec<u64>); 5] = [
            (&["-p", "1,2"], vec![1, 2]),
            (&["-p", "1", "-p", "2"], vec![1, 2]),
            (&["-U", "1000"], want(&|p| p["uid"] == 1000)),
            (&["-C", "sleep"], want(&|p| p["comm"] == "sleep")),
            (
                &["-p", "2", "-C", "sleep"],
                want(&|p| p["comm"] == "sleep" || p["pid"] == 2),
            ),
        ];
        for (args, want) in cases {
            assert!(!want.is_empty(), "{set} {args:?}");
            let got = json(set, args);
            let mut got_pids = pids(&got);
            got_pids.sort();
            assert_eq!(got_pids, want, "{set} {args:?}");
            for p in &got {
                assert_eq!(p, by_pid[&p["pid"].as_u64().unwrap()], "{set} {args:?}");
            }
        }
    }
}

#[test]
fn forest_lists_each_process_after_its_parent() {
    for set in SETS {
        let all = json(set, &[]);
        let tree = json(set, &["--forest"]);
        let mut a = pids(&all);
        let mut b = pids(&tree);
        a.sort();
        b.sort();
        assert_eq!(a, b, "{set}: the same processes");
        let at: BTreeMap<u64, usize> = pids(&tree)
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i))
            .collect();
        for p in &tree {
            let ppid = p["ppid"].as_u64().unwrap();
            if let Some(&parent) = at.get(&ppid) {
                assert!(
                    parent < at[&p["pid"].as_u64().unwrap()],
                    "{set}: {} before its parent",
                    p["pid"]
                );
            }
        }
        // Human: children indented under their parent.
        let out = String::from_utf8(kvm(set, &["--forest"]).stdout).unwrap();
        assert!(out.lines().any(|l| l.contains(" \\_ sleep ")), "{out}");
    }
}

#[test]
fn columns_are_picked_and_unknown_ones_named() {
    let set = "amd64-kaslr";
    let n = json(set, &[]).len();
    let out = kvm(set, &["-o", "pid,ppid,uid,stat,comm"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), n + 1);
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "PPID", "UID", "S", "COMM"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["1", "0", "0", "S", "init"]
    );
    // vsz in KiB: the JSON's vsize (bytes) / 1024; 0 for kernel threads.
    let procs = json(set, &[]);
    let out = kvm(set, &["-o", "pid,vsz"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for (line, p) in text.lines().skip(1).zip(&procs) {
        let want = p["vsize"]
            .as_u64()
            .map_or("-".to_owned(), |b| (b / 1024).to_string());
        assert_eq!(
            line.split_whitespace().nth(1),
            Some(want.as_str()),
            "{line}"
        );
        if p["kthread"] == true {
            assert_eq!(p["vsize"], 0, "{p}");
        }
    }
    assert!(procs.iter().any(|p| p["vsize"].as_u64() > Some(0)));
    let bad = kvm(set, &["-o", "pid,time"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("-o time: no such column"));
    let bad = kvm(set, &["-U", "root"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("give the uid"));
}

/// `-e` adds each process's environment after its command line; lines are
/// cut at the terminal's width (`$COLUMNS`), at 132 columns or more with
/// `-w`, not at all with `-ww`.
#[test]
fn environment_and_width() {
    for set in SETS {
        let t = truth(set);
        let sleeper = t["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                p["envv"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|v| v == "KVM_MARKER_1=plain-sleeper"))
            })
            .expect("the plain sleeper");
        let pid = sleeper["pid"].to_string();
        let run = |args: &[&str], columns: &str| {
            let out = Command::new(env!("CARGO_BIN_EXE_kvm"))
                .args(["ps", "-M", core(set).to_str().unwrap(), "-p", &pid])
                .args(args)
                .env("COLUMNS", columns)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .nth(1)
                .unwrap()
                .to_string()
        };
        let line = run(&["-e"], "100000");
        assert!(line.contains("sleep 1000001 "), "{line}");
        assert!(line.contains(" KVM_MARKER_1=plain-sleeper"), "{line}");
        assert!(!run(&[], "100000").contains("KVM_MARKER_1"));
        assert_eq!(run(&["-e"], "40").chars().count(), 40);
        assert_eq!(
            run(&["-e", "-w"], "40").chars().count(),
            132.min(line.chars().count())
        );
        assert_eq!(run(&["-e", "-ww"], "40"), line);
    }
}
