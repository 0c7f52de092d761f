//! OpenBSD's savecore calls: `kvm_dump_mkheader`, `kvm_dump_wrtheader`,
//! `kvm_dump_inval`.

use super::{with_handle, Handle};
use std::ffi::c_int;

/// `kvm_dump_mkheader(3)`: the size of the headers, -1 on error.
/// `dump_off` is not used: the header is made from the open kernel.
///
/// # Safety
/// `kd` is an open handle or NULL.
#[no_mangle]
pub unsafe extern "C" fn kvm_dump_mkheader(kd: *mut Handle, _dump_off: libc::off_t) -> c_int {
    with_handle(kd, "kvm_dump_mkheader", -1, |h| {
        let Some(kd) = h.kvm() else { return -1 };
        let size = kd
            .dump_mkheader()
            .and_then(|hd| hd.header_bytes(0).map_err(|e| kd.fail(e)));
        match size {
            Ok(b) => c_int::try_from(b.len()).unwrap_or(c_int::MAX),
            Err(e) => {
                h.fail(e);
                -1
            }
        }
    })
}

/// A C `FILE *` as [`std::io::Write`].
struct CFile(*mut libc::FILE);

impl std::io::Write for CFile {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        // SAFETY: the caller's open FILE; b is valid for b.len() bytes.
        let n = unsafe { libc::fwrite(b.as_ptr().cast(), 1, b.len(), self.0) };
        if n == 0 && !b.is_empty() {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `kvm_dump_wrtheader(3)`: 0, or -1 on error.
///
/// # Safety
/// `kd` is an open handle or NULL; `fp` is NULL or an open `FILE`.
#[no_mangle]
pub unsafe extern "C" fn kvm_dump_wrtheader(
    kd: *mut Handle,
    fp: *mut libc::FILE,
    dumpsize: c_int,
) -> c_int {
    with_handle(kd, "kvm_dump_wrtheader", -1, |h| {
        let Ok(size) = u64::try_from(dumpsize) else {
            h.fail(format_args!(
                "kvm_dump_wrtheader: negative dumpsize {dumpsize}"
            ));
            return -1;
        };
        if fp.is_null() {
            h.fail("kvm_dump_wrtheader: NULL FILE");
            return -1;
        }
        let Some(kd) = h.kvm() else { return -1 };
        match kd.dump_wrtheader(&mut CFile(fp), size) {
            Ok(_) => 0,
            Err(e) => {
                h.fail(e);
                -1
            }
        }
    })
}

/// `kvm_dump_inval(3)`: 0, or -1 on error.
///
/// # Safety
/// `kd` is an open handle or NULL.
#[no_mangle]
pub unsafe extern "C" fn kvm_dump_inval(kd: *mut Handle) -> c_int {
    with_handle(kd, "kvm_dump_inval", -1, |h| {
        let Some(kd) = h.kvm() else { return -1 };
        match kd.dump_inval() {
            Ok(()) => 0,
            Err(e) => {
                h.fail(e);
                -1
            }
        }
    })
}
