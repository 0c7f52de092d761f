//! Linux: the task list, threads, argv/env, load average and uname, with
//! every structure offset taken from the kernel's BTF.
//!
//! The state letters follow `fs/proc/array.c` (`task_state_array`,
//! `__task_state_index` in `include/linux/sched.h`); the load average
//! follows `fs/proc/loadavg.c` (`LOAD_INT`/`LOAD_FRAC` with `FIXED_1/200`
//! rounding). These are constants of the ABI, not structure layouts.

use crate::{Kernel, ModuleSymbol, Process, Strings, Thread};
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Error, Result, Translated, VirtAddr, VirtReadExt};

/// Processes and threads visited before a list is declared corrupt (a
/// cycle that does not come back to its head).
pub const MAX_TASKS: usize = 1 << 22;
/// Longest argv or environment block read (the kernel's own limit on
/// arguments is far below: `ARG_MAX` is 2 MiB plus the stack rlimit).
pub const MAX_ARGS: u64 = 16 << 20;

/// `PF_KTHREAD` in `task_struct.flags`.
const PF_KTHREAD: u32 = 0x0020_0000;
/// `TASK_REPORT`: the state bits /proc reports.
const TASK_REPORT: u32 = 0x7f;
/// `TASK_IDLE` = `TASK_UNINTERRUPTIBLE | TASK_NOLOAD`.
const TASK_IDLE: u32 = 0x402;
/// `TASK_RTLOCK_WAIT` (5.15+): reported as `D`.
const TASK_RTLOCK_WAIT: u32 = 0x1000;
/// Letters by `fls(state)`, as `task_state_array` orders them.
const STATE_LETTERS: &[u8; 9] = b"RSDTtXZPI";

/// Offsets resolved once from BTF; keep it (with [`Linux::parts`]) to
/// make the next [`Linux`] for the same kernel without resolving again.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    tasks: u64,
    pid: u64,
    tgid: u64,
    comm: u64,
    comm_len: u64,
    real_parent: u64,
    mm: u64,
    real_cred: u64,
    signal: u64,
    state: u64,
    state_size: u64,
    exit_state: u64,
    flags: u64,
    cpu: Option<u64>,
    on_cpu: Option<u64>,
    thread_node: u64,
    signal_thread_head: u64,
    signal_pids: u64,
    pid_numbers: u64,
    upid_nr: u64,
    pidtype_pgid: u64,
    pidtype_sid: u64,
    cred_uid: u64,
    cred_gid: u64,
    cred_euid: u64,
    cred_egid: u64,
    mm_pgd: u64,
    mm_arg_start: u64,
    mm_arg_end: u64,
    mm_env_start: u64,
    mm_env_end: u64,
    start_time: Option<u64>,
    tty: Option<TtyLayout>,
    rss: Option<RssLayout>,
}

/// Where a process's controlling terminal is described.
#[derive(Clone, Copy, Debug)]
struct TtyLayout {
    signal_tty: u64,
    index: u64,
    driver: u64,
    major: u64,
    minor_start: u64,
    name: Option<u64>,
}

/// Where `mm_struct.rss_stat` keeps the file, anon and shmem counters.
#[derive(Clone, Copy, Debug)]
struct RssLayout {
    /// Offsets of the three counters from the `mm_struct`.
    counters: [u64; 3],
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

fn need<K: Kernel + ?Sized>(k: &K, path: &'static str) -> Result<u64> {
    k.offset_of(path).ok_or(Error::Unsupported(path))
}

impl Layout {
    fn resolve<K: Kernel + ?Sized>(k: &K) -> Result<Layout> {
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
            start_time: k.offset_of("task_struct.start_time"),
            tty: TtyLayout::resolve(k),
            rss: RssLayout::resolve(k),
        })
    }
}

/// The state letter `/proc/PID/stat` prints for these `__state` and
/// `exit_state` values.
pub fn state_letter(state: u32, exit_state: u32) -> char {
    let mut s = (state | exit_state) & TASK_REPORT;
    if state & TASK_IDLE == TASK_IDLE {
        s = TASK_REPORT + 1;
    }
    if state & TASK_RTLOCK_WAIT != 0 {
        s = 2; // TASK_UNINTERRUPTIBLE
    }
    let fls = 32 - s.leading_zeros();
    STATE_LETTERS.get(fls as usize).map_or('?', |&b| b as char)
}

