//! The C interface inside the guest: `kvm/tests/c/in_guest.c`, linked
//! statically with libkvm.a built for each guest (`xtask/src/fixtures/
//! capibin.rs`), ran by `capture.sh` on the running kernel after the
//! in-guest `kvm` runs. Its lines (`live/capi.jsonl`) meet the truth:
//!
//! - every live rule it checks on its own (corefile NULL opens the running
//!   kernel by all three open calls; writes refused on a read-only handle,
//!   zero bytes too; a write /proc/kcore cannot take fails with a message;
//!   `kvm_getprocs` lists this process as it is; `KVM_NO_FILES` reads no
//!   memory) held;
//! - `kvm_nlist`: the guest's /proc/kallsyms (System.map plus the KASLR
//!   offset, or not found, for arm64's data symbols); `_start_kernel`
//!   found as `start_kernel`;
//! - `kvm_read` of `linux_banner` (x86_64; `schedule`'s text on arm64,
//!   whose kallsyms has no data symbols): the dump's bytes there, and the
//!   guest's /proc/version;
//! - `kvm_getloadavg`: /proc/loadavg just before or just after;
//! - `kvm_getprocs` with `kvm_getargv`/`kvm_getenvv`, through /proc/kcore
//!   and through /proc (`KVM_NO_FILES`): the same comparison with /proc as
//!   `kvm ps` gets (`compare_ps`), but for the virtual size, which
//!   `struct kinfo_proc` does not carry.

use super::in_guest::{assert_none, hex_u64, proc_loadavg, system_map, Live};
use crate::common::{compare_loadavg, compare_ps};
use crate::sets;
use serde_json::{json, Value};

/// The rules the program checks, each once.
const CASES: &[&str] = &[
    "null_core_means_the_running_kernel",
    "nlist_on_the_running_kernel_finds_its_text",
    "nlist_strips_one_leading_underscore",
    "read_reads_the_running_kernel",
    "kvm_open_with_a_null_core_means_the_running_kernel",
    "kvm_open2_with_a_null_core_means_the_running_kernel",
    "zero_length_write_is_refused_on_a_read_only_handle",
    "write_is_refused_on_a_read_only_handle",
    "a_write_the_running_kernel_cannot_take_fails_clearly",
    "getloadavg_reads_the_running_kernel",
    "getprocs_lists_the_running_kernels_processes",
    "getprocs_by_pid_finds_this_process",
    "no_files_lists_the_processes_the_os_lists",
    "no_files_reads_no_memory",
];

/// The program's own arguments (capture.sh).
const ARGV: &[&str] = &["kvm-capi-in-guest", "--kvm-lab-capi", "two words"];

