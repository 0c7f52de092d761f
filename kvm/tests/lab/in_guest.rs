//! kvm inside the guest: the workspace's `kvm` command, built static for
//! each guest and put at `/bin/kvm` in the lab's initramfs, ran on the
//! running kernel (no `-M`: /proc/kcore) right after `capture.sh` had read
//! /proc; what it printed is in each set's `live/` (`status.txt` has the
//! exit status and pid of every run). Here it meets that truth:
//!
//! - `kvm ps --json` and `kvm ps --threads --json`: the same comparison as
//!   on the dumps (`compare_ps`), where kvm may list exactly two processes
//!   the truth cannot have: itself and the capturing shell that started it
//!   (both checked for what they are);
//! - `kvm nlist`: the guest's /proc/kallsyms (and System.map plus the
//!   KASLR offset for the data symbols arm64's kallsyms lacks);
//! - `kvm loadavg`: /proc/loadavg read just before and just after it
//!   (truth.json's load average is read seconds later, after the kernel's
//!   next update: it is the value the dumps hold, not the one kvm saw);
//! - `kvm info`: release, architecture, KASLR offset;
//! - `kvm read -M /dev/mem`: RAM refused (CONFIG_STRICT_DEVMEM) with an
//!   error that says so; the BIOS area at 0xf0000 read on x86, byte for
//!   byte what the dump holds there.

use crate::common::{compare_loadavg, compare_ps};
use crate::{sets, Set};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One in-guest run of kvm, from `live/status.txt`.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) exit: i32,
    pub(super) pid: u64,
    /// Guest uptime (s) before and after.
    pub(super) secs: f64,
    /// kvm's arguments.
    args: Vec<String>,
}

/// A set's `live/`: the runs and the capturing shell's pid.
#[derive(Debug)]
pub(super) struct Live {
    dir: PathBuf,
    pub(super) shell: u64,
    runs: BTreeMap<String, Run>,
}

