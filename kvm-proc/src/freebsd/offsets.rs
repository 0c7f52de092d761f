//! The structure offsets a FreeBSD kernel exports as `const int`
//! variables (sys/kern/kern_proc.c and kern_thread.c: `proc_off_p_pid`,
//! `thread_off_td_tid`, …), read from the dump's memory.

use crate::bsd::{int, KernelFile};
use crate::os::Machine;
use kvm_core::{Error, Result};

/// Largest offset believed: `struct proc` and `struct thread` are a few
/// KiB; a larger value is a damaged dump or another kernel's file.
const MAX_OFFSET: u64 = 1 << 16;

/// Where the walker's fields are in `struct proc` and `struct thread`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    /// `proc.p_pid` (`pid_t`).
    pub p_pid: u64,
    /// `proc.p_comm` (`char[MAXCOMLEN + 1]`).
    pub p_comm: u64,
    /// `proc.p_list` (`LIST_ENTRY(proc)`: the allproc link).
    pub p_list: u64,
    /// `proc.p_threads` (`TAILQ_HEAD(, thread)`).
    pub p_threads: u64,
    /// `thread.td_tid` (`lwpid_t`).
    pub td_tid: u64,
    /// `thread.td_name` (`char[MAXCOMLEN + 1]`).
    pub td_name: u64,
    /// `thread.td_plist` (`TAILQ_ENTRY(thread)`).
    pub td_plist: u64,
    /// `thread.td_oncpu` (`int`, `NOCPU` = -1), if exported.
    pub td_oncpu: Option<u64>,
    /// `thread.td_pcb` (`struct pcb *`), if exported.
    pub td_pcb: Option<u64>,
    /// `sizeof(struct pcb)` (`pcb_size`: the stride of `stoppcbs[]`).
    pub pcb_size: Option<u64>,
}

impl Offsets {
    /// Reads the exported offsets; the walker's own are required.
    pub fn read(m: &Machine<'_>, file: &KernelFile) -> Result<Offsets> {
        let get = |name: &str| -> Result<Option<u64>> {
            let Some(a) = file.get(name)? else {
                return Ok(None);
            };
            let v = int(m, a)?;
            u64::try_from(v)
                .ok()
                .filter(|&v| v < MAX_OFFSET)
                .map(Some)
                .ok_or(Error::Malformed(
                    "an exported FreeBSD structure offset is negative or implausibly large",
                ))
        };
        let need = |name: &str, why: &'static str| get(name)?.ok_or(Error::Unsupported(why));
        // The messages name the first missing variable; kernels before
        // FreeBSD 13 export none of them.
        Ok(Offsets {
            p_pid: need("proc_off_p_pid", NO_P_PID)?,
            p_comm: need("proc_off_p_comm", "the kernel file has no proc_off_p_comm")?,
            p_list: need("proc_off_p_list", "the kernel file has no proc_off_p_list")?,
            p_threads: need(
                "proc_off_p_threads",
                "the kernel file has no proc_off_p_threads",
            )?,
            td_tid: need(
                "thread_off_td_tid",
                "the kernel file has no thread_off_td_tid",
            )?,
            td_name: need(
                "thread_off_td_name",
                "the kernel file has no thread_off_td_name",
            )?,
            td_plist: need(
                "thread_off_td_plist",
                "the kernel file has no thread_off_td_plist",
            )?,
            td_oncpu: get("thread_off_td_oncpu")?,
            td_pcb: get("thread_off_td_pcb")?,
            pcb_size: get("pcb_size")?.filter(|&s| s > 0),
        })
    }
}

/// The first exported offset missing: the kernel predates them.
const NO_P_PID: &str =
    "the kernel file has no proc_off_p_pid (FreeBSD 13 and later export the offsets kvm reads)";
