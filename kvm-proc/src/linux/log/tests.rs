//! The log readers on memory laid out as the kernels lay it out (the
//! offsets are Debian 6.1's VMCOREINFO and a 5.4 kernel's), with the
//! cases a real log meets (wrapped text, data-less records, records being
//! reused) and damaged ones.

use super::read;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use kvm_core::{Endian, Error, Result, VirtAddr, VirtRead, VmCoreInfo};

const BASE: u64 = 0xffff_8880_0000_0000;

/// Kernel memory: one flat block at BASE; reads outside it fail.
struct Flat(Vec<u8>);

impl Flat {
    fn new() -> Self {
        Flat(vec![0; 0x8000])
    }
    fn put(&mut self, va: u64, b: &[u8]) {
        let off = (va - BASE) as usize;
        self.0[off..off + b.len()].copy_from_slice(b);
    }
    fn u64(&mut self, va: u64, v: u64) {
        self.put(va, &v.to_le_bytes());
    }
    fn u32(&mut self, va: u64, v: u32) {
        self.put(va, &v.to_le_bytes());
    }
    fn u16(&mut self, va: u64, v: u16) {
        self.put(va, &v.to_le_bytes());
    }
}

impl VirtRead for Flat {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        let off =
            va.0.checked_sub(BASE)
                .filter(|&o| o < self.0.len() as u64)
                .ok_or(Error::Unmapped { va: va.0 })? as usize;
        let n = buf.len().min(self.0.len() - off);
        buf[..n].copy_from_slice(&self.0[off..off + n]);
        Ok(n)
    }
}

// Where things are in the ring-buffer memory.
const PRB: u64 = BASE; // SYMBOL(prb): the pointer
const RING: u64 = BASE + 0x100;
const DESCS: u64 = BASE + 0x1000;
const INFOS: u64 = BASE + 0x2000;
const DATA: u64 = BASE + 0x4000;
const COUNT_BITS: u32 = 3; // 8 descriptors
const SIZE_BITS: u32 = 8; // 256 bytes of text

/// Debian 6.1's VMCOREINFO lines for the ring buffer.
fn ring_vmcoreinfo() -> VmCoreInfo {
    VmCoreInfo::parse(ring_text().as_bytes()).unwrap()
}

/// The text of [`ring_vmcoreinfo`].
fn ring_text() -> String {
    format!(
        "OSRELEASE=6.1.0\nSYMBOL(prb)={PRB:x}\nSIZE(printk_ringbuffer)=88\n\
         OFFSET(printk_ringbuffer.desc_ring)=0\nOFFSET(printk_ringbuffer.text_data_ring)=48\n\
         SIZE(prb_desc_ring)=48\nOFFSET(prb_desc_ring.count_bits)=0\nOFFSET(prb_desc_ring.descs)=8\n\
         OFFSET(prb_desc_ring.infos)=16\nOFFSET(prb_desc_ring.head_id)=24\n\
         OFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\nOFFSET(prb_desc.state_var)=0\n\
         OFFSET(prb_desc.text_blk_lpos)=8\nOFFSET(prb_data_blk_lpos.begin)=0\n\
         OFFSET(prb_data_blk_lpos.next)=8\nSIZE(printk_info)=88\nOFFSET(printk_info.seq)=0\n\
         OFFSET(printk_info.ts_nsec)=8\nOFFSET(printk_info.text_len)=16\n\
         OFFSET(printk_info.caller_id)=20\nSIZE(prb_data_ring)=32\nOFFSET(prb_data_ring.size_bits)=0\n\
         OFFSET(prb_data_ring.data)=8\nOFFSET(prb_data_ring.head_lpos)=16\n\
         OFFSET(prb_data_ring.tail_lpos)=24\nSIZE(atomic_long_t)=8\n"
    )
}

/// A ring buffer in memory.
struct Ring {
    mem: Flat,
}

