//! Issue 16, finding 8: a dump that lost a few `task_struct` pages (as
//! makedumpfile `-d 31` lost 7 of 109 on a PREEMPT_RT 6.12 kernel). Each
//! set's ELF dump is written as a kdump with every page of four
//! processes' `task_struct`s excluded; `kvm ps --threads --json` must
//! then list every other process exactly as it lists them from the whole
//! dump, name the lost ones by pid with why, and exit 1 saying so.

use crate::sets;
use kvm::convert::{convert, Keep, Target};
use kvm::{Kvm, ProcOp, Process};
use kvm_core_file::codec::Compression;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch file, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The 4 KiB frames the `task_struct` at `task` (of `size` bytes) lies in.
fn frames(kd: &Kvm, task: u64, size: u64) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let mut va = task;
    while va < task + size {
        let t = kd.translate(va).expect("a task_struct is mapped");
        out.insert(t.pa.0 >> 12);
        va = (va | 0xfff) + 1;
    }
    out
}

/// `kvm ps --threads --json -M core`: exit status, stdout's JSON by pid
/// (the lost ones under their pid too), stderr.
fn ps(core: &Path) -> (Option<i32>, BTreeMap<u64, Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(["ps", "--threads", "--json", "-M"])
        .arg(core)
        .output()
        .expect("run kvm");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: ps prints no JSON ({e}): {}",
            core.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let by_pid = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            (
                p["pid"].as_u64().expect("every entry has its pid"),
                p.clone(),
            )
        })
        .collect();
    (
        out.status.code(),
        by_pid,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lost_task_struct_pages_leave_every_other_process_listed_exactly() {
    let mut report = Vec::new();
    for set in sets() {
        let elf = set.dir.join("vmcore.elf");
        let kd = Kvm::open_dump(&elf).expect("open the ELF dump");
        let size = kd
            .type_info("task_struct")
            .expect("BTF")
            .expect("task_struct")
            .1;
        let procs = kd.getprocs(ProcOp::All).expect("ps on the whole dump");
        // Four victims spread over the list: user processes and kernel
        // threads alike.
        let victims: Vec<&Process> = procs.iter().skip(5).step_by(procs.len() / 4).collect();
        let lost: BTreeSet<u64> = victims
            .iter()
            .flat_map(|p| frames(&kd, p.task, size))
            .collect();
        // Which processes that may cost: those with a thread in a lost
        // frame (a neighbour in a lost page too; it is lost only if a
        // field the walker reads lies there), and their children (whose
        // ppid is the parent's to give).
        let hit: BTreeSet<u64> = procs
            .iter()
            .filter(|p| {
                p.threads
                    .iter()
                    .any(|t| !frames(&kd, t.task, size).is_disjoint(&lost))
            })
            .map(|p| u64::from(p.pid))
            .collect();
        let victim_pids: BTreeSet<u64> = victims.iter().map(|p| u64::from(p.pid)).collect();
        let children: BTreeSet<u64> = procs
            .iter()
            .filter(|p| p.ppid.is_some_and(|pp| hit.contains(&u64::from(pp))))
            .map(|p| u64::from(p.pid))
            .collect();
        // Keep every frame of the dump but the lost ones.
        let mut keep = BTreeSet::new();
        for r in kd.source().ranges() {
            keep.extend((r.start >> 12..r.end().div_ceil(4096)).filter(|f| !lost.contains(f)));
        }
        let out = Scratch(std::env::temp_dir().join(format!(
            "kvm-lab-holes-{}-{}.kdump",
            set.name,
            std::process::id()
        )));
        let to = Target::Kdump {
            compression: Compression::Zstd,
            flat: false,
        };
        let summary = convert(&kd, to, &Keep::new(Vec::new(), Some(keep)), &out.0, None)
            .expect("write the kdump");
        drop(kd);

        let (_, whole, _) = ps(&elf);
        let (status, holed, stderr) = ps(&out.0);
        let gone: BTreeSet<u64> = holed
            .iter()
            .filter(|(_, p)| p.get("unavailable").is_some())
            .map(|(&pid, _)| pid)
            .collect();
        assert_eq!(status, Some(1), "{}: {stderr}", set.name);
        assert!(
            stderr.contains(&format!(
                "{} of {} processes could not be read",
                gone.len(),
                whole.len()
            )),
            "{}: {stderr}",
            set.name
        );
        assert!(
            victim_pids.is_subset(&gone) && gone.is_subset(&hit),
            "{}: victims {victim_pids:?}, lost {gone:?}, in lost frames {hit:?}",
            set.name
        );
        assert_eq!(
            holed.keys().collect::<Vec<_>>(),
            whole.keys().collect::<Vec<_>>(),
            "{}: not the same pids",
            set.name
        );
        let mut unknown_ppid = 0;
        for (pid, want) in &whole {
            let got = &holed[pid];
            if gone.contains(pid) {
                let why = got["unavailable"].as_str().unwrap_or_default();
                assert!(
                    why.contains("was excluded from the dump"),
                    "{} pid {pid}: {got}",
                    set.name
                );
                continue;
            }
            let mut want = want.clone();
            if children.contains(pid) && got["ppid"].is_null() {
                want["ppid"] = Value::Null;
                unknown_ppid += 1;
            }
            assert_eq!(got, &want, "{} pid {pid}", set.name);
        }
        report.push(format!(
            "{}: {} task_struct frames of {} processes excluded ({} pages marked excluded \
             in all): {} of {} processes lost and named by pid, the other {} equal to the \
             whole dump's ({} with their ppid unknown)",
            set.name,
            lost.len(),
            victims.len(),
            summary.excluded,
            gone.len(),
            whole.len(),
            whole.len() - gone.len(),
            unknown_ppid
        ));
    }
    for r in report {
        eprintln!("{r}");
    }
}
