//! A running VM read and written through kvm's live doors (issue 15):
//! `-M <guest RAM file>` (QEMU's `memory-backend-file,share=on`) and
//! `-M qemu:PID` (`/proc/PID/mem`). `cargo xtask live` boots a lab guest,
//! waits for its ground truth, stops the VM (so that /proc and memory
//! agree) and runs this with:
//!
//! - `KVM_LIVE_TRUTH`: the guest's truth.json (as the lab sets have it),
//! - `KVM_LIVE_KALLSYMS`: its /proc/kallsyms,
//! - `KVM_LIVE_RAM`: the RAM file, `KVM_LIVE_PID`: QEMU's pid,
//! - `KVM_LIVE_QMP`: QEMU's QMP socket, `KVM_LIVE_CONSOLE`: the console log.
//!
//! Stopped, both doors and a raw image QEMU writes itself (`pmemsave`)
//! must equal the truth; running, `--stop` and writes through each door.
//!
//! Built only with `--features lab`; every test fails without a VM.

#[path = "../common/mod.rs"]
mod common;
mod qmp;

use common::{check_dump, kvm_json};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The running guest the xtask started.
struct Vm {
    truth: Value,
    kallsyms: String,
    ram: String,
    pid: u32,
    qmp: PathBuf,
    console: PathBuf,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `cargo xtask live`"))
}

fn vm() -> Vm {
    let truth = std::fs::read_to_string(env("KVM_LIVE_TRUTH")).expect("truth.json");
    Vm {
        truth: serde_json::from_str(&truth).expect("truth.json parses"),
        kallsyms: std::fs::read_to_string(env("KVM_LIVE_KALLSYMS")).expect("kallsyms"),
        ram: env("KVM_LIVE_RAM"),
        pid: env("KVM_LIVE_PID").parse().expect("pid"),
        qmp: env("KVM_LIVE_QMP").into(),
        console: env("KVM_LIVE_CONSOLE").into(),
    }
}

impl Vm {
    fn doors(&self) -> [String; 2] {
        [self.ram.clone(), format!("qemu:{}", self.pid)]
    }

    fn kallsyms(&self, name: &str) -> Option<u64> {
        self.kallsyms.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let addr = f.next()?;
            let _kind = f.next()?;
            (f.next()? == name && f.next().is_none()).then(|| u64::from_str_radix(addr, 16).ok())?
        })
    }

    /// `kvm nlist -M door` of three functions against /proc/kallsyms.
    fn check_nlist(&self, door: &str, mismatches: &mut Vec<String>) {
        for name in ["start_kernel", "panic", "schedule"] {
            let got = kvm_json(&["nlist", "-M", door, "--json", name]);
            let addr = got[name]
                .as_str()
                .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok());
            let want = self.kallsyms(name).expect("in /proc/kallsyms");
            if addr != Some(want) {
                mismatches.push(format!(
                    "{door}: nlist {name}: kallsyms {want:#x}, kvm {got}"
                ));
            }
        }
    }

    /// Waits up to `secs` for `line` on the console.
    fn console_shows(&self, line: &str, secs: u64) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(secs) {
            let text = std::fs::read_to_string(&self.console).unwrap_or_default();
            if text.lines().any(|l| l.trim_end() == line) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}

