//! Writes kdump-compressed files (FORMATS.md §1), plain or flattened, as
//! makedumpfile and QEMU do: header version 6 (by default), both bitmaps,
//! one 24-byte descriptor per saved page, one shared all-zero page that
//! every zero page's descriptor points at, and pages that do not shrink
//! stored raw.
//!
//! The source is any [`Source`] (its [`Source::ranges`] are the memory to
//! save) or any [`PhysRead`] with a list of ranges ([`write_from`]). A page
//! the source reports as [`Error::Excluded`] is written as excluded (1st
//! bitmap set, 2nd clear); so is every page [`KdumpOptions::keep`] rejects.
//! A page it reports as [`Error::NotInMemory`] becomes a hole. To keep a
//! filtered kdump's excluded pages excluded, pass
//! [`crate::KdumpDump::memory_ranges`] to [`write_from`].
//!
//! VMCOREINFO and the CPU notes come from the source's [`SourceInfo`]: a
//! VMCOREINFO note, one NT_PRSTATUS per CPU (pid, pc, sp) and, for x86-64
//! CPUs with a CR3, one QEMU CPU-state note each — or a raw note buffer
//! given in [`KdumpOptions::notes`].
//!
//! Layout: 64-bit little-endian for x86-64 and arm64, the 32-bit packed
//! layout for i386; any other (64/32-bit, either byte order, header version
//! 0–6) on request, so that every layout the reader accepts can be made.

use crate::codec::{self, Compression};
use crate::flat::{FLAT_HEADER_SIZE, FLAT_SIGNATURE};
use crate::kdump::{
    SubHeaderLayout, BLOCK_SIZE_RANGE, KDUMP_SIGNATURE, MAX_PFN_LIMIT, PAGE_DESC_SIZE,
};
use crate::notes::NT_PRSTATUS;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use kvm_core::{Arch, Source, SourceInfo};
use kvm_core::{Endian, Error, MapRange, PhysAddr, PhysRead, Result};
use std::io::{BufWriter, Seek, SeekFrom, Write};

/// Which pages to keep; the others are written as excluded.
pub type KeepFn = Box<dyn Fn(u64) -> bool + Send + Sync>;

/// How to write.
pub struct KdumpOptions {
    /// Page compression ([`Compression::None`]: every page raw).
    pub compression: Compression,
    /// Block size; default the source's page size, else 4096.
    pub block_size: Option<u64>,
    /// Byte order; default the source's.
    pub endian: Option<Endian>,
    /// 64-bit header layout; default: 32-bit for i386, else 64-bit.
    pub is64: Option<bool>,
    /// For 32-bit layouts: the ARM-style padded sub header instead of the
    /// i386 packed one.
    pub padded32: bool,
    /// `header_version`, 0..=6 (default 6).
    pub version: u32,
    /// Keep only the PFNs for which this returns true.
    pub keep: Option<KeepFn>,
    /// A raw ELF note buffer to store instead of notes made from the
    /// source's [`SourceInfo`].
    pub notes: Option<Vec<u8>>,
    /// `dump_level` for the sub header (makedumpfile's `-d`).
    pub dump_level: u32,
    /// `utsname.nodename`.
    pub nodename: String,
    /// `utsname.machine`; default the source architecture's name
    /// ("x86_64", "aarch64", "i686").
    pub machine: Option<String>,
    /// Called now and then with (pages written, pages to write): for a
    /// progress bar on long writes.
    pub progress: Option<Box<dyn Fn(u64, u64) + Send + Sync>>,
}

impl Default for KdumpOptions {
    fn default() -> Self {
        KdumpOptions {
            compression: Compression::Zlib,
            block_size: None,
            endian: None,
            is64: None,
            padded32: false,
            version: 6,
            keep: None,
            notes: None,
            dump_level: 0,
            nodename: String::new(),
            machine: None,
            progress: None,
        }
    }
}