/// Functions that take `&init_task` within their first 64 instructions
/// (`for_each_process`, `do_each_thread`): found by scanning Debian's
/// 6.1 arm64 vmlinux for ADRP/ADD pairs forming init_task's address;
/// long-lived, small, and unrelated to each other, so a kernel that
/// changed one still has the others.
const INIT_TASK_USERS: [&str; 5] = [
    "show_state_filter",
    "current_is_single_threaded",
    "thaw_kernel_threads",
    "clear_tasks_mm_cpumask",
    "send_sig_all",
];

/// A Linux kernel seen through a [`Kernel`].
#[derive(Debug)]
pub struct Linux<'k, K: ?Sized> {
    k: &'k K,
    l: Layout,
    init_task: u64,
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

    fn mem(&self) -> &dyn kvm_core::VirtRead {
        self.k.kernel()
    }

    fn ptr(&self, addr: u64) -> Result<u64> {
        self.mem().read_u64_le(VirtAddr(addr))
    }

    fn u32_at(&self, addr: u64) -> Result<u32> {
        self.mem().read_u32_le(VirtAddr(addr))
    }

    /// The idle task of CPU 0: pid 0, no mm, its `tasks` list consistent,
    /// its comm "swapper" (INIT_TASK_COMM; "swapper/0" once the CPU is
    /// up). The comm rules out the zeros and empty lists that fill most of
    /// `init_task` when a candidate address is off by a member's offset.
    fn is_init_task(&self, t: u64) -> bool {
        let l = &self.l;
        let check = || -> Result<bool> {
            let (pid, tgid) = (self.u32_at(t + l.pid)?, self.u32_at(t + l.tgid)?);
            let next = self.ptr(t + l.tasks)?;
            let back = self.ptr(next + 8)?; // list_head.prev
            let mut comm = [0u8; 8];
            self.mem()
                .read_virt_exact(VirtAddr(t + l.comm), &mut comm)?;
            Ok(pid == 0
                && tgid == 0
                && back == t + l.tasks
                && self.ptr(t + l.mm)? == 0
                && comm.starts_with(b"swapper")
                && matches!(comm[7], 0 | b'/'))
        };
        check().unwrap_or(false)
    }

    /// Finds `init_task` without its symbol: on arm64 from the functions
    /// that use its address early (each candidate checked with
    /// [`Self::is_init_task`]), else by [`Self::search_init_task`].
    fn find_init_task(&self) -> Result<u64> {
        if self.k.arch() == crate::Arch::Aarch64 {
            for f in INIT_TASK_USERS {
                let Some(at) = self.k.symbol(f) else { continue };
                let mut code = [0u8; 256];
                let Ok(n) = self.mem().read_virt(VirtAddr(at), &mut code) else {
                    continue;
                };
                let code = code.get(..n - n % 4).unwrap_or_default();
                // `for_each_process` starts by loading `init_task.tasks.next`.
                let found = aarch64_adrp_targets(code, at)
                    .flat_map(|t| [t, t.wrapping_sub(self.l.tasks)])
                    .find(|&t| self.is_init_task(t));
                if let Some(t) = found {
                    return Ok(t);
                }
            }
        }
        self.search_init_task()
    }

    /// Searches the kernel image around `init_uts_ns` (both are in the
    /// image's data) for the idle task's comm "swapper/0" and validates
    /// each hit with [`Self::is_init_task`].
    fn search_init_task(&self) -> Result<u64> {
        let anchor = self
            .k
            .symbol("init_uts_ns")
            .ok_or(Error::Unsupported("no init_task and no init_uts_ns symbol"))?;
        // Nearest first: both live in the image's .data, usually within a
        // few MiB of each other, so most of the window is never read.
        const WINDOW: u64 = 48 << 20;
        const BLOCK: u64 = 64 << 10;
        let base = anchor & !(BLOCK - 1);
        let mut buf = alloc::vec![0u8; BLOCK as usize + 16];
        for d in 0..WINDOW / BLOCK {
            for at in [
                base.checked_add(d * BLOCK),
                base.checked_sub((d + 1) * BLOCK),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(t) = self.init_task_in(at, &mut buf) {
                    return Ok(t);
                }
            }
        }
        Err(Error::Unsupported(
            "init_task not found (no symbol, and no idle task near init_uts_ns)",
        ))
    }

    /// Looks for the idle task's comm "swapper/0" in the block at `at`
    /// (read page by page: the image's segments have unmapped gaps).
    fn init_task_in(&self, at: u64, buf: &mut [u8]) -> Option<u64> {
        let needle = b"swapper/0\0";
        let mut n = 0;
        while n < buf.len() {
            let end = (n + 4096).min(buf.len());
            match self
                .mem()
                .read_virt(VirtAddr(at + n as u64), &mut buf[n..end])
            {
                Ok(k) if k == end - n => n = end,
                _ => break,
            }
        }
        let mut i = 0;
        while let Some(p) = buf
            .get(i..n)
            .and_then(|w| w.windows(needle.len()).position(|x| x == needle))
        {
            let hit = at + (i + p) as u64;
            if let Some(t) = hit.checked_sub(self.l.comm) {
                if self.is_init_task(t) {
                    return Some(t);
                }
            }
            i += p + 1;
        }
        None
    }

    fn comm(&self, t: u64) -> Result<String> {
        let mut b = [0u8; 64];
        let b = &mut b[..self.l.comm_len as usize];
        self.mem().read_virt_exact(VirtAddr(t + self.l.comm), b)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }

    fn state(&self, t: u64) -> Result<char> {
        let state = match self.l.state_size {
            8 => self.ptr(t + self.l.state)? as u32,
            _ => self.u32_at(t + self.l.state)?,
        };
        Ok(state_letter(state, self.u32_at(t + self.l.exit_state)?))
    }

    /// Follows a `list_head` ring from `head`, returning the containing
    /// objects (`entry - member`), bounded by [`MAX_TASKS`].
    fn list(&self, head: u64, member: u64) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let mut cur = self.ptr(head)?;
        while cur != head {
            if out.len() >= MAX_TASKS {
                return Err(Error::Malformed(
                    "task list does not close (corrupt or cyclic)",
                ));
            }
            out.push(cur.wrapping_sub(member));
            cur = self.ptr(cur)?;
        }
        Ok(out)
    }

    fn pid_of(&self, signal: u64, kind: u64) -> Result<u32> {
        let pid = self.ptr(signal + self.l.signal_pids + 8 * kind)?;
        if pid == 0 {
            return Ok(0);
        }
        self.u32_at(pid + self.l.pid_numbers + self.l.upid_nr)
    }

    fn thread(&self, t: u64) -> Result<Thread> {
        let cpu = match self.l.cpu {
            Some(o) => Some(self.u32_at(t + o)?),
            None => None,
        };
        let oncpu = match self.l.on_cpu {
            Some(o) => self.u32_at(t + o)? != 0,
            None => false,
        };
        Ok(Thread {
            tid: self.u32_at(t + self.l.pid)?,
            name: self.comm(t)?,
            state: self.state(t)?,
            cpu,
            oncpu,
        })
    }

    /// The process whose thread-group leader is the task at `t`.
    pub fn process(&self, t: u64) -> Result<Process> {
        let l = &self.l;
        let parent = self.ptr(t + l.real_parent)?;
        let cred = self.ptr(t + l.real_cred)?;
        let signal = self.ptr(t + l.signal)?;
        let flags = self.u32_at(t + l.flags)?;
        let mut threads = Vec::new();
        for th in self.list(signal + l.signal_thread_head, l.thread_node)? {
            threads.push(self.thread(th)?);
        }
        // The leader first, as /proc/PID/task lists it.
        let leader = self.u32_at(t + l.pid)?;
        if let Some(i) = threads.iter().position(|th| th.tid == leader) {
            threads[..=i].rotate_right(1);
        }
        let ppid = if parent == 0 {
            0
        } else {
            self.u32_at(parent + l.tgid)?
        };
        let (tty_nr, tty) = self.tty(signal).unwrap_or((0, None));
        let start_time_ns = self.l.start_time.and_then(|o| self.ptr(t + o).ok());
        let rss_pages = self.rss(t).ok().flatten();
        Ok(Process {
            pid: self.u32_at(t + l.tgid)?,
            ppid,
            pgrp: self.pid_of(signal, l.pidtype_pgid)?,
            session: self.pid_of(signal, l.pidtype_sid)?,
            uid: self.u32_at(cred + l.cred_uid)?,
            gid: self.u32_at(cred + l.cred_gid)?,
            euid: self.u32_at(cred + l.cred_euid)?,
            egid: self.u32_at(cred + l.cred_egid)?,
            state: self.state(t)?,
            comm: self.comm(t)?,
            kthread: flags & PF_KTHREAD != 0,
            tty_nr,
            tty,
            start_time_ns,
            rss_pages,
            task: t,
            threads,
        })
    }

    /// The controlling terminal of a process (its `signal->tty`): the
    /// `tty_nr` /proc prints (`new_encode_dev(MKDEV(major, minor_start +
    /// index))`) and the tty's name.
    fn tty(&self, signal: u64) -> Result<(u32, Option<String>)> {
        let Some(l) = self.l.tty else {
            return Ok((0, None));
        };
        let tty = self.ptr(signal + l.signal_tty)?;
        if tty == 0 {
            return Ok((0, None));
        }
        let index = self.u32_at(tty + l.index)?;
        let driver = self.ptr(tty + l.driver)?;
        let major = self.u32_at(driver + l.major)?;
        let minor = self.u32_at(driver + l.minor_start)?.wrapping_add(index);
        let nr = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12);
        let name = match l.name {
            Some(o) => {
                let mut b = [0u8; 64];
                self.mem().read_virt_exact(VirtAddr(tty + o), &mut b)?;
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
        let mm = self.ptr(t + self.l.mm)?;
        if mm == 0 {
            return Ok(None);
        }
        let mut pages = 0i64;
        for c in l.counters {
            pages += self.ptr(mm + c)? as i64;
        }
        Ok(u64::try_from(pages).ok())
    }

    /// Every process except the idle task (pid 0), in task-list order (as
    /// `/proc` lists them).
    pub fn processes(&self) -> Result<Vec<Process>> {
        let tasks = self.list(self.init_task + self.l.tasks, self.l.tasks)?;
        tasks.into_iter().map(|t| self.process(t)).collect()
    }

    fn strings(&self, t: u64, start_off: u64, end_off: u64) -> Strings {
        let read = || -> Result<Vec<String>> {
            let mm = self.ptr(t + self.l.mm)?;
            if mm == 0 {
                return Ok(Vec::new()); // kernel thread, or a zombie that released its mm
            }
            let (start, end) = (self.ptr(mm + start_off)?, self.ptr(mm + end_off)?);
            if end < start || end - start > MAX_ARGS {
                return Err(Error::Malformed("argument area bounds are implausible"));
            }
            let pgd = self
                .k
                .kernel_to_phys(VirtAddr(self.ptr(mm + self.l.mm_pgd)?))?;
            let user = Translated::new(self.k.phys(), self.k.user_paging(pgd)?);
            let mut buf = alloc::vec![0u8; (end - start) as usize];
            user.read_virt_exact(VirtAddr(start), &mut buf)?;
            let mut v: Vec<String> = buf
                .split(|&b| b == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            if buf.last() == Some(&0) {
                v.pop(); // the terminating NUL, not an empty last string
            }
            Ok(v)
        };
        match read() {
            Ok(v) => Strings::Read(v),
            Err(e) => Strings::Unavailable(e),
        }
    }

    /// The arguments of the process at task `t` (`kvm_getargv`), read
    /// through the process's own page tables.
    pub fn argv(&self, t: u64) -> Strings {
        self.strings(t, self.l.mm_arg_start, self.l.mm_arg_end)
    }

    /// The environment of the process at task `t` (`kvm_getenvv`).
    pub fn envv(&self, t: u64) -> Strings {
        self.strings(t, self.l.mm_env_start, self.l.mm_env_end)
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
            *o = loadavg_value(self.ptr(avenrun + 8 * i as u64)?);
        }
        Ok(out)
    }

    /// The global a small function loads first, for kernels without data
    /// symbols (arm64 only, see [`aarch64_adrp_target`]).
    fn global_from_code(&self, function: &'static str) -> Result<u64> {
        if self.k.arch() != crate::Arch::Aarch64 {
            return Err(Error::Unsupported(function));
        }
        let f = self
            .k
            .symbol(function)
            .ok_or(Error::Unsupported(function))?;
        let mut code = [0u8; 64];
        let n = self.mem().read_virt(VirtAddr(f), &mut code)?;
        aarch64_adrp_target(&code[..n - n % 4], f).ok_or(Error::Unsupported(function))
    }

    /// The symbols of every loaded module (the `[module]` lines of
    /// `/proc/kallsyms`), from each module's `kallsyms` symbol table in
    /// memory. The module list head is the `modules` symbol, or on arm64
    /// kernels without data symbols the list `find_module_all` walks.
    pub fn module_symbols(&self) -> Result<Vec<ModuleSymbol>> {
        let k = self.k;
        let head = match k.symbol("modules") {
            Some(a) => a,
            None => self.global_from_code("find_module_all")?,
        };
        if self.ptr(self.ptr(head)? + 8)? != head {
            return Err(Error::Malformed("the module list head does not close"));
        }
        let list = need(k, "module.list")?;
        let name_off = need(k, "module.name")?;
        let name_len = k.size_of("module.name").unwrap_or(56).min(256);
        let state_off = need(k, "module.state")?;
        let unformed = k
            .enum_value("MODULE_STATE_UNFORMED")
            .and_then(|v| u32::try_from(v).ok());
        let kallsyms_ptr = k.offset_of("module.kallsyms");
        let core = need(k, "module.core_kallsyms")?;
        let (symtab, num, strtab, typetab) = (
            need(k, "mod_kallsyms.symtab")?,
            need(k, "mod_kallsyms.num_symtab")?,
            need(k, "mod_kallsyms.strtab")?,
            need(k, "mod_kallsyms.typetab")?,
        );
        /// `Elf64_Sym`: st_name u32, st_info u8, st_other u8, st_shndx u16,
        /// st_value u64, st_size u64 (the ELF ABI, not a kernel layout).
        const SYM: u64 = 24;
        const MAX_MOD_SYMS: u32 = 1 << 20;
        let mut out = Vec::new();
        for m in self.list(head, list)? {
            if unformed.is_some() && Some(self.u32_at(m + state_off)?) == unformed {
                continue;
            }
            let mut nb = alloc::vec![0u8; name_len as usize];
            self.mem()
                .read_virt_exact(VirtAddr(m + name_off), &mut nb)?;
            let end = nb.iter().position(|&c| c == 0).unwrap_or(nb.len());
            let module = String::from_utf8_lossy(&nb[..end]).into_owned();
            let ks = match kallsyms_ptr {
                Some(o) => self.ptr(m + o)?,
                None => m + core,
            };
            let n = self.u32_at(ks + num)?;
            if n > MAX_MOD_SYMS {
                return Err(Error::Malformed("a module claims too many symbols"));
            }
            let (tab, strs, types) = (
                self.ptr(ks + symtab)?,
                self.ptr(ks + strtab)?,
                self.ptr(ks + typetab)?,
            );
            let mut syms = alloc::vec![0u8; (u64::from(n) * SYM) as usize];
            self.mem().read_virt_exact(VirtAddr(tab), &mut syms)?;
            let mut kinds = alloc::vec![0u8; n as usize];
            self.mem().read_virt_exact(VirtAddr(types), &mut kinds)?;
            for (i, e) in syms.chunks_exact(SYM as usize).enumerate() {
                let st_name = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
                let mut v = [0u8; 8];
                v.copy_from_slice(&e[8..16]);
                let mut name = [0u8; 512];
                let got = self
                    .mem()
                    .read_virt(VirtAddr(strs + u64::from(st_name)), &mut name)
                    .unwrap_or(0);
                let end = name[..got].iter().position(|&c| c == 0).unwrap_or(got);
                if end == 0 {
                    continue; // /proc/kallsyms skips nameless entries (the null symbol)
                }
                out.push(ModuleSymbol {
                    name: String::from_utf8_lossy(&name[..end]).into_owned(),
                    addr: u64::from_le_bytes(v),
                    kind: char::from(kinds[i]),
                    module: module.clone(),
                });
            }
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
        let at = ns + need(self.k, "uts_namespace.name")? + need(self.k, field)?;
        let mut b = [0u8; 65];
        self.mem().read_virt_exact(VirtAddr(at), &mut b)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }
}

/// One `avenrun` value (fixed point, 11 fraction bits) as `/proc/loadavg`
/// prints it: `LOAD_INT.LOAD_FRAC` after adding `FIXED_1/200`.
pub fn loadavg_value(avenrun: u64) -> f64 {
    const FSHIFT: u32 = 11;
    const FIXED_1: u64 = 1 << FSHIFT;
    let a = avenrun.wrapping_add(FIXED_1 / 200);
    let int = a >> FSHIFT;
    let frac = ((a & (FIXED_1 - 1)) * 100) >> FSHIFT;
    int as f64 + frac as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_letters_as_proc_prints_them() {
        assert_eq!(state_letter(0, 0), 'R');
        assert_eq!(state_letter(1, 0), 'S');
        assert_eq!(state_letter(2, 0), 'D');
        assert_eq!(state_letter(4, 0), 'T');
        assert_eq!(state_letter(8, 0), 't');
        assert_eq!(state_letter(0, 16), 'X');
        assert_eq!(state_letter(0, 32), 'Z');
        assert_eq!(state_letter(0x40, 0), 'P');
        assert_eq!(state_letter(0x402, 0), 'I');
        assert_eq!(state_letter(0x1000, 0), 'D');
        // TASK_KILLABLE (WAKEKILL | UNINTERRUPTIBLE) is D.
        assert_eq!(state_letter(0x102, 0), 'D');
    }

    #[test]
    fn loadavg_rounding() {
        // 0.60 as the kernel stores it: 0.6 * 2048 = 1228.8 → 1229.
        assert_eq!(loadavg_value(1229), 0.60);
        assert_eq!(loadavg_value(0), 0.0);
        assert_eq!(loadavg_value(2048 * 3 + 1024), 3.50);
    }
}

/// arm64: the address a function loads with `ADRP Xn, sym` followed by
/// `ADD Xd, Xn, #:lo12:sym` or `LDR Xt, [Xn, #:lo12:sym]` — how an arm64
/// kernel reaches a global, and so a way to find data symbols (such as
/// `avenrun` from `get_avenrun`) in kernels whose kallsyms holds functions
/// only. `code` is the function's first bytes, `pc` its address. Returns
/// the first such target (ARM ARM C6.2.10 ADRP, C6.2.4 ADD (immediate),
/// C6.2.132 LDR (immediate, unsigned offset)).
pub fn aarch64_adrp_target(code: &[u8], pc: u64) -> Option<u64> {
    aarch64_adrp_targets(code, pc).next()
}

/// Every target [`aarch64_adrp_target`] would see in `code`, in order:
/// for each ADRP, the address its register reaches through ADDs, at the
/// first load from it or the last ADD.
pub fn aarch64_adrp_targets(code: &[u8], pc: u64) -> impl Iterator<Item = u64> + '_ {
    let insn = move |i: usize| {
        let b = code.get(4 * i..4 * i + 4)?;
        Some((
            pc.wrapping_add(4 * i as u64),
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        ))
    };
    (0..code.len() / 4).filter_map(move |i| {
        let (at, insn0) = insn(i)?;
        if insn0 & 0x9f00_0000 != 0x9000_0000 {
            return None; // not ADRP
        }
        let rd = insn0 & 0x1f;
        let immlo = u64::from((insn0 >> 29) & 3);
        let immhi = u64::from((insn0 >> 5) & 0x7_ffff);
        let imm = ((((immhi << 2) | immlo) << 12) << 31) as i64 >> 31; // sign-extend 33 bits
        let page = (at & !0xfff).wrapping_add(imm as u64);
        // Follow Xd through `ADD Xd', Xd, #imm` steps (compilers add a
        // section anchor first, then the symbol's offset in the section)
        // to the first load from it.
        let (mut reg, mut addr, mut added) = (rd, page, false);
        for (_, next) in (i + 1..i + 13).map_while(insn) {
            if (next >> 5) & 0x1f != reg {
                continue;
            }
            let imm12 = u64::from((next >> 10) & 0xfff);
            if next & 0xff80_0000 == 0x9100_0000 {
                // ADD Xd, Xn, #imm12 {, LSL #12}
                let shift = if next & (1 << 22) != 0 { 12 } else { 0 };
                addr = addr.wrapping_add(imm12 << shift);
                reg = next & 0x1f;
                added = true;
            } else if next & 0xffc0_0000 == 0xf940_0000 {
                // LDR Xt, [Xn, #imm12 * 8]: the load names the global.
                return Some(addr.wrapping_add(imm12 * 8));
            } else if next & 0xffe0_0000 == 0xf840_0000 {
                // LDUR / LDR post-index / LDR pre-index with a signed imm9
                // (C6.2.133, C6.2.134): the address is base + imm9 except
                // post-index, which loads from the base.
                let imm9 = ((((next >> 12) & 0x1ff) as i64) << 55 >> 55) as u64;
                return match (next >> 10) & 3 {
                    0 | 3 => Some(addr.wrapping_add(imm9)),
                    1 => Some(addr),
                    _ => None,
                };
            } else {
                break;
            }
        }
        added.then_some(addr)
    })
}

