//! Processes and load: `kvm_getprocs`, `kvm_getargv`, `kvm_getenvv`,
//! `kvm_getloadavg`.

use super::layout::*;
use super::{with_handle, Handle, KinfoProc};
use crate::{ProcOp, Process, Thread};
use std::ffi::{c_char, c_double, c_int};

/// What `op` and `arg` ask for, as OpenBSD's sysctl answers them: every
/// op but `KERN_PROC_KTHREAD` leaves kernel threads out, and that one is
/// every process, kernel threads included.
struct Selection {
    op: ProcOp,
    kthreads: bool,
    threads: bool,
}

fn selection(op: c_int, arg: c_int) -> Result<Selection, String> {
    let base = op & !KERN_PROC_SHOW_THREADS;
    let arg_u = arg as u32;
    let sel = match base {
        KERN_PROC_ALL | KERN_PROC_KTHREAD => ProcOp::All,
        KERN_PROC_PID => ProcOp::Pid(arg_u),
        KERN_PROC_PGRP => ProcOp::Pgrp(arg_u),
        KERN_PROC_SESSION => ProcOp::Session(arg_u),
        // KI_NODEV: no controlling terminal (tty_nr 0).
        KERN_PROC_TTY => ProcOp::Tty(if arg_u == KI_NODEV { 0 } else { arg_u }),
        KERN_PROC_UID => ProcOp::Uid(arg_u),
        KERN_PROC_RUID => ProcOp::Ruid(arg_u),
        _ => return Err(format!("kvm_getprocs: invalid op {op:#x}")),
    };
    Ok(Selection {
        op: sel,
        kthreads: base == KERN_PROC_KTHREAD,
        threads: op & KERN_PROC_SHOW_THREADS != 0,
    })
}

/// OpenBSD's `p_stat` for a state letter.
fn stat_of(state: char, oncpu: bool) -> i8 {
    match state {
        'R' if oncpu => SONPROC,
        'R' => SRUN,
        'T' | 't' => SSTOP,
        'Z' => SZOMB,
        'X' => SDEAD,
        // S, D, I (idle), P (parked), and any other wait.
        _ => SSLEEP,
    }
}

/// `s` as a NUL-terminated `char` array, cut to fit.
fn comm(s: &str) -> [c_char; KI_MAXCOMLEN] {
    let mut out = [0 as c_char; KI_MAXCOMLEN];
    for (o, b) in out.iter_mut().zip(s.bytes().take(KI_MAXCOMLEN - 1)) {
        *o = b as c_char;
    }
    out
}

/// `v` as an `i32`, -1 (and its bit clear) when unknown.
fn known(v: Option<u32>, bit: u32, valid: &mut u32) -> i32 {
    match v {
        Some(x) => {
            *valid |= bit;
            x as i32
        }
        None => -1,
    }
}

/// The entry of process `p`.
fn entry(p: &Process) -> KinfoProc {
    let mut valid = 0;
    let leader = p.threads.first();
    let oncpu = leader.is_some_and(|t| t.oncpu);
    let (uid, ruid) = match (p.euid, p.uid) {
        (Some(e), Some(r)) => {
            valid |= KVM_KI_UID;
            (e, r)
        }
        _ => (u32::MAX, u32::MAX),
    };
    let (gid, rgid) = match (p.egid, p.gid) {
        (Some(e), Some(r)) => {
            valid |= KVM_KI_GID;
            (e, r)
        }
        _ => (u32::MAX, u32::MAX),
    };
    let p_tdev = match p.tty_nr {
        Some(t) => {
            valid |= KVM_KI_TDEV;
            if t == 0 {
                KI_NODEV
            } else {
                t
            }
        }
        None => KI_NODEV,
    };
    let (p_stat, p_kvm_state) = match p.state {
        Some(c) => {
            valid |= KVM_KI_STAT;
            (stat_of(c, oncpu), c as c_char)
        }
        None => (0, 0),
    };
    let (p_ustart_sec, p_ustart_usec) = match p.start_time_ns {
        Some(ns) => {
            valid |= KVM_KI_USTART;
            (ns / 1_000_000_000, (ns % 1_000_000_000 / 1000) as u32)
        }
        None => (0, 0),
    };
    let p_vm_rssize = match p.rss_pages {
        Some(r) => {
            valid |= KVM_KI_RSS;
            i32::try_from(r).unwrap_or(i32::MAX)
        }
        None => -1,
    };
    let p_flag = match p.kthread {
        Some(k) => {
            valid |= KVM_KI_FLAG;
            if k {
                P_SYSTEM | PS_SYSTEM
            } else {
                0
            }
        }
        None => 0,
    };
    let p_cpuid = match leader.and_then(|t| t.cpu) {
        Some(c) => {
            valid |= KVM_KI_CPUID;
            u64::from(c)
        }
        None => u64::MAX,
    };
    KinfoProc {
        p_paddr: p.task,
        p_cpuid,
        p_ustart_sec,
        p_ustart_usec,
        p_pid: p.pid as i32,
        p_ppid: known(p.ppid, KVM_KI_PPID, &mut valid),
        p_sid: known(p.session, KVM_KI_SID, &mut valid),
        p__pgid: known(p.pgrp, KVM_KI_PGID, &mut valid),
        p_tid: -1,
        p_uid: uid,
        p_ruid: ruid,
        p_gid: gid,
        p_rgid: rgid,
        p_tdev,
        p_vm_rssize,
        p_flag,
        p_kvm_valid: valid,
        p_kvm_nthreads: i32::try_from(p.threads.len()).unwrap_or(i32::MAX),
        p_stat,
        p_kvm_state,
        p_comm: comm(&p.comm),
        p_kvm_pad: [0; 10],
    }
}

