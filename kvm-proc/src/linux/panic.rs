//! Why the kernel died, from its log: the last "Kernel panic - not
//! syncing: …" record and the "CPU: N PID: N Comm: …" line the kernel
//! prints with it (`dump_stack`'s header: after the panic line for a
//! direct panic, before it when an oops led to the panic).

use crate::LogRecord;
use alloc::string::String;

/// The panic the log reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicReport {
    /// After "Kernel panic - not syncing: ", without the line end.
    pub message: String,
    /// When it was logged (ns since boot).
    pub time_ns: u64,
    /// The CPU of the "CPU: … PID: … Comm: …" line, where the log has
    /// one near the panic.
    pub cpu: Option<u32>,
    /// Its pid (the thread's id).
    pub pid: Option<u32>,
    /// Its comm.
    pub comm: Option<String>,
}

const HEAD: &[u8] = b"Kernel panic - not syncing: ";

/// How far from the panic record its "CPU:" line is looked for.
const NEAR: usize = 32;

/// The last panic in `records`, oldest first; `None` when the kernel did
/// not panic (or the record was lost).
pub fn find(records: &[LogRecord]) -> Option<PanicReport> {
    let at = records.iter().rposition(|r| r.text.starts_with(HEAD))?;
    let text = String::from_utf8_lossy(&records[at].text[HEAD.len()..]);
    let message = text.lines().next().unwrap_or("").trim_end().into();
    let after = records[at + 1..].iter().take(NEAR);
    let before = records[..at].iter().rev().take(NEAR);
    let who = after.chain(before).find_map(|r| cpu_line(&r.text));
    let (cpu, pid, comm) = match who {
        Some((c, p, n)) => (Some(c), Some(p), Some(n)),
        None => (None, None, None),
    };
    Some(PanicReport {
        message,
        time_ns: records[at].time_ns,
        cpu,
        pid,
        comm,
    })
}

/// `CPU: 0 PID: 1 Comm: init Not tainted …` (6.x before 6.12), or with
/// `UID: 0` after the CPU (6.12): (cpu, pid, comm). The comm ends at
/// " Not tainted" or " Tainted:" (it may hold spaces).
fn cpu_line(text: &[u8]) -> Option<(u32, u32, String)> {
    let t = String::from_utf8_lossy(text);
    let rest = t.lines().next()?.strip_prefix("CPU: ")?;
    let cpu = rest.split_whitespace().next()?.parse().ok()?;
    let pid = rest
        .split_once("PID: ")?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let comm = rest.split_once("Comm: ")?.1;
    let end = [" Not tainted", " Tainted:"]
        .iter()
        .filter_map(|m| comm.find(m))
        .min()
        .unwrap_or(comm.len());
    Some((cpu, pid, comm[..end].into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn rec(t: &str) -> LogRecord {
        LogRecord {
            seq: None,
            level: Some(0),
            facility: Some(0),
            time_ns: 7,
            text: t.as_bytes().to_vec(),
        }
    }

    #[test]
    fn sysrq_panic_and_oops_panic() {
        let log: Vec<LogRecord> = [
            "sysrq: Trigger a crash",
            "Kernel panic - not syncing: sysrq triggered crash",
            "CPU: 1 PID: 1 Comm: init Not tainted 6.1.0 #1  Debian",
            "Call Trace:",
        ]
        .iter()
        .map(|t| rec(t))
        .collect();
        let p = find(&log).unwrap();
        assert_eq!(p.message, "sysrq triggered crash");
        assert_eq!(
            (p.cpu, p.pid, p.comm.as_deref()),
            (Some(1), Some(1), Some("init"))
        );
        // An oops first: its CPU line comes before the panic.
        let log: Vec<LogRecord> = [
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "CPU: 0 UID: 0 PID: 77 Comm: kvm) odd (name Tainted: G      D",
            "Kernel panic - not syncing: Fatal exception",
        ]
        .iter()
        .map(|t| rec(t))
        .collect();
        let p = find(&log).unwrap();
        assert_eq!(
            (p.cpu, p.pid, p.comm.as_deref()),
            (Some(0), Some(77), Some("kvm) odd (name"))
        );
        assert_eq!(p.message, "Fatal exception");
        assert_eq!(find(&log[..2]), None);
        // A panic with no CPU line near it.
        let p = find(&[rec(
            "Kernel panic - not syncing: VFS: Unable to mount root fs\n",
        )])
        .unwrap();
        assert_eq!(
            (p.message.as_str(), p.cpu),
            ("VFS: Unable to mount root fs", None)
        );
    }
}
