//! The structure offsets the walker reads, resolved once from the
//! kernel's own types (BTF) through [`Kernel`]: no hard-coded layouts.

use crate::Kernel;
use kvm_core::{Error, Result};

/// Offsets resolved once from BTF; keep it (with [`Linux::parts`](super::Linux::parts)) to
/// make the next [`Linux`](super::Linux) for the same kernel without resolving again.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub(super) tasks: u64,
    pub(super) pid: u64,
    pub(super) tgid: u64,
    pub(super) comm: u64,
    pub(super) comm_len: u64,
    pub(super) real_parent: u64,
    pub(super) mm: u64,
    pub(super) real_cred: u64,
    pub(super) signal: u64,
    pub(super) state: u64,
    pub(super) state_size: u64,
    pub(super) exit_state: u64,
    pub(super) flags: u64,
    pub(super) cpu: Option<u64>,
    pub(super) on_cpu: Option<u64>,
    pub(super) thread_node: u64,
    pub(super) signal_thread_head: u64,
    pub(super) signal_pids: u64,
    pub(super) pid_numbers: u64,
    pub(super) upid_nr: u64,
    pub(super) pidtype_pgid: u64,
    pub(super) pidtype_sid: u64,
    pub(super) cred_uid: u64,
    pub(super) cred_gid: u64,
    pub(super) cred_euid: u64,
    pub(super) cred_egid: u64,
    pub(super) mm_pgd: u64,
    pub(super) mm_arg_start: u64,
    pub(super) mm_arg_end: u64,
    pub(super) mm_env_start: u64,
    pub(super) mm_env_end: u64,
    pub(super) start_time: Option<u64>,
    pub(super) tty: Option<TtyLayout>,
    pub(super) rss: Option<RssLayout>,
    pub(super) mm_total_vm: Option<u64>,
}

/// Where a process's controlling terminal is described.
#[derive(Clone, Copy, Debug)]
pub(super) struct TtyLayout {
    pub(super) signal_tty: u64,
    pub(super) index: u64,
    pub(super) driver: u64,
    pub(super) major: u64,
    pub(super) minor_start: u64,
    pub(super) name: Option<u64>,
}

/// Where `mm_struct.rss_stat` keeps the file, anon and shmem counters.
#[derive(Clone, Copy, Debug)]
pub(super) struct RssLayout {
    /// Offsets of the three counters from the `mm_struct`.
    pub(super) counters: [u64; 3],
}

impl TtyLayout {
    fn resolve<K: Kernel + ?Sized>(k: &K) -> Option<TtyLayout> {
        Some(TtyLayout {
            signal_tty: k.offset_of("signal_struct.tty")?,
            index: k.offset_of("tty_struct.index")?,
            driver: k.offset_of("tty_struct.driver")?,
            major: k.offset_of("tty_driver.major")?,
            minor_start: k.offset_of("tty_driver.minor_start")?,
            name: k.offset_of("tty_struct.name"),
        })
    }
}

impl RssLayout {
    /// `mm->rss_stat` is an `atomic_long_t` array before 6.2 and an array
    /// of `percpu_counter`s since, whose global `count` is read (cheap,
    /// and what the kernel itself reports as an approximation).
    fn resolve<K: Kernel + ?Sized>(k: &K) -> Option<RssLayout> {
        let base = k.offset_of("mm_struct.rss_stat")?;
        let total = k.size_of("mm_struct.rss_stat")?;
        let n = k
            .enum_value("NR_MM_COUNTERS")
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(4)
            .max(1);
        let (stride, count_off) = if total == 8 * n {
            (8, 0)
        } else {
            (total / n, k.offset_of("percpu_counter.count")?)
        };
        let mut counters = [0u64; 3];
        for (c, name) in counters
            .iter_mut()
            .zip(["MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"])
        {
            let i = k.enum_value(name).and_then(|v| u64::try_from(v).ok())?;
            *c = base + i * stride + count_off;
        }
        Some(RssLayout { counters })
    }
}

pub(super) fn need<K: Kernel + ?Sized>(k: &K, path: &'static str) -> Result<u64> {
    k.offset_of(path).ok_or(Error::Unsupported(path))
}

impl Layout {
    pub(super) fn resolve<K: Kernel + ?Sized>(k: &K) -> Result<Layout> {
        // `__state` since 5.14, `state` before.
        let (state, state_size) = match k.offset_of("task_struct.__state") {
            Some(o) => (o, k.size_of("task_struct.__state").unwrap_or(4)),
            None => (
                need(k, "task_struct.state")?,
                k.size_of("task_struct.state").unwrap_or(8),
            ),
        };
        let pidtype = |n: &'static str| {
            k.enum_value(n)
                .and_then(|v| u64::try_from(v).ok())
                .ok_or(Error::Unsupported(n))
        };
        Ok(Layout {
            tasks: need(k, "task_struct.tasks")?,
            pid: need(k, "task_struct.pid")?,
            tgid: need(k, "task_struct.tgid")?,
            comm: need(k, "task_struct.comm")?,
            comm_len: k.size_of("task_struct.comm").unwrap_or(16).min(64),
            real_parent: need(k, "task_struct.real_parent")?,
            mm: need(k, "task_struct.mm")?,
            real_cred: need(k, "task_struct.real_cred")?,
            signal: need(k, "task_struct.signal")?,
            state,
            state_size,
            exit_state: need(k, "task_struct.exit_state")?,
            flags: need(k, "task_struct.flags")?,
            cpu: k
                .offset_of("task_struct.cpu")
                .or_else(|| k.offset_of("task_struct.thread_info.cpu")),
            on_cpu: k.offset_of("task_struct.on_cpu"),
            thread_node: need(k, "task_struct.thread_node")?,
            signal_thread_head: need(k, "signal_struct.thread_head")?,
            signal_pids: need(k, "signal_struct.pids")?,
            pid_numbers: need(k, "pid.numbers")?,
            upid_nr: need(k, "upid.nr")?,
            pidtype_pgid: pidtype("PIDTYPE_PGID")?,
            pidtype_sid: pidtype("PIDTYPE_SID")?,
            cred_uid: need(k, "cred.uid")?,
            cred_gid: need(k, "cred.gid")?,
            cred_euid: need(k, "cred.euid")?,
            cred_egid: need(k, "cred.egid")?,
            mm_pgd: need(k, "mm_struct.pgd")?,
            mm_arg_start: need(k, "mm_struct.arg_start")?,
            mm_arg_end: need(k, "mm_struct.arg_end")?,
            mm_env_start: need(k, "mm_struct.env_start")?,
            mm_env_end: need(k, "mm_struct.env_end")?,
            // The boot-time clock /proc/PID/stat's starttime counts
            // (start_boottime, real_start_time before 5.5); start_time is
            // the monotonic one, read a moment apart (it can be a tick off).
            start_time: k
                .offset_of("task_struct.start_boottime")
                .or_else(|| k.offset_of("task_struct.real_start_time"))
                .or_else(|| k.offset_of("task_struct.start_time")),
            tty: TtyLayout::resolve(k),
            rss: RssLayout::resolve(k),
            mm_total_vm: k.offset_of("mm_struct.total_vm"),
        })
    }
}