impl core::fmt::Debug for KdumpOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KdumpOptions")
            .field("compression", &self.compression)
            .field("block_size", &self.block_size)
            .field("endian", &self.endian)
            .field("is64", &self.is64)
            .field("version", &self.version)
            .field("keep", &self.keep.is_some())
            .finish_non_exhaustive()
    }
}

impl KdumpOptions {
    /// Options with `compression`, everything else default.
    pub fn new(compression: Compression) -> Self {
        KdumpOptions {
            compression,
            ..Default::default()
        }
    }
}

/// What was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Pages saved (2nd bitmap set).
    pub pages: u64,
    /// Pages marked excluded (1st set, 2nd clear).
    pub excluded: u64,
    /// Saved pages that are all zero (sharing one stored page).
    pub zero_pages: u64,
    /// Saved pages stored compressed.
    pub compressed: u64,
    /// Saved pages stored raw (no compression, or it did not shrink them).
    pub raw: u64,
    /// Bytes of the logical (rebuilt) file.
    pub file_size: u64,
}

/// Writes `dump` as a plain kdump file to `out`.
pub fn write<W: Write + Seek>(
    dump: &dyn Source,
    opts: &KdumpOptions,
    out: W,
) -> Result<WriteSummary> {
    write_from(dump, dump.info(), dump.ranges(), opts, out)
}

/// Writes `dump` as a flattened kdump stream (`makedumpfile -F`) to `out`.
pub fn write_flattened<W: Write>(
    dump: &dyn Source,
    opts: &KdumpOptions,
    out: W,
) -> Result<WriteSummary> {
    write_flattened_from(dump, dump.info(), dump.ranges(), opts, out)
}

/// Writes the pages of `mem` that `ranges` cover, with the facts of
/// `info`, as a plain kdump file.
pub fn write_from<W: Write + Seek>(
    mem: &dyn PhysRead,
    info: &SourceInfo,
    ranges: &[MapRange],
    opts: &KdumpOptions,
    out: W,
) -> Result<WriteSummary> {
    let mut sink = PlainSink {
        w: BufWriter::with_capacity(1 << 20, out),
        pos: 0,
    };
    let s = write_impl(mem, info, ranges, opts, &mut sink)?;
    sink.w.flush().map_err(io)?;
    Ok(s)
}

/// Writes the pages of `mem` that `ranges` cover, with the facts of
/// `info`, as a flattened kdump stream.
pub fn write_flattened_from<W: Write>(
    mem: &dyn PhysRead,
    info: &SourceInfo,
    ranges: &[MapRange],
    opts: &KdumpOptions,
    out: W,
) -> Result<WriteSummary> {
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let mut head = vec![0u8; FLAT_HEADER_SIZE as usize];
    head[..16].copy_from_slice(FLAT_SIGNATURE);
    head[16..24].copy_from_slice(&1i64.to_be_bytes());
    head[24..32].copy_from_slice(&1i64.to_be_bytes());
    w.write_all(&head).map_err(io)?;
    let mut sink = FlatSink {
        w,
        pending: Vec::new(),
        pending_off: 0,
    };
    let s = write_impl(mem, info, ranges, opts, &mut sink)?;
    sink.flush()?;
    sink.w.write_all(&[0xff; 16]).map_err(io)?;
    sink.w.flush().map_err(io)?;
    Ok(s)
}

fn io(e: std::io::Error) -> Error {
    Error::Io {
        errno: e.raw_os_error().unwrap_or(0),
    }
}

/// Positional writes into the logical file.
trait Sink {
    fn write_at(&mut self, off: u64, data: &[u8]) -> Result<()>;
}

struct PlainSink<W: Write + Seek> {
    w: BufWriter<W>,
    pos: u64,
}

impl<W: Write + Seek> Sink for PlainSink<W> {
    fn write_at(&mut self, off: u64, data: &[u8]) -> Result<()> {
        if off != self.pos {
            self.w.seek(SeekFrom::Start(off)).map_err(io)?;
        }
        self.w.write_all(data).map_err(io)?;
        self.pos = off + data.len() as u64;
        Ok(())
    }
}