impl Live {
    pub(super) fn of(set: &Set) -> Live {
        let dir = set.dir.join("live");
        let status = std::fs::read_to_string(dir.join("status.txt")).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: this set predates the in-guest kvm: run `cargo xtask fixtures`",
                dir.display()
            )
        });
        let mut shell = None;
        let mut runs = BTreeMap::new();
        for l in status.lines() {
            if let Some(p) = l.strip_prefix("shell pid=") {
                shell = Some(p.parse().expect("shell pid"));
                continue;
            }
            let (head, args) = l.split_once(" args=").expect("args= in a status line");
            let mut w = head.split_whitespace();
            let name = w.next().expect("run name").to_owned();
            let kv: BTreeMap<&str, &str> = w.filter_map(|f| f.split_once('=')).collect();
            let num = |k: &str| -> f64 { kv[k].parse().expect("a number") };
            runs.insert(
                name,
                Run {
                    exit: kv["exit"].parse().expect("exit status"),
                    pid: kv["pid"].parse().expect("pid"),
                    secs: num("end") - num("start"),
                    args: args.split_whitespace().map(str::to_owned).collect(),
                },
            );
        }
        Live {
            dir,
            shell: shell.expect("a `shell pid=` line"),
            runs,
        }
    }

    pub(super) fn run(&self, name: &str) -> &Run {
        self.runs
            .get(name)
            .unwrap_or_else(|| panic!("{}: no run {name} in status.txt", self.dir.display()))
    }

    pub(super) fn stdout(&self, name: &str, ext: &str) -> Vec<u8> {
        let p = self.dir.join(format!("{name}.{ext}"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    pub(super) fn stderr(&self, name: &str) -> String {
        let p = self.dir.join(format!("{name}.err"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The JSON a run printed, or why there is none (a failed run).
    fn json(&self, name: &str) -> Result<Value, String> {
        let r = self.run(name);
        // nlist exits 1 when a name is not found, its JSON saying which
        // (null): arm64's kallsyms lacks data symbols.
        if r.exit != 0 && !(name == "nlist" && r.exit == 1) {
            return Err(format!(
                "kvm {} exited with {}: {}",
                r.args.join(" "),
                r.exit,
                self.stderr(name).trim()
            ));
        }
        serde_json::from_slice(&self.stdout(name, "json"))
            .map_err(|e| format!("kvm {}: bad JSON: {e}", r.args.join(" ")))
    }
}

/// The mismatches of every set, with the set's name, in the failure message
/// (CI shows the message, not always the lines before it).
pub(super) fn assert_none(what: &str, all: &[String]) {
    assert!(
        all.is_empty(),
        "{what}: {} mismatches, the first: {:#?}",
        all.len(),
        &all[..all.len().min(20)]
    );
}

/// The three load averages of a `/proc/loadavg` line.
pub(super) fn proc_loadavg(line: &str) -> [f64; 3] {
    let v: Vec<f64> = line
        .split_whitespace()
        .take(3)
        .map(|x| x.parse().expect("a load average"))
        .collect();
    [v[0], v[1], v[2]]
}

pub(super) fn hex_u64(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

#[test]
fn ps_inside_the_guest_matches_its_proc() {
    let mut all = Vec::new();
    let mut report = Vec::new();
    for set in sets() {
        let live = Live::of(&set);
        for (name, threads) in [("ps", false), ("ps-threads", true)] {
            let mut bad = Vec::new();
            let run = live.run(name);
            let ps = match live.json(name) {
                Ok(v) => v,
                Err(e) => {
                    all.push(format!("{}/{name}: {e}", set.name));
                    continue;
                }
            };
            let extra = [live.shell, run.pid];
            let c = compare_ps(&ps, &set.truth, threads, false, &extra);
            bad.extend(c.mismatches.iter().cloned());
            // The two processes the truth cannot have, as they were.
            let by_pid = |pid: u64| {
                ps.as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["pid"].as_u64() == Some(pid))
            };
            let mut own = Vec::new();
            let mut kvm_argv = vec!["kvm".to_owned()];
            kvm_argv.extend(run.args.iter().cloned());
            for (pid, comm, ppid, argv, state) in [
                (run.pid, "kvm", live.shell, kvm_argv, "R"),
                (
                    live.shell,
                    "sh",
                    1,
                    vec!["sh".to_owned(), "/capture.sh".to_owned()],
                    "S",
                ),
            ] {
                let Some(p) = by_pid(pid) else {
                    own.push(format!("pid {pid} ({comm}) not listed"));
                    continue;
                };
                let want = serde_json::json!({
                    "comm": comm, "ppid": ppid, "argv": argv, "state": state,
                    "uid": 0, "gid": 0, "kthread": false,
                });
                for (k, v) in want.as_object().unwrap() {
                    if &p[k] != v {
                        own.push(format!("pid {pid} ({comm}) {k}: want {v}, kvm {}", p[k]));
                    }
                }
            }
            let own_ok = own.is_empty();
            bad.append(&mut own);
            // The workload's processes (KVM_MARKER_<n> in their environment) among those compared.
            let workload = set.truth["processes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| {
                    p["envv"].as_array().is_some_and(|e| {
                        e.iter()
                            .any(|v| v.as_str().is_some_and(|s| s.starts_with("KVM_MARKER_")))
                    }) && by_pid(p["pid"].as_u64().unwrap()).is_some()
                })
                .count();
            if workload < 14 {
                bad.push(format!("only {workload} workload processes listed"));
            }
            report.push(format!(
                "{}/{name} (in the guest, {:.2}s): {} processes listed, {} compared with /proc \
                 ({workload} of the workload), kvm pid {} and shell pid {} as expected: {}, \
                 user threads equal: {}, argv/env lists equal: {}, kernel threads started/ended \
                 in between: {:?}, mismatches: {}",
                set.name,
                run.secs,
                c.listed,
                c.compared,
                run.pid,
                live.shell,
                own_ok,
                c.threads_checked,
                c.strings_checked,
                c.kthreads_differing,
                bad.len()
            ));
            all.extend(bad.iter().map(|m| format!("{}/{name}: {m}", set.name)));
        }
    }
    for r in &report {
        eprintln!("{r}");
    }
    assert_none("kvm ps inside the guest against its /proc", &all);
}

/// `name`'s link-time address in the set's System.map.
pub(super) fn system_map(set: &Set, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(set.dir.join("System.map")).expect("System.map");
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let addr = f.next()?;
        let _kind = f.next()?;
        (f.next()? == name).then(|| u64::from_str_radix(addr, 16).ok())?
    })
}

#[test]
fn nlist_loadavg_and_info_inside_the_guest() {
    let mut all = Vec::new();
    for set in sets() {
        let live = Live::of(&set);
        let mut bad = Vec::new();
        let offset = hex_u64(&set.truth["kaslr_offset"]).expect("truth kaslr_offset");

        // nlist: every name /proc/kallsyms has, at its address; names it
        // lacks (arm64's data symbols) at System.map + KASLR offset, or
        // not found.
        let (mut by_kallsyms, mut by_map, mut absent) = (0, 0, Vec::new());
        match live.json("nlist") {
            Err(e) => bad.push(e),
            Ok(got) => {
                let names: Vec<&String> = live.run("nlist").args.iter().skip(2).collect();
                assert_eq!(names.len(), 8, "{}: nlist names {names:?}", set.name);
                for name in names {
                    let kvm = &got[name.as_str()];
                    match set.kallsyms(name) {
                        Some(want) => {
                            if hex_u64(kvm) == Some(want) {
                                by_kallsyms += 1;
                            } else {
                                bad.push(format!("nlist {name}: kallsyms {want:#x}, kvm {kvm}"));
                            }
                        }
                        None => {
                            let want = system_map(&set, name).map(|a| a.wrapping_add(offset));
                            if kvm.is_null() {
                                absent.push(name.clone());
                            } else if hex_u64(kvm).is_some() && hex_u64(kvm) == want {
                                by_map += 1;
                            } else {
                                bad.push(format!(
                                    "nlist {name}: not in kallsyms, System.map + offset {want:x?}, kvm {kvm}"
                                ));
                            }
                        }
                    }
                }
                // _stext, schedule and start_kernel are in every kallsyms.
                if by_kallsyms < 3 {
                    bad.push(format!(
                        "nlist: only {by_kallsyms} names in kallsyms matched"
                    ));
                }
            }
        }

        // loadavg: one of the two /proc/loadavg readings around the run.
        let proc_text =
            std::fs::read_to_string(live.dir.join("loadavg.proc")).expect("live/loadavg.proc");
        let readings: Vec<[f64; 3]> = proc_text.lines().map(proc_loadavg).collect();
        assert_eq!(readings.len(), 2, "{}: loadavg.proc", set.name);
        let mut load_note = String::from("?");
        match live.json("loadavg") {
            Err(e) => bad.push(e),
            Ok(got) => {
                let before = compare_loadavg(&got, readings[0]);
                let after = compare_loadavg(&got, readings[1]);
                load_note = format!(
                    "kvm {got}, /proc before {:?}, after {:?}: {}",
                    readings[0],
                    readings[1],
                    match (
                        before.is_empty(),
                        after.is_empty(),
                        readings[0] == readings[1]
                    ) {
                        (true, _, true) => "equal (no update during the run)",
                        (true, _, false) => "the value before the kernel's update",
                        (false, true, _) => "the value after the kernel's update",
                        (false, false, _) => "NEITHER",
                    }
                );
                if !before.is_empty() && !after.is_empty() {
                    bad.push(format!("loadavg: {load_note}"));
                }
            }
        }

        // info: the running kernel's facts.
        let mut info_note = String::from("?");
        match live.json("info") {
            Err(e) => bad.push(e),
            Ok(info) => {
                for (k, want) in [
                    ("release", set.truth["release"].clone()),
                    ("arch", set.truth["arch"].clone()),
                    ("os", Value::from("linux")),
                ] {
                    if info[k] != want {
                        bad.push(format!("info {k}: guest {want}, kvm {}", info[k]));
                    }
                }
                if hex_u64(&info["kaslr_offset"]) != Some(offset) {
                    bad.push(format!(
                        "info kaslr_offset: VMCOREINFO {offset:#x}, kvm {}",
                        info["kaslr_offset"]
                    ));
                }
                info_note = format!(
                    "format {}, release {}, kaslr_offset {}",
                    info["format"], info["release"], info["kaslr_offset"]
                );
            }
        }
        eprintln!(
            "{} (in the guest): nlist {by_kallsyms} = kallsyms, {by_map} = System.map + {offset:#x}, \
             not found: {absent:?}; loadavg {load_note}; info {info_note}; mismatches: {}",
            set.name,
            bad.len()
        );
        all.extend(bad.iter().map(|m| format!("{}: {m}", set.name)));
    }
    assert_none("kvm nlist/loadavg/info inside the guest", &all);
}

#[test]
fn dev_mem_inside_the_guest() {
    let mut all = Vec::new();
    for set in sets() {
        let live = Live::of(&set);
        let mut bad = Vec::new();
        // RAM: refused by the kernel (CONFIG_STRICT_DEVMEM), and kvm says so.
        let ram = live.run("devmem-ram");
        let (out, err) = (live.stdout("devmem-ram", "bin"), live.stderr("devmem-ram"));
        if ram.exit != 1 || !out.is_empty() || !err.contains("STRICT_DEVMEM") {
            bad.push(format!(
                "kvm {}: exit {} (want 1), {} bytes (want 0), stderr {:?} (want one naming STRICT_DEVMEM)",
                ram.args.join(" "),
                ram.exit,
                out.len(),
                err.trim()
            ));
        }
        // The BIOS area: x86 lets the first MiB through (not RAM there:
        // the bytes are the firmware's, the same in the dump); arm64's
        // /dev/mem reads only RAM (0xf0000 is flash on QEMU's virt).
        let low = live.run("devmem-low");
        let (out, err) = (live.stdout("devmem-low", "bin"), live.stderr("devmem-low"));
        if set.arch() == "x86_64" {
            let kd = kvm::Kvm::open_dump(set.dir.join("vmcore.elf")).expect("vmcore.elf");
            let mut want = [0u8; 16];
            assert_eq!(kd.read_phys(0xf0000, &mut want).expect("phys 0xf0000"), 16);
            assert_ne!(
                want, [0u8; 16],
                "{}: the dump's BIOS area is zero",
                set.name
            );
            if low.exit != 0 || out != want {
                bad.push(format!(
                    "kvm {}: exit {} (want 0), bytes {out:02x?} (want the dump's {want:02x?}), stderr {:?}",
                    low.args.join(" "),
                    low.exit,
                    err.trim()
                ));
            }
        } else if low.exit != 1 || !out.is_empty() || !err.starts_with("kvm: ") {
            bad.push(format!(
                "kvm {}: exit {} (want 1), {} bytes (want 0), stderr {:?} (want a kvm error)",
                low.args.join(" "),
                low.exit,
                out.len(),
                err.trim()
            ));
        }
        eprintln!(
            "{} (in the guest): /dev/mem RAM: exit {}, {:?}; first MiB: exit {}, {} bytes, {:?}; mismatches: {}",
            set.name,
            ram.exit,
            live.stderr("devmem-ram").trim(),
            low.exit,
            out.len(),
            err.trim(),
            bad.len()
        );
        all.extend(bad.iter().map(|m| format!("{}: {m}", set.name)));
    }
    assert_none("kvm read -M /dev/mem inside the guest", &all);
}