/// The entry of thread `t` of the process whose entry is `pe`.
fn thread_entry(pe: &KinfoProc, t: &Thread) -> KinfoProc {
    let mut e = *pe;
    e.p_tid = t.tid as i32;
    e.p_comm = comm(&t.name);
    e.p_kvm_valid &= !(KVM_KI_STAT | KVM_KI_CPUID);
    (e.p_stat, e.p_kvm_state) = (0, 0);
    if let Some(c) = t.state {
        e.p_kvm_valid |= KVM_KI_STAT;
        (e.p_stat, e.p_kvm_state) = (stat_of(c, t.oncpu), c as c_char);
    }
    e.p_cpuid = u64::MAX;
    if let Some(c) = t.cpu {
        e.p_kvm_valid |= KVM_KI_CPUID;
        e.p_cpuid = u64::from(c);
    }
    e
}

/// `kvm_getprocs(3)`: the selected processes (and threads), owned by the
/// handle; NULL on error.
///
/// # Safety
/// `kd` is an open handle or NULL; `cnt` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn kvm_getprocs(
    kd: *mut Handle,
    op: c_int,
    arg: c_int,
    elemsize: usize,
    cnt: *mut c_int,
) -> *mut KinfoProc {
    with_handle(kd, "kvm_getprocs", std::ptr::null_mut(), |h| {
        let size = size_of::<KinfoProc>();
        if elemsize != size {
            h.fail(format_args!(
                "kvm_getprocs: elemsize {elemsize} is not sizeof(struct kinfo_proc) {size}: rebuild against this kvm.h"
            ));
            return std::ptr::null_mut();
        }
        let sel = match selection(op, arg) {
            Ok(s) => s,
            Err(msg) => {
                h.fail(msg);
                return std::ptr::null_mut();
            }
        };
        // Without kernel memory, the processes the OS lists (/proc).
        let listed = match h.kd.clone() {
            Some(kd) => kd.getprocs(sel.op).map_err(|e| e.to_string()),
            None => {
                super::procfs::processes(sel.op).map_err(|e| format!("kvm_getprocs: /proc: {e}"))
            }
        };
        let procs = match listed {
            Ok(mut p) => {
                if !sel.kthreads {
                    p.retain(|p| p.kthread != Some(true));
                }
                p
            }
            Err(e) => {
                h.fail(e);
                return std::ptr::null_mut();
            }
        };
        // A process the dump lost cannot fill a kinfo_proc: it is left
        // out, and kvm_geterr says so (the others are returned).
        let lost: Vec<String> = procs
            .iter()
            .filter_map(|p| Some(format!("pid {}: {}", p.pid, p.unavailable.as_ref()?)))
            .collect();
        if !lost.is_empty() {
            h.fail(format!(
                "kvm_getprocs: {} processes could not be read and are left out ({})",
                lost.len(),
                lost.join("; ")
            ));
        }
        let mut out = Vec::with_capacity(procs.len());
        for p in procs.iter().filter(|p| p.unavailable.is_none()) {
            let e = entry(p);
            out.push(e);
            if sel.threads {
                out.extend(p.threads.iter().map(|t| thread_entry(&e, t)));
            }
        }
        let Ok(n) = c_int::try_from(out.len()) else {
            h.fail("kvm_getprocs: too many processes");
            return std::ptr::null_mut();
        };
        if !cnt.is_null() {
            // SAFETY: the caller's out pointer.
            unsafe { *cnt = n };
        }
        h.procs = out;
        h.sources = procs;
        h.procs.as_mut_ptr()
    })
}

/// Which strings `kvm_getargv` / `kvm_getenvv` read.
#[derive(Clone, Copy)]
enum Which {
    Argv,
    Envv,
}

impl Which {
    /// `v` into the handle's array for these strings (cut to `nchr`).
    fn put(self, h: &mut Handle, v: Vec<Vec<u8>>, nchr: usize) -> *mut *mut c_char {
        match self {
            Which::Argv => h.argv.set(v, nchr),
            Which::Envv => h.envv.set(v, nchr),
        }
    }
}

