//! `kvm bt --all` against the kernel's own unwinder: every task's
//! `/proc/PID/task/TID/stack` read by the guest right before the stop,
//! on every dump of every set (x86-64 through the dump's ORC tables,
//! arm64 through frame records; no vmlinux).
//!
//! The kernel leaves scheduler and lock functions out of that file
//! (`stack_trace_save_tsk` skips `.sched.text` and `.spinlock.text`), so
//! kvm's frames are compared with those left out by the same ranges, and
//! kvm must show them: every sleeping user task's backtrace holds
//! `__schedule` and `schedule` and ends in the syscall entry.

use crate::common::kvm_json;
use crate::{hex, sets};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// A frame as /proc/PID/stack names it, without the function's size:
/// `function+0xoff` (` [module]`).
fn name(f: &Value) -> String {
    let func = f["function"].as_str().unwrap_or("?");
    let off = f["offset"]
        .as_u64()
        .map_or("?".into(), |o| format!("{o:#x}"));
    match f["module"].as_str() {
        Some(m) => format!("{func}+{off} [{m}]"),
        None => format!("{func}+{off}"),
    }
}

/// A /proc/PID/stack line (`function+0xoff/0xsize [module]`) as [`name`].
fn truth_name(line: &str) -> String {
    let (sym, module) = match line.split_once(' ') {
        Some((s, m)) => (s, Some(m)),
        None => (line, None),
    };
    let sym = sym.split_once('/').map_or(sym, |(s, _)| s);
    match module {
        Some(m) => format!("{sym} {m}"),
        None => sym.to_string(),
    }
}

#[test]
fn bt_equals_proc_stack_on_every_dump() {
    for set in sets() {
        let syms: HashMap<String, u64> = set
            .kallsyms_lines()
            .into_iter()
            .map(|s| (s.name, s.addr))
            .collect();
        let range = |a: &str, b: &str| (syms[a], syms[b]);
        let hidden = [
            range("__sched_text_start", "__sched_text_end"),
            range("__lock_text_start", "__lock_text_end"),
        ];
        let entry = match set.arch() {
            "x86_64" => "entry_SYSCALL_64_after_hwframe",
            _ => "el0t_64_sync",
        };
        for (kind, dump) in set.dumps() {
            let got = kvm_json(&["bt", "--all", "--json", "-M", dump.to_str().unwrap()]);
            let by_tid: BTreeMap<u64, &Value> = got
                .as_array()
                .expect("an array")
                .iter()
                .map(|b| (b["tid"].as_u64().expect("tid"), b))
                .collect();
            let mut bad = Vec::new();
            let (mut equal, mut kthreads, mut ends) = (0, 0, BTreeMap::new());
            for p in set.truth["processes"].as_array().unwrap() {
                let kthread = p["kthread"].as_bool().unwrap();
                for t in p["threads"].as_array().unwrap() {
                    let tid = t["tid"].as_u64().unwrap();
                    let who = format!("{} {kind} tid {tid} ({})", set.name, t["name"]);
                    let Some(b) = by_tid.get(&tid) else {
                        bad.push(format!("{who}: no backtrace"));
                        continue;
                    };
                    let end = b["end"].as_str().unwrap();
                    *ends.entry(end.to_string()).or_insert(0) += 1;
                    if !matches!(end, "complete" | "user mode" | "exited") {
                        // A running CPU caught outside the kernel's text
                        // (arm64's KPTI trampoline, entered from user mode
                        // by the burner) has nothing to unwind: said so.
                        let outside = b["running"] == true
                            && b["frames"].as_array().is_some_and(Vec::is_empty)
                            && b["error"]
                                .as_str()
                                .is_some_and(|e| e.contains("is not in the kernel's text"));
                        if !outside {
                            bad.push(format!("{who}: ends {end}: {}", b["error"]));
                        }
                        continue;
                    }
                    let frames = b["frames"].as_array().unwrap();
                    for f in frames {
                        let func = f["function"].as_str().unwrap_or("?");
                        if !syms.contains_key(func) {
                            bad.push(format!("{who}: frame {} is no kallsyms symbol", name(f)));
                        }
                    }
                    let state = t["state"].as_str().unwrap();
                    if state == "Z" {
                        if end != "exited" {
                            bad.push(format!("{who}: a zombie whose stack is {end}"));
                        }
                        continue;
                    }
                    let sleeping = !b["running"].as_bool().unwrap()
                        && b["state"].as_str() == Some(state)
                        && state != "R";
                    let Some(stack) = t["stack"].as_array().filter(|s| !s.is_empty()) else {
                        continue;
                    };
                    if !sleeping {
                        continue;
                    }
                    let mine: Vec<String> = frames
                        .iter()
                        .filter(|f| {
                            let pc = hex(&f["pc"]);
                            !hidden.iter().any(|&(s, e)| (s..e).contains(&pc))
                        })
                        .map(name)
                        .collect();
                    let want: Vec<String> = stack
                        .iter()
                        .map(|l| truth_name(l.as_str().unwrap()))
                        .collect();
                    let funcs: Vec<&str> = frames
                        .iter()
                        .map(|f| f["function"].as_str().unwrap_or("?"))
                        .collect();
                    if !kthread {
                        if end != "complete"
                            || !funcs.contains(&"__schedule")
                            || !funcs.contains(&"schedule")
                            || funcs.last() != Some(&entry)
                        {
                            bad.push(format!("{who}: {end}, frames {funcs:?}"));
                        }
                        // init runs its wait loop between the capture and
                        // the stop: its stack moved.
                        if p["pid"] == 1 {
                            continue;
                        }
                        if mine == want {
                            equal += 1;
                        } else {
                            bad.push(format!("{who}:\n  /proc {want:?}\n  kvm   {mine:?}"));
                        }
                    } else {
                        // A kernel thread may have run between the capture
                        // and the stop (and slept elsewhere in its loop):
                        // where it started is fixed.
                        kthreads += 1;
                        let tail = |v: &[String]| v[v.len().saturating_sub(2)..].to_vec();
                        if tail(&mine) != tail(&want) {
                            bad.push(format!("{who}:\n  /proc {want:?}\n  kvm   {mine:?}"));
                        } else if mine == want {
                            equal += 1;
                        }
                    }
                }
            }
            eprintln!(
                "{} {kind}: {equal} backtraces equal to /proc/PID/stack ({kthreads} kernel threads checked by their outermost frames); ends {ends:?}",
                set.name
            );
            assert!(bad.is_empty(), "{} {kind}:\n{}", set.name, bad.join("\n"));
            assert!(equal > 20, "{} {kind}: only {equal} compared", set.name);
        }
    }
}

