//! The ring buffer of 5.10+ (`kernel/printk/printk_ringbuffer.h`).

use super::{facility_level, keep, need, read_long, MAX_BITS};
use crate::{KernelLog, LogRecord};
use alloc::vec;
use alloc::vec::Vec;
use kvm_core::{Endian, Error, Result, VirtAddr, VirtRead, VirtReadExt, VmCoreInfo};

/// Largest `count_bits` accepted: 32 Mi records (the kernel gives the
/// descriptor ring 5 bits fewer than the text ring).
const MAX_COUNT_BITS: u64 = 25;
/// A record's text is at most this long (`text_len` is 16 bits).
const MAX_TEXT: u64 = 1 << 16;
/// Consecutive unreadable records after which the rest are given up.
const GIVE_UP: u64 = 1024;
/// Descriptor states.
const COMMITTED: u64 = 1;
const FINALIZED: u64 = 2;

/// The 5.10+ ring buffer, its layout from VMCOREINFO.
pub(super) struct Ring<'a> {
    mem: &'a dyn VirtRead,
    e: Endian,
    long: u64,
    count_bits: u64,
    size_bits: u64,
    descs: u64,
    infos: u64,
    data: u64,
    head_id: u64,
    tail_id: u64,
    desc_size: u64,
    state_off: u64,
    begin_off: u64,
    next_off: u64,
    info_size: u64,
    seq_off: u64,
    ts_off: u64,
    text_len_off: u64,
    /// The byte holding `facility` and then `flags:5, level:3`, where the
    /// layout shows it (`caller_id` right after them).
    facility_off: Option<u64>,
}

impl<'a> Ring<'a> {
    pub(super) fn new(mem: &'a dyn VirtRead, e: Endian, vi: &VmCoreInfo) -> Result<Self> {
        let o = |n: &'static str| need(vi.offset(n), n);
        let long = vi.size("atomic_long_t").unwrap_or(8);
        if long != 4 && long != 8 {
            return Err(Error::Malformed(
                "VMCOREINFO: SIZE(atomic_long_t) is not 4 or 8",
            ));
        }
        // `prb` points at the ring buffer in use.
        let prb = read_long(mem, e, need(vi.symbol("prb"), "SYMBOL(prb)")?, long)?;
        let desc_ring = prb.wrapping_add(o("printk_ringbuffer.desc_ring")?);
        let text_ring = prb.wrapping_add(o("printk_ringbuffer.text_data_ring")?);
        let at = |base: u64, n: &'static str| o(n).map(|off| base.wrapping_add(off));
        let count_bits =
            u64::from(mem.read_u32(VirtAddr(at(desc_ring, "prb_desc_ring.count_bits")?), e)?);
        let size_bits =
            u64::from(mem.read_u32(VirtAddr(at(text_ring, "prb_data_ring.size_bits")?), e)?);
        if count_bits > MAX_COUNT_BITS || !(4..=MAX_BITS).contains(&size_bits) {
            return Err(Error::Malformed(
                "printk ring buffer: implausible count_bits or size_bits",
            ));
        }
        let text_len_off = o("printk_info.text_len")?;
        let caller = vi.offset("printk_info.caller_id");
        let lpos = o("prb_desc.text_blk_lpos")?;
        Ok(Ring {
            mem,
            e,
            long,
            count_bits,
            size_bits,
            descs: read_long(mem, e, at(desc_ring, "prb_desc_ring.descs")?, long)?,
            infos: read_long(mem, e, at(desc_ring, "prb_desc_ring.infos")?, long)?,
            data: read_long(mem, e, at(text_ring, "prb_data_ring.data")?, long)?,
            head_id: read_long(mem, e, at(desc_ring, "prb_desc_ring.head_id")?, long)?,
            tail_id: read_long(mem, e, at(desc_ring, "prb_desc_ring.tail_id")?, long)?,
            desc_size: need(vi.size("prb_desc"), "SIZE(prb_desc)")?,
            state_off: o("prb_desc.state_var")?,
            begin_off: lpos.wrapping_add(o("prb_data_blk_lpos.begin")?),
            next_off: lpos.wrapping_add(o("prb_data_blk_lpos.next")?),
            info_size: need(vi.size("printk_info"), "SIZE(printk_info)")?,
            seq_off: o("printk_info.seq")?,
            ts_off: o("printk_info.ts_nsec")?,
            text_len_off,
            // u16 text_len, u8 facility, u8 flags:5 level:3, u32 caller_id.
            facility_off: (caller == text_len_off.checked_add(4))
                .then(|| text_len_off.wrapping_add(2)),
        })
    }

