//! `kvm panic` on the panic dumps (init crashed the kernel with sysrq c
//! after the other dumps; `panic.json` holds what the guest's console
//! printed) and on the set's other dumps, which did not panic.
//!
//! The console's Call Trace was printed from inside `panic()` (its first
//! frames are `dump_stack`'s); kvm's trace starts where the CPU stood when
//! the dump was taken (`panic()`'s delay loop). From `panic` outwards the
//! two must name the same functions in the same order. arm64's console
//! names a return address by the function it points into (`%pS`), kvm by
//! the call before it: where a call was a function's last instruction
//! (`panic` does not return) the console's name is that of the function
//! after, which kvm's raw program counter then names.

use crate::common::kvm_json;
use crate::{hex, sets};
use serde_json::Value;

/// kallsyms.txt's text symbols, by address (the file's order kept among
/// those at one address).
fn text_symbols(set: &crate::Set) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = set
        .kallsyms_lines()
        .into_iter()
        .filter(|s| matches!(s.kind, b't' | b'T'))
        .map(|s| (s.addr, s.name))
        .collect();
    v.sort_by_key(|s| s.0);
    v
}

/// The function containing `pc` by kallsyms (the first at its address).
fn containing(syms: &[(u64, String)], pc: u64) -> Option<&str> {
    let i = syms.partition_point(|(a, _)| *a <= pc).checked_sub(1)?;
    let addr = syms[i].0;
    let first = syms.partition_point(|(a, _)| *a < addr);
    Some(&syms[first].1)
}

#[test]
fn panic_equals_the_console_on_the_panic_dumps() {
    for set in sets() {
        let path = set.dir.join("panic.json");
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (run `cargo xtask fixtures`)", path.display())
            }))
            .expect("panic.json parses");
        let syms = text_symbols(&set);
        let console: Vec<&str> = truth["call_trace"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        let c_from = console
            .iter()
            .position(|f| *f == "panic")
            .expect("the console's trace holds panic");
        let regs = match set.arch() {
            "x86_64" => ["rip", "rsp", "rbp"],
            _ => ["pc", "sp", "x29"],
        };
        for (kind, file) in truth["dumps"].as_object().unwrap() {
            let dump = set.dir.join(file.as_str().unwrap());
            let who = format!("{} panic {kind}", set.name);
            let got = kvm_json(&["panic", "--json", "-M", dump.to_str().unwrap()]);
            assert_eq!(got["panicked"], true, "{who}");
            for k in ["message", "cpu", "pid", "comm"] {
                assert_eq!(got[k], truth[k], "{who}: {k}");
            }
            assert_eq!(
                got["time_ns"].as_u64().unwrap() / 1000,
                truth["time_us"].as_u64().unwrap(),
                "{who}: time"
            );
            // Every register of the CPU's note.
            let r = got["registers"].as_object().expect("registers");
            let count = if set.arch() == "x86_64" { 27 } else { 34 };
            assert_eq!(r.len(), count, "{who}: registers {r:?}");
            for name in regs {
                assert!(r.contains_key(name), "{who}: no {name} in {r:?}");
            }
            // The backtrace starts at the CPU's program counter.
            let frames = got["backtrace"].as_array().expect("a backtrace");
            assert_eq!(hex(&frames[0]["pc"]), hex(&r[regs[0]]), "{who}: first pc");
            assert_eq!(
                got["backtrace_end"], "complete",
                "{who}: {}",
                got["backtrace_error"]
            );
            let funcs: Vec<&str> = frames
                .iter()
                .map(|f| f["function"].as_str().unwrap_or("?"))
                .collect();
            let k_from = funcs
                .iter()
                .position(|f| *f == "panic")
                .unwrap_or_else(|| panic!("{who}: no panic frame in {funcs:?}"));
            let ours = &frames[k_from..];
            let theirs = &console[c_from..];
            let same = ours.len() == theirs.len()
                && ours.iter().zip(theirs).all(|(f, c)| {
                    f["function"].as_str() == Some(*c)
                        || containing(&syms, hex(&f["pc"])) == Some(*c)
                });
            assert!(
                same,
                "{who}: from panic on\n  console {theirs:?}\n  kvm     {:?}",
                &funcs[k_from..]
            );
            // The log holds the panic's record too.
            let log = kvm_json(&["dmesg", "--json", "-M", dump.to_str().unwrap()]);
            let text = format!(
                "Kernel panic - not syncing: {}",
                truth["message"].as_str().unwrap()
            );
            assert!(
                log.as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["text"].as_str().is_some_and(|t| t.starts_with(&text))),
                "{who}: dmesg has no {text:?}"
            );
            // Every task's backtrace reaches the stack's end: the running
            // ones from the dump's CPU registers.
            let all = kvm_json(&["bt", "--all", "--json", "-M", dump.to_str().unwrap()]);
            for b in all.as_array().unwrap() {
                let outside = b["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("is not in the kernel's text"));
                assert!(
                    matches!(b["end"].as_str(), Some("complete" | "user mode" | "exited"))
                        || (b["running"] == true && outside),
                    "{who}: tid {} ends {}: {}",
                    b["tid"],
                    b["end"],
                    b["error"]
                );
            }
            eprintln!(
                "{who}: \"{}\" on CPU {} by pid {}, {} frames from panic equal the console's",
                got["message"].as_str().unwrap(),
                got["cpu"],
                got["pid"],
                ours.len()
            );
        }
        // The set's other dumps were taken before: no panic; the running
        // tasks listed are those `kvm bt` unwinds from CPU registers.
        for (kind, dump) in set.dumps() {
            let core = dump.to_str().unwrap();
            let got = kvm_json(&["panic", "--json", "-M", core]);
            let who = format!("{} {kind}", set.name);
            assert_eq!(got["panicked"], false, "{who}");
            assert!(got["message"].is_null(), "{who}");
            let cpus = got["on_cpu"].as_array().unwrap();
            let mut on: Vec<u64> = cpus
                .iter()
                .filter(|c| c["idle"] == false)
                .map(|c| c["tid"].as_u64().unwrap())
                .collect();
            // Both vCPUs, in order, each running a task or idle.
            let numbers: Vec<u64> = cpus.iter().map(|c| c["cpu"].as_u64().unwrap()).collect();
            assert_eq!(numbers, [0, 1], "{who}: {cpus:?}");
            let mut running: Vec<u64> = kvm_json(&["bt", "--all", "--json", "-M", core])
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| b["from"] == "cpu registers")
                .map(|b| b["tid"].as_u64().unwrap())
                .collect();
            on.sort_unstable();
            running.sort_unstable();
            assert_eq!(on, running, "{who}: running tasks");
        }
    }
}