/// `kvm ps -o pid,wchan` against `/proc/PID/wchan` (the kernel's
/// `get_wchan`: the first frame outside the scheduler, named by the
/// return address itself) for every blocked user process, on every dump.
#[test]
fn ps_wchan_equals_proc_wchan_on_every_dump() {
    for set in sets() {
        for (kind, dump) in set.dumps() {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvm"))
                .args(["ps", "-o", "pid,wchan", "-M", dump.to_str().unwrap()])
                .output()
                .expect("kvm runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got: BTreeMap<u64, String> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    Some((f.next()?.parse().ok()?, f.next()?.to_string()))
                })
                .collect();
            let (mut equal, mut bad) = (0, Vec::new());
            for p in set.truth["processes"].as_array().unwrap() {
                let Some(want) = p["wchan"].as_str() else {
                    panic!("truth.json has no wchan (run `cargo xtask fixtures`)");
                };
                // init runs its wait loop between the capture and the stop.
                if p["kthread"] == true || want == "0" || p["pid"] == 1 {
                    continue;
                }
                let pid = p["pid"].as_u64().unwrap();
                match got.get(&pid) {
                    Some(w) if w == want => equal += 1,
                    w => bad.push(format!("pid {pid}: /proc {want}, kvm {w:?}")),
                }
            }
            eprintln!(
                "{} {kind}: wchan of {equal} blocked user processes equal /proc",
                set.name
            );
            assert!(bad.is_empty(), "{} {kind}:\n{}", set.name, bad.join("\n"));
            assert!(equal > 15, "{} {kind}: {equal} compared", set.name);
        }
    }
}
