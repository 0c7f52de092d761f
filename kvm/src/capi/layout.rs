//! The C structures of `include/kvm.h` and `include/nlist.h`, field for
//! field (a test compiles the header and checks every size and offset
//! against these). The fields are documented in the header.
#![allow(missing_docs)]

use std::ffi::c_char;

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

/// `struct kvm_page` (FreeBSD's, version 2).
#[repr(C)]
#[derive(Debug)]
pub struct KvmPage {
    pub kp_version: std::ffi::c_uint,
    pub kp_paddr: u64,
    pub kp_kmap_vaddr: u64,
    pub kp_dmap_vaddr: u64,
    pub kp_prot: u8,
    pub kp_offset: libc::off_t,
    pub kp_len: usize,
}