impl Ring {
    fn new(tail: u64, head: u64) -> Self {
        let mut mem = Flat::new();
        mem.u64(PRB, RING);
        mem.u32(RING, COUNT_BITS);
        mem.u64(RING + 8, DESCS);
        mem.u64(RING + 16, INFOS);
        mem.u64(RING + 24, head);
        mem.u64(RING + 32, tail);
        mem.u32(RING + 48, SIZE_BITS);
        mem.u64(RING + 56, DATA);
        Ring { mem }
    }

    /// Descriptor `id` in `state` with its text block at `begin..next`.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        id: u64,
        state: u64,
        begin: u64,
        next: u64,
        seq: u64,
        level: u8,
        text: &[u8],
    ) {
        let idx = id & ((1 << COUNT_BITS) - 1);
        let d = DESCS + idx * 24;
        self.mem.u64(d, (state << 62) | id);
        self.mem.u64(d + 8, begin);
        self.mem.u64(d + 16, next);
        let i = INFOS + idx * 88;
        self.mem.u64(i, seq);
        self.mem.u64(i + 8, seq * 1_000_000 + 5);
        self.mem.u16(i + 16, text.len() as u16);
        self.mem.put(i + 18, &[0, level << 5 | 0x1f]);
        if begin & 1 == 0 && begin != next {
            // The block: the id, then the text, where begin or (wrapped)
            // index 0 says.
            let size = 1u64 << SIZE_BITS;
            let start = if begin >> SIZE_BITS == next >> SIZE_BITS {
                begin % size
            } else {
                0
            };
            self.mem.u64(DATA + start, id);
            self.mem.put(DATA + start + 8, text);
        }
    }

    fn log(&self) -> Result<crate::KernelLog> {
        read(&self.mem, Endian::Little, &ring_vmcoreinfo(), &|_| None)
    }
}

const COMMITTED: u64 = 1;
const FINALIZED: u64 = 2;
const REUSABLE: u64 = 3;

fn texts(log: &crate::KernelLog) -> Vec<String> {
    log.records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.text).into_owned())
        .collect()
}

#[test]
fn ring_records_in_id_order_with_wrapped_and_dataless_text() {
    // Ids 6..=9 (descriptor indexes 6, 7, 0, 1); the text of id 8
    // crosses the ring's end, so it sits at index 0 of the next lap.
    let mut r = Ring::new(6, 9);
    r.record(6, FINALIZED, 0xb0, 0xd0, 100, 6, b"first record");
    r.record(7, FINALIZED, 0xd0, 0xd1, 101, 4, b""); // data-less
    r.record(8, FINALIZED, 0xf0, 0x100 + 0x20, 102, 3, b"wrapped one");
    r.record(9, COMMITTED, 0x120, 0x140, 103, 7, b"line 1\nline 2");
    let log = r.log().unwrap();
    assert_eq!(
        texts(&log),
        ["first record", "", "wrapped one", "line 1\nline 2"]
    );
    let seqs: Vec<_> = log.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [Some(100), Some(101), Some(102), Some(103)]);
    let levels: Vec<_> = log.records.iter().map(|r| r.level).collect();
    assert_eq!(levels, [Some(6), Some(4), Some(3), Some(7)]);
    assert_eq!(log.records[0].time_ns, 100_000_005);
    assert_eq!(log.records[0].facility, Some(0));
    assert_eq!(log.unreadable, 0);
}

#[test]
fn ring_skips_reused_and_unfinished_descriptors() {
    let mut r = Ring::new(1, 4);
    r.record(1, FINALIZED, 0x10, 0x20, 1, 6, b"kept");
    r.record(2, REUSABLE, 0x20, 0x30, 2, 6, b"reusable");
    r.record(3, 0, 0x30, 0x40, 3, 6, b"reserved");
    // Descriptor 4's slot holds an older id (12 & 7 == 4): not ours.
    r.record(12, FINALIZED, 0x40, 0x50, 4, 6, b"other id");
    let log = r.log().unwrap();
    assert_eq!(texts(&log), ["kept"]);
    assert_eq!(log.unreadable, 0);
}

