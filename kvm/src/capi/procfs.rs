//! The running system's processes from `/proc`, for a handle opened
//! without kernel memory (`KVM_NO_FILES`, or `/dev/null` as the core
//! file): kvm(3) says such a handle is for callers that want process lists
//! "where the OS offers them otherwise", as BSD ps does through sysctl.
//! On Linux that is proc(5): `/proc/PID/stat`, `status`, `task/`,
//! `cmdline` and `environ`. A process that exits while it is read is
//! left out (it is no longer there to list).

use crate::{ProcOp, Process, Thread};
use std::path::Path;

/// `PF_KTHREAD` in `/proc/PID/stat`'s flags.
const PF_KTHREAD: u64 = 0x0020_0000;
/// `PF_WQ_WORKER`: a workqueue worker, whose `/proc` name is its `comm`
/// with "-DESC" or "+DESC" appended (the kernel's `wq_worker_comm`).
const PF_WQ_WORKER: u64 = 0x20;

/// The processes `op` selects, by pid.
pub(super) fn processes(op: ProcOp) -> std::io::Result<Vec<Process>> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids
        .into_iter()
        .filter_map(process)
        .filter(|p| op.selects(p))
        .collect())
}

/// The fields of a `stat` file after the command's closing parenthesis
/// (field 3, the state, first), and the task's `comm`.
fn stat(path: &Path) -> Option<(String, Vec<String>)> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command may hold spaces and parentheses: it ends at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?;
    let rest: Vec<String> = text
        .get(close + 1..)?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    // Field 9, the flags.
    let flags = rest.get(6).and_then(|v| v.parse().ok());
    Some((task_comm(name, flags).to_owned(), rest))
}

/// The task's own `comm` in the name `/proc` shows: a workqueue worker's
/// ("kworker/0:1H-events_highpri") without what the kernel appended,
/// as the kernel's memory holds it (kworker names hold no '-' or '+' of
/// their own: `kworker/%d:%d%s`, `kworker/u%d:%d`).
fn task_comm(name: &str, flags: Option<u64>) -> &str {
    if flags.is_some_and(|f| f & PF_WQ_WORKER != 0) && name.starts_with("kworker/") {
        if let Some(i) = name.find(['-', '+']) {
            return &name[..i];
        }
    }
    name
}

/// The real and effective ids of a `status` line (`Uid:` or `Gid:`).
fn ids(status: &str, key: &str) -> (Option<u32>, Option<u32>) {
    let line = status.lines().find_map(|l| l.strip_prefix(key));
    let mut f = line
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(|v| v.parse().ok());
    (f.next().flatten(), f.next().flatten())
}

fn process(pid: u32) -> Option<Process> {
    let dir = Path::new("/proc").join(pid.to_string());
    let (comm, f) = stat(&dir.join("stat"))?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let (uid, euid) = ids(&status, "Uid:");
    let (gid, egid) = ids(&status, "Gid:");
    let (tck, page) = clock_and_page();
    let mut threads = threads(&dir);
    // The leader first, as the dump's walkers list it.
    if let Some(i) = threads.iter().position(|t| t.tid == pid) {
        threads[..=i].rotate_right(1);
    }
    Some(Process {
        pid,
        ppid: num(1).and_then(|v| u32::try_from(v).ok()),
        pgrp: num(2).and_then(|v| u32::try_from(v).ok()),
        session: num(3).and_then(|v| u32::try_from(v).ok()),
        uid,
        gid,
        euid,
        egid,
        state: f.first().and_then(|s| s.chars().next()),
        comm,
        kthread: num(6).map(|flags| flags & PF_KTHREAD != 0),
        tty_nr: num(4).and_then(|v| u32::try_from(v).ok()),
        tty: None,
        // Fields 22-24: start time in clock ticks, vsize in bytes, RSS
        // in pages.
        start_time_ns: num(19)
            .zip(tck)
            .map(|(t, hz)| t.saturating_mul(1_000_000_000 / hz)),
        rss_pages: num(21),
        vsize_pages: num(20).zip(page).map(|(v, p)| v / p),
        task: 0,
        threads,
        unavailable: None,
    })
}

/// The threads of the process at `dir` (`task/TID/stat`).
fn threads(dir: &Path) -> Vec<Thread> {
    let mut out: Vec<Thread> = std::fs::read_dir(dir.join("task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let (name, f) = stat(&e.path().join("stat"))?;
            Some(Thread {
                tid,
                task: 0,
                name,
                state: f.first().and_then(|s| s.chars().next()),
                // Field 39: the CPU it last ran on.
                cpu: f.get(36).and_then(|v| v.parse().ok()),
                oncpu: false,
                crashed: None,
                registers: None,
            })
        })
        .collect();
    out.sort_by_key(|t| t.tid);
    out
}

/// `sysconf(_SC_CLK_TCK)` and `sysconf(_SC_PAGESIZE)`, where positive.
#[allow(unsafe_code)] // two libc queries, no pointers
fn clock_and_page() -> (Option<u64>, Option<u64>) {
    // SAFETY: sysconf reads a configuration value; it takes no pointer.
    let (tck, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let pos = |v: libc::c_long| u64::try_from(v).ok().filter(|&v| v > 0);
    (pos(tck), pos(page))
}

/// `/proc/PID/cmdline` (`environ` for the environment), split at NULs:
/// the bytes as the process holds them.
pub(super) fn strings(pid: u32, environ: bool) -> std::io::Result<Vec<Vec<u8>>> {
    let file = if environ { "environ" } else { "cmdline" };
    let b = std::fs::read(Path::new("/proc").join(pid.to_string()).join(file))?;
    let b = b.strip_suffix(&[0]).unwrap_or(&b);
    if b.is_empty() {
        return Ok(Vec::new());
    }
    Ok(b.split(|&c| c == 0).map(<[u8]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workqueue_workers_comm_is_its_tasks() {
        let wq = Some(PF_KTHREAD | PF_WQ_WORKER);
        assert_eq!(task_comm("kworker/0:0H-events_highpri", wq), "kworker/0:0H");
        assert_eq!(task_comm("kworker/u4:1+events_unbound", wq), "kworker/u4:1");
        assert_eq!(task_comm("kworker/1:2", wq), "kworker/1:2");
        // Not a worker (or no flags): the name as shown.
        assert_eq!(
            task_comm("kworker/0:0H-x", Some(PF_KTHREAD)),
            "kworker/0:0H-x"
        );
        assert_eq!(task_comm("kvm-lab-threads", None), "kvm-lab-threads");
        assert_eq!(task_comm("md-raid-wq", wq), "md-raid-wq");
    }
}
