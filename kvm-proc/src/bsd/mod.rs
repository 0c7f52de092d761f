//! What FreeBSD and OpenBSD share: a dump carries no symbol table, so
//! every lookup goes through the kernel file (`-N`); and the kernel
//! variables both keep alike (`averunnable`, `osrelease`).

mod symbols;

pub use symbols::KernelFile;

use crate::os::Machine;
use alloc::string::String;
use kvm_core::{Arch, Error, Result, VirtAddr, VirtReadExt};

/// Bytes of a kernel pointer on `arch` (the BSD layers read 32-bit i386
/// kernels too).
pub(crate) fn pointer_size(arch: Option<Arch>) -> u64 {
    match arch {
        Some(Arch::I386) => 4,
        _ => 8,
    }
}

/// The pointer at `va`.
pub(crate) fn ptr(m: &Machine<'_>, va: u64) -> Result<u64> {
    match pointer_size(m.arch()) {
        4 => m.read_u32_le(VirtAddr(va)).map(u64::from),
        _ => m.read_u64_le(VirtAddr(va)),
    }
}

/// The C `int` at `va`.
pub(crate) fn int(m: &Machine<'_>, va: u64) -> Result<i32> {
    m.read_u32_le(VirtAddr(va)).map(|v| v as i32)
}

/// `base + off`, or an error for an address past the top of memory.
pub(crate) fn at(base: u64, off: u64) -> Result<u64> {
    base.checked_add(off).ok_or(Error::Malformed(
        "a kernel structure runs past the end of the address space",
    ))
}

/// A NUL-terminated string of at most `N` bytes at `va` (`p_comm`,
/// `td_name`, `osrelease`).
pub(crate) fn c_string<const N: usize>(m: &Machine<'_>, va: u64) -> Result<String> {
    let mut b = [0u8; N];
    m.read_virt_exact(VirtAddr(va), &mut b)?;
    let end = b.iter().position(|&c| c == 0).unwrap_or(N);
    Ok(String::from_utf8_lossy(&b[..end]).into_owned())
}

/// The load averages from `averunnable` (`struct loadavg { fixpt_t
/// ldavg[3]; long fscale; }`, per sys/sys/resource.h of both BSDs),
/// rounded to two places as `sysctl vm.loadavg` prints them.
pub(crate) fn loadavg(m: &Machine<'_>, file: &KernelFile) -> Result<[f64; 3]> {
    let a = file.need(
        "averunnable",
        "the kernel file has no averunnable (the load average)",
    )?;
    // `long fscale` follows the three 32-bit words, aligned to a long:
    // at 16 on LP64 kernels, 12 on i386.
    let fscale = match pointer_size(m.arch()) {
        4 => u64::from(m.read_u32_le(VirtAddr(at(a, 12)?))?),
        _ => m.read_u64_le(VirtAddr(at(a, 16)?))?,
    };
    if fscale == 0 {
        return Err(Error::Malformed("averunnable.fscale is 0"));
    }
    let mut out = [0.0; 3];
    for (i, v) in out.iter_mut().enumerate() {
        let raw = m.read_u32_le(VirtAddr(at(a, 4 * i as u64)?))?;
        // Hundredths, rounded half up in integers (no_std has no floor).
        let hundredths = (u128::from(raw) * 100 + u128::from(fscale) / 2) / u128::from(fscale);
        *v = hundredths as f64 / 100.0;
    }
    Ok(out)
}

/// The kernel's release (`osrelease`, as `uname -r` prints it).
pub(crate) fn release(m: &Machine<'_>, file: &KernelFile) -> Result<String> {
    let a = file.need("osrelease", "the kernel file has no osrelease")?;
    c_string::<64>(m, a)
}
