//! The C interface (`capi` feature): the kvm(3) calls of `include/kvm.h`
//! over [`Kvm`], for libkvm.so and libkvm.a.
//!
//! Every entry point is a thin shell: it checks its pointers, runs the
//! facade's call inside `guard` (a panic becomes the call's error, never
//! an unwind into C), and turns the answer into BSD's conventions. The
//! memory it hands out (process arrays, argv/env arrays, the error string)
//! is owned by the [`Handle`] and replaced by the next call of the same
//! kind, as BSD's libkvm does.
//!
//! Safety: the callers' contract is C's — pointers are valid for the sizes
//! passed, strings are NUL-terminated, a handle is used by one thread at a
//! time and not after `kvm_close`. Within that contract nothing here reads
//! or writes outside a caller's buffer: each copy is bounded by the length
//! the caller gave.
#![allow(unsafe_code)]

mod dump;
mod files;
mod layout;
mod memory;
mod nlist;
mod open;
mod procfs;
mod procs;

pub use layout::*;

use crate::Kvm;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// `_POSIX2_LINE_MAX`: the size of the caller's `errbuf`.
pub const ERRBUF_LEN: usize = 2048;

/// FreeBSD's symbol resolver of `kvm_open2`.
pub type Resolver = unsafe extern "C" fn(*const c_char, *mut u64) -> c_int;

/// An open kernel as C sees it (`kvm_t`).
pub struct Handle {
    /// The kernel; `None` when opened without memory access
    /// (`KVM_NO_FILES`, or `/dev/null` as the core file). Shared, so that
    /// a call that runs the caller's code (a `kvm_walk_pages` callback, a
    /// `kvm_open2` resolver) holds no borrow of the handle meanwhile: the
    /// caller's code may call the library on the same handle.
    kd: Option<Arc<Kvm>>,
    /// `kvm_open2`'s resolver, asked for names the kernel lacks.
    resolver: Option<Resolver>,
    /// The last error (`kvm_geterr`), sticky: one fixed buffer, as BSD's
    /// `errbuf`, so that a pointer to it stays valid until `kvm_close`.
    error: Box<[c_char; ERRBUF_LEN]>,
    /// The last `kvm_getprocs` answer, and the processes it came from.
    procs: Vec<KinfoProc>,
    sources: Vec<crate::Process>,
    /// The last `kvm_getargv` and `kvm_getenvv` answers.
    argv: CStrings,
    envv: CStrings,
    /// The last `kvm_getfiles` answer.
    files: Vec<KinfoFile>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("kd", &self.kd)
            .finish_non_exhaustive()
    }
}

impl Handle {
    fn new(kd: Option<Kvm>, resolver: Option<Resolver>) -> Self {
        Handle {
            kd: kd.map(Arc::new),
            resolver,
            error: Box::new([0; ERRBUF_LEN]),
            procs: Vec::new(),
            sources: Vec::new(),
            argv: CStrings::default(),
            envv: CStrings::default(),
            files: Vec::new(),
        }
    }

    /// Records `msg` as the last error, in place (never panics: it runs
    /// in `guard`'s fallback too).
    fn fail(&mut self, msg: impl std::fmt::Display) {
        to_errbuf(self.error.as_mut_ptr(), &msg.to_string());
    }

    /// The kernel, or the error of a handle without memory access.
    fn kvm(&mut self) -> Option<Arc<Kvm>> {
        if self.kd.is_none() {
            self.fail("no kernel memory: opened with KVM_NO_FILES or /dev/null");
        }
        self.kd.clone()
    }
}

/// Strings handed to C as a NULL-terminated `char **`.
#[derive(Default)]
struct CStrings {
    strings: Vec<CString>,
    ptrs: Vec<*mut c_char>,
}

impl CStrings {
    /// Replaces the strings with `v`, cut to `nchr` bytes in all (NULs
    /// included) when `nchr` is not 0; returns the array.
    fn set(&mut self, v: Vec<Vec<u8>>, nchr: usize) -> *mut *mut c_char {
        let mut left = if nchr == 0 { usize::MAX } else { nchr };
        self.strings.clear();
        for s in v {
            if left == 0 {
                break;
            }
            let mut b = s;
            if b.len() >= left {
                // The string that crosses the bound is cut, with its NUL
                // inside the bound.
                b.truncate(left - 1);
            }
            left -= b.len() + 1;
            self.strings.push(c_string(b));
        }
        self.ptrs = self
            .strings
            .iter()
            .map(|s| s.as_ptr().cast_mut())
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect();
        self.ptrs.as_mut_ptr()
    }
}

/// A C string of `s`, cut at its first NUL.
fn c_string(s: impl Into<Vec<u8>>) -> CString {
    let mut b = s.into();
    if let Some(i) = b.iter().position(|&c| c == 0) {
        b.truncate(i);
    }
    CString::new(b).unwrap_or_default()
}

/// Runs `f`, turning a panic into `fallback` (and a message on the handle
/// when there is one).
fn guard<T>(kd: *mut Handle, name: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            // SAFETY: a handle pointer is kvm_open's answer or NULL (the
            // caller's contract); the panicked call no longer uses it.
            if let Some(h) = unsafe { kd.as_mut() } {
                h.fail(format_args!(
                    "{name}: internal error (a panic in kvm; please report it)"
                ));
            }
            fallback
        }
    }
}

/// Copies `msg` into an `errbuf` of [`ERRBUF_LEN`] bytes, cut at a
/// character boundary and NUL-terminated; nothing when `errbuf` is NULL.
fn to_errbuf(errbuf: *mut c_char, msg: &str) {
    if errbuf.is_null() {
        return;
    }
    let mut n = msg.len().min(ERRBUF_LEN - 1);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: the caller's errbuf holds ERRBUF_LEN bytes (kvm(3)); n + 1
    // <= ERRBUF_LEN bytes are written.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr().cast::<c_char>(), errbuf, n);
        *errbuf.add(n) = 0;
    }
}

/// Sets the C `errno`.
fn set_errno(e: c_int) {
    // SAFETY: errno is thread-local; its location is valid for this
    // thread.
    unsafe { *libc::__errno_location() = e };
}

/// The handle behind `kd`, or `None` (with `errno` EINVAL) for NULL.
///
/// # Safety
/// `kd` is NULL or an open handle (the caller's contract), and no other
/// reference to it is live: calls that run the caller's code take the
/// handle again afterwards rather than holding it across.
unsafe fn handle<'a>(kd: *mut Handle) -> Option<&'a mut Handle> {
    // SAFETY: as the function's contract says.
    let h = unsafe { kd.as_mut() };
    if h.is_none() {
        set_errno(libc::EINVAL);
    }
    h
}

/// Runs `f` on the handle behind `kd` inside [`guard`]; `fallback` (the
/// call's error value) for a NULL handle, with `errno` EINVAL.
fn with_handle<T: Copy>(
    kd: *mut Handle,
    name: &str,
    fallback: T,
    f: impl FnOnce(&mut Handle) -> T,
) -> T {
    guard(kd, name, fallback, || {
        // SAFETY: a handle pointer is an open call's answer or NULL, used
        // by one thread at a time (the caller's contract); `f` runs no
        // code of the caller's.
        match unsafe { handle(kd) } {
            Some(h) => f(h),
            None => fallback,
        }
    })
}