/// Flattened records; contiguous writes are merged into records of up to
/// 1 MiB.
struct FlatSink<W: Write> {
    w: BufWriter<W>,
    pending: Vec<u8>,
    pending_off: u64,
}

const FLAT_RECORD_MAX: usize = 1 << 20;

impl<W: Write> FlatSink<W> {
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.w
            .write_all(&self.pending_off.to_be_bytes())
            .and_then(|()| self.w.write_all(&(self.pending.len() as u64).to_be_bytes()))
            .and_then(|()| self.w.write_all(&self.pending))
            .map_err(io)?;
        self.pending.clear();
        Ok(())
    }
}

impl<W: Write> Sink for FlatSink<W> {
    fn write_at(&mut self, off: u64, data: &[u8]) -> Result<()> {
        let contiguous = off == self.pending_off + self.pending.len() as u64;
        if !contiguous || self.pending.len() + data.len() > FLAT_RECORD_MAX {
            self.flush()?;
            self.pending_off = off;
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }
}

/// Little helper for fields in the target byte order.
struct Out {
    b: Vec<u8>,
    e: Endian,
}

impl Out {
    fn put(&mut self, off: usize, v: u64, len: usize) {
        let bytes = match self.e {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        let src = match self.e {
            Endian::Little => &bytes[..len],
            Endian::Big => &bytes[8 - len..],
        };
        if self.b.len() < off + len {
            self.b.resize(off + len, 0);
        }
        self.b[off..off + len].copy_from_slice(src);
    }
    fn bytes(&mut self, off: usize, s: &[u8]) {
        if self.b.len() < off + s.len() {
            self.b.resize(off + s.len(), 0);
        }
        self.b[off..off + s.len()].copy_from_slice(s);
    }
}

/// Appends a note and returns the offset of its descriptor.
fn note(out: &mut Vec<u8>, e: Endian, name: &[u8], kind: u32, desc: &[u8]) -> usize {
    let at = out.len() + 12 + (name.len() + 1).next_multiple_of(4);
    super::push_note(out, e, name, kind, desc);
    at
}

/// The notes a kdump (or ELF core) of `info` carries, in byte order `e`:
/// one NT_PRSTATUS per CPU (pid, pc, sp and frame pointer; x86-64, arm64, i386), one QEMU
/// CPU-state note (pc, sp, CR3, CR4) per x86-64 CPU with a CR3, and the
/// VMCOREINFO note. Read back, they give the same [`SourceInfo::cpus`] and
/// [`SourceInfo::vmcoreinfo`].
pub fn notes_for(info: &SourceInfo, e: Endian) -> Vec<u8> {
    make_notes(info, e, vmcoreinfo_text(info).as_deref()).0
}

/// The note buffer made from `info`, and the offset of the VMCOREINFO
/// descriptor in it.
fn make_notes(info: &SourceInfo, e: Endian, vmcoreinfo: Option<&[u8]>) -> (Vec<u8>, Option<usize>) {
    let mut out = Vec::new();
    let mut d = Out { b: Vec::new(), e };
    for cpu in &info.cpus {
        d.b.clear();
        // Every register the source kept, then pc, sp and fp over them
        // (a source without the whole set gives those three).
        let (words, width, at) = match info.arch {
            Some(Arch::X86_64) => (27, 8, 112),
            Some(Arch::Aarch64) => (34, 8, 112),
            Some(Arch::I386) => (17, 4, 72),
            _ => (0, 8, 0),
        };
        let all = |d: &mut Out| {
            for (i, &r) in cpu.regs.iter().take(words).enumerate() {
                d.put(at + width * i, r, width);
            }
        };
        match info.arch {
            Some(Arch::X86_64) => {
                d.b.resize(336, 0);
                all(&mut d);
                d.put(32, u64::from(cpu.pid), 4);
                d.put(112 + 16 * 8, cpu.pc, 8);
                d.put(112 + 19 * 8, cpu.sp, 8);
                d.put(112 + 4 * 8, cpu.fp.unwrap_or(0), 8);
            }
            Some(Arch::Aarch64) => {
                d.b.resize(392, 0);
                all(&mut d);
                d.put(32, u64::from(cpu.pid), 4);
                d.put(112 + 32 * 8, cpu.pc, 8);
                d.put(112 + 31 * 8, cpu.sp, 8);
                d.put(112 + 29 * 8, cpu.fp.unwrap_or(0), 8);
            }
            Some(Arch::I386) => {
                d.b.resize(144, 0);
                all(&mut d);
                d.put(24, u64::from(cpu.pid), 4);
                d.put(72 + 12 * 4, cpu.pc, 4);
                d.put(72 + 15 * 4, cpu.sp, 4);
                d.put(72 + 5 * 4, cpu.fp.unwrap_or(0), 4);
            }
            _ => continue,
        }
        note(&mut out, e, b"CORE", NT_PRSTATUS, &d.b);
    }
    if info.arch == Some(Arch::X86_64) {
        for cpu in info.cpus.iter().filter(|c| c.cr3.is_some()) {
            // QEMUCPUState, always little-endian (x86).
            let mut q = Out {
                b: vec![0u8; 440],
                e: Endian::Little,
            };
            q.put(0, 1, 4);
            q.put(4, 440, 4);
            q.put(56, cpu.sp, 8);
            q.put(136, cpu.pc, 8);
            q.put(416, cpu.cr3.unwrap_or(0), 8);
            q.put(424, cpu.cr4.unwrap_or(0), 8);
            note(&mut out, e, b"QEMU", 0, &q.b);
        }
    }
    let vi = vmcoreinfo.map(|v| note(&mut out, e, b"VMCOREINFO", 0, v));
    (out, vi)
}

fn vmcoreinfo_text(info: &SourceInfo) -> Option<Vec<u8>> {
    let v = info.vmcoreinfo.as_ref()?;
    let mut t = Vec::new();
    for (k, val) in v.entries() {
        t.extend_from_slice(k.as_bytes());
        t.push(b'=');
        t.extend_from_slice(val.as_bytes());
        t.push(b'\n');
    }
    Some(t)
}

fn machine(arch: Option<Arch>) -> &'static str {
    match arch {
        Some(Arch::X86_64) => "x86_64",
        Some(Arch::Aarch64) => "aarch64",
        Some(Arch::I386) => "i686",
        _ => "",
    }
}

fn set_bit(words: &mut [u64], pfn: u64, on: bool) {
    if let Some(w) = usize::try_from(pfn / 64)
        .ok()
        .and_then(|i| words.get_mut(i))
    {
        if on {
            *w |= 1 << (pfn % 64);
        } else {
            *w &= !(1 << (pfn % 64));
        }
    }
}

fn bitmap_bytes(words: &[u64], len: usize) -> Vec<u8> {
    let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    b.resize(len, 0);
    b
}

/// The union of `ranges`: sorted, disjoint, adjacent ones merged.
fn union(ranges: &[MapRange]) -> Vec<MapRange> {
    let mut v: Vec<MapRange> = ranges.iter().filter(|r| r.len > 0).copied().collect();
    v.sort_by_key(|r| r.start);
    let mut out: Vec<MapRange> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end() => {
                let end = last.end().max(r.end());
                last.len = end - last.start;
            }
            _ => out.push(MapRange { value: 0, ..r }),
        }
    }
    out
}

