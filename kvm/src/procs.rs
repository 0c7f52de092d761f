//! Which processes `kvm_getprocs` returns: the `KERN_PROC_*` selections.

use kvm_proc::Process;

/// Which processes [`crate::Kvm::getprocs`] returns (the `KERN_PROC_*` ops).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcOp {
    /// Every process.
    All,
    /// The process with this pid.
    Pid(u32),
    /// The members of this process group.
    Pgrp(u32),
    /// The members of this session.
    Session(u32),
    /// Processes of this effective user id.
    Uid(u32),
    /// Processes of this real user id.
    Ruid(u32),
    /// Kernel threads.
    Kthread,
    /// Processes whose controlling terminal has this `tty_nr`.
    Tty(u32),
}

impl ProcOp {
    /// Whether `p` is selected.
    pub fn selects(self, p: &Process) -> bool {
        match self {
            ProcOp::All => true,
            ProcOp::Pid(x) => p.pid == x,
            ProcOp::Pgrp(x) => p.pgrp == Some(x),
            ProcOp::Session(x) => p.session == Some(x),
            ProcOp::Uid(x) => p.euid == Some(x),
            ProcOp::Ruid(x) => p.uid == Some(x),
            ProcOp::Kthread => p.kthread == Some(true),
            ProcOp::Tty(x) => p.tty_nr == Some(x),
        }
    }
}
