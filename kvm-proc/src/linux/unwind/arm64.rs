//! arm64 kernel stacks through frame records: every kernel function that
//! calls another keeps `{x29, x30}` (the caller's frame record and the
//! return address) at x29, and each task's stack ends in the all-zero
//! record inside its `pt_regs` (the kernel's `unwind_next`,
//! arch/arm64/kernel/stacktrace.c). Return addresses may carry a pointer
//! authentication code in their top bits, stripped as the kernel does
//! for kernel pointers (`ptr | GENMASK(63, VA_BITS)`).

use super::Walk;
use kvm_core::{Error, Result, VirtAddr, VirtReadExt};

/// The unwinder's registers between frames.
#[derive(Clone, Copy, Debug)]
pub(super) struct State {
    pub pc: u64,
    pub fp: u64,
}

/// `GENMASK(63, va_bits)`: the bits a kernel address has set and a
/// return address's PAC may have cleared.
pub(super) fn pac_mask(va_bits: u32) -> u64 {
    match va_bits {
        1..=63 => !0u64 << va_bits,
        _ => 0,
    }
}

/// A return address with its PAC stripped (kernel addresses only: bit 55
/// selects the kernel's half).
pub(super) fn strip(pc: u64, mask: u64) -> u64 {
    if pc & (1 << 55) != 0 {
        pc | mask
    } else {
        pc
    }
}

/// The next frame: the record at `fp` gives the caller's `fp` and the
/// return address. `None` at the final (all-zero) record.
pub(super) fn step(w: &Walk<'_>, st: &mut State, mask: u64) -> Result<Option<u64>> {
    let fp = st.fp;
    // 0, or a user address: the chain goes on in user space (a CPU
    // caught in the kernel's entry from user mode, before the kernel's
    // first frame record, still holds the user's x29).
    if fp & (1 << 55) == 0 {
        return Ok(None);
    }
    if fp & 7 != 0 {
        return Err(Error::Malformed(
            "a frame record that is not 8-byte aligned",
        ));
    }
    let next_fp = w.mem.read_u64_le(VirtAddr(fp))?;
    let lr = w.mem.read_u64_le(VirtAddr(fp.wrapping_add(8)))?;
    if next_fp == 0 && lr == 0 {
        return Ok(None);
    }
    st.fp = next_fp;
    st.pc = strip(lr, mask);
    Ok(Some(fp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pac_is_stripped_from_kernel_addresses_only() {
        let m = pac_mask(48);
        assert_eq!(m, 0xffff_0000_0000_0000);
        assert_eq!(strip(0x00aa_cce5_edc1_66bc, m), 0xffff_cce5_edc1_66bc);
        assert_eq!(strip(0xffff_cce5_edc1_66bc, m), 0xffff_cce5_edc1_66bc);
        assert_eq!(strip(0x0000_aaaa_0000_1000, m), 0x0000_aaaa_0000_1000);
        assert_eq!(pac_mask(0), 0);
        assert_eq!(pac_mask(52), 0xfff0_0000_0000_0000);
    }
}
