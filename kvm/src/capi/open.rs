//! Opening and closing: `kvm_open`, `kvm_openfiles`, `kvm_open2`,
//! `kvm_close`, `kvm_geterr`.

use super::layout::KVM_NO_FILES;
use super::{guard, set_errno, to_errbuf, Handle, Resolver};
use crate::{Kvm, OpenFlags};
use std::ffi::{c_char, c_int, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The core file that means "live, no memory access".
const DEV_NULL: &str = "/dev/null";

/// A path argument: `None` for NULL.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn path(p: *const c_char) -> Option<PathBuf> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    Some(PathBuf::from(OsStr::from_bytes(s.to_bytes())))
}

/// Opens as all three calls do: `Err` is the message for the caller.
fn open(
    exec: Option<PathBuf>,
    core: Option<PathBuf>,
    flags: c_int,
    resolver: Option<Resolver>,
) -> Result<Box<Handle>, String> {
    // O_RDONLY or O_RDWR (not O_WRONLY: kvm reads to write), as FreeBSD.
    if flags & !(libc::O_RDWR | KVM_NO_FILES) != 0 {
        return Err(format!("bad flags arg: {flags:#x}"));
    }
    let mode = if flags & libc::O_RDWR != 0 {
        OpenFlags::ReadWrite
    } else {
        OpenFlags::ReadOnly
    };
    let no_files = flags & KVM_NO_FILES != 0 || core.as_deref() == Some(Path::new(DEV_NULL));
    let kd = if no_files {
        None
    } else {
        let kd =
            Kvm::openfiles(exec.as_deref(), core.as_deref(), mode).map_err(|e| e.to_string())?;
        Some(kd)
    };
    Ok(Box::new(Handle::new(kd, resolver)))
}

/// Opens as `kvm_openfiles` and `kvm_open2` do: the handle, or NULL
/// with the message in `errbuf`.
///
/// # Safety
/// As [`kvm_openfiles`].
unsafe fn open_or_errbuf(
    name: &str,
    execfile: *const c_char,
    corefile: *const c_char,
    flags: c_int,
    errbuf: *mut c_char,
    resolver: Option<Resolver>,
) -> *mut Handle {
    guard(std::ptr::null_mut(), name, std::ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        let (exec, core) = unsafe { (path(execfile), path(corefile)) };
        match open(exec, core, flags, resolver) {
            Ok(h) => Box::into_raw(h),
            Err(msg) => {
                to_errbuf(errbuf, &msg);
                std::ptr::null_mut()
            }
        }
    })
}

/// `kvm_openfiles(3)`.
///
/// # Safety
/// The string arguments are NULL or NUL-terminated; `errbuf` is NULL or
/// holds `_POSIX2_LINE_MAX` bytes.
#[no_mangle]
pub unsafe extern "C" fn kvm_openfiles(
    execfile: *const c_char,
    corefile: *const c_char,
    _swapfile: *const c_char,
    flags: c_int,
    errbuf: *mut c_char,
) -> *mut Handle {
    // SAFETY: the caller's contract.
    unsafe { open_or_errbuf("kvm_openfiles", execfile, corefile, flags, errbuf, None) }
}

/// `kvm_open(3)`, Sun's form: a failure to open is printed on stderr
/// after `errstr`; later errors only reach `kvm_geterr`, as BSD's soft
/// errors do.
///
/// # Safety
/// The string arguments are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn kvm_open(
    execfile: *const c_char,
    corefile: *const c_char,
    _swapfile: *const c_char,
    flags: c_int,
    errstr: *const c_char,
) -> *mut Handle {
    guard(
        std::ptr::null_mut(),
        "kvm_open",
        std::ptr::null_mut(),
        || {
            // SAFETY: the caller's contract.
            let (exec, core) = unsafe { (path(execfile), path(corefile)) };
            let program = (!errstr.is_null()).then(|| {
                // SAFETY: the caller's contract.
                unsafe { CStr::from_ptr(errstr) }
                    .to_string_lossy()
                    .into_owned()
            });
            match open(exec, core, flags, None) {
                Ok(h) => Box::into_raw(h),
                Err(msg) => {
                    if let Some(p) = program {
                        // A stderr that cannot be written is no reason to
                        // panic.
                        use std::io::Write;
                        let _ = writeln!(std::io::stderr(), "{p}: {msg}");
                    }
                    std::ptr::null_mut()
                }
            }
        },
    )
}

/// FreeBSD's `kvm_open2(3)`.
///
/// # Safety
/// As [`kvm_openfiles`]; `resolver` is NULL or a function of that type.
#[no_mangle]
pub unsafe extern "C" fn kvm_open2(
    execfile: *const c_char,
    corefile: *const c_char,
    flags: c_int,
    errbuf: *mut c_char,
    resolver: Option<Resolver>,
) -> *mut Handle {
    // SAFETY: the caller's contract.
    unsafe { open_or_errbuf("kvm_open2", execfile, corefile, flags, errbuf, resolver) }
}

/// `kvm_close(3)`: 0; -1 with `errno` EINVAL for NULL.
///
/// # Safety
/// `kd` is NULL or an open handle, not used again.
#[no_mangle]
pub unsafe extern "C" fn kvm_close(kd: *mut Handle) -> c_int {
    if kd.is_null() {
        set_errno(libc::EINVAL);
        return -1;
    }
    guard(std::ptr::null_mut(), "kvm_close", -1, || {
        // SAFETY: kd came from Box::into_raw in an open call.
        drop(unsafe { Box::from_raw(kd) });
        0
    })
}

/// `kvm_geterr(3)`: the last error, `""` if none or for NULL.
///
/// # Safety
/// `kd` is NULL or an open handle.
#[no_mangle]
pub unsafe extern "C" fn kvm_geterr(kd: *mut Handle) -> *mut c_char {
    static EMPTY: [c_char; 1] = [0];
    // SAFETY: the caller's contract. The buffer lives as long as the
    // handle and is only ever written in place.
    match unsafe { kd.as_mut() } {
        Some(h) => h.error.as_mut_ptr(),
        None => EMPTY.as_ptr().cast_mut(),
    }
}