#[test]
fn ring_text_cut_to_text_len_and_block() {
    let mut r = Ring::new(0, 0);
    r.record(0, FINALIZED, 0x10, 0x1c, 0, 6, b"0123456789");
    // The block is 12 bytes: 8 of id, 4 of text.
    assert_eq!(texts(&r.log().unwrap()), ["0123"]);
}

#[test]
fn ring_damage_is_counted_not_guessed() {
    // A block two laps on is no block: that record is unreadable, the
    // others are read.
    let mut r = Ring::new(0, 1);
    r.record(0, FINALIZED, 0x10, 0x20 + (2 << SIZE_BITS), 0, 6, b"bad");
    r.record(1, FINALIZED, 0x20, 0x30, 1, 6, b"good");
    let log = r.log().unwrap();
    assert_eq!(texts(&log), ["good"]);
    assert_eq!(log.unreadable, 1);
    assert!(matches!(log.first_error, Some(Error::Malformed(_))));
    // A wrapped block too short to hold its id.
    let mut r = Ring::new(0, 0);
    r.record(0, FINALIZED, 0xf0, 0x104, 0, 6, b"x");
    let log = r.log().unwrap();
    assert_eq!(log.unreadable, 1);
    // Infos pointing outside memory: every record unreadable.
    let mut r = Ring::new(0, 1);
    r.record(0, FINALIZED, 0x10, 0x20, 0, 6, b"a");
    r.record(1, FINALIZED, 0x20, 0x30, 1, 6, b"b");
    r.mem.u64(RING + 16, 0x10);
    let log = r.log().unwrap();
    assert_eq!((log.records.len(), log.unreadable), (0, 2));
    assert!(matches!(log.first_error, Some(Error::Unmapped { .. })));
}

#[test]
fn ring_of_garbage_descriptors_gives_up_counting() {
    // 2^20 ids apart and nothing readable behind them: counted, quickly.
    let mut r = Ring::new(0, (1 << 20) - 1);
    r.mem.u32(RING, 20);
    r.mem.u64(RING + 8, 0x10); // descs outside memory
    let log = r.log().unwrap();
    assert_eq!((log.records.len(), log.unreadable), (0, 1 << 20));
}

#[test]
fn ring_header_damage_is_refused() {
    // Head further from tail than the ring holds.
    let r = Ring::new(0, 100);
    assert!(matches!(r.log(), Err(Error::Malformed(_))));
    // count_bits and size_bits beyond any kernel's.
    let mut r = Ring::new(0, 0);
    r.mem.u32(RING, 40);
    assert!(matches!(r.log(), Err(Error::Malformed(_))));
    let mut r = Ring::new(0, 0);
    r.mem.u32(RING + 48, 63);
    assert!(matches!(r.log(), Err(Error::Malformed(_))));
    // prb pointing nowhere.
    let mut r = Ring::new(0, 0);
    r.mem.u64(PRB, 0x1000);
    assert!(matches!(r.log(), Err(Error::Unmapped { .. })));
}

#[test]
fn ring_huge_offsets_do_not_overflow() {
    // The ring's own offsets at 2^64 - 1 (VMCOREINFO numbers are decimal;
    // the last of a repeated key counts): each address wraps to the byte
    // before the ring, where count_bits reads as 0x300, beyond any ring.
    let text = format!(
        "{}OFFSET(printk_ringbuffer.desc_ring)={max}\nOFFSET(printk_ringbuffer.text_data_ring)={max}\n",
        ring_text(),
        max = u64::MAX
    );
    let vi = VmCoreInfo::parse(text.as_bytes()).unwrap();
    let r = Ring::new(0, 0);
    assert!(matches!(
        read(&r.mem, Endian::Little, &vi, &|_| None),
        Err(Error::Malformed(_))
    ));
}

// The layout before 5.10: log_buf of struct printk_log.
const LOG_BUF_PTR: u64 = BASE;
const LOG_BUF: u64 = BASE + 0x1000;
const LEN: u64 = BASE + 0x10;
const FIRST_IDX: u64 = BASE + 0x14;
const NEXT_IDX: u64 = BASE + 0x18;
const FIRST_SEQ: u64 = BASE + 0x20;