/// Reads the parts of the page at `pa` that `ranges` (sorted, disjoint)
/// cover; the rest of the page is zero. `Ok(false)`: the source says the
/// page is excluded; `Err(NotInMemory)`: nothing of it could be read.
fn read_page(mem: &dyn PhysRead, ranges: &[MapRange], pa: u64, page: &mut [u8]) -> Result<bool> {
    page.fill(0);
    let end = pa + page.len() as u64;
    let (mut any, mut excluded) = (false, false);
    let first = ranges.partition_point(|r| r.end() <= pa);
    for r in ranges.get(first..).unwrap_or_default() {
        if r.start >= end {
            break;
        }
        let (s, e) = (r.start.max(pa), r.end().min(end));
        let mut at = s;
        while at < e {
            let buf = &mut page[(at - pa) as usize..(e - pa) as usize];
            match mem.read_phys(PhysAddr(at), buf) {
                Ok(0) => break,
                Ok(n) => {
                    at += n as u64;
                    any = true;
                }
                Err(Error::Excluded { .. }) if at == s => {
                    excluded = true;
                    break;
                }
                Err(Error::NotInMemory { .. }) => break,
                Err(err) if at == s && !any => return Err(err),
                Err(_) => break,
            }
        }
    }
    match (any, excluded) {
        (true, _) => Ok(true),
        (false, true) => Ok(false),
        (false, false) => Err(Error::NotInMemory { pa }),
    }
}