    /// The id bits of a `state_var`.
    fn id_mask(&self) -> u64 {
        (1u64 << (self.long * 8 - 2)) - 1
    }

    pub(super) fn records(&self) -> Result<KernelLog> {
        let mut log = KernelLog::default();
        let mask = self.id_mask();
        let (tail, head) = (self.tail_id & mask, self.head_id & mask);
        let count = 1u64 << self.count_bits;
        // tail..=head, never more than the ring holds.
        let span = head.wrapping_sub(tail) & mask;
        if span >= count {
            return Err(Error::Malformed(
                "printk ring buffer: head and tail ids are further apart than the ring",
            ));
        }
        let mut failing = 0;
        for i in 0..=span {
            let id = tail.wrapping_add(i) & mask;
            let before = log.unreadable;
            keep(&mut log, self.record(id));
            failing = if log.unreadable > before {
                failing + 1
            } else {
                0
            };
            if failing == GIVE_UP {
                // The descriptor ring is not there (or is garbage): the
                // rest is counted, not read one by one.
                log.unreadable += span - i;
                break;
            }
        }
        Ok(log)
    }

    /// The record of descriptor `id`; `None` when it holds another id or
    /// is not (yet) readable.
    fn record(&self, id: u64) -> Result<Option<LogRecord>> {
        let idx = id & ((1u64 << self.count_bits) - 1);
        let desc = self.descs.wrapping_add(idx * self.desc_size);
        let sv = read_long(
            self.mem,
            self.e,
            desc.wrapping_add(self.state_off),
            self.long,
        )?;
        let state = sv >> (self.long * 8 - 2);
        if sv & self.id_mask() != id || !(state == COMMITTED || state == FINALIZED) {
            return Ok(None);
        }
        let begin = read_long(
            self.mem,
            self.e,
            desc.wrapping_add(self.begin_off),
            self.long,
        )?;
        let next = read_long(
            self.mem,
            self.e,
            desc.wrapping_add(self.next_off),
            self.long,
        )?;
        let info = self.infos.wrapping_add(idx * self.info_size);
        let seq = self
            .mem
            .read_u64(VirtAddr(info.wrapping_add(self.seq_off)), self.e)?;
        let time_ns = self
            .mem
            .read_u64(VirtAddr(info.wrapping_add(self.ts_off)), self.e)?;
        let text_len = u64::from(
            self.mem
                .read_u16(VirtAddr(info.wrapping_add(self.text_len_off)), self.e)?,
        );
        let (facility, level) =
            facility_level(self.mem, self.facility_off.map(|o| info.wrapping_add(o)))?;
        let text = self.text(begin, next, text_len)?;
        Ok(Some(LogRecord {
            seq: Some(seq),
            level,
            facility,
            time_ns,
            text,
        }))
    }

    /// The text of the block at `begin..next`, at most `text_len` bytes.
    fn text(&self, begin: u64, next: u64, text_len: u64) -> Result<Vec<u8>> {
        // Data-less records (an empty line, or text that did not fit).
        if begin & 1 != 0 || next & 1 != 0 || begin == next {
            return Ok(Vec::new());
        }
        let size = 1u64 << self.size_bits;
        let index = |lpos: u64| lpos & (size - 1);
        let lap = |lpos: u64| lpos >> self.size_bits;
        let (start, len) = if lap(begin) == lap(next) {
            (index(begin), next.wrapping_sub(begin))
        } else if lap(begin).wrapping_add(1) == lap(next) {
            // The block wrapped: it starts at the ring's beginning.
            (0, index(next))
        } else {
            return Err(Error::Malformed(
                "printk record: text block positions do not fit the ring",
            ));
        };
        if len < self.long || len > size - start {
            return Err(Error::Malformed(
                "printk record: text block outside the text ring",
            ));
        }
        let n = (len - self.long).min(text_len).min(MAX_TEXT);
        let mut text = vec![0u8; n as usize];
        self.mem.read_virt_exact(
            VirtAddr(self.data.wrapping_add(start + self.long)),
            &mut text,
        )?;
        Ok(text)
    }
}
