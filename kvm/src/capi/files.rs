//! `kvm_getfiles(3)`: the open files of the processes an op selects, as
//! OpenBSD's libkvm lists them (`struct kinfo_file`), with the path each
//! descriptor names.

use super::layout::*;
use super::{with_handle, Handle};
use crate::{OpenFile, ProcOp, Process};
use std::ffi::{c_char, c_int};

/// Linux's `O_CLOEXEC` (which fdinfo shows among the flags).
const O_CLOEXEC: u32 = 0o2000000;

/// The entry of descriptor `f` of process `p`.
fn entry(p: &Process, f: &OpenFile) -> KinfoFile {
    let f_type = match f.kind {
        "socket" => DTYPE_SOCKET,
        "fifo" if f.path.starts_with(b"pipe:[") => DTYPE_PIPE,
        _ => DTYPE_VNODE,
    };
    let mut path = [0 as c_char; KVM_KF_PATHLEN];
    for (o, &b) in path.iter_mut().zip(f.path.iter().take(KVM_KF_PATHLEN - 1)) {
        *o = b as c_char;
    }
    let mut comm = [0 as c_char; KI_MAXCOMLEN];
    for (o, b) in comm.iter_mut().zip(p.comm.bytes().take(KI_MAXCOMLEN - 1)) {
        *o = b as c_char;
    }
    KinfoFile {
        f_fileaddr: f.file,
        f_offset: f.pos as u64,
        va_fileid: f.inode,
        f_flag: f.flags & !O_CLOEXEC,
        f_type,
        va_mode: u32::from(f.mode),
        p_pid: p.pid as i32,
        fd_fd: f.fd as i32,
        fd_ofileflags: if f.flags & O_CLOEXEC != 0 {
            UF_EXCLOSE
        } else {
            0
        },
        p_uid: p.euid.unwrap_or(u32::MAX),
        p_gid: p.egid.unwrap_or(u32::MAX),
        f_kvm_pathlen: u32::try_from(f.path.len()).unwrap_or(u32::MAX),
        p_comm: comm,
        f_kvm_pad: [0; 4],
        f_kvm_path: path,
    }
}

/// `kvm_getfiles(3)`: the open descriptors of the processes `op`
/// selects, owned by the handle; NULL on error.
///
/// # Safety
/// `kd` is an open handle or NULL; `cnt` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn kvm_getfiles(
    kd: *mut Handle,
    op: c_int,
    arg: c_int,
    elemsize: usize,
    cnt: *mut c_int,
) -> *mut KinfoFile {
    with_handle(kd, "kvm_getfiles", std::ptr::null_mut(), |h| {
        let size = size_of::<KinfoFile>();
        if elemsize != size {
            h.fail(format_args!(
                "kvm_getfiles: elemsize {elemsize} is not sizeof(struct kinfo_file) {size}: rebuild against this kvm.h"
            ));
            return std::ptr::null_mut();
        }
        let sel = match op {
            KERN_FILE_BYPID if arg == -1 => ProcOp::All,
            KERN_FILE_BYPID => ProcOp::Pid(arg as u32),
            KERN_FILE_BYUID => ProcOp::Uid(arg as u32),
            KERN_FILE_BYFILE => ProcOp::All,
            _ => {
                h.fail(format_args!("kvm_getfiles: invalid op {op}"));
                return std::ptr::null_mut();
            }
        };
        let Some(kd) = h.kvm() else {
            return std::ptr::null_mut();
        };
        let procs = match kd.getprocs(sel) {
            Ok(p) => p,
            Err(e) => {
                h.fail(e);
                return std::ptr::null_mut();
            }
        };
        let mut out = Vec::new();
        for p in &procs {
            match kd.getfiles(p) {
                Ok(files) => out.extend(files.iter().map(|f| entry(p, f))),
                Err(e) => {
                    h.fail(format_args!("kvm_getfiles: pid {}: {e}", p.pid));
                    return std::ptr::null_mut();
                }
            }
        }
        let Ok(n) = c_int::try_from(out.len()) else {
            h.fail("kvm_getfiles: too many files");
            return std::ptr::null_mut();
        };
        if !cnt.is_null() {
            // SAFETY: the caller's out pointer.
            unsafe { *cnt = n };
        }
        h.files = out;
        h.files.as_mut_ptr()
    })
}