#[cfg(test)]
mod arm64_tests {
    use super::aarch64_adrp_target;
    use alloc::vec::Vec;

    #[test]
    fn adrp_add_and_adrp_ldr() {
        // adrp x3, #0x1234000 (from pc 0x...1000); add x3, x3, #0x280
        let pc = 0xffff_8000_0800_1004u64;
        let delta_pages: u64 = 0x1234;
        let immlo = (delta_pages & 3) as u32;
        let immhi = (delta_pages >> 2) as u32;
        let adrp = 0x9000_0000 | (immlo << 29) | (immhi << 5) | 3;
        let add: u32 = 0x9100_0000 | (0x280 << 10) | (3 << 5) | 3;
        let mut code = Vec::new();
        code.extend_from_slice(&0xd503_233fu32.to_le_bytes()); // paciasp
        code.extend_from_slice(&adrp.to_le_bytes());
        code.extend_from_slice(&add.to_le_bytes());
        let want = ((pc + 4) & !0xfff) + 0x0123_4000 + 0x280;
        assert_eq!(aarch64_adrp_target(&code, pc), Some(want));
        // ldr x5, [x3, #0x10] after the adrp
        let ldr: u32 = 0xf940_0000 | (2 << 10) | (3 << 5) | 5;
        code.truncate(8);
        code.extend_from_slice(&ldr.to_le_bytes());
        assert_eq!(
            aarch64_adrp_target(&code, pc),
            Some(((pc + 4) & !0xfff) + 0x0123_4000 + 0x10)
        );
        // Negative page offsets sign-extend.
        let back = 0x9000_0000u32 | (3 << 29) | (0x7_ffff << 5) | 1; // -1 page
        let add1: u32 = 0x9100_0000 | (8 << 10) | (1 << 5) | 1;
        let code: Vec<u8> = [back, add1].iter().flat_map(|i| i.to_le_bytes()).collect();
        assert_eq!(aarch64_adrp_target(&code, 0x10_0000), Some(0xf_f008));
        assert_eq!(aarch64_adrp_target(&[0; 16], 0), None);
        // As find_module_all (Linux 6.1 arm64) reaches `modules`:
        // adrp x21, P; add x21, x21, #0x5c0; ldr x0, [x21, #80]!
        let code: Vec<u8> = [0xb000_bb75u32, 0x9117_02b5, 0xa901_53f3, 0xf845_0ea0]
            .iter()
            .flat_map(|i| i.to_le_bytes())
            .collect();
        let pc = 0xffff_c72a_6274_f4a8u64;
        assert_eq!(
            aarch64_adrp_target(&code, pc),
            Some(0xffff_c72a_63eb_c000 + 0x5c0 + 80)
        );
    }

