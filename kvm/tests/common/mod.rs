//! Checks shared by the lab tests and the committed-fixture tests: `kvm
//! ps`, `kvm loadavg` and `kvm info` against what the guest's /proc said.

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

/// Runs the `kvm` binary and parses its JSON output.
pub fn kvm_json(args: &[&str]) -> Value {
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
pub fn comm_matches(proc: &str, kernel: &str) -> bool {
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

/// Compares `kvm ps/loadavg/info --json` on `core` with `truth`; returns
/// a one-line summary and the mismatches. `filtered`: the dump may leave
/// argv/env pages out (then they must be reported unavailable).
pub fn check_dump(core: &str, truth_doc: &Value, filtered: bool) -> (String, Vec<String>) {
    let truth: BTreeMap<u64, &Value> = truth_doc["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .map(|p| (p["pid"].as_u64().expect("pid"), p))
        .collect();
    let mut mismatches = Vec::new();
    let ps = kvm_json(&["ps", "-M", core, "--threads", "--json"]);
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
    let mut threads_checked = 0;
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
    // Workqueue workers come and go within seconds; a handful changing
    // between the capture and the stop is normal, dozens would mean the
    // walk is wrong.
    if kthreads_differing.len() > 8 {
        mismatches.push(format!(
            "too many kernel threads differ: {kthreads_differing:?}"
        ));
    }
    let (mut unavailable, mut strings_checked) = (0, 0);
    for (pid, want) in &truth {
        let Some(p) = got.get(pid) else { continue };
        // Start time, where the truth has it: /proc's clock ticks
        // (USER_HZ 100) of the boot-time clock, exactly.
        if let Some(ticks) = want["starttime"].as_u64() {
            let ns = p["start_time_ns"].as_u64();
            if ns.map(|n| n / 10_000_000) != Some(ticks) {
                mismatches.push(format!(
                    "pid {pid} start time: guest {ticks} ticks, kvm {ns:?} ns"
                ));
            }
        }
        if !comm_matches(
            want["comm"].as_str().unwrap_or(""),
            p["comm"].as_str().unwrap_or(""),
        ) {
            mismatches.push(format!(
                "pid {pid} comm: guest {}, kvm {}",
                want["comm"], p["comm"]
            ));
        }
        // The workload runs no set-uid program: /proc's effective ids
        // equal its real ones (truth.json records the real ones).
        for (field, truth_field) in [
            ("ppid", "ppid"),
            ("uid", "uid"),
            ("gid", "gid"),
            ("euid", "uid"),
            ("egid", "gid"),
            ("kthread", "kthread"),
        ] {
            if p[field] != want[truth_field] {
                mismatches.push(format!(
                    "pid {pid} {field}: guest {}, kvm {}",
                    want[truth_field], p[field]
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
        // Threads of user processes: same tids, names and states (kernel
        // threads have one thread, their state checked above or not at all).
        if !want["kthread"].as_bool().unwrap_or(true) {
            let key = |t: &Value| {
                (
                    t["tid"].as_u64(),
                    t["name"].as_str().map(str::to_owned),
                    t["state"].as_str().map(str::to_owned),
                )
            };
            let mut w: Vec<_> = want["threads"]
                .as_array()
                .map(|a| a.iter().map(key).collect())
                .unwrap_or_default();
            let mut g: Vec<_> = p["threads"]
                .as_array()
                .map(|a| a.iter().map(key).collect())
                .unwrap_or_default();
            w.sort();
            g.sort();
            if w != g {
                mismatches.push(format!("pid {pid} threads: guest {w:?}, kvm {g:?}"));
            }
            threads_checked += g.len();
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
            truth_doc["loadavg"][i].as_f64().unwrap(),
        );
        if (g - w).abs() > 0.01 + 1e-9 {
            mismatches.push(format!("loadavg[{i}]: guest {w}, kvm {g}"));
        }
    }
    let info = kvm_json(&["info", "-M", core, "--json"]);
    if info["release"] != truth_doc["release"] || info["arch"] != truth_doc["arch"] {
        mismatches.push(format!("info: {} {}", info["release"], info["arch"]));
    }
    let summary = format!(
        "{} processes, user threads equal: {threads_checked}, argv/env lists equal: {strings_checked}, unavailable: {unavailable}, \
         kernel threads started/ended after the capture: {kthreads_differing:?}, mismatches: {}",
        got.len(),
        mismatches.len()
    );
    (summary, mismatches)
}
