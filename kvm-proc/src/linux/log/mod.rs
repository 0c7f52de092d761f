//! The kernel log from memory, with no type information but VMCOREINFO's:
//! the lockless `printk_ringbuffer` of 5.10+ and the `log_buf` of
//! `struct printk_log` records before it. VMCOREINFO exports every symbol
//! and offset both need (`kernel/printk/printk.c`,
//! `log_buf_vmcoreinfo_setup`), which is how `makedumpfile --dump-dmesg`
//! reads it too.
//!
//! The ring buffer (`kernel/printk/printk_ringbuffer.h`): a descriptor
//! ring of `1 << count_bits` descriptors and as many `printk_info`s, and a
//! text ring of `1 << size_bits` bytes. A descriptor's `state_var` holds
//! its id in the low bits and its state in the top two (reserved 0,
//! committed 1, finalized 2, reusable 3); records are read from `tail_id`
//! to `head_id`. A text block is an `unsigned long` id and the text; its
//! logical positions (`begin`, `next`) count laps above `size_bits`, and
//! a block that would cross the ring's end starts at index 0 instead.
//! Positions with bit 0 set carry no text.
//!
//! A damaged ring gives what can be read: each record that cannot be is
//! counted in [`KernelLog::unreadable`] with the first reason, never
//! guessed; every count and length is bounded first.

mod old;
mod ring;
#[cfg(test)]
mod tests;

use crate::{KernelLog, LogRecord};
use kvm_core::{Endian, Error, Result, VirtAddr, VirtRead, VirtReadExt, VmCoreInfo};
use old::OldLog;
use ring::Ring;

/// Largest text ring or `log_buf` accepted, as a power of two: 1 GiB
/// (`CONFIG_LOG_BUF_SHIFT` is at most 25; `log_buf_len=` can ask more).
pub(super) const MAX_BITS: u64 = 30;

/// The kernel log of the kernel VMCOREINFO `vi` describes, read through
/// `mem` (the kernel's address space, byte order `e`). `symbol` answers
/// for names VMCOREINFO lacks (`log_first_seq` of the older layout).
pub fn read(
    mem: &dyn VirtRead,
    e: Endian,
    vi: &VmCoreInfo,
    symbol: &dyn Fn(&str) -> Option<u64>,
) -> Result<KernelLog> {
    if vi.symbol("prb").is_some() {
        Ring::new(mem, e, vi)?.records()
    } else if vi.symbol("log_buf").is_some() {
        OldLog::new(mem, e, vi, symbol)?.records()
    } else {
        Err(Error::Unsupported(
            "VMCOREINFO names neither prb nor log_buf: no kernel log to read",
        ))
    }
}

/// A VMCOREINFO value the reader needs.
pub(super) fn need(v: Option<u64>, what: &'static str) -> Result<u64> {
    v.ok_or(Error::Unsupported(what))
}

/// Reads a `long` (4 or 8 bytes).
pub(super) fn read_long(mem: &dyn VirtRead, e: Endian, at: u64, size: u64) -> Result<u64> {
    match size {
        4 => mem.read_u32(VirtAddr(at), e).map(u64::from),
        _ => mem.read_u64(VirtAddr(at), e),
    }
}

/// A record's facility and level from the two bytes at `at` (`u8
/// facility; u8 flags:5, level:3;` in both layouts); unknown without `at`.
pub(super) fn facility_level(
    mem: &dyn VirtRead,
    at: Option<u64>,
) -> Result<(Option<u8>, Option<u8>)> {
    let Some(at) = at else {
        return Ok((None, None));
    };
    let mut b = [0u8; 2];
    mem.read_virt_exact(VirtAddr(at), &mut b)?;
    Ok((Some(b[0]), Some(b[1] >> 5)))
}

/// Appends one record's outcome to `log`.
pub(super) fn keep(log: &mut KernelLog, r: Result<Option<LogRecord>>) {
    match r {
        Ok(Some(rec)) => log.records.push(rec),
        Ok(None) => {}
        Err(err) => {
            log.unreadable += 1;
            log.first_error.get_or_insert(err);
        }
    }
}
