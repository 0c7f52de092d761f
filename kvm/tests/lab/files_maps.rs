//! `kvm maps` and `kvm files` against the guest's own `/proc/PID/maps`,
//! `/proc/PID/fd` and `/proc/PID/fdinfo`, for every user process, on
//! every dump of every set (`-d 31` too: VMAs, files and dentries are
//! kernel memory). The workload holds a file read-write at offset 10, a
//! deleted file, `/dev/null`, a path over 200 bytes and a pipe (marker
//! 15) and a unix socket (syslogd, marker 16); every process maps
//! /bin/busybox.

use crate::common::kvm_json;
use crate::sets;
use serde_json::Value;
use std::collections::BTreeMap;

#[test]
fn maps_and_files_equal_proc_on_every_dump() {
    for set in sets() {
        let procs = set.truth["processes"].as_array().unwrap();
        let users: Vec<&Value> = procs
            .iter()
            .filter(|p| p["kthread"] == false && p["state"] != "Z")
            .collect();
        assert!(
            users.len() > 15,
            "{}: {} user processes",
            set.name,
            users.len()
        );
        for (kind, dump) in set.dumps() {
            let core = dump.to_str().unwrap();
            let who = |pid: &Value| format!("{} {kind} pid {pid}", set.name);
            let mut bad = Vec::new();
            let (mut maps_equal, mut fds_equal) = (0, 0);
            // Every process's maps in one run (`--pid` is the same code
            // on one process).
            let maps = kvm_json(&["maps", "--json", "-M", core]);
            let mut lines: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
            for m in maps.as_array().unwrap() {
                lines
                    .entry(m["pid"].as_u64().unwrap())
                    .or_default()
                    .push(&m["line"]);
            }
            // `--pid` gives the same lines (a few processes: a run each).
            for p in users.iter().take(3) {
                let pid = p["pid"].to_string();
                let one = kvm_json(&["maps", "--json", "--pid", &pid, "-M", core]);
                let one: Vec<&Value> = one.as_array().unwrap().iter().map(|m| &m["line"]).collect();
                let all = lines
                    .get(&p["pid"].as_u64().unwrap())
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(one, all, "{}: maps --pid", who(&p["pid"]));
            }
            for p in &users {
                let Some(want) = p["maps"].as_array() else {
                    continue;
                };
                let got = lines
                    .get(&p["pid"].as_u64().unwrap())
                    .cloned()
                    .unwrap_or_default();
                let want: Vec<&Value> = want.iter().collect();
                if got == want {
                    maps_equal += 1;
                } else {
                    bad.push(format!(
                        "{}: maps\n  /proc {want:?}\n  kvm   {got:?}",
                        who(&p["pid"])
                    ));
                }
            }
            let files = kvm_json(&["files", "--json", "-M", core]);
            let mut by_pid: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
            for f in files.as_array().unwrap() {
                let pid = f["pid"].as_u64().unwrap();
                by_pid.entry(pid).or_default().push(serde_json::json!({
                    "fd": f["fd"], "path": f["path"], "pos": f["pos"], "flags": f["flags"],
                }));
            }
            for p in &users {
                // init runs its wait loop between the capture and the stop,
                // with the FIFO on its standard input.
                if p["pid"] == 1 {
                    continue;
                }
                let want = p["fds"]
                    .as_array()
                    .expect("truth.json has fds (run `cargo xtask fixtures`)");
                let got = by_pid
                    .get(&p["pid"].as_u64().unwrap())
                    .cloned()
                    .unwrap_or_default();
                if &got == want {
                    fds_equal += 1;
                } else {
                    bad.push(format!(
                        "{}: files\n  /proc {want:?}\n  kvm   {got:?}",
                        who(&p["pid"])
                    ));
                }
            }
            eprintln!(
                "{} {kind}: maps of {maps_equal} and open files of {fds_equal} user processes equal /proc",
                set.name
            );
            assert!(bad.is_empty(), "{} {kind}:\n{}", set.name, bad.join("\n"));
        }
    }
}