/// `kvm ARGS`: exit status, stdout, stderr.
fn kvm(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(args)
        .output()
        .expect("run kvm");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// One test, in order: the VM is stopped while it is compared with its
/// truth, then runs again to show what was written.
#[test]
fn a_running_guest_read_and_written_through_its_ram_file_and_its_qemu() {
    let vm = vm();
    let mut qmp = qmp::Qmp::connect(&vm.qmp);
    let mut mismatches = Vec::new();

    // 1. Stopped: both doors give what /proc said.
    for door in vm.doors() {
        let info = kvm_json(&["info", "-M", &door, "--json"]);
        eprintln!("{door}: {info}");
        let t = Instant::now();
        let (summary, m) = check_dump(&door, &vm.truth, false);
        eprintln!(
            "{door}: {summary} ({:.0?} for ps, loadavg and info)",
            t.elapsed()
        );
        mismatches.extend(m.into_iter().map(|m| format!("{door}: {m}")));
        vm.check_nlist(&door, &mut mismatches);
    }
    // A raw image as QEMU itself writes one (pmemsave of the guest's RAM,
    // from its base: 0 on x86, 1 GiB on the arm virt machine): found from
    // the VMCOREINFO in it alone.
    let raw = std::env::temp_dir().join(format!("kvm-live-{}.pmemsave", vm.pid));
    let base: u64 = if vm.truth["arch"] == "aarch64" {
        0x4000_0000
    } else {
        0
    };
    let size = std::fs::metadata(&vm.ram).expect("the RAM file").len();
    qmp.execute_with(
        "pmemsave",
        &serde_json::json!({ "val": base, "size": size, "filename": raw }),
    );
    let path = raw.to_str().expect("utf-8 path");
    let info = kvm_json(&["info", "-M", path, "--json"]);
    assert_eq!(info["format"], "raw", "{info}");
    let (summary, m) = check_dump(path, &vm.truth, false);
    eprintln!("QEMU pmemsave image: {summary}; {}", info["remarks"]);
    mismatches.extend(m.into_iter().map(|m| format!("pmemsave image: {m}")));
    vm.check_nlist(path, &mut mismatches);
    std::fs::remove_file(&raw).expect("remove the image");
    assert!(mismatches.is_empty(), "{mismatches:#?}");

    // 2. No stale cache: a change made through one door is seen by the
    // next read of a handle opened before it, through the other door.
    let ram = kvm::Kvm::openfiles(None, Some(vm.ram.as_ref()), kvm::OpenFlags::ReadWrite)
        .expect("open the RAM file read-write");
    let proc = kvm::Kvm::openfiles(
        None,
        Some(format!("qemu:{}", vm.pid).as_ref()),
        kvm::OpenFlags::ReadWrite,
    )
    .expect("open qemu:PID read-write");
    let uts = ram.nlist(&["init_uts_ns"]).unwrap()[0].expect("init_uts_ns");
    let types = kvm_json(&[
        "types",
        "-M",
        &vm.ram,
        "--json",
        "uts_namespace.name",
        "new_utsname.nodename",
    ]);
    let nodename = uts
        + types["uts_namespace.name"]["offset"].as_u64().unwrap()
        + types["new_utsname.nodename"]["offset"].as_u64().unwrap();
    let mut before = [0u8; 16];
    proc.read(nodename, &mut before).unwrap();
    assert_eq!(ram.write(nodename, b"kvm-cache-probe\0").unwrap(), 16);
    let mut after = [0u8; 16];
    proc.read(nodename, &mut after).unwrap();
    assert_eq!(&after, b"kvm-cache-probe\0", "qemu:PID read a stale value");
    assert_eq!(proc.write(nodename, &before).unwrap(), 16);
    ram.read(nodename, &mut after).unwrap();
    assert_eq!(after, before, "the RAM file read a stale value");
    drop((ram, proc));

    // 3. Running again: `--stop` stops QEMU for one command (a snapshot
    // equal to the truth) and resumes it.
    qmp.execute("cont");
    let door = format!("qemu:{}", vm.pid);
    let ps = kvm_json(&["ps", "--stop", "-M", &door, "--json"]);
    let user_pids = |list: &Value| -> Vec<u64> {
        let mut v: Vec<u64> = list
            .as_array()
            .expect("a process list")
            .iter()
            .filter(|p| p["kthread"] == false)
            .filter_map(|p| p["pid"].as_u64())
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(
        user_pids(&ps),
        user_pids(&vm.truth["processes"]),
        "kvm ps --stop: the user processes"
    );
    // And with no --stop, the guest running under the reader: the walk
    // ends (bounded, cycle-checked) with the user processes, which do not
    // change, all there.
    for door in vm.doors() {
        let ps = kvm_json(&["ps", "-M", &door, "--json"]);
        assert_eq!(
            user_pids(&ps),
            user_pids(&vm.truth["processes"]),
            "kvm ps -M {door}, running: the user processes"
        );
    }
    let state = std::fs::read_to_string(format!("/proc/{}/stat", vm.pid)).unwrap();
    let state = state
        .rsplit_once(')')
        .unwrap()
        .1
        .trim_start()
        .chars()
        .next();
    assert_ne!(state, Some('T'), "QEMU was left stopped");

    // 4. `kvm write` through each door, the guest running: its init
    // prints the nodename when it changes ("KVM-LAB-NODENAME <name>").
    for (door, name) in vm.doors().iter().zip(["kvm-ram-file", "kvm-qemu-pid"]) {
        let mut hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        hex.push_str("00");
        let addr = format!("{nodename:#x}");
        let (code, out, err) = kvm(&["write", "-M", door, "--json", &addr, &hex]);
        assert_eq!(code, Some(0), "kvm write -M {door}: {err}");
        let out: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(out["written"], name.len() + 1, "{door}");
        assert!(
            vm.console_shows(&format!("KVM-LAB-NODENAME {name}"), 60),
            "the guest did not print the nodename written through {door}"
        );
        eprintln!("{door}: the running guest's uname -n is now {name}");
    }
    qmp.execute("stop");
}