fn old_vmcoreinfo() -> VmCoreInfo {
    let text = format!(
        "SYMBOL(log_buf)={LOG_BUF_PTR:x}\nSYMBOL(log_buf_len)={LEN:x}\n\
         SYMBOL(log_first_idx)={FIRST_IDX:x}\nSYMBOL(log_next_idx)={NEXT_IDX:x}\n\
         SIZE(printk_log)=16\nOFFSET(printk_log.ts_nsec)=0\nOFFSET(printk_log.len)=8\n\
         OFFSET(printk_log.text_len)=10\n"
    );
    VmCoreInfo::parse(text.as_bytes()).unwrap()
}

/// Writes a printk_log record at `idx`; returns the next index.
fn old_record(m: &mut Flat, idx: u64, ts: u64, level: u8, text: &[u8]) -> u64 {
    let len = (16 + text.len() as u64 + 7) & !7;
    let at = LOG_BUF + idx;
    m.u64(at, ts);
    m.u16(at + 8, len as u16);
    m.u16(at + 10, text.len() as u16);
    m.put(at + 14, &[0, level << 5]);
    m.put(at + 16, text);
    idx + len
}

#[test]
fn old_log_wraps_at_an_empty_record() {
    let mut m = Flat::new();
    m.u64(LOG_BUF_PTR, LOG_BUF);
    m.u32(LEN, 256);
    m.u64(FIRST_SEQ, 40);
    // First record at 200 (32 bytes), then the rest of the buffer is
    // unused (len 0 at 232): the walk goes on at 0.
    let first = 200;
    let end = old_record(&mut m, first, 7, 6, b"at the end");
    m.u16(LOG_BUF + end + 8, 0);
    let next = old_record(&mut m, 0, 8, 3, b"wrapped");
    let next = old_record(&mut m, next, 9, 7, b"last");
    m.u32(FIRST_IDX, first as u32);
    m.u32(NEXT_IDX, next as u32);
    let sym = |n: &str| (n == "log_first_seq").then_some(FIRST_SEQ);
    let log = read(&m, Endian::Little, &old_vmcoreinfo(), &sym).unwrap();
    assert_eq!(texts(&log), ["at the end", "wrapped", "last"]);
    let seqs: Vec<_> = log.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [Some(40), Some(41), Some(42)]);
    let levels: Vec<_> = log.records.iter().map(|r| r.level).collect();
    assert_eq!(levels, [Some(6), Some(3), Some(7)]);
    // Without log_first_seq, sequence numbers are unknown, not made up.
    let log = read(&m, Endian::Little, &old_vmcoreinfo(), &|_| None).unwrap();
    assert!(log.records.iter().all(|r| r.seq.is_none()));
}

#[test]
fn old_log_damage_is_refused() {
    let mut m = Flat::new();
    m.u64(LOG_BUF_PTR, LOG_BUF);
    m.u32(LEN, 256);
    // A record longer than the buffer.
    m.u16(LOG_BUF + 8, 300);
    m.u32(NEXT_IDX, 64);
    let vi = old_vmcoreinfo();
    assert!(matches!(
        read(&m, Endian::Little, &vi, &|_| None),
        Err(Error::Malformed(_))
    ));
    // Empty records everywhere: no endless walk.
    m.u16(LOG_BUF + 8, 0);
    assert!(matches!(
        read(&m, Endian::Little, &vi, &|_| None),
        Err(Error::Malformed(_))
    ));
    // A huge log_buf_len.
    m.u32(LEN, u32::MAX);
    assert!(matches!(
        read(&m, Endian::Little, &vi, &|_| None),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn no_log_symbols_is_unsupported() {
    let vi = VmCoreInfo::parse(b"OSRELEASE=6.1.0\n").unwrap();
    assert!(matches!(
        read(&Flat::new(), Endian::Little, &vi, &|_| None),
        Err(Error::Unsupported(_))
    ));
}
