//! Rows read process by process (`maps`, `files`): one process's, or
//! every process's, a process whose rows cannot be read named and the
//! others listed.

use kvm::{Kvm, ProcOp, Process};

/// Rows, each with its process's pid, and the processes whose rows could
/// not be read ("pid N: why").
pub type Rows<T> = (Vec<(u32, T)>, Vec<String>);

/// The rows `read` gives for process `pid` (without it: for every
/// process). A `pid` the kernel does not list is the error.
pub fn rows<T>(
    kvm: &Kvm,
    pid: Option<u32>,
    read: impl Fn(&Process) -> Result<Vec<T>, kvm::Error>,
) -> crate::Result<Rows<T>> {
    let procs = kvm.getprocs(pid.map_or(ProcOp::All, ProcOp::Pid))?;
    if let (Some(pid), true) = (pid, procs.is_empty()) {
        return Err(format!("no process {pid} in the dump").into());
    }
    let (mut rows, mut failed) = (Vec::new(), Vec::new());
    for p in &procs {
        match read(p) {
            Ok(r) => rows.extend(r.into_iter().map(|r| (p.pid, r))),
            Err(e) => failed.push(format!("pid {}: {e}", p.pid)),
        }
    }
    Ok((rows, failed))
}

/// The command's end once its rows are out: an error naming the processes
/// whose `what` ("maps", "open files") could not be read, if any.
pub fn done(what: &str, failed: &[String]) -> crate::Result {
    if failed.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the {what} of {} processes could not be read ({})",
        failed.len(),
        failed.join("; ")
    )
    .into())
}
