//! The log of kernels before 5.10: `log_buf` of `struct printk_log`.

use super::{facility_level, keep, need, read_long, MAX_BITS};
use crate::{KernelLog, LogRecord};
use alloc::vec;
use kvm_core::{Endian, Error, Result, VirtAddr, VirtRead, VirtReadExt, VmCoreInfo};

/// The log of kernels before 5.10: `log_buf` of `struct printk_log`
/// records (`u64 ts_nsec; u16 len, text_len, dict_len; u8 facility;
/// u8 flags:5, level:3;` then the text), from `log_first_idx` to
/// `log_next_idx`; a record of length 0 sends the reader back to the
/// buffer's start.
pub(super) struct OldLog<'a> {
    mem: &'a dyn VirtRead,
    e: Endian,
    buf: u64,
    len: u64,
    first: u64,
    next: u64,
    first_seq: Option<u64>,
    hdr: u64,
    ts_off: u64,
    len_off: u64,
    text_len_off: u64,
    facility_off: Option<u64>,
}

impl<'a> OldLog<'a> {
    pub(super) fn new(
        mem: &'a dyn VirtRead,
        e: Endian,
        vi: &VmCoreInfo,
        symbol: &dyn Fn(&str) -> Option<u64>,
    ) -> Result<Self> {
        let sym = |n: &'static str| need(vi.symbol(n), n);
        let u32_at =
            |n: &'static str| -> Result<u64> { Ok(u64::from(mem.read_u32(VirtAddr(sym(n)?), e)?)) };
        let ptr = vi.size("long").unwrap_or(8);
        let buf = read_long(mem, e, sym("log_buf")?, ptr)?;
        let len = u32_at("log_buf_len")?;
        if len > 1 << MAX_BITS {
            return Err(Error::Malformed("log_buf_len is implausibly large"));
        }
        let text_len_off = need(
            vi.offset("printk_log.text_len"),
            "OFFSET(printk_log.text_len)",
        )?;
        let hdr = need(vi.size("printk_log"), "SIZE(printk_log)")?;
        // VMCOREINFO does not say where facility and level are: the layout
        // is taken as known when its size and text_len offset are those of
        // every kernel from 3.5 to 5.9 (text_len 10, 16 bytes).
        let facility_off = (text_len_off == 10 && hdr == 16).then_some(14);
        let first_seq = match symbol("log_first_seq") {
            Some(a) => Some(mem.read_u64(VirtAddr(a), e)?),
            None => None,
        };
        Ok(OldLog {
            mem,
            e,
            buf,
            len,
            first: u32_at("log_first_idx")?,
            next: u32_at("log_next_idx")?,
            first_seq,
            hdr,
            ts_off: need(
                vi.offset("printk_log.ts_nsec"),
                "OFFSET(printk_log.ts_nsec)",
            )?,
            len_off: need(vi.offset("printk_log.len"), "OFFSET(printk_log.len)")?,
            text_len_off,
            facility_off,
        })
    }

    pub(super) fn records(&self) -> Result<KernelLog> {
        let mut log = KernelLog::default();
        let mut idx = self.first;
        let (mut wrapped, mut n) = (false, 0);
        // Each record is at least a header long: this bounds the walk.
        for _ in 0..=self.len / self.hdr.max(1) + 1 {
            if idx == self.next {
                return Ok(log);
            }
            if self.hdr > self.len.saturating_sub(idx) {
                return Err(Error::Malformed("log_buf: a record runs past the buffer"));
            }
            let at = self.buf.wrapping_add(idx);
            let len = u64::from(
                self.mem
                    .read_u16(VirtAddr(at.wrapping_add(self.len_off)), self.e)?,
            );
            if len == 0 {
                // The rest of the buffer is unused: go on at its start.
                if wrapped {
                    return Err(Error::Malformed("log_buf: two empty records in a walk"));
                }
                wrapped = true;
                idx = 0;
                continue;
            }
            if len < self.hdr || idx + len > self.len {
                return Err(Error::Malformed(
                    "log_buf: a record's length does not fit the buffer",
                ));
            }
            keep(&mut log, self.record(at, len, n));
            n += 1;
            idx += len;
        }
        Err(Error::Malformed(
            "log_buf: the records do not lead to log_next_idx",
        ))
    }

    fn record(&self, at: u64, len: u64, n: u64) -> Result<Option<LogRecord>> {
        let time_ns = self
            .mem
            .read_u64(VirtAddr(at.wrapping_add(self.ts_off)), self.e)?;
        let text_len = u64::from(
            self.mem
                .read_u16(VirtAddr(at.wrapping_add(self.text_len_off)), self.e)?,
        );
        let (facility, level) =
            facility_level(self.mem, self.facility_off.map(|o| at.wrapping_add(o)))?;
        let mut text = vec![0u8; text_len.min(len - self.hdr) as usize];
        self.mem
            .read_virt_exact(VirtAddr(at.wrapping_add(self.hdr)), &mut text)?;
        Ok(Some(LogRecord {
            seq: self.first_seq.map(|s| s.wrapping_add(n)),
            level,
            facility,
            time_ns,
            text,
        }))
    }
}
