//! The task walker: processes, threads, argv/env read through each
//! process's own page tables, the load average and uname, over a
//! [`Kernel`] and the offsets of a [`Layout`].

use super::layout::{need, Layout};
use super::state::{loadavg_value, state_letter};
use crate::{Kernel, Process, Strings, Thread};
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Error, Result, Translated, VirtAddr, VirtReadExt};

/// Processes and threads visited before a list is declared corrupt (a
/// cycle that does not come back to its head).
pub const MAX_TASKS: usize = 1 << 22;
/// Longest argv or environment block read (the kernel's own limit on
/// arguments is far below: `ARG_MAX` is 2 MiB plus the stack rlimit).
pub const MAX_ARGS: u64 = 16 << 20;

/// How much of a rewritten title `/proc/PID/cmdline` shows
/// (`get_mm_proctitle` reads one page).
const PROCTITLE_MAX: u64 = 4096;

/// `PF_KTHREAD` in `task_struct.flags`.
const PF_KTHREAD: u32 = 0x0020_0000;

/// A Linux kernel seen through a [`Kernel`].
#[derive(Debug)]
pub struct Linux<'k, K: ?Sized> {
    pub(super) k: &'k K,
    pub(super) l: Layout,
    pub(super) init_task: u64,
}

/// `base + off` as an address: a pointer read from memory plus a member
/// offset. A sum past the top of the address space means the pointer is
/// corrupt.
pub(super) fn at(base: u64, off: u64) -> Result<VirtAddr> {
    base.checked_add(off).map(VirtAddr).ok_or(Error::Malformed(
        "a kernel pointer plus a member offset overflows",
    ))
}

impl<'k, K: Kernel + ?Sized> Linux<'k, K> {
    /// Resolves the layout from BTF and finds `init_task`: from the
    /// symbol, else by a checked search near `init_uts_ns` (arm64 kernels
    /// without CONFIG_KALLSYMS_ALL have no data symbols).
    pub fn new(k: &'k K) -> Result<Self> {
        let l = Layout::resolve(k)?;
        let mut this = Linux { k, l, init_task: 0 };
        this.init_task = match k.symbol("init_task") {
            Some(a) if this.is_init_task(a) => a,
            Some(_) => {
                return Err(Error::Malformed(
                    "init_task does not look like the idle task",
                ))
            }
            None => this.find_init_task()?,
        };
        Ok(this)
    }

    /// A walker from a layout and `init_task` found before by
    /// [`Linux::new`] for the same kernel (see [`Linux::parts`]).
    pub fn from_parts(k: &'k K, layout: Layout, init_task: u64) -> Self {
        Linux {
            k,
            l: layout,
            init_task,
        }
    }

    /// What [`Linux::from_parts`] needs to skip the resolution next time.
    pub fn parts(&self) -> (Layout, u64) {
        (self.l, self.init_task)
    }

    /// The address of `init_task`.
    pub fn init_task(&self) -> u64 {
        self.init_task
    }

    pub(super) fn mem(&self) -> &dyn kvm_core::VirtRead {
        self.k.kernel()
    }

    /// The pointer at `base + off`.
    pub(super) fn ptr(&self, base: u64, off: u64) -> Result<u64> {
        self.mem().read_u64_le(at(base, off)?)
    }

    /// The `u32` at `base + off`.
    pub(super) fn u32_at(&self, base: u64, off: u64) -> Result<u32> {
        self.mem().read_u32_le(at(base, off)?)
    }

    pub(super) fn comm(&self, t: u64) -> Result<String> {
        let mut b = [0u8; 64];
        let b = &mut b[..self.l.comm_len as usize];
        self.mem().read_virt_exact(at(t, self.l.comm)?, b)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }

    fn state(&self, t: u64) -> Result<char> {
        let state = match self.l.state_size {
            8 => self.ptr(t, self.l.state)? as u32,
            _ => self.u32_at(t, self.l.state)?,
        };
        Ok(state_letter(state, self.u32_at(t, self.l.exit_state)?))
    }

