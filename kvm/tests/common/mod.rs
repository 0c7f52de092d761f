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

/// What comparing one `kvm ps --json` list with the guest's /proc found.
#[derive(Debug, Default)]
pub struct PsCheck {
    /// Processes kvm listed.
    pub listed: usize,
    /// Processes in both lists, compared field by field.
    pub compared: usize,
    /// Threads of user processes found equal (`--threads` lists only).
    pub threads_checked: usize,
    /// argv and environment lists found equal.
    pub strings_checked: usize,
    /// argv or environment lists kvm reported unavailable.
    pub unavailable: usize,
    /// Kernel threads in one list only (`+pid comm`: kvm's, `-pid comm`:
    /// the truth's).
    pub kthreads_differing: Vec<String>,
    /// What differs.
    pub mismatches: Vec<String>,
}

/// Compares `ps`, the output of `kvm ps --json` (`--threads` too when
/// `threads`), with the processes of `truth_doc` (a truth.json).
///
/// The pid sets must be equal, except for kernel threads that the kernel
/// started or ended between the capture and kvm's look (a handful at
/// most) and for the pids in `extra`: processes kvm may list that the
/// truth cannot have (a run inside the guest lists itself and the shell
/// that started it). `filtered`: the dump may leave argv/env pages out
/// (then they must be reported unavailable).
pub fn compare_ps(
    ps: &Value,
    truth_doc: &Value,
    threads: bool,
    filtered: bool,
    extra: &[u64],
) -> PsCheck {
    let truth: BTreeMap<u64, &Value> = truth_doc["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .map(|p| (p["pid"].as_u64().expect("pid"), p))
        .collect();
    let got: BTreeMap<u64, &Value> = ps
        .as_array()
        .expect("array")
        .iter()
        .map(|p| (p["pid"].as_u64().expect("pid"), p))
        .collect();
    let mut c = PsCheck {
        listed: got.len(),
        ..PsCheck::default()
    };
    // Kernel threads may come and go between the capture and kvm's look
    // (workqueue workers do; the capture itself writes to a disk): those
    // are counted and shown, user processes never.
    for (pid, p) in &got {
        if !truth.contains_key(pid) && !extra.contains(pid) {
            if p["kthread"].as_bool() == Some(true) {
                c.kthreads_differing.push(format!("+{pid} {}", p["comm"]));
            } else {
                c.mismatches.push(format!(
                    "pid {pid} ({}) not in the guest's /proc",
                    p["comm"]
                ));
            }
        }
    }
    for (pid, p) in &truth {
        if !got.contains_key(pid) {
            if p["kthread"].as_bool() == Some(true) {
                c.kthreads_differing.push(format!("-{pid} {}", p["comm"]));
            } else {
                c.mismatches
                    .push(format!("pid {pid} ({}) missing", p["comm"]));
            }
        }
    }
    // Workqueue workers come and go within seconds; a handful changing
    // between the capture and the stop is normal, dozens would mean the
    // walk is wrong.
    if c.kthreads_differing.len() > 8 {
        c.mismatches.push(format!(
            "too many kernel threads differ: {:?}",
            c.kthreads_differing
        ));
    }
    for (pid, want) in &truth {
        let Some(p) = got.get(pid) else { continue };
        c.compared += 1;
        // Start time, where the truth has it: /proc's clock ticks
        // (USER_HZ 100) of the boot-time clock, exactly.
        if let Some(ticks) = want["starttime"].as_u64() {
            let ns = p["start_time_ns"].as_u64();
            if ns.map(|n| n / 10_000_000) != Some(ticks) {
                c.mismatches.push(format!(
                    "pid {pid} start time: guest {ticks} ticks, kvm {ns:?} ns"
                ));
            }
        }
        // Virtual size, where the truth has it: /proc/PID/stat's vsize
        // (bytes; 0 without an address space), exactly.
        if let Some(bytes) = want["vsize"].as_u64() {
            if p["vsize"].as_u64() != Some(bytes) {
                c.mismatches.push(format!(
                    "pid {pid} vsize: guest {bytes}, kvm {}",
                    p["vsize"]
                ));
            }
        }
        if !comm_matches(
            want["comm"].as_str().unwrap_or(""),
            p["comm"].as_str().unwrap_or(""),
        ) {
            c.mismatches.push(format!(
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
                c.mismatches.push(format!(
                    "pid {pid} {field}: guest {}, kvm {}",
                    want[truth_field], p[field]
                ));
            }
        }
        // Kernel threads may change state between capture and stop.
        let user = !want["kthread"].as_bool().unwrap_or(true);
        if user && p["state"] != want["state"] {
            c.mismatches.push(format!(
                "pid {pid} state: guest {}, kvm {}",
                want["state"], p["state"]
            ));
        }
        // Threads of user processes: same tids, names and states (kernel
        // threads have one thread, their state checked above or not at all).
        if threads && user {
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
                c.mismatches
                    .push(format!("pid {pid} threads: guest {w:?}, kvm {g:?}"));
            }
            c.threads_checked += g.len();
        }
        for field in ["argv", "envv"] {
            if p[field].is_null() {
                // Unavailable is only acceptable where the dump left pages out.
                c.unavailable += 1;
                if !filtered {
                    c.mismatches.push(format!(
                        "pid {pid} {field}: unavailable in an unfiltered dump"
                    ));
                }
            } else if p[field] != want[field] {
                c.mismatches.push(format!(
                    "pid {pid} {field} differs: guest {}, kvm {}",
                    want[field], p[field]
                ));
            } else {
                c.strings_checked += 1;
            }
        }
    }
    c
}

/// Compares `got`, the output of `kvm loadavg --json`, with `want` (the
/// three values /proc/loadavg printed): each within 0.01 (/proc prints
/// two decimals).
pub fn compare_loadavg(got: &Value, want: [f64; 3]) -> Vec<String> {
    let mut mismatches = Vec::new();
    for (i, w) in want.iter().enumerate() {
        match got[i].as_f64() {
            Some(g) if (g - w).abs() <= 0.01 + 1e-9 => {}
            g => mismatches.push(format!("loadavg[{i}]: guest {w}, kvm {g:?}")),
        }
    }
    mismatches
}

/// Compares `kvm ps/loadavg/info --json` on `core` with `truth`; returns
/// a one-line summary and the mismatches. `filtered`: the dump may leave
/// argv/env pages out (then they must be reported unavailable).
pub fn check_dump(core: &str, truth_doc: &Value, filtered: bool) -> (String, Vec<String>) {
    let ps = kvm_json(&["ps", "-M", core, "--threads", "--json"]);
    let c = compare_ps(&ps, truth_doc, true, filtered, &[]);
    let mut mismatches = c.mismatches;
    let load = kvm_json(&["loadavg", "-M", core, "--json"]);
    let want: Vec<f64> = (0..3)
        .map(|i| truth_doc["loadavg"][i].as_f64().expect("truth loadavg"))
        .collect();
    mismatches.extend(compare_loadavg(&load, [want[0], want[1], want[2]]));
    let info = kvm_json(&["info", "-M", core, "--json"]);
    if info["release"] != truth_doc["release"] || info["arch"] != truth_doc["arch"] {
        mismatches.push(format!("info: {} {}", info["release"], info["arch"]));
    }
    let summary = format!(
        "{} processes ({} compared), user threads equal: {}, argv/env lists equal: {}, unavailable: {}, \
         kernel threads started/ended after the capture: {:?}, mismatches: {}",
        c.listed,
        c.compared,
        c.threads_checked,
        c.strings_checked,
        c.unavailable,
        c.kthreads_differing,
        mismatches.len()
    );
    (summary, mismatches)
}