    #[test]
    fn every_target_in_order() {
        // As thaw_kernel_threads (Linux 6.1 arm64) starts: three ADRP
        // sequences, the second loading init_task.tasks.next (0x468).
        let code: Vec<u8> = [
            0xd503_233fu32, // paciasp
            0xa9be_7bfd,    // stp x29, x30, [sp, #-32]!
            0xb000_0940,    // adrp x0, page + 0x129000
            0x910003fd,     // mov x29, sp
            0x9119_8000,    // add x0, x0, #0x660
            0x9400_0000,    // bl
            0xf000_0001,    // adrp x1, page
            0x9132_0021,    // add x1, x1, #0xc80
            0xf942_3420,    // ldr x0, [x1, #0x468]
        ]
        .iter()
        .flat_map(|i| i.to_le_bytes())
        .collect();
        let pc = 0xffff_8000_0810_0000u64;
        let got: Vec<u64> = super::aarch64_adrp_targets(&code, pc).collect();
        let first = pc + 0x12_9000 + 0x660;
        let adrp1 = 0xf000_0001u32;
        let page = {
            let imm =
                (u64::from((adrp1 >> 5) & 0x7_ffff) << 2 | u64::from((adrp1 >> 29) & 3)) << 12;
            ((pc + 24) & !0xfff) + imm
        };
        assert_eq!(got, [first, page + 0xc80 + 0x468]);
        assert_eq!(aarch64_adrp_target(&code, pc), Some(first));
    }
}