    /// Follows a `list_head` ring from `head`, returning the containing
    /// objects (`entry - member`), bounded by [`MAX_TASKS`] and cycle-checked
    /// ([`crate::chain::follow`]).
    pub(super) fn list(&self, head: u64, member: u64) -> Result<Vec<u64>> {
        let nodes = crate::chain::follow(
            self.ptr(head, 0)?,
            head,
            MAX_TASKS,
            "task list does not close (corrupt or cyclic)",
            |n| self.ptr(n, 0),
        )?;
        Ok(nodes.into_iter().map(|n| n.wrapping_sub(member)).collect())
    }

    fn pid_of(&self, signal: u64, kind: u64) -> Result<u32> {
        let pid = self.ptr(signal, self.l.signal_pids + 8 * kind)?;
        if pid == 0 {
            return Ok(0);
        }
        self.u32_at(pid, self.l.pid_numbers + self.l.upid_nr)
    }

    fn thread(&self, t: u64) -> Result<Thread> {
        let cpu = match self.l.cpu {
            Some(o) => Some(self.u32_at(t, o)?),
            None => None,
        };
        let oncpu = match self.l.on_cpu {
            Some(o) => self.u32_at(t, o)? != 0,
            None => false,
        };
        Ok(Thread {
            tid: self.u32_at(t, self.l.pid)?,
            task: t,
            name: self.comm(t)?,
            state: Some(self.state(t)?),
            cpu,
            oncpu,
            crashed: None,
            registers: None,
        })
    }

    /// The process whose thread-group leader is the task at `t`.
    pub fn process(&self, t: u64) -> Result<Process> {
        let l = &self.l;
        let parent = self.ptr(t, l.real_parent)?;
        let cred = self.ptr(t, l.real_cred)?;
        let signal = self.ptr(t, l.signal)?;
        let flags = self.u32_at(t, l.flags)?;
        let mut threads = Vec::new();
        for th in self.list(at(signal, l.signal_thread_head)?.0, l.thread_node)? {
            threads.push(self.thread(th)?);
        }
        // The leader first, as /proc/PID/task lists it.
        let leader = self.u32_at(t, l.pid)?;
        if let Some(i) = threads.iter().position(|th| th.tid == leader) {
            threads[..=i].rotate_right(1);
        }
        // The parent's own task_struct may be what the dump lost: the
        // ppid is then unknown, the process itself still listed.
        let ppid = if parent == 0 {
            Some(0)
        } else {
            self.u32_at(parent, l.tgid).ok()
        };
        let (tty_nr, tty) = self.tty(signal).unwrap_or((0, None));
        let start_time_ns = self.l.start_time.and_then(|o| self.ptr(t, o).ok());
        let rss_pages = self.rss(t).ok().flatten();
        let vsize_pages = self.vsize(t).ok().flatten();
        Ok(Process {
            pid: self.u32_at(t, l.tgid)?,
            ppid,
            pgrp: Some(self.pid_of(signal, l.pidtype_pgid)?),
            session: Some(self.pid_of(signal, l.pidtype_sid)?),
            uid: Some(self.u32_at(cred, l.cred_uid)?),
            gid: Some(self.u32_at(cred, l.cred_gid)?),
            euid: Some(self.u32_at(cred, l.cred_euid)?),
            egid: Some(self.u32_at(cred, l.cred_egid)?),
            state: Some(self.state(t)?),
            comm: self.comm(t)?,
            kthread: Some(flags & PF_KTHREAD != 0),
            tty_nr: Some(tty_nr),
            tty,
            start_time_ns,
            rss_pages,
            vsize_pages,
            task: t,
            threads,
            unavailable: None,
        })
    }