fn write_impl(
    mem: &dyn PhysRead,
    info: &SourceInfo,
    ranges: &[MapRange],
    opts: &KdumpOptions,
    sink: &mut dyn Sink,
) -> Result<WriteSummary> {
    let bs = opts.block_size.or(info.page_size).unwrap_or(4096);
    if !bs.is_power_of_two() || !BLOCK_SIZE_RANGE.contains(&bs) {
        return Err(Error::Unsupported(
            "kdump block size must be a power of two from 4 KiB to 1 MiB",
        ));
    }
    if opts.version > 6 {
        return Err(Error::Unsupported("kdump header versions above 6"));
    }
    let shift = bs.trailing_zeros();
    let e = opts.endian.unwrap_or(info.endian);
    let is64 = opts.is64.unwrap_or(info.arch != Some(Arch::I386));
    let layout = match (is64, opts.padded32) {
        (true, _) => SubHeaderLayout::Bits64,
        (false, false) => SubHeaderLayout::Packed32,
        (false, true) => SubHeaderLayout::Padded32,
    };
    let version = opts.version;

    // Which PFNs exist (1st bitmap) and which are candidates to save.
    let max_pfn = ranges
        .iter()
        .filter(|r| r.len > 0)
        .map(|r| r.end().div_ceil(bs))
        .max()
        .unwrap_or(0);
    if max_pfn > MAX_PFN_LIMIT {
        return Err(Error::Unsupported("memory beyond 2^40 pages"));
    }
    if version < 6 && max_pfn > u64::from(u32::MAX) {
        return Err(Error::Unsupported(
            "more than 2^32 pages need kdump header version 6",
        ));
    }
    let nwords = max_pfn.div_ceil(64) as usize;
    let mut present = vec![0u64; nwords];
    let ranges = union(ranges);
    for r in &ranges {
        let first = r.start >> shift;
        let last = (r.end() - 1) >> shift;
        for pfn in first..=last {
            set_bit(&mut present, pfn, true);
        }
    }
    let mut dumpable = present.clone();
    if let Some(keep) = &opts.keep {
        for (i, w) in dumpable.iter_mut().enumerate() {
            let mut bits = *w;
            while bits != 0 {
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                if !keep(i as u64 * 64 + u64::from(b)) {
                    *w &= !(1u64 << b);
                }
            }
        }
    }
    let candidates: u64 = dumpable.iter().map(|w| u64::from(w.count_ones())).sum();

    // Sub-header area: the sub header, then notes (v4+) or the raw
    // VMCOREINFO text (v3).
    let sub_size = layout.size() as u64;
    let vmci = vmcoreinfo_text(info);
    let (notes, vmci_in_notes) = match &opts.notes {
        Some(n) => (n.clone(), None),
        None => make_notes(info, e, vmci.as_deref()),
    };
    let area_start = bs + sub_size;
    let (note_loc, vmci_loc) = if version >= 4 {
        let n = (!notes.is_empty()).then_some((area_start, notes.len() as u64));
        let v = match (vmci_in_notes, &vmci) {
            (Some(at), Some(t)) => Some((area_start + at as u64, t.len() as u64)),
            _ => None,
        };
        (n, v)
    } else if version == 3 {
        (None, vmci.as_ref().map(|t| (area_start, t.len() as u64)))
    } else {
        (None, None)
    };
    let area_end = if version >= 4 {
        area_start + notes.len() as u64
    } else if version == 3 {
        area_start + vmci.as_ref().map_or(0, |t| t.len() as u64)
    } else {
        area_start
    };
    let sub_hdr_size = if version >= 1 {
        (area_end - bs).div_ceil(bs)
    } else {
        0
    };
    let bitmap_half = max_pfn.div_ceil(8).div_ceil(bs).max(1);
    let bitmap_blocks = 2 * bitmap_half;
    if sub_hdr_size > u64::from(u32::MAX >> 1) || bitmap_blocks > u64::from(u32::MAX) {
        return Err(Error::Unsupported("kdump headers too large"));
    }
    let bitmap_start = (1 + sub_hdr_size) * bs;
    let data_offset = bitmap_start + bitmap_blocks * bs;
    let zero_page = data_offset + candidates * PAGE_DESC_SIZE;
    let mut data_pos = zero_page + bs;

    // Pages.
    let mut s = WriteSummary::default();
    let mut page = vec![0u8; bs as usize];
    let mut descs: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut desc_at = data_offset;
    let mut d = Out {
        b: vec![0u8; 24],
        e,
    };
    let to_write: u64 = dumpable.iter().map(|w| u64::from(w.count_ones())).sum();
    for i in 0..nwords {
        if let (Some(p), true) = (&opts.progress, i % 16 == 0) {
            p(s.pages, to_write);
        }
        let mut bits = dumpable[i];
        while bits != 0 {
            let b = bits.trailing_zeros();
            bits &= bits - 1;
            let pfn = i as u64 * 64 + u64::from(b);
            match read_page(mem, &ranges, pfn << shift, &mut page) {
                Ok(true) => {}
                Ok(false) => {
                    set_bit(&mut dumpable, pfn, false);
                    continue;
                }
                Err(Error::NotInMemory { .. }) => {
                    set_bit(&mut dumpable, pfn, false);
                    set_bit(&mut present, pfn, false);
                    continue;
                }
                Err(err) => return Err(err),
            }
            let (off, size, flag) = if page.iter().all(|&x| x == 0) {
                s.zero_pages += 1;
                (zero_page, bs, 0)
            } else {
                let at = data_pos;
                match codec::compress(opts.compression, &page) {
                    Some(z) => {
                        sink.write_at(at, &z)?;
                        data_pos += z.len() as u64;
                        s.compressed += 1;
                        (at, z.len() as u64, opts.compression.flag())
                    }
                    None => {
                        sink.write_at(at, &page)?;
                        data_pos += bs;
                        s.raw += 1;
                        (at, bs, 0)
                    }
                }
            };
            d.put(0, off, 8);
            d.put(8, size, 4);
            d.put(12, u64::from(flag), 4);
            d.put(16, 0, 8);
            descs.extend_from_slice(&d.b);
            s.pages += 1;
            if descs.len() >= 64 << 10 {
                sink.write_at(desc_at, &descs)?;
                desc_at += descs.len() as u64;
                descs.clear();
            }
        }
    }
    if !descs.is_empty() {
        sink.write_at(desc_at, &descs)?;
    }
    if let Some(p) = &opts.progress {
        p(s.pages, to_write);
    }
    sink.write_at(zero_page, &vec![0u8; bs as usize])?;
    let ram: u64 = present.iter().map(|w| u64::from(w.count_ones())).sum();
    s.excluded = ram - s.pages;
    s.file_size = data_pos;

    // Bitmaps.
    let half = (bitmap_half * bs) as usize;
    sink.write_at(bitmap_start, &bitmap_bytes(&present, half))?;
    sink.write_at(bitmap_start + half as u64, &bitmap_bytes(&dumpable, half))?;

    // Sub-header area.
    if version >= 1 {
        let mut sub = Out {
            b: vec![0u8; sub_size as usize],
            e,
        };
        let w = if is64 { 8 } else { 4 };
        let phys_base = info.vmcoreinfo.as_ref().and_then(|v| match info.arch {
            Some(Arch::X86_64) => v.number("phys_base"),
            Some(Arch::Aarch64) => v.number("PHYS_OFFSET"),
            _ => None,
        });
        let (vi_off, vi_size, note_off, note_size, erase_off, erase_size, start64) = match layout {
            SubHeaderLayout::Bits64 => (32, 40, 48, 56, 64, 72, 80),
            SubHeaderLayout::Packed32 => (20, 28, 32, 40, 44, 52, 56),
            SubHeaderLayout::Padded32 => (24, 32, 40, 48, 56, 64, 72),
        };
        sub.put(0, phys_base.unwrap_or(0), w);
        sub.put(w, u64::from(opts.dump_level), 4);
        if version >= 3 {
            let (o, l) = vmci_loc.unwrap_or((0, 0));
            sub.put(vi_off, o, 8);
            sub.put(vi_size, l, w);
        }
        if version >= 4 {
            let (o, l) = note_loc.unwrap_or((0, 0));
            sub.put(note_off, o, 8);
            sub.put(note_size, l, w);
        }
        if version >= 5 {
            sub.put(erase_off, 0, 8);
            sub.put(erase_size, 0, w);
        }
        if version >= 6 {
            sub.put(start64, 0, 8);
            sub.put(start64 + 8, 0, 8);
            sub.put(start64 + 16, max_pfn, 8);
        }
        let mut area = sub.b;
        if version >= 4 {
            area.extend_from_slice(&notes);
        } else if version == 3 {
            area.extend_from_slice(vmci.as_deref().unwrap_or_default());
        }
        area.resize((sub_hdr_size * bs) as usize, 0);
        sink.write_at(bs, &area)?;
    }

    // Main header.
    let mut h = Out {
        b: vec![0u8; bs as usize],
        e,
    };
    h.bytes(0, KDUMP_SIGNATURE);
    h.put(8, u64::from(version), 4);
    let uts = |h: &mut Out, off: usize, s: &str| {
        let b = s.as_bytes();
        h.bytes(off, &b[..b.len().min(64)]);
    };
    uts(&mut h, 12, "Linux");
    uts(&mut h, 77, &opts.nodename);
    let release = info
        .release
        .as_deref()
        .or_else(|| info.vmcoreinfo.as_ref().and_then(|v| v.osrelease()))
        .unwrap_or("");
    uts(&mut h, 142, release);
    uts(
        &mut h,
        272,
        opts.machine.as_deref().unwrap_or(machine(info.arch)),
    );
    let base = if is64 { 424 } else { 412 };
    let status = opts.compression.flag();
    h.put(base, u64::from(status), 4);
    h.put(base + 4, bs, 4);
    h.put(base + 8, sub_hdr_size, 4);
    h.put(base + 12, bitmap_blocks, 4);
    h.put(base + 16, max_pfn.min(u64::from(u32::MAX)), 4);
    h.put(base + 20, ram.min(u64::from(u32::MAX)), 4);
    h.put(base + 24, 0, 4);
    h.put(base + 28, s.pages.min(u64::from(u32::MAX)), 4);
    h.put(base + 32, 0, 4);
    h.put(base + 36, info.cpus.len().max(1) as u64, 4);
    sink.write_at(0, &h.b)?;
    Ok(s)
}
