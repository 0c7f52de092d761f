//! Kernel memory: `kvm_read`, `kvm_read2`, `kvm_write`, `kvm_walk_pages`.

use super::layout::LIBKVM_WALK_PAGES_VERSION;
use super::{guard, handle, with_handle, Handle, KvmPage};
use crate::Kvm;
use std::ffi::{c_int, c_ulong, c_void};
use std::ops::ControlFlow;

/// Bytes read per step into the bounce buffer (the caller's buffer may be
/// uninitialised memory, which Rust must not view as `&mut [u8]`).
const STEP: usize = 64 << 10;

/// An `unsigned long` address as 64 bits (it is 32 on 32-bit targets).
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn wide(addr: c_ulong) -> u64 {
    addr as u64
}

/// Reads `nbytes` at `addr` into `buf`: the bytes read, -1 before any.
///
/// # Safety
/// `buf` is valid for `nbytes` bytes of writes.
unsafe fn read(h: &mut Handle, addr: u64, buf: *mut c_void, nbytes: usize) -> isize {
    if nbytes == 0 {
        return if h.kvm().is_some() { 0 } else { -1 };
    }
    if buf.is_null() || isize::try_from(nbytes).is_err() {
        h.fail(format_args!(
            "kvm_read: bad buffer ({nbytes} bytes at {buf:p})"
        ));
        return -1;
    }
    let Some(kd) = h.kvm() else { return -1 };
    let mut bounce = vec![0u8; nbytes.min(STEP)];
    let mut done = 0usize;
    let mut error = None;
    while done < nbytes {
        let n = (nbytes - done).min(STEP);
        match kd.read(addr.wrapping_add(done as u64), &mut bounce[..n]) {
            Ok(got) => {
                // Never more than asked, whatever the source says.
                let got = got.min(n);
                // SAFETY: done + got <= nbytes, the caller's buffer size.
                unsafe {
                    std::ptr::copy_nonoverlapping(bounce.as_ptr(), buf.cast::<u8>().add(done), got)
                };
                done += got;
                if got < n {
                    break;
                }
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    match error {
        Some(e) if done == 0 => {
            h.fail(e);
            -1
        }
        // A short read: the count, and kvm_geterr says where it stopped.
        Some(e) => {
            h.fail(format_args!("kvm_read: {done} of {nbytes} bytes read: {e}"));
            done as isize
        }
        None if done < nbytes => {
            h.fail(format_args!(
                "kvm_read: {done} of {nbytes} bytes read: {:#x} is not mapped or not in the dump",
                addr.wrapping_add(done as u64)
            ));
            done as isize
        }
        None => done as isize,
    }
}

/// `kvm_read(3)`.
///
/// # Safety
/// `kd` is an open handle or NULL; `buf` is valid for `nbytes` bytes.
#[no_mangle]
pub unsafe extern "C" fn kvm_read(
    kd: *mut Handle,
    addr: c_ulong,
    buf: *mut c_void,
    nbytes: usize,
) -> isize {
    // SAFETY: the caller's contract.
    with_handle(kd, "kvm_read", -1, |h| unsafe {
        read(h, wide(addr), buf, nbytes)
    })
}

/// FreeBSD's `kvm_read2(3)`: `kvm_read` with a 64-bit address.
///
/// # Safety
/// As [`kvm_read`].
#[no_mangle]
pub unsafe extern "C" fn kvm_read2(
    kd: *mut Handle,
    addr: u64,
    buf: *mut c_void,
    nbytes: usize,
) -> isize {
    // SAFETY: the caller's contract.
    with_handle(kd, "kvm_read2", -1, |h| unsafe {
        read(h, addr, buf, nbytes)
    })
}

/// `kvm_write(3)`: the bytes written, -1 before any (a read-only handle
/// refuses even 0 bytes).
///
/// # Safety
/// `kd` is an open handle or NULL; `buf` is valid for `nbytes` bytes.
#[no_mangle]
pub unsafe extern "C" fn kvm_write(
    kd: *mut Handle,
    addr: c_ulong,
    buf: *const c_void,
    nbytes: usize,
) -> isize {
    with_handle(kd, "kvm_write", -1, |h| {
        if nbytes != 0 && (buf.is_null() || isize::try_from(nbytes).is_err()) {
            h.fail(format_args!(
                "kvm_write: bad buffer ({nbytes} bytes at {buf:p})"
            ));
            return -1;
        }
        let Some(kd) = h.kvm() else { return -1 };
        let data: &[u8] = if nbytes == 0 {
            &[]
        } else {
            // SAFETY: the caller's buffer holds nbytes initialised bytes.
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), nbytes) }
        };
        match kd.write(wide(addr), data) {
            Ok(n) => n as isize,
            Err(e) => {
                h.fail(e);
                -1
            }
        }
    })
}

/// FreeBSD's `kvm_walk_pages(3)`: 1 when every page was visited, 0 when
/// the callback stopped the walk or it failed.
///
/// # Safety
/// `kd` is an open handle or NULL; `cb` is a function of that type, called
/// with `closure`.
#[no_mangle]
pub unsafe extern "C" fn kvm_walk_pages(
    kd: *mut Handle,
    cb: Option<unsafe extern "C" fn(*mut KvmPage, *mut c_void) -> c_int>,
    closure: *mut c_void,
) -> c_int {
    guard(kd, "kvm_walk_pages", 0, || {
        // The handle is taken for the set-up, let go while the callback
        // runs (it may call the library on this handle), taken again to
        // record an error.
        let kvm = {
            // SAFETY: the caller's contract; no other reference is live.
            let Some(h) = (unsafe { handle(kd) }) else {
                return 0;
            };
            if cb.is_none() {
                h.fail("kvm_walk_pages: no callback");
                return 0;
            }
            match h.kvm() {
                Some(k) => k,
                None => return 0,
            }
        };
        let Some(cb) = cb else { return 0 };
        match walk(&kvm, cb, closure) {
            Ok(true) => 1,
            Ok(false) => 0,
            Err(e) => {
                // SAFETY: as above; the walk is over.
                if let Some(h) = unsafe { handle(kd) } {
                    h.fail(e);
                }
                0
            }
        }
    })
}

/// Walks `kd`'s pages into `cb`; `Ok(false)` when `cb` stopped it.
fn walk(
    kd: &Kvm,
    cb: unsafe extern "C" fn(*mut KvmPage, *mut c_void) -> c_int,
    closure: *mut c_void,
) -> Result<bool, crate::Error> {
    let mut stopped = false;
    kd.walk_pages(&mut |run| {
        let mut page = KvmPage {
            kp_version: LIBKVM_WALK_PAGES_VERSION,
            kp_paddr: run.pa.0,
            kp_kmap_vaddr: run.va.0,
            kp_dmap_vaddr: 0,
            // VM_PROT_READ/WRITE/EXECUTE are kvm-core's READ/WRITE/EXEC.
            kp_prot: run.prot.bits() & 7,
            kp_offset: -1,
            kp_len: usize::try_from(run.len).unwrap_or(usize::MAX),
        };
        // SAFETY: cb is the caller's callback; page lives across the call.
        if unsafe { cb(&mut page, closure) } == 0 {
            stopped = true;
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(!stopped)
}
