//! The process list of a FreeBSD kernel: `allproc`, each process's
//! threads, and the context each thread was saved in.

use super::offsets::Offsets;
use super::pcb;
use crate::bsd::{at, c_string, int, ptr, KernelFile};
use crate::chain::follow;
use crate::os::Machine;
use crate::{Process, Thread};
use alloc::vec::Vec;
use kvm_core::{Error, Result};

/// Most processes (and threads of one process) believed: FreeBSD's
/// `maxproc` tops out far below this.
pub const MAX_PROCS: usize = 1 << 20;

/// `MAXCOMLEN + 1`: the size of `p_comm` and `td_name`.
const COMM: usize = 20;

/// `NOCPU`: `td_oncpu` of a thread that is not running.
const NOCPU: i32 = -1;

/// What the walk reads once per call.
pub struct Walker<'a> {
    m: &'a Machine<'a>,
    off: Offsets,
    /// `allproc`'s address.
    allproc: u64,
    /// The crashed thread's tid (`dumptid`), if the kernel file names it.
    dumptid: Option<i32>,
    /// Where the crashed thread's registers are (`dumppcb`).
    dumppcb: Option<u64>,
    /// The on-CPU threads' registers (`stoppcbs[]`), stride `pcb_size`.
    stoppcbs: Option<u64>,
    /// `osreldate` (chooses the arm64 pcb layout).
    osreldate: Option<i32>,
}

impl<'a> Walker<'a> {
    /// The walker of the kernel in `m`, named by `file`'s symbols.
    pub fn new(m: &'a Machine<'a>, file: &KernelFile) -> Result<Self> {
        let allproc = file.need("allproc", "the kernel file has no allproc")?;
        let off = Offsets::read(m, file)?;
        let dumptid = match file.get("dumptid")? {
            Some(a) => Some(int(m, a)?),
            None => None,
        };
        let osreldate = match file.get("osreldate")? {
            Some(a) => int(m, a).ok(),
            None => None,
        };
        Ok(Walker {
            m,
            off,
            allproc,
            dumptid,
            dumppcb: file.get("dumppcb")?,
            stoppcbs: file.get("stoppcbs")?,
            osreldate,
        })
    }

    /// Every process on `allproc`, in list order (newest first), with
    /// its threads.
    pub fn processes(&self) -> Result<Vec<Process>> {
        let first = ptr(self.m, self.allproc)?;
        let procs = follow(
            first,
            0,
            MAX_PROCS,
            "allproc does not end (corrupt or cyclic)",
            |p| ptr(self.m, at(p, self.off.p_list)?),
        )?;
        procs.into_iter().map(|p| self.process(p)).collect()
    }

    fn process(&self, p: u64) -> Result<Process> {
        let pid = int(self.m, at(p, self.off.p_pid)?)?;
        let pid = u32::try_from(pid)
            .map_err(|_| Error::Malformed("a FreeBSD process has a negative pid"))?;
        let first = ptr(self.m, at(p, self.off.p_threads)?)?;
        let tds = follow(
            first,
            0,
            MAX_PROCS,
            "a thread list does not end (corrupt or cyclic)",
            |td| ptr(self.m, at(td, self.off.td_plist)?),
        )?;
        Ok(Process {
            pid,
            ppid: None,
            pgrp: None,
            session: None,
            uid: None,
            gid: None,
            euid: None,
            egid: None,
            state: None,
            comm: c_string::<COMM>(self.m, at(p, self.off.p_comm)?)?,
            kthread: None,
            tty_nr: None,
            tty: None,
            start_time_ns: None,
            rss_pages: None,
            vsize_pages: None,
            task: p,
            threads: tds
                .into_iter()
                .map(|td| self.thread(td))
                .collect::<Result<_>>()?,
            unavailable: None,
        })
    }

    fn thread(&self, td: u64) -> Result<Thread> {
        let tid = int(self.m, at(td, self.off.td_tid)?)?;
        let oncpu = match self.off.td_oncpu {
            Some(o) => Some(int(self.m, at(td, o)?)?),
            None => None,
        };
        let cpu = oncpu
            .filter(|&c| c != NOCPU)
            .and_then(|c| u32::try_from(c).ok());
        let crashed = self.dumptid.map(|d| d == tid);
        // A saved context that cannot be read leaves the registers
        // unavailable; the thread is still listed.
        let registers = match self.pcb(td, crashed == Some(true), cpu) {
            Ok(Some(pcb)) => pcb::registers(self.m, pcb, self.osreldate).ok().flatten(),
            _ => None,
        };
        Ok(Thread {
            tid: u32::try_from(tid)
                .map_err(|_| Error::Malformed("a FreeBSD thread has a negative tid"))?,
            task: td,
            name: c_string::<COMM>(self.m, at(td, self.off.td_name)?)?,
            state: None,
            cpu,
            oncpu: cpu.is_some(),
            crashed,
            registers,
        })
    }

    /// Where a thread's registers were saved: the crashed thread's in
    /// `dumppcb`, a running thread's in its CPU's `stoppcbs` slot (the
    /// stop IPI saved them), any other's in its own `td_pcb` (saved at
    /// the last switch) — the order kgdb and LLDB use.
    fn pcb(&self, td: u64, crashed: bool, cpu: Option<u32>) -> Result<Option<u64>> {
        if crashed {
            return Ok(self.dumppcb);
        }
        if let (Some(cpu), Some(base), Some(size)) = (cpu, self.stoppcbs, self.off.pcb_size) {
            let slot = u64::from(cpu)
                .checked_mul(size)
                .ok_or(Error::Malformed("stoppcbs slot overflows"))?;
            return at(base, slot).map(Some);
        }
        match self.off.td_pcb {
            Some(o) => ptr(self.m, at(td, o)?).map(|p| (p != 0).then_some(p)),
            None => Ok(None),
        }
    }
}