fn unhex(v: &Value) -> Option<Vec<u8>> {
    let s = v.as_str()?;
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn text(v: &Value) -> Option<String> {
    unhex(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A string vector; `kthread`: a NULL vector is a kernel thread's (BSD
/// gives them none), the empty list /proc shows.
fn strings(v: &Value, kthread: bool) -> Value {
    match v.as_array() {
        None if kthread => json!([]),
        None => Value::Null,
        Some(a) => a
            .iter()
            .map(|s| text(s).map_or(Value::Null, Value::from))
            .collect(),
    }
}

/// A `kinfo_proc` line as `kvm ps --json` would have the process: the
/// fields `compare_ps` looks at.
fn as_ps(p: &Value) -> Value {
    let sec = p["ustart_sec"].as_u64().unwrap_or(0);
    let usec = p["ustart_usec"].as_u64().unwrap_or(0);
    // P_SYSTEM (kvm.h).
    let kthread = p["flag"].as_i64().is_some_and(|f| f & 0x200 != 0);
    json!({
        "pid": p["pid"], "ppid": p["ppid"],
        "uid": p["ruid"], "euid": p["uid"], "gid": p["rgid"], "egid": p["gid"],
        "state": p["state"],
        "kthread": kthread,
        "comm": text(&p["comm"]),
        "start_time_ns": sec * 1_000_000_000 + usec * 1_000,
        "argv": strings(&p["argv"], kthread), "envv": strings(&p["envv"], kthread),
    })
}

#[test]
fn the_c_interface_inside_the_guest() {
    let mut all = Vec::new();
    for set in sets() {
        let live = Live::of(&set);
        let mut bad = Vec::new();
        let run = live.run("capi");
        if run.exit != 0 {
            bad.push(format!(
                "kvm-capi-in-guest exited with {}: {}",
                run.exit,
                live.stderr("capi").trim()
            ));
        }
        let lines: Vec<Value> = String::from_utf8(live.stdout("capi", "jsonl"))
            .expect("capi.jsonl is ASCII")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        let find = |key: &'static str| lines.iter().filter(move |l| !l[key].is_null());

        // The rules, each checked once and held.
        let cases: Vec<&Value> = find("case").collect();
        let names: Vec<&str> = cases.iter().filter_map(|c| c["case"].as_str()).collect();
        if names != CASES {
            bad.push(format!("cases {names:?}, want {CASES:?}"));
        }
        for c in &cases {
            if c["ok"] != true {
                bad.push(format!("{}: {}", c["case"], c["why"]));
            }
        }
        // The write /proc/kcore cannot take says where writes go.
        let rw = cases
            .iter()
            .find(|c| c["case"] == "a_write_the_running_kernel_cannot_take_fails_clearly");
        if !rw.is_some_and(|c| {
            c["why"]
                .as_str()
                .is_some_and(|w| w.contains("/proc/kcore is read-only; live writes go through"))
        }) {
            bad.push(format!("the O_RDWR write's message: {rw:?}"));
        }
        let me = find("self").next().and_then(|l| l["self"].as_u64());
        assert_eq!(me, Some(run.pid), "{}: the program's own pid", set.name);

        // nlist against the guest's kallsyms, as the in-guest kvm's.
        let offset = hex_u64(&set.truth["kaslr_offset"]).expect("truth kaslr_offset");
        let nl: Vec<(&str, Option<u64>)> = find("nlist")
            .map(|l| (l["nlist"].as_str().unwrap(), hex_u64(&l["value"])))
            .collect();
        let value = |name: &str| nl.iter().find(|(n, _)| *n == name).and_then(|(_, v)| *v);
        let mut by_kallsyms = 0;
        for &(name, got) in &nl {
            let want = match name {
                "_start_kernel" => value("start_kernel"),
                _ => match set.kallsyms(name) {
                    Some(w) => {
                        by_kallsyms += 1;
                        Some(w)
                    }
                    // Not in arm64's kallsyms: at its link-time address
                    // moved by the KASLR offset, or not found (0).
                    None if got == Some(0) => Some(0),
                    None => system_map(&set, name).map(|a| a.wrapping_add(offset)),
                },
            };
            if got != want || got.is_none() {
                bad.push(format!("kvm_nlist {name}: {got:x?}, want {want:x?}"));
            }
        }
        if by_kallsyms < 3 {
            bad.push(format!("only {by_kallsyms} names were in kallsyms"));
        }

        // What kvm_read read: the bytes the dump holds there (taken
        // seconds later; kernel text and the banner do not change), and
        // linux_banner is what /proc/version prints.
        match find("read").next() {
            None => bad.push("no kvm_read result".into()),
            Some(r) => {
                let (name, addr) = (r["read"].as_str().unwrap(), hex_u64(&r["addr"]).unwrap());
                let got = unhex(&r["bytes"]).expect("hex bytes");
                let dump = kvm::Kvm::open_dump(set.dir.join("vmcore.elf")).expect("vmcore.elf");
                let mut want = vec![0u8; got.len()];
                assert_eq!(
                    dump.read(addr, &mut want).expect("the dump's bytes"),
                    want.len()
                );
                if got != want {
                    bad.push(format!(
                        "kvm_read {name} at {addr:#x}: not the dump's bytes"
                    ));
                }
                if name == "linux_banner" {
                    let end = got.iter().position(|&b| b == 0).unwrap_or(got.len());
                    let banner = String::from_utf8_lossy(&got[..end]);
                    let version = set.truth["version"].as_str().expect("truth version");
                    if banner.trim_end_matches('\n') != version {
                        bad.push(format!(
                            "linux_banner {banner:?}, /proc/version {version:?}"
                        ));
                    }
                } else if set.arch() == "x86_64" {
                    bad.push(format!("read {name}, not linux_banner, on x86_64"));
                }
            }
        }

        // The load average: one of the two readings around the call.
        let la = find("loadavg").next().expect("a loadavg line");
        let reading = |k: &str| proc_loadavg(la[k].as_str().expect("a /proc/loadavg reading"));
        let (before, after) = (reading("proc_before"), reading("proc_after"));
        if !compare_loadavg(&la["loadavg"], before).is_empty()
            && !compare_loadavg(&la["loadavg"], after).is_empty()
        {
            bad.push(format!(
                "kvm_getloadavg {}, /proc/loadavg before {before:?}, after {after:?}",
                la["loadavg"]
            ));
        }

        // The process lists against /proc, the program and its shell
        // being the two the truth cannot have.
        let mut truth = set.truth.clone();
        for p in truth["processes"].as_array_mut().unwrap() {
            p.as_object_mut().unwrap().remove("vsize");
        }
        let mut report = Vec::new();
        for source in ["kcore", "procfs"] {
            let ps: Vec<Value> = find("proc")
                .filter(|l| l["source"] == source)
                .map(|l| as_ps(&l["proc"]))
                .collect();
            let c = compare_ps(
                &Value::from(ps.clone()),
                &truth,
                false,
                false,
                &[live.shell, run.pid],
            );
            bad.extend(c.mismatches.iter().map(|m| format!("{source}: {m}")));
            let own = ps.iter().find(|p| p["pid"].as_u64() == Some(run.pid));
            let want = json!({"ppid": live.shell, "argv": ARGV, "state": "R", "uid": 0});
            match own {
                None => bad.push(format!(
                    "{source}: the program (pid {}) not listed",
                    run.pid
                )),
                Some(p) => {
                    for (k, v) in want.as_object().unwrap() {
                        if &p[k] != v {
                            bad.push(format!("{source}: the program's {k}: {}, want {v}", p[k]));
                        }
                    }
                }
            }
            report.push(format!(
                "{source}: {} listed, {} compared with /proc, argv/env lists equal {}, \
                 kernel threads differing {:?}",
                c.listed, c.compared, c.strings_checked, c.kthreads_differing
            ));
        }
        eprintln!(
            "{} (C, in the guest, {:.2}s): {} cases held of {}; nlist {by_kallsyms} = kallsyms; \
             {}; mismatches: {}",
            set.name,
            run.secs,
            cases.iter().filter(|c| c["ok"] == true).count(),
            cases.len(),
            report.join("; "),
            bad.len()
        );
        all.extend(bad.iter().map(|m| format!("{}: {m}", set.name)));
    }
    assert_none("the C interface inside the guest", &all);
}