/// The argv or env of the process of `kp`, into the handle's array.
///
/// # Safety
/// `kp` is NULL or points to a `struct kinfo_proc`.
unsafe fn strings(
    h: &mut Handle,
    kp: *const KinfoProc,
    nchr: c_int,
    which: Which,
) -> *mut *mut c_char {
    let call = match which {
        Which::Argv => "kvm_getargv",
        Which::Envv => "kvm_getenvv",
    };
    // SAFETY: the caller's contract.
    let Some(kp) = (unsafe { kp.as_ref() }) else {
        h.fail(format_args!("{call}: NULL kinfo_proc"));
        return std::ptr::null_mut();
    };
    let Ok(nchr) = usize::try_from(nchr) else {
        h.fail(format_args!("{call}: negative nchr {nchr}"));
        return std::ptr::null_mut();
    };
    // The process of the last kvm_getprocs with this address, else the
    // kernel's process of this pid now.
    let known = h
        .sources
        .iter()
        .find(|p| p.task == kp.p_paddr && p.pid as i32 == kp.p_pid)
        .cloned();
    if h.kd.is_none() {
        // Without kernel memory: the process's own /proc files.
        let got = match known {
            Some(p) if p.kthread == Some(true) => None,
            _ => Some(super::procfs::strings(
                kp.p_pid as u32,
                matches!(which, Which::Envv),
            )),
        };
        return match got {
            Some(Ok(v)) => which.put(h, v, nchr),
            Some(Err(e)) => {
                h.fail(format_args!("{call}: /proc/{}: {e}", kp.p_pid));
                std::ptr::null_mut()
            }
            None => {
                h.fail(format_args!(
                    "{call}: pid {} is a kernel thread: no arguments or environment",
                    kp.p_pid
                ));
                std::ptr::null_mut()
            }
        };
    }
    let Some(kd) = h.kvm() else {
        return std::ptr::null_mut();
    };
    let p = match known {
        Some(p) => Ok(Some(p)),
        None => kd
            .getprocs(ProcOp::Pid(kp.p_pid as u32))
            .map(|v| v.into_iter().next()),
    };
    let got = match p {
        // BSD gives kernel threads no argument vector: NULL.
        Ok(Some(p)) if p.kthread == Some(true) => {
            h.fail(format_args!(
                "{call}: pid {} is a kernel thread: no arguments or environment",
                p.pid
            ));
            return std::ptr::null_mut();
        }
        // The bytes the process holds, not necessarily UTF-8.
        Ok(Some(p)) => match which {
            Which::Argv => kd.getargv_bytes(&p),
            Which::Envv => kd.getenvv_bytes(&p),
        },
        Ok(None) => {
            h.fail(format_args!("{call}: no process {}", kp.p_pid));
            return std::ptr::null_mut();
        }
        Err(e) => Err(e),
    };
    match got {
        Ok(v) => which.put(h, v, nchr),
        Err(e) => {
            h.fail(e);
            std::ptr::null_mut()
        }
    }
}

/// `kvm_getargv(3)`.
///
/// # Safety
/// `kd` is an open handle or NULL; `kp` is NULL or a `struct kinfo_proc`.
#[no_mangle]
pub unsafe extern "C" fn kvm_getargv(
    kd: *mut Handle,
    kp: *const KinfoProc,
    nchr: c_int,
) -> *mut *mut c_char {
    with_handle(kd, "kvm_getargv", std::ptr::null_mut(), |h| {
        // SAFETY: the caller's contract.
        unsafe { strings(h, kp, nchr, Which::Argv) }
    })
}

/// `kvm_getenvv(3)`.
///
/// # Safety
/// As [`kvm_getargv`].
#[no_mangle]
pub unsafe extern "C" fn kvm_getenvv(
    kd: *mut Handle,
    kp: *const KinfoProc,
    nchr: c_int,
) -> *mut *mut c_char {
    with_handle(kd, "kvm_getenvv", std::ptr::null_mut(), |h| {
        // SAFETY: the caller's contract.
        unsafe { strings(h, kp, nchr, Which::Envv) }
    })
}

/// `kvm_getloadavg(3)`: up to `nelem` (at most 3) samples; -1 on error.
///
/// # Safety
/// `kd` is an open handle or NULL; `loadavg` is valid for `nelem` writes.
#[no_mangle]
pub unsafe extern "C" fn kvm_getloadavg(
    kd: *mut Handle,
    loadavg: *mut c_double,
    nelem: c_int,
) -> c_int {
    with_handle(kd, "kvm_getloadavg", -1, |h| {
        let n = nelem.clamp(0, 3);
        if n > 0 && loadavg.is_null() {
            h.fail("kvm_getloadavg: NULL array");
            return -1;
        }
        let Some(kd) = h.kvm() else { return -1 };
        match kd.getloadavg() {
            Ok(l) => {
                for (i, v) in l.iter().take(n as usize).enumerate() {
                    // SAFETY: i < n <= nelem, the caller's array size.
                    unsafe { *loadavg.add(i) = *v };
                }
                n
            }
            Err(e) => {
                h.fail(e);
                -1
            }
        }
    })
}
