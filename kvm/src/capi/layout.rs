//! The C structures of `include/kvm.h` and `include/nlist.h`, field for
//! field (a test compiles the header and checks every size and offset
//! against these). The fields are documented in the header.
#![allow(missing_docs)]

use std::ffi::{c_char, c_int, c_uint};

/// `struct nlist` (`nlist.h`).
#[repr(C)]
#[derive(Debug)]
pub struct Nlist {
    pub n_name: *mut c_char,
    pub n_type: u8,
    pub n_other: c_char,
    pub n_desc: i16,
    pub n_value: std::ffi::c_ulong,
}

/// `struct kvm_nlist` (FreeBSD's).
#[repr(C)]
#[derive(Debug)]
pub struct KvmNlist {
    pub n_name: *const c_char,
    pub n_type: u8,
    pub n_value: u64,
}

/// The header's constants, by their C names.
/// The `KERN_PROC_*` ops.
pub const KERN_PROC_ALL: c_int = 0;
pub const KERN_PROC_PID: c_int = 1;
pub const KERN_PROC_PGRP: c_int = 2;
pub const KERN_PROC_SESSION: c_int = 3;
pub const KERN_PROC_TTY: c_int = 4;
pub const KERN_PROC_UID: c_int = 5;
pub const KERN_PROC_RUID: c_int = 6;
pub const KERN_PROC_KTHREAD: c_int = 7;
pub const KERN_PROC_SHOW_THREADS: c_int = 0x4000_0000;

/// OpenBSD's `p_stat` values.
pub const SRUN: i8 = 2;
pub const SSLEEP: i8 = 3;
pub const SSTOP: i8 = 4;
pub const SZOMB: i8 = 5;
pub const SDEAD: i8 = 6;
pub const SONPROC: i8 = 7;

/// `p_flag` bits of a kernel thread (OpenBSD's).
pub const P_SYSTEM: i32 = 0x0000_0200;
pub const PS_SYSTEM: i32 = 0x0001_0000;

/// `KI_NODEV`.
pub const KI_NODEV: u32 = u32::MAX;

/// The `p_kvm_valid` bits (`KVM_KI_*`).
pub const KVM_KI_PPID: u32 = 0x0001;
pub const KVM_KI_PGID: u32 = 0x0002;
pub const KVM_KI_SID: u32 = 0x0004;
pub const KVM_KI_UID: u32 = 0x0008;
pub const KVM_KI_GID: u32 = 0x0010;
pub const KVM_KI_STAT: u32 = 0x0020;
pub const KVM_KI_TDEV: u32 = 0x0040;
pub const KVM_KI_USTART: u32 = 0x0080;
pub const KVM_KI_RSS: u32 = 0x0100;
pub const KVM_KI_FLAG: u32 = 0x0200;
pub const KVM_KI_CPUID: u32 = 0x0400;

/// a.out's `n_type` values (`nlist.h`).
pub const N_EXT: u8 = 0x01;
pub const N_ABS: u8 = 0x02;
pub const N_TEXT: u8 = 0x04;
pub const N_DATA: u8 = 0x06;
pub const N_BSS: u8 = 0x08;

/// `KVM_NO_FILES`.
pub const KVM_NO_FILES: c_int = 0x8000_0000_u32 as c_int;

/// `LIBKVM_WALK_PAGES_VERSION`.
pub const LIBKVM_WALK_PAGES_VERSION: c_uint = 2;

/// `KI_MAXCOMLEN`.
pub const KI_MAXCOMLEN: usize = 24;

/// `struct kinfo_proc`: OpenBSD's field names, this library's layout.
#[repr(C)]
#[allow(non_snake_case)] // `p__pgid` is OpenBSD's name
#[derive(Clone, Copy, Debug)]
pub struct KinfoProc {
    pub p_paddr: u64,
    pub p_cpuid: u64,
    pub p_ustart_sec: u64,
    pub p_ustart_usec: u32,
    pub p_pid: i32,
    pub p_ppid: i32,
    pub p_sid: i32,
    pub p__pgid: i32,
    pub p_tid: i32,
    pub p_uid: u32,
    pub p_ruid: u32,
    pub p_gid: u32,
    pub p_rgid: u32,
    pub p_tdev: u32,
    pub p_vm_rssize: i32,
    pub p_flag: i32,
    pub p_kvm_valid: u32,
    pub p_kvm_nthreads: i32,
    pub p_stat: i8,
    pub p_kvm_state: c_char,
    pub p_comm: [c_char; KI_MAXCOMLEN],
    pub p_kvm_pad: [c_char; 10],
}

/// The `KERN_FILE_*` ops of `kvm_getfiles`.
pub const KERN_FILE_BYFILE: c_int = 1;
pub const KERN_FILE_BYPID: c_int = 2;
pub const KERN_FILE_BYUID: c_int = 3;

/// OpenBSD's `f_type` values (`DTYPE_*`).
pub const DTYPE_VNODE: u32 = 1;
pub const DTYPE_SOCKET: u32 = 2;
pub const DTYPE_PIPE: u32 = 3;

/// `fd_ofileflags`: close on exec (OpenBSD's `UF_EXCLOSE`).
pub const UF_EXCLOSE: u32 = 0x01;

/// `KVM_KF_PATHLEN`: `f_kvm_path`'s size.
pub const KVM_KF_PATHLEN: usize = 1024;

/// `struct kinfo_file`: OpenBSD's field names, this library's layout.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KinfoFile {
    pub f_fileaddr: u64,
    pub f_offset: u64,
    pub va_fileid: u64,
    pub f_flag: u32,
    pub f_type: u32,
    pub va_mode: u32,
    pub p_pid: i32,
    pub fd_fd: i32,
    pub fd_ofileflags: u32,
    pub p_uid: u32,
    pub p_gid: u32,
    pub f_kvm_pathlen: u32,
    pub p_comm: [c_char; KI_MAXCOMLEN],
    pub f_kvm_pad: [c_char; 4],
    pub f_kvm_path: [c_char; KVM_KF_PATHLEN],
}

/// `struct kvm_page` (FreeBSD's, version 2).
#[repr(C)]
#[derive(Debug)]
pub struct KvmPage {
    pub kp_version: c_uint,
    pub kp_paddr: u64,
    pub kp_kmap_vaddr: u64,
    pub kp_dmap_vaddr: u64,
    pub kp_prot: u8,
    pub kp_offset: libc::off_t,
    pub kp_len: usize,
}