    /// The controlling terminal of a process (its `signal->tty`): the
    /// `tty_nr` /proc prints (`new_encode_dev(MKDEV(major, minor_start +
    /// index))`) and the tty's name.
    fn tty(&self, signal: u64) -> Result<(u32, Option<String>)> {
        let Some(l) = self.l.tty else {
            return Ok((0, None));
        };
        let tty = self.ptr(signal, l.signal_tty)?;
        if tty == 0 {
            return Ok((0, None));
        }
        let index = self.u32_at(tty, l.index)?;
        let driver = self.ptr(tty, l.driver)?;
        let major = self.u32_at(driver, l.major)?;
        let minor = self.u32_at(driver, l.minor_start)?.wrapping_add(index);
        let nr = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12);
        let name = match l.name {
            Some(o) => {
                let mut b = [0u8; 64];
                self.mem().read_virt_exact(at(tty, o)?, &mut b)?;
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                Some(String::from_utf8_lossy(&b[..end]).into_owned())
            }
            None => None,
        };
        Ok((nr, name))
    }

    /// Resident pages of the process at `t` (`get_mm_rss`: the file, anon
    /// and shmem counters of `mm->rss_stat`, see [`RssLayout`]).
    fn rss(&self, t: u64) -> Result<Option<u64>> {
        let Some(l) = self.l.rss else { return Ok(None) };
        let Some(mm) = self.user_mm(t)? else {
            return Ok(None);
        };
        // Counters that overflow their sum are corrupt: unknown, not a
        // number.
        let mut pages = Some(0i64);
        for c in l.counters {
            let v = self.ptr(mm, c)? as i64;
            pages = pages.and_then(|p| p.checked_add(v));
        }
        Ok(pages.and_then(|p| u64::try_from(p).ok()))
    }

    /// Virtual size in pages (`task_vsize`: `mm->total_vm`), 0 without an
    /// address space of its own.
    fn vsize(&self, t: u64) -> Result<Option<u64>> {
        let Some(off) = self.l.mm_total_vm else {
            return Ok(None);
        };
        match self.user_mm(t)? {
            None => Ok(Some(0)),
            Some(mm) => self.ptr(mm, off).map(Some),
        }
    }

    /// The task's own address space (`get_task_mm`): `None` for a kernel
    /// thread, even one that borrowed a process's mm (`kthread_use_mm`),
    /// and for a task that released its mm (a zombie).
    fn user_mm(&self, t: u64) -> Result<Option<u64>> {
        if self.u32_at(t, self.l.flags)? & PF_KTHREAD != 0 {
            return Ok(None);
        }
        Ok(Some(self.ptr(t, self.l.mm)?).filter(|&mm| mm != 0))
    }

    /// Every process except the idle task (pid 0), in task-list order (as
    /// `/proc` lists them). A process that cannot be read is listed with
    /// the reason ([`Process::unavailable`]); where the task list itself
    /// breaks, the processes are found through the pid namespace
    /// instead, in pid order (see `reach.rs`).
    pub fn processes(&self) -> Result<Vec<Process>> {
        let head = at(self.init_task, self.l.tasks)?.0;
        let (tasks, stop) = crate::chain::follow_partial(
            self.ptr(head, 0)?,
            head,
            MAX_TASKS,
            "task list does not close (corrupt or cyclic)",
            |n| self.ptr(n, 0),
        );
        match stop {
            None => Ok(tasks
                .into_iter()
                .map(|n| self.process_or_why(n.wrapping_sub(self.l.tasks), None))
                .collect()),
            Some(stop) => Ok(self.processes_past(head, tasks, stop)),
        }
    }

    /// The process led by the task at `t`, or, if it cannot be read, an
    /// entry with its pid (`pid`, else the task's own `tgid` if that can
    /// be read) and the reason.
    pub(super) fn process_or_why(&self, t: u64, pid: Option<u32>) -> Process {
        self.process(t).unwrap_or_else(|e| {
            let pid = pid.or_else(|| self.u32_at(t, self.l.tgid).ok());
            Process::unavailable(pid.unwrap_or(0), t, e)
        })
    }

    /// The bytes of `[start, end)` in the address space of `mm`, read
    /// through its own page tables.
    fn user_bytes(&self, mm: u64, start: u64, end: u64) -> Result<Vec<u8>> {
        if end < start || end - start > MAX_ARGS {
            return Err(Error::Malformed("argument area bounds are implausible"));
        }
        let pgd = self
            .k
            .kernel_to_phys(VirtAddr(self.ptr(mm, self.l.mm_pgd)?))?;
        let user = Translated::new(self.k.phys(), self.k.user_paging(pgd)?);
        let mut buf = alloc::vec![0u8; (end - start) as usize];
        user.read_virt_exact(VirtAddr(start), &mut buf)?;
        Ok(buf)
    }

    /// Reads strings of the task's own address space with `read` (given
    /// the mm); none for kernel threads and tasks without an mm.
    fn strings(&self, t: u64, read: impl FnOnce(u64) -> Result<Vec<Vec<u8>>>) -> Strings {
        let r = self
            .user_mm(t)
            .and_then(|mm| mm.map_or(Ok(Vec::new()), read));
        match r {
            Ok(v) => Strings::Read(v),
            Err(e) => Strings::Unavailable(e),
        }
    }

    /// The arguments of the process at task `t` (`kvm_getargv`), read
    /// through the process's own page tables, as `/proc/PID/cmdline` gives
    /// them (`get_mm_cmdline` in `fs/proc/base.c`): when the last byte of
    /// the area is not NUL, the process rewrote its title
    /// (`setproctitle`), which may run on into the environment area: one
    /// string up to the first NUL, at most a page.
    pub fn argv(&self, t: u64) -> Strings {
        self.strings(t, |mm| {
            let (start, end) = (
                self.ptr(mm, self.l.mm_arg_start)?,
                self.ptr(mm, self.l.mm_arg_end)?,
            );
            let buf = self.user_bytes(mm, start, end)?;
            if buf.last().is_none_or(|&b| b == 0) {
                return Ok(split_strings(&buf));
            }
            let (env_start, env_end) = (
                self.ptr(mm, self.l.mm_env_start)?,
                self.ptr(mm, self.l.mm_env_end)?,
            );
            let limit = if env_start == end && env_end >= env_start {
                env_end
            } else {
                end
            };
            let title_end = limit.min(start.saturating_add(PROCTITLE_MAX));
            // At most a page from `start`: inside the argv area it is read
            // already; past it (into the environment) it is read now.
            let title = if title_end <= end {
                let mut b = buf;
                b.truncate((title_end - start) as usize);
                b
            } else {
                self.user_bytes(mm, start, title_end).unwrap_or(buf)
            };
            let len = title.iter().position(|&b| b == 0).unwrap_or(title.len());
            Ok(alloc::vec![title[..len].to_vec()])
        })
    }

    /// The environment of the process at task `t` (`kvm_getenvv`).
    pub fn envv(&self, t: u64) -> Strings {
        self.strings(t, |mm| {
            let (start, end) = (
                self.ptr(mm, self.l.mm_env_start)?,
                self.ptr(mm, self.l.mm_env_end)?,
            );
            Ok(split_strings(&self.user_bytes(mm, start, end)?))
        })
    }

    /// The 1, 5 and 15-minute load averages as `/proc/loadavg` prints them
    /// (two decimals).
    pub fn loadavg(&self) -> Result<[f64; 3]> {
        let avenrun = match self.k.symbol("avenrun") {
            Some(a) => a,
            None => self.global_from_code("get_avenrun")?,
        };
        let mut out = [0.0; 3];
        for (i, o) in out.iter_mut().enumerate() {
            *o = loadavg_value(self.ptr(avenrun, 8 * i as u64)?);
        }
        Ok(out)
    }

    /// `uname -r` from `init_uts_ns`.
    pub fn release(&self) -> Result<String> {
        self.uts_field("new_utsname.release")
    }

    /// The host name from `init_uts_ns`.
    pub fn hostname(&self) -> Result<String> {
        self.uts_field("new_utsname.nodename")
    }

    fn uts_field(&self, field: &'static str) -> Result<String> {
        let ns = self
            .k
            .symbol("init_uts_ns")
            .ok_or(Error::Unsupported("no init_uts_ns symbol"))?;
        let name = need(self.k, "uts_namespace.name")?.saturating_add(need(self.k, field)?);
        let mut b = [0u8; 65];
        self.mem().read_virt_exact(at(ns, name)?, &mut b)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }
}

/// NUL-separated strings; the terminating NUL ends the last one, not an
/// empty one after it, and an empty area holds none.
fn split_strings(buf: &[u8]) -> Vec<Vec<u8>> {
    let body = buf.strip_suffix(&[0]).unwrap_or(buf);
    if buf.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}
