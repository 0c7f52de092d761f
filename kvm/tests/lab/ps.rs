//! `kvm ps`, `kvm loadavg` and `kvm info` on every dump of every lab set,
//! against what the guest's /proc said right before the stop. No vmlinux,
//! no System.map: everything comes from the dump.

use crate::sets;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

fn kvm_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(args)
        .output()
        .expect("run kvm");
    assert!(
        out.status.success(),
        "kvm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("kvm {args:?}: bad JSON: {e}"))
}

/// Whether `kernel` (the 15-byte `task_struct.comm` kvm reports) is what
/// /proc printed as `proc`: /proc shows kernel threads by their full name
/// (`kthread->full_name`, e.g. `rcu_tasks_kthread` for the stored
/// `rcu_tasks_kthre`) and workqueue workers with their current work
/// appended (`kworker/0:1-events` for `kworker/0:1`).
fn comm_matches(proc: &str, kernel: &str) -> bool {
    if proc == kernel {
        return true;
    }
    let cut: String = proc.bytes().take(15).map(char::from).collect();
    (kernel.len() == 15 && cut == kernel)
        || (kernel.starts_with("kworker/")
            && proc
                .strip_prefix(kernel)
                .is_some_and(|rest| rest.starts_with('-')))
}

#[test]
fn ps_loadavg_and_info_match_the_guest() {
    let mut report = Vec::new();
    let mut total_mismatches = 0;
    for set in sets() {
        let truth: BTreeMap<u64, &Value> = set.truth["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .map(|p| (p["pid"].as_u64().expect("pid"), p))
            .collect();
        for (kind, path) in set.dumps() {
            let core = path.to_str().expect("utf-8 path");
            let mut mismatches = Vec::new();
            let ps = kvm_json(&["ps", "-M", core, "--json"]);
            let got: BTreeMap<u64, &Value> = ps
                .as_array()
                .expect("array")
                .iter()
                .map(|p| (p["pid"].as_u64().expect("pid"), p))
                .collect();
            // The pid sets must be equal, except for kernel threads that
            // the kernel started or ended between the capture and the stop
            // (workqueue workers come and go; the capture itself writes to
            // a disk): those are counted and shown, user processes never.
            let mut kthreads_differing = Vec::new();
            for (pid, p) in &got {
                if !truth.contains_key(pid) {
                    if p["kthread"].as_bool() == Some(true) {
                        kthreads_differing.push(format!("+{pid} {}", p["comm"]));
                    } else {
                        mismatches.push(format!(
                            "pid {pid} ({}) not in the guest's /proc",
                            p["comm"]
                        ));
                    }
                }
            }
            for (pid, p) in &truth {
                if !got.contains_key(pid) {
                    if p["kthread"].as_bool() == Some(true) {
                        kthreads_differing.push(format!("-{pid} {}", p["comm"]));
                    } else {
                        mismatches.push(format!("pid {pid} ({}) missing", p["comm"]));
                    }
                }
            }
            if kthreads_differing.len() > 2 {
                mismatches.push(format!(
                    "too many kernel threads differ: {kthreads_differing:?}"
                ));
            }
            let filtered = kind.contains("d31");
            let (mut unavailable, mut strings_checked) = (0, 0);
            for (pid, want) in &truth {
                let Some(p) = got.get(pid) else { continue };
                if !comm_matches(
                    want["comm"].as_str().unwrap_or(""),
                    p["comm"].as_str().unwrap_or(""),
                ) {
                    mismatches.push(format!(
                        "pid {pid} comm: guest {}, kvm {}",
                        want["comm"], p["comm"]
                    ));
                }
                for field in ["ppid", "uid", "gid", "kthread"] {
                    if p[field] != want[field] {
                        mismatches.push(format!(
                            "pid {pid} {field}: guest {}, kvm {}",
                            want[field], p[field]
                        ));
                    }
                }
                // Kernel threads may change state between capture and stop.
                if !want["kthread"].as_bool().unwrap_or(true) && p["state"] != want["state"] {
                    mismatches.push(format!(
                        "pid {pid} state: guest {}, kvm {}",
                        want["state"], p["state"]
                    ));
                }
                for field in ["argv", "envv"] {
                    if p[field].is_null() {
                        // Unavailable is only acceptable where the dump left pages out.
                        unavailable += 1;
                        if !filtered {
                            mismatches.push(format!(
                                "pid {pid} {field}: unavailable in an unfiltered dump"
                            ));
                        }
                    } else if p[field] != want[field] {
                        mismatches.push(format!(
                            "pid {pid} {field} differs: guest {}, kvm {}",
                            want[field], p[field]
                        ));
                    } else {
                        strings_checked += 1;
                    }
                }
            }
            let load = kvm_json(&["loadavg", "-M", core, "--json"]);
            for i in 0..3 {
                let (g, w) = (
                    load[i].as_f64().unwrap(),
                    set.truth["loadavg"][i].as_f64().unwrap(),
                );
                if (g - w).abs() > 0.01 + 1e-9 {
                    mismatches.push(format!("loadavg[{i}]: guest {w}, kvm {g}"));
                }
            }
            let info = kvm_json(&["info", "-M", core, "--json"]);
            if info["release"] != set.truth["release"] || info["arch"] != set.truth["arch"] {
                mismatches.push(format!("info: {} {}", info["release"], info["arch"]));
            }
            for m in &mismatches {
                eprintln!("{}/{kind}: MISMATCH {m}", set.name);
            }
            report.push(format!(
                "{}/{kind}: {} processes, argv/env lists equal: {strings_checked}, unavailable: {unavailable}, \
                 kernel threads started/ended after the capture: {kthreads_differing:?}, mismatches: {}",
                set.name,
                got.len(),
                mismatches.len()
            ));
            total_mismatches += mismatches.len();
        }
    }
    for r in &report {
        eprintln!("{r}");
    }
    assert_eq!(total_mismatches, 0, "mismatches against the guest's /proc");
}
