//! Linux kdump-compressed dumps ("KDUMP   ": makedumpfile, QEMU
//! `dump-guest-memory -z/-l/-s`), plain or flattened (FORMATS.md §1).
//!
//! Opening reads the headers, both bitmaps and the notes, and builds a
//! prefix-popcount rank index over the 2nd ("dumpable") bitmap: one count
//! per 512 PFNs, so finding a page's descriptor costs at most eight
//! popcounts and one 24-byte read. The page data is never scanned.
//!
//! With `std`, decompressed pages are cached (4 MiB, at least 128 pages;
//! 4-way set-associative by descriptor, so pages sharing stored data share
//! an entry), and reads that
//! continue the previous one, in the descriptor table or in the page data,
//! go through a read-ahead window that doubles up to 6 KiB of descriptors
//! or 128 KiB of data: a sequential scan costs about one `pread` per
//! window instead of two per page, while random reads stay one 24-byte and
//! one stored-size read. Pages read whole by such a scan are not cached
//! (measurements: `benches/README.md`).
//!
//! Page states:
//! - 1st bitmap clear: a hole → [`Error::NotInMemory`];
//! - 1st set, 2nd clear: left out by filtering (`makedumpfile -d`), or in
//!   another part of a split dump → [`Error::Excluded`];
//! - 2nd set: read through its page descriptor (raw, zlib, LZO, snappy or
//!   zstd; see [`crate::codec`]).
//!
//! Incomplete dumps (`status` bit 0x8, makedumpfile ran out of space): a
//! page whose descriptor is zero (offset 0), lies past the end of the file,
//! or whose data lies past the end of the file was lost, and reads as
//! [`Error::Excluded`] (the page existed but the dump does not hold it).
//! In a dump not marked incomplete the same descriptors are
//! [`Error::Malformed`].
//!
//! The header layout (32- or 64-bit `struct timeval`, byte order) is chosen
//! as libkdumpfile does (§1.3): the first of the four candidates, tried in
//! the order `utsname.machine` suggests, whose block size is a power of two
//! in 4 KiB..=1 MiB and whose bitmap can describe `max_mapnr`. Only the
//! sub-header fields that `header_version` defines are read.
//!
//! QEMU leaves the header's utsname empty except `machine` (and writes
//! "Unknown" there for arm64 guests); the kernel release and, when
//! `machine` names no architecture, the architecture then come from
//! VMCOREINFO, with a remark in [`DumpInfo::remarks`]. QEMU's arm64 dumps
//! also use 64 KiB blocks for a 4 KiB-page kernel: [`DumpInfo::page_size`]
//! is then VMCOREINFO's PAGESIZE (the kernel's), while PFNs and
//! [`KdumpDump::block_size`] stay in blocks.

use crate::codec::{self, Compression};
use crate::dump::{Arch, Dump, DumpInfo};
use crate::flat::{self, FlatReader};
use crate::notes::{self, Notes};
use crate::{ReadAt, Result, VmCoreInfo};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Endian, Error, MapRange, PhysAddr, PhysRead};

/// The signature at offset 0.
pub const KDUMP_SIGNATURE: &[u8; 8] = b"KDUMP   ";
/// `status`: zlib was used.
pub const STATUS_ZLIB: u32 = 0x1;
/// `status`: LZO was used.
pub const STATUS_LZO: u32 = 0x2;
/// `status`: snappy was used.
pub const STATUS_SNAPPY: u32 = 0x4;
/// `status`: the dump was cut short (makedumpfile ran out of space).
pub const STATUS_INCOMPLETE: u32 = 0x8;
/// `status`: unused vmemmap pages were excluded.
pub const STATUS_EXCLUDED_VMEMMAP: u32 = 0x10;
/// `status`: zstd was used.
pub const STATUS_ZSTD: u32 = 0x20;
/// Size of a page descriptor.
pub const PAGE_DESC_SIZE: u64 = 24;
/// Smallest and largest block size accepted.
pub const BLOCK_SIZE_RANGE: core::ops::RangeInclusive<u64> = 4096..=(1 << 20);
/// Largest PFN count accepted (52 physical address bits of 4 KiB pages).
pub const MAX_PFN_LIMIT: u64 = 1 << 40;
/// Largest note buffer read.
const MAX_NOTES: u64 = 16 << 20;
/// PFNs per rank-index entry (eight 64-bit words).
const RANK_BLOCK: u64 = 512;
/// Bytes of decompressed pages kept (std only).
const CACHE_BYTES: u64 = 4 << 20;
/// Largest read-ahead of the descriptor table (256 descriptors).
const DESC_WINDOW: usize = 256 * PAGE_DESC_SIZE as usize;
/// Largest read-ahead of page data.
const DATA_WINDOW: usize = 128 << 10;

/// Which of the three `kdump_sub_header` layouts the file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubHeaderLayout {
    /// 64-bit targets (104 bytes).
    Bits64,
    /// 32-bit targets with 4-byte-aligned 64-bit fields (i386; 80 bytes).
    Packed32,
    /// 32-bit targets with 8-byte-aligned 64-bit fields (arm; 96 bytes).
    Padded32,
}

/// Field positions of one sub-header layout: (offset, size).
struct SubFields {
    phys_base: (usize, usize),
    dump_level: usize,
    split: usize,
    start_pfn: (usize, usize),
    end_pfn: (usize, usize),
    vmcoreinfo: (usize, (usize, usize)),
    note: (usize, (usize, usize)),
    eraseinfo: (usize, (usize, usize)),
    start_pfn_64: usize,
    end_pfn_64: usize,
    max_mapnr_64: usize,
}

impl SubHeaderLayout {
    /// The size of the structure.
    pub fn size(self) -> usize {
        match self {
            SubHeaderLayout::Bits64 => 104,
            SubHeaderLayout::Packed32 => 80,
            SubHeaderLayout::Padded32 => 96,
        }
    }

    fn fields(self) -> SubFields {
        match self {
            SubHeaderLayout::Bits64 => SubFields {
                phys_base: (0, 8),
                dump_level: 8,
                split: 12,
                start_pfn: (16, 8),
                end_pfn: (24, 8),
                vmcoreinfo: (32, (40, 8)),
                note: (48, (56, 8)),
                eraseinfo: (64, (72, 8)),
                start_pfn_64: 80,
                end_pfn_64: 88,
                max_mapnr_64: 96,
            },
            SubHeaderLayout::Packed32 => SubFields {
                phys_base: (0, 4),
                dump_level: 4,
                split: 8,
                start_pfn: (12, 4),
                end_pfn: (16, 4),
                vmcoreinfo: (20, (28, 4)),
                note: (32, (40, 4)),
                eraseinfo: (44, (52, 4)),
                start_pfn_64: 56,
                end_pfn_64: 64,
                max_mapnr_64: 72,
            },
            SubHeaderLayout::Padded32 => SubFields {
                phys_base: (0, 4),
                dump_level: 4,
                split: 8,
                start_pfn: (12, 4),
                end_pfn: (16, 4),
                vmcoreinfo: (24, (32, 4)),
                note: (40, (48, 4)),
                eraseinfo: (56, (64, 4)),
                start_pfn_64: 72,
                end_pfn_64: 80,
                max_mapnr_64: 88,
            },
        }
    }
}

/// The `kdump_sub_header`; fields the header version does not define are
/// `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KdumpSubHeader {
    /// `phys_base` (x86-64 relocation; QEMU: PHYS_OFFSET on arm64).
    pub phys_base: u64,
    /// makedumpfile's `-d` level (QEMU: 1).
    pub dump_level: u32,
    /// Non-zero when this file is one part of a split dump (v2+).
    pub split: Option<u32>,
    /// First PFN of this part, 32-bit-era field (v2+).
    pub start_pfn: Option<u64>,
    /// End PFN of this part, 32-bit-era field (v2+).
    pub end_pfn: Option<u64>,
    /// File offset and size of the VMCOREINFO text (v3+).
    pub vmcoreinfo: Option<(u64, u64)>,
    /// File offset and size of the ELF note buffer (v4+).
    pub note: Option<(u64, u64)>,
    /// File offset and size of the eraseinfo text (v5+).
    pub eraseinfo: Option<(u64, u64)>,
    /// First PFN of this part (v6+).
    pub start_pfn_64: Option<u64>,
    /// End PFN of this part (v6+).
    pub end_pfn_64: Option<u64>,
    /// Highest PFN + 1 (v6+), replacing the main header's `max_mapnr`.
    pub max_mapnr_64: Option<u64>,
}

/// The main header (`disk_dump_header`) and the sub header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KdumpHeader {
    /// `header_version`.
    pub version: u32,
    /// Byte order of the dumped machine.
    pub endian: Endian,
    /// The 64-bit layout (464 bytes) rather than the 32-bit one (452).
    pub is64: bool,
    /// `utsname.sysname`.
    pub sysname: String,
    /// `utsname.nodename`.
    pub nodename: String,
    /// `utsname.release` (empty in QEMU dumps).
    pub release: String,
    /// `utsname.version`.
    pub uts_version: String,
    /// `utsname.machine`.
    pub machine: String,
    /// `utsname.domainname`.
    pub domainname: String,
    /// `timestamp.tv_sec`.
    pub timestamp_sec: i64,
    /// `timestamp.tv_usec`.
    pub timestamp_usec: i64,
    /// `status` flags (`STATUS_*`).
    pub status: u32,
    /// Page size of the dump's PFNs.
    pub block_size: u32,
    /// Blocks of the sub-header area.
    pub sub_hdr_size: u32,
    /// Blocks of both bitmaps together.
    pub bitmap_blocks: u32,
    /// Highest PFN + 1 (truncated to 32 bits; see the sub header in v6).
    pub max_mapnr: u32,
    /// Informational.
    pub total_ram_blocks: u32,
    /// Informational.
    pub device_blocks: u32,
    /// Informational.
    pub written_blocks: u32,
    /// The CPU that handled the crash.
    pub current_cpu: u32,
    /// Number of CPUs.
    pub nr_cpus: u32,
    /// The sub header (version 1 and later) and its layout.
    pub sub: Option<(SubHeaderLayout, KdumpSubHeader)>,
}

/// What a kdump file says about one PFN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageState {
    /// No memory there (1st bitmap clear).
    Hole,
    /// Memory the dump left out (1st bitmap set, 2nd clear), or lost in
    /// an incomplete dump.
    Excluded,
    /// Saved: the value is the page's descriptor index.
    Dumpable(u64),
}

/// One page descriptor (`page_desc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageDesc {
    /// File offset (logical, for flattened files) of the stored bytes.
    pub offset: u64,
    /// Stored length.
    pub size: u32,
    /// Compression flags.
    pub flags: u32,
    /// `page_flags` (informational).
    pub page_flags: u64,
}

/// The file under a kdump: plain, or flattened and rebuilt in place.
#[derive(Debug)]
enum Source<R> {
    Plain(R),
    Flat(FlatReader<R>),
}

impl<R: ReadAt> ReadAt for Source<R> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        match self {
            Source::Plain(r) => r.read_at(off, buf),
            Source::Flat(f) => f.read_at(off, buf),
        }
    }
    fn size(&self) -> u64 {
        match self {
            Source::Plain(r) => r.size(),
            Source::Flat(f) => f.size(),
        }
    }
}

/// A kdump-compressed dump (plain or flattened) as physical memory.
pub struct KdumpDump<R> {
    file: Source<R>,
    info: DumpInfo,
    header: KdumpHeader,
    block_size: u64,
    shift: u32,
    max_pfn: u64,
    /// 1st bitmap as words (empty for single-bitmap dumps).
    present: Vec<u64>,
    /// 2nd bitmap as words, limited to this part of a split dump.
    dumpable: Vec<u64>,
    /// Set bits of `dumpable` before each block of eight words.
    rank: Vec<u64>,
    data_offset: u64,
    /// Descriptors actually in the file (less than the dumpable pages
    /// only in incomplete dumps).
    descs: u64,
    dumpable_pages: u64,
    ranges: Vec<MapRange>,
    /// Page cache and read-ahead, shared by all readers (std only).
    #[cfg(feature = "std")]
    state: std::sync::Mutex<ReadState>,
}

impl<R> core::fmt::Debug for KdumpDump<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KdumpDump")
            .field("format", &self.info.format)
            .field("version", &self.header.version)
            .field("block_size", &self.block_size)
            .field("max_pfn", &self.max_pfn)
            .field("dumpable_pages", &self.dumpable_pages)
            .finish_non_exhaustive()
    }
}

/// Reads fixed fields in one byte order; out of range reads as 0 (callers
/// check lengths first).
#[derive(Clone, Copy)]
struct Fields<'a> {
    b: &'a [u8],
    e: Endian,
}

impl Fields<'_> {
    fn get(&self, off: usize, len: usize) -> Option<u64> {
        let src = self.b.get(off..off.checked_add(len)?)?;
        let mut a = [0u8; 8];
        match self.e {
            Endian::Little => a.get_mut(..len)?.copy_from_slice(src),
            Endian::Big => a.get_mut(8 - len..)?.copy_from_slice(src),
        }
        Some(self.e.u64(a))
    }
    fn u32(&self, off: usize) -> u32 {
        self.get(off, 4).unwrap_or(0) as u32
    }
    fn u64(&self, off: usize) -> u64 {
        self.get(off, 8).unwrap_or(0)
    }
}

/// A NUL-terminated string in a fixed 65-byte utsname field.
fn uts(b: &[u8], off: usize) -> String {
    let f = b.get(off..off + 65).unwrap_or_default();
    let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

/// (64-bit?, byte order) suggested by `utsname.machine`.
fn machine_hint(m: &str) -> (Option<bool>, Option<Endian>) {
    use Endian::{Big, Little};
    match m {
        "x86_64" | "aarch64" | "arm64" | "ppc64le" | "riscv64" | "loongarch64" | "mips64el"
        | "ia64" | "alpha" => (Some(true), Some(Little)),
        "ppc64" | "s390x" | "sparc64" | "mips64" | "aarch64_be" => (Some(true), Some(Big)),
        "i386" | "i486" | "i586" | "i686" | "riscv32" | "mipsel" | "ppcle" => {
            (Some(false), Some(Little))
        }
        "ppc" | "s390" | "mips" | "sparc" | "m68k" => (Some(false), Some(Big)),
        _ if m.starts_with("armv") && m.ends_with('b') => (Some(false), Some(Big)),
        _ if m.starts_with("arm") => (Some(false), Some(Little)),
        _ => (None, None),
    }
}

/// The architecture a `utsname.machine` names, including ones without a
/// walker (as their ELF `e_machine`).
fn arch_from_machine(m: &str) -> Option<Arch> {
    if let Some(a) = Arch::from_uname(m) {
        return Some(a);
    }
    let em = match m {
        "ppc64" | "ppc64le" => 21,
        "ppc" | "ppcle" => 20,
        "s390x" | "s390" => 22,
        "riscv64" | "riscv32" => 243,
        "loongarch64" => 258,
        "mips" | "mipsel" | "mips64" | "mips64el" => 8,
        "sparc64" => 43,
        "ia64" => 50,
        _ if m.starts_with("arm") => 40,
        _ => return None,
    };
    Some(Arch::Other(em))
}

/// The architecture VMCOREINFO implies (for headers that do not say).
fn arch_from_vmcoreinfo(v: &VmCoreInfo) -> Option<Arch> {
    if v.number("kimage_voffset").is_some() {
        return Some(Arch::Aarch64);
    }
    if v.symbol("init_top_pgt").is_some() || v.symbol("init_level4_pgt").is_some() {
        return Some(Arch::X86_64);
    }
    if v.get("CONFIG_X86_PAE").is_some() {
        return Some(Arch::I386);
    }
    None
}

/// Parses the main header, choosing the layout (FORMATS.md §1.3): the
/// first candidate whose block size is a power of two in
/// [`BLOCK_SIZE_RANGE`], whose bitmap can describe `max_mapnr`, whose
/// version is below 0x10000 and whose bitmaps end within `file_size`.
pub fn parse_header(b: &[u8], file_size: u64) -> Result<KdumpHeader> {
    if b.len() < 452 {
        return Err(Error::Malformed("kdump header truncated"));
    }
    if b.get(..8) != Some(&KDUMP_SIGNATURE[..]) {
        return Err(Error::Malformed("kdump signature missing"));
    }
    let machine = uts(b, 272);
    let (w, e) = machine_hint(&machine);
    let w = w.unwrap_or(true);
    let e = e.unwrap_or(Endian::Little);
    let other = |e| match e {
        Endian::Little => Endian::Big,
        Endian::Big => Endian::Little,
    };
    for is64 in [w, !w] {
        if is64 && b.len() < 464 {
            continue;
        }
        for endian in [e, other(e)] {
            let f = Fields { b, e: endian };
            let base = if is64 { 424 } else { 412 };
            let version = f.u32(8);
            let block_size = u64::from(f.u32(base + 4));
            let bitmap_blocks = u64::from(f.u32(base + 12));
            let max_mapnr = u64::from(f.u32(base + 16));
            if version > 0xffff
                || !block_size.is_power_of_two()
                || !BLOCK_SIZE_RANGE.contains(&block_size)
            {
                continue;
            }
            // With block_size <= 2^20 and 32-bit counts, no overflow.
            let bits = bitmap_blocks * block_size * 8;
            let sub_blocks = u64::from(f.u32(base + 8));
            let data_offset = (1 + sub_blocks + bitmap_blocks) * block_size;
            if bits < max_mapnr || data_offset > file_size {
                continue;
            }
            let (sec, usec) = if is64 {
                (f.u64(408) as i64, f.u64(416) as i64)
            } else {
                (i64::from(f.u32(404) as i32), i64::from(f.u32(408) as i32))
            };
            return Ok(KdumpHeader {
                version,
                endian,
                is64,
                sysname: uts(b, 12),
                nodename: uts(b, 77),
                release: uts(b, 142),
                uts_version: uts(b, 207),
                machine,
                domainname: uts(b, 337),
                timestamp_sec: sec,
                timestamp_usec: usec,
                status: f.u32(base),
                block_size: block_size as u32,
                sub_hdr_size: f.u32(base + 8),
                bitmap_blocks: bitmap_blocks as u32,
                max_mapnr: max_mapnr as u32,
                total_ram_blocks: f.u32(base + 20),
                device_blocks: f.u32(base + 24),
                written_blocks: f.u32(base + 28),
                current_cpu: f.u32(base + 32),
                nr_cpus: f.u32(base + 36),
                sub: None,
            });
        }
    }
    Err(Error::Malformed(
        "kdump header: no layout gives a power-of-two block size, a bitmap large enough for max_mapnr and bitmaps inside the file",
    ))
}

/// Parses the sub header `b` (read at file offset `block_size`) for
/// `version`; `bitmap_start` decides between the two 32-bit layouts.
fn parse_sub_header(
    b: &[u8],
    h: &KdumpHeader,
    bitmap_start: u64,
) -> Result<(SubHeaderLayout, KdumpSubHeader)> {
    let v = h.version;
    let trunc = Error::Malformed("kdump sub header truncated");
    let layout = if h.is64 {
        SubHeaderLayout::Bits64
    } else if v >= 3 {
        // libkdumpfile's rule: packed when the packed reading of the
        // VMCOREINFO location is empty or lies between the first block and
        // the bitmaps.
        let f = Fields { b, e: h.endian };
        let off = f.get(20, 8).ok_or(trunc)?;
        let size = f.get(28, 4).ok_or(trunc)?;
        let bs = u64::from(h.block_size);
        let fits = off >= bs && off.checked_add(size).is_some_and(|end| end <= bitmap_start);
        if (off == 0 && size == 0) || fits {
            SubHeaderLayout::Packed32
        } else {
            SubHeaderLayout::Padded32
        }
    } else {
        SubHeaderLayout::Packed32
    };
    let l = layout.fields();
    let f = Fields { b, e: h.endian };
    let get = |(off, len): (usize, usize)| f.get(off, len).ok_or(trunc);
    let pair = |(off, size): (usize, (usize, usize))| -> Result<(u64, u64)> {
        Ok((get((off, 8))?, get(size)?))
    };
    let mut s = KdumpSubHeader {
        phys_base: get(l.phys_base)?,
        dump_level: get((l.dump_level, 4))? as u32,
        ..Default::default()
    };
    if v >= 2 {
        s.split = Some(get((l.split, 4))? as u32);
        s.start_pfn = Some(get(l.start_pfn)?);
        s.end_pfn = Some(get(l.end_pfn)?);
    }
    if v >= 3 {
        s.vmcoreinfo = Some(pair(l.vmcoreinfo)?);
    }
    if v >= 4 {
        s.note = Some(pair(l.note)?);
    }
    if v >= 5 {
        s.eraseinfo = Some(pair(l.eraseinfo)?);
    }
    if v >= 6 {
        s.start_pfn_64 = Some(get((l.start_pfn_64, 8))?);
        s.end_pfn_64 = Some(get((l.end_pfn_64, 8))?);
        s.max_mapnr_64 = Some(get((l.max_mapnr_64, 8))?);
    }
    Ok((layout, s))
}

/// Reads `nbits` bits of a bitmap at `off` as little-endian words.
fn read_bitmap<R: ReadAt>(f: &R, off: u64, nbits: u64) -> Result<Vec<u64>> {
    let nbytes = nbits.div_ceil(8);
    let bytes = f.read_vec_at(off, nbytes, "kdump bitmap extends past the end of the file")?;
    let mut words: Vec<u64> = bytes
        .chunks(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(a)
        })
        .collect();
    if !nbits.is_multiple_of(64) {
        if let Some(last) = words.last_mut() {
            *last &= (1u64 << (nbits % 64)) - 1;
        }
    }
    Ok(words)
}

fn bit(words: &[u64], pfn: u64) -> bool {
    usize::try_from(pfn / 64)
        .ok()
        .and_then(|i| words.get(i))
        .is_some_and(|w| w >> (pfn % 64) & 1 != 0)
}

/// Clears the bits outside `[start, end)`.
fn keep_only(words: &mut [u64], start: u64, end: u64) {
    for (i, w) in words.iter_mut().enumerate() {
        let lo = i as u64 * 64;
        let hi = lo + 64;
        if hi <= start || lo >= end {
            *w = 0;
            continue;
        }
        if lo < start {
            *w &= !0u64 << (start - lo);
        }
        if hi > end {
            *w &= (1u64 << (end - lo)) - 1;
        }
    }
}

/// Calls `f(first, count)` for each run of set bits, over at most `limit`
/// set bits in all.
fn runs(words: &[u64], limit: u64, mut f: impl FnMut(u64, u64)) {
    let mut left = limit;
    let mut cur: Option<(u64, u64)> = None;
    for (i, &w) in words.iter().enumerate() {
        let base = i as u64 * 64;
        let mut w = w;
        while w != 0 && left > 0 {
            let at = w.trailing_zeros();
            let ones = (w >> at).trailing_ones();
            let n = u64::from(ones).min(left);
            let start = base + u64::from(at);
            match &mut cur {
                Some(r) if r.0 + r.1 == start => r.1 += n,
                _ => {
                    if let Some(r) = cur.take() {
                        f(r.0, r.1);
                    }
                    cur = Some((start, n));
                }
            }
            left -= n;
            w = if at + ones >= 64 {
                0
            } else {
                w & (!0u64 << (at + ones))
            };
        }
        if left == 0 {
            break;
        }
    }
    if let Some(r) = cur {
        f(r.0, r.1);
    }
}

impl<R: ReadAt> KdumpDump<R> {
    /// Opens a kdump-compressed file, plain or flattened (detected by the
    /// "makedumpfile" signature).
    pub fn open(file: R) -> Result<Self> {
        let (file, format, budget) = if flat::is_flattened(&file)? {
            let f = FlatReader::open(file)?;
            let stored = f.stream_size();
            (Source::Flat(f), "kdump-flattened", stored)
        } else {
            let size = file.size();
            (Source::Plain(file), "kdump", size)
        };
        Self::open_source(file, format, budget)
    }

    fn open_source(file: Source<R>, format: &'static str, budget: u64) -> Result<Self> {
        let size = file.size();
        let mut hb = [0u8; 464];
        let n = file.read_at(0, &mut hb)?;
        if n < 8 || hb[..8] != KDUMP_SIGNATURE[..] {
            return Err(Error::Malformed("kdump signature missing"));
        }
        let mut header = parse_header(&hb[..n], size)?;
        let bs = u64::from(header.block_size);
        let shift = bs.trailing_zeros();
        let mut info = DumpInfo::new(format, header.endian);
        let past_end = Error::Malformed("kdump bitmaps extend past the end of the file");
        let bitmap_start = (1 + u64::from(header.sub_hdr_size))
            .checked_mul(bs)
            .ok_or(past_end)?;
        let bitmap_len = u64::from(header.bitmap_blocks) * bs;
        let data_offset = bitmap_start.checked_add(bitmap_len).ok_or(past_end)?;
        if data_offset > size {
            return Err(past_end);
        }
        if header.version > 6 {
            info.remarks.push(format!(
                "kdump header_version {} is newer than 6: only the version-6 fields are read",
                header.version
            ));
        }
        if header.version >= 1 {
            if header.sub_hdr_size == 0 {
                return Err(Error::Malformed(
                    "kdump header version 1 or later without a sub header",
                ));
            }
            let mut sb = [0u8; 104];
            let n = file.read_at(bs, &mut sb)?;
            header.sub = Some(parse_sub_header(&sb[..n], &header, bitmap_start)?);
        }
        let sub = header.sub.as_ref().map(|s| &s.1);

        // How many PFNs the bitmaps describe.
        let mut max_pfn = u64::from(header.max_mapnr);
        if let Some(m64) = sub.and_then(|s| s.max_mapnr_64) {
            if m64 < max_pfn {
                return Err(Error::Malformed(
                    "kdump max_mapnr_64 is smaller than the header's max_mapnr",
                ));
            }
            max_pfn = m64;
        }
        if max_pfn > MAX_PFN_LIMIT {
            return Err(Error::Malformed("kdump max_mapnr beyond 2^40 pages"));
        }
        let capacity = bitmap_len * 8;
        if max_pfn > capacity {
            info.remarks.push(format!(
                "kdump max_mapnr {max_pfn:#x} exceeds what the bitmap describes; lowered to {capacity:#x}"
            ));
            max_pfn = capacity;
        }
        let two = max_pfn <= capacity / 2;
        let nbytes = max_pfn.div_ceil(8);
        if nbytes.saturating_mul(if two { 2 } else { 1 }) > budget {
            return Err(Error::Malformed(
                "kdump bitmaps larger than the data the file holds",
            ));
        }
        let mut dumpable = read_bitmap(
            &file,
            bitmap_start + if two { bitmap_len / 2 } else { 0 },
            max_pfn,
        )?;
        let present = if two {
            read_bitmap(&file, bitmap_start, max_pfn)?
        } else {
            info.remarks
                .push("single-bitmap kdump: excluded pages cannot be told from holes".into());
            Vec::new()
        };

        // A part of a split dump holds only its PFN range.
        let split = sub.and_then(|s| s.split).unwrap_or(0) != 0;
        if split {
            let s = sub.ok_or(Error::Malformed("kdump split flag without a sub header"))?;
            let (start, end) = if header.version >= 6 {
                (s.start_pfn_64.unwrap_or(0), s.end_pfn_64.unwrap_or(0))
            } else {
                (s.start_pfn.unwrap_or(0), s.end_pfn.unwrap_or(0))
            };
            if start >= end || end > max_pfn {
                return Err(Error::Malformed(
                    "kdump split part with an empty or out-of-range PFN range",
                ));
            }
            keep_only(&mut dumpable, start, end);
            info.remarks.push(format!(
                "one part of a split kdump: PFNs {start:#x}..{end:#x}; the others read as excluded"
            ));
        }

        // Rank index: set bits before each block of eight words.
        let mut rank = Vec::with_capacity(dumpable.len().div_ceil(8));
        let mut count = 0u64;
        for chunk in dumpable.chunks(8) {
            rank.push(count);
            count += chunk.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
        }
        let incomplete = header.status & STATUS_INCOMPLETE != 0;
        let table = count * PAGE_DESC_SIZE;
        let descs = if incomplete {
            info.incomplete = true;
            info.remarks.push(
                "incomplete kdump (makedumpfile ran out of space): lost pages read as excluded"
                    .into(),
            );
            let room = (size - data_offset) / PAGE_DESC_SIZE;
            count.min(room).min(budget / PAGE_DESC_SIZE)
        } else {
            if table > budget || data_offset.checked_add(table).is_none_or(|e| e > size) {
                return Err(Error::Malformed(
                    "kdump page descriptor table extends past the end of the file",
                ));
            }
            count
        };
        let mut ranges = Vec::new();
        let mut next_rank = 0u64;
        runs(&dumpable, descs, |first, n| {
            ranges.push(MapRange {
                start: first << shift,
                len: n << shift,
                value: next_rank,
            });
            next_rank += n;
        });

        read_metadata(&file, &header, &mut info)?;
        Ok(KdumpDump {
            file,
            info,
            header,
            block_size: bs,
            shift,
            max_pfn,
            present,
            dumpable,
            rank,
            data_offset,
            descs,
            dumpable_pages: count,
            ranges,
            #[cfg(feature = "std")]
            state: std::sync::Mutex::new(ReadState::new(bs)),
        })
    }
}

/// Reads VMCOREINFO and the notes, and fills in `info` from the header and
/// from them.
fn read_metadata<R: ReadAt>(file: &R, h: &KdumpHeader, info: &mut DumpInfo) -> Result<()> {
    let sub = h.sub.as_ref().map(|s| &s.1);
    info.arch = arch_from_machine(&h.machine);
    if !h.release.is_empty() {
        info.release = Some(h.release.clone());
    }
    let notes = match sub.and_then(|s| s.note).filter(|n| n.1 > 0) {
        Some((off, size)) => {
            if size > MAX_NOTES {
                return Err(Error::Malformed("kdump note buffer larger than 16 MiB"));
            }
            Some(file.read_vec_at(off, size, "kdump notes extend past the end of the file")?)
        }
        None => None,
    };
    let mut vmcoreinfo = match sub.and_then(|s| s.vmcoreinfo).filter(|v| v.1 > 0) {
        Some((off, size)) => {
            if size > crate::vmcoreinfo::MAX_LEN as u64 {
                return Err(Error::Malformed("kdump VMCOREINFO larger than 1 MiB"));
            }
            let text = file.read_vec_at(
                off,
                size,
                "kdump VMCOREINFO extends past the end of the file",
            )?;
            Some(VmCoreInfo::parse(&text)?)
        }
        None => None,
    };
    if vmcoreinfo.is_none() {
        // Look for the VMCOREINFO note, to learn the architecture before
        // the CPU notes are parsed.
        for note in Notes::new(notes.as_deref().unwrap_or_default(), h.endian) {
            let note = note?;
            if note.name == b"VMCOREINFO" && note.kind == 0 {
                vmcoreinfo = Some(VmCoreInfo::parse(note.desc)?);
            }
        }
    }
    if info.arch.is_none() {
        if let Some(a) = vmcoreinfo.as_ref().and_then(arch_from_vmcoreinfo) {
            info.arch = Some(a);
            info.remarks.push(format!(
                "the kdump header's utsname.machine ({:?}) names no architecture (QEMU); {} inferred from VMCOREINFO",
                h.machine,
                a.name()
            ));
        }
    }
    info.vmcoreinfo = vmcoreinfo;
    info.page_size = Some(u64::from(h.block_size));
    if let Some(n) = &notes {
        notes::read_notes(info, n)?;
    }
    let Some(v) = info.vmcoreinfo.as_ref() else {
        return Ok(());
    };
    if info.release.is_none() {
        if let Some(r) = v.osrelease() {
            info.release = Some(r.into());
            info.remarks.push(
                "the kdump header leaves utsname.release empty (QEMU); kernel release taken from VMCOREINFO"
                    .into(),
            );
        }
    }
    if let Some(p) = v.page_size().filter(|&p| p != u64::from(h.block_size)) {
        info.page_size = Some(p);
        info.remarks.push(format!(
            "kdump block size {} differs from the kernel's PAGESIZE {p} (VMCOREINFO); PFNs use the block size",
            h.block_size
        ));
    }
    let number = match info.arch {
        Some(Arch::X86_64) => v.number("phys_base"),
        Some(Arch::Aarch64) => v.number("PHYS_OFFSET"),
        _ => None,
    };
    if let (Some(vb), Some(s)) = (number, sub) {
        if s.phys_base != vb && s.phys_base != 0 {
            info.remarks.push(format!(
                "kdump sub-header phys_base {:#x} differs from VMCOREINFO's {vb:#x}; VMCOREINFO is used",
                s.phys_base
            ));
        }
    }
    Ok(())
}

impl<R: ReadAt> KdumpDump<R> {
    /// The main and sub headers.
    pub fn header(&self) -> &KdumpHeader {
        &self.header
    }

    /// The page size of PFNs in this file (`block_size`).
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// One past the highest PFN the bitmaps describe.
    pub fn max_pfn(&self) -> u64 {
        self.max_pfn
    }

    /// Pages whose contents the file holds (set bits of the 2nd bitmap).
    pub fn dumpable_pages(&self) -> u64 {
        self.dumpable_pages
    }

    /// Whether the file is flattened.
    pub fn is_flattened(&self) -> bool {
        matches!(self.file, Source::Flat(_))
    }

    /// What the file says about `pfn`.
    pub fn page_state(&self, pfn: u64) -> PageState {
        if pfn >= self.max_pfn {
            return PageState::Hole;
        }
        if bit(&self.dumpable, pfn) {
            let r = self.rank_of(pfn);
            return if r < self.descs {
                PageState::Dumpable(r)
            } else {
                PageState::Excluded
            };
        }
        if bit(&self.present, pfn) {
            PageState::Excluded
        } else {
            PageState::Hole
        }
    }

    /// The physical ranges of memory (1st bitmap), excluded pages
    /// included, sorted. Computed on each call.
    pub fn memory_ranges(&self) -> Vec<MapRange> {
        let words = if self.present.is_empty() {
            &self.dumpable
        } else {
            &self.present
        };
        let mut v = Vec::new();
        runs(words, u64::MAX, |first, n| {
            v.push(MapRange {
                start: first << self.shift,
                len: n << self.shift,
                value: 0,
            })
        });
        v
    }

    /// The descriptor of dumpable page number `index`; `None` for a lost
    /// page (zero descriptor, or past the end) of an incomplete dump.
    pub fn page_desc(&self, index: u64) -> Result<Option<PageDesc>> {
        self.page_desc_via(index, None)
    }

    /// [`Self::page_desc`], reading through `ahead` when given.
    fn page_desc_via(&self, index: u64, ahead: Option<&mut Streams>) -> Result<Option<PageDesc>> {
        if index >= self.descs {
            return Ok(None);
        }
        let off = index
            .checked_mul(PAGE_DESC_SIZE)
            .and_then(|o| o.checked_add(self.data_offset))
            .ok_or(Error::Malformed("kdump page descriptor offset overflows"))?;
        let mut b = [0u8; 24];
        let n = match ahead {
            Some(a) => {
                let i = a.pick(off);
                a.slots[i].read_at(&self.file, off, &mut b, DESC_WINDOW)?
            }
            None => self.file.read_at(off, &mut b)?,
        };
        if n < b.len() {
            return if self.info.incomplete {
                Ok(None)
            } else {
                Err(Error::Malformed(
                    "kdump page descriptor past the end of the file",
                ))
            };
        }
        let f = Fields {
            b: &b,
            e: self.header.endian,
        };
        let d = PageDesc {
            offset: f.u64(0),
            size: f.u32(8),
            flags: f.u32(12),
            page_flags: f.u64(16),
        };
        if d.offset == 0 {
            return if self.info.incomplete {
                Ok(None)
            } else {
                Err(Error::Malformed(
                    "kdump page descriptor with offset 0 in a dump not marked incomplete",
                ))
            };
        }
        Ok(Some(d))
    }

    /// The eraseinfo text (makedumpfile `--config`), if any.
    pub fn eraseinfo(&self) -> Result<Option<Vec<u8>>> {
        let Some((off, size)) = self
            .header
            .sub
            .as_ref()
            .and_then(|s| s.1.eraseinfo)
            .filter(|e| e.1 > 0)
        else {
            return Ok(None);
        };
        if size > MAX_NOTES {
            return Err(Error::Malformed("kdump eraseinfo larger than 16 MiB"));
        }
        self.file
            .read_vec_at(
                off,
                size,
                "kdump eraseinfo extends past the end of the file",
            )
            .map(Some)
    }

    fn rank_of(&self, pfn: u64) -> u64 {
        let block = pfn / RANK_BLOCK;
        let mut r = usize::try_from(block)
            .ok()
            .and_then(|b| self.rank.get(b))
            .copied()
            .unwrap_or(0);
        let first = (block * 8) as usize;
        let word = (pfn / 64) as usize;
        for w in self.dumpable.get(first..word).unwrap_or_default() {
            r += u64::from(w.count_ones());
        }
        let mask = (1u64 << (pfn % 64)) - 1;
        r + u64::from((self.dumpable.get(word).copied().unwrap_or(0) & mask).count_ones())
    }

    /// Locks the state shared by readers (std); none without std.
    #[cfg(feature = "std")]
    fn state(&self) -> Option<std::sync::MutexGuard<'_, ReadState>> {
        Some(self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Locks the state shared by readers (std); none without std.
    #[cfg(not(feature = "std"))]
    fn state(&self) -> Option<&'static mut ReadState> {
        None
    }

    /// Reads a raw page's bytes, through the data read-ahead when given.
    fn read_data(&self, st: Option<&mut ReadState>, off: u64, buf: &mut [u8]) -> Result<()> {
        let n = match st {
            Some(s) => {
                let i = s.data.pick(off);
                s.data.slots[i].read_at(&self.file, off, buf, DATA_WINDOW)?
            }
            None => self.file.read_at(off, buf)?,
        };
        if n < buf.len() {
            return Err(Error::Malformed("kdump page data past the end of the file"));
        }
        Ok(())
    }

    /// Fills `out` from page `pfn` starting at byte `off` of the page.
    ///
    /// With std, one lock covers the descriptor, a cache hit, or the read
    /// of the stored bytes (through read-ahead, so that sequential reads
    /// cost one `pread` per window rather than two per page); it is
    /// released while the page decompresses, and taken again to cache it.
    fn read_in_page(&self, pfn: u64, off: u64, out: &mut [u8]) -> Result<()> {
        let pa = (pfn << self.shift) + off;
        let index = match self.page_state(pfn) {
            PageState::Hole => return Err(Error::NotInMemory { pa }),
            PageState::Excluded => return Err(Error::Excluded { pa }),
            PageState::Dumpable(i) => i,
        };
        let mut st = self.state();
        let Some(d) = self.page_desc_via(index, st.as_deref_mut().map(|s| &mut s.descs))? else {
            return Err(Error::Excluded { pa });
        };
        let bs = self.block_size;
        if d.size == 0 || u64::from(d.size) > bs {
            return Err(Error::Malformed(
                "kdump page descriptor size is 0 or larger than the block size",
            ));
        }
        let c = Compression::from_flags(d.flags)?;
        if d.offset
            .checked_add(u64::from(d.size))
            .is_none_or(|e| e > self.file.size())
        {
            return if self.info.incomplete {
                Err(Error::Excluded { pa })
            } else {
                Err(Error::Malformed("kdump page data past the end of the file"))
            };
        }
        if c == Compression::None {
            if u64::from(d.size) != bs {
                return Err(Error::Malformed(
                    "kdump raw page whose size is not the block size",
                ));
            }
            return self.read_data(st.as_deref_mut(), d.offset + off, out);
        }
        if let Some(s) = st.as_deref_mut() {
            if s.cache.get(&d, off, out) {
                return Ok(());
            }
        }
        // The stored bytes: in the read-ahead window, lent out while the
        // page decompresses, or else read into the scratch buffer.
        let size = d.size as usize;
        let mut lent = None;
        let mut scratch = Vec::new();
        if let Some(s) = st.as_deref_mut() {
            let slot = s.data.pick(d.offset);
            match s.data.slots[slot].locate(&self.file, d.offset, size, DATA_WINDOW)? {
                Some(i) => lent = Some((s.data.slots[slot].lend(), i, slot)),
                None => scratch = core::mem::take(&mut s.scratch),
            }
        }
        #[allow(clippy::drop_non_drop)] // a lock guard with std
        drop(st);
        let src = match &lent {
            Some((w, i, _)) => w.buf.get(*i..*i + size).unwrap_or_default(),
            None => {
                scratch.clear();
                scratch.resize(size, 0);
                if self.file.read_at(d.offset, &mut scratch)? < size {
                    return Err(Error::Malformed("kdump page data past the end of the file"));
                }
                &scratch
            }
        };
        let whole = off == 0 && out.len() as u64 == bs;
        let mut page = Vec::new();
        if whole {
            codec::decompress(c, src, out)?;
        } else {
            page.resize(bs as usize, 0);
            codec::decompress(c, src, &mut page)?;
            let o = off as usize;
            out.copy_from_slice(page.get(o..o + out.len()).unwrap_or_default());
        }
        // A page read whole as part of a sequential scan (its bytes came
        // through the read-ahead) is not cached: the scan does not come
        // back to it, and caching it would cost a copy into a cold slot
        // and evict pages that other reads come back to.
        let scan = whole && lent.is_some();
        if let Some(s) = self.state().as_mut() {
            if !scan {
                s.cache.put(&d, if whole { out } else { &page });
            }
            match lent {
                Some((w, _, slot)) => s.data.slots[slot].give_back(w),
                None => s.scratch = scratch,
            }
        }
        Ok(())
    }
}

/// What readers share: the page cache, read-ahead of the descriptor
/// table and of the page data, and a buffer for stored bytes.
#[derive(Debug)]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
struct ReadState {
    cache: PageCache,
    descs: Streams,
    data: Streams,
    scratch: Vec<u8>,
}

/// Read-ahead for up to [`STREAMS`] interleaved sequential readers (two
/// threads scanning different tables, say): each read goes to the slot
/// whose stream it continues, else replaces the least recently used one.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
struct Streams {
    slots: [ReadAhead; STREAMS],
    used: [u64; STREAMS],
    tick: u64,
}

/// Sequential streams followed at once.
const STREAMS: usize = 2;

#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl Streams {
    /// The slot that serves a read at `off`.
    fn pick(&mut self, off: u64) -> usize {
        self.tick += 1;
        let continues = |s: &ReadAhead| {
            s.last_end == off || (off >= s.start && off - s.start < s.filled as u64)
        };
        let i = self
            .slots
            .iter()
            .position(continues)
            .unwrap_or_else(|| (0..STREAMS).min_by_key(|&i| self.used[i]).unwrap_or(0));
        self.used[i] = self.tick;
        i
    }
}

#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl ReadState {
    fn new(block_size: u64) -> Self {
        ReadState {
            cache: PageCache::new(block_size),
            descs: Streams::default(),
            data: Streams::default(),
            scratch: Vec::new(),
        }
    }
}

/// Read-ahead for one stream of reads (the descriptor table, or the page
/// data). A read that starts where the previous one ended is served from
/// a window read in one call, twice the previous size on each such
/// continuation up to a maximum; other reads go straight to the file at
/// the size asked for. So a sequential scan costs one `pread` per window,
/// while random reads (and a read crossing into one next page) cost what
/// they did.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
struct ReadAhead {
    buf: Vec<u8>,
    /// File offset of `buf[0]`; `buf[..filled]` is valid.
    start: u64,
    filled: usize,
    /// Where the previous read ended.
    last_end: u64,
    /// Consecutive reads that continued the previous one.
    streak: u32,
}

/// A read-ahead window lent out of its [`ReadAhead`].
#[derive(Debug)]
struct Lent {
    buf: Vec<u8>,
    start: u64,
    filled: usize,
}

#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl ReadAhead {
    /// Where `len` bytes at `off` lie in the window, after refilling it
    /// (at most `max` bytes) when this read continues the previous one;
    /// `None` when the read should go to the file.
    fn locate<R: ReadAt>(
        &mut self,
        file: &R,
        off: u64,
        len: usize,
        max: usize,
    ) -> Result<Option<usize>> {
        let Some(end) = off.checked_add(len as u64) else {
            return Ok(None);
        };
        self.streak = if off == self.last_end {
            self.streak.saturating_add(1)
        } else {
            0
        };
        self.last_end = end;
        if let Some(i) = off
            .checked_sub(self.start)
            .filter(|&i| i.saturating_add(len as u64) <= self.filled as u64)
        {
            return Ok(Some(i as usize));
        }
        if self.streak == 0 || len >= max {
            return Ok(None);
        }
        let want = len.saturating_mul(1 << self.streak.min(16)).min(max);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let n = file.read_at(off, &mut self.buf[..want])?;
        self.start = off;
        self.filled = n;
        Ok((n >= len).then_some(0))
    }

    /// [`ReadAt::read_at`] through the window.
    fn read_at<R: ReadAt>(
        &mut self,
        file: &R,
        off: u64,
        out: &mut [u8],
        max: usize,
    ) -> Result<usize> {
        match self.locate(file, off, out.len(), max)? {
            Some(i) => {
                out.copy_from_slice(&self.buf[i..i + out.len()]);
                Ok(out.len())
            }
            None => file.read_at(off, out),
        }
    }

    /// Lends the window out (it reads as empty meanwhile).
    fn lend(&mut self) -> Lent {
        let filled = core::mem::take(&mut self.filled);
        Lent {
            buf: core::mem::take(&mut self.buf),
            start: self.start,
            filled,
        }
    }

    /// Takes a lent window back, unless another read made a new one.
    fn give_back(&mut self, w: Lent) {
        if self.buf.is_empty() {
            self.buf = w.buf;
            self.start = w.start;
            self.filled = w.filled;
        }
    }
}

/// A cache of decompressed pages, keyed by descriptor (pages that share
/// data, like the zero page, share an entry): 4-way set-associative,
/// least recently used first out, so that a few hot pages that hash alike
/// (the blocks of a 64 KiB-block dump holding kallsyms, say) do not evict
/// each other.
#[derive(Debug)]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
struct PageCache {
    /// (descriptor, last use, page), [`WAYS`] per set.
    slots: Vec<(PageDesc, u64, Vec<u8>)>,
    /// Sets - 1 (a power of two).
    mask: usize,
    /// Use counter.
    clock: u64,
}

/// Entries per set of the [`PageCache`].
const WAYS: usize = 4;

#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl PageCache {
    fn new(block_size: u64) -> Self {
        // At least 128 entries: dumps with 64 KiB blocks (QEMU on arm64)
        // would otherwise keep only 64.
        let n = (CACHE_BYTES / block_size).clamp(128, 1024);
        let sets = 1usize << (63 - (n / WAYS as u64).leading_zeros()); // a power of two
        let empty = PageDesc {
            offset: 0,
            size: 0,
            flags: 0,
            page_flags: 0,
        };
        PageCache {
            slots: (0..sets * WAYS).map(|_| (empty, 0, Vec::new())).collect(),
            mask: sets - 1,
            clock: 0,
        }
    }

    /// The entries of `d`'s set.
    fn set(&mut self, d: &PageDesc) -> &mut [(PageDesc, u64, Vec<u8>)] {
        let set = (d.offset.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & self.mask;
        self.slots
            .get_mut(set * WAYS..set * WAYS + WAYS)
            .unwrap_or_default()
    }

    /// Whether an entry keyed `k` holds the page of descriptor `d`.
    fn holds(k: &PageDesc, d: &PageDesc) -> bool {
        k.offset == d.offset && k.size == d.size && k.flags == d.flags
    }

    fn get(&mut self, d: &PageDesc, off: u64, out: &mut [u8]) -> bool {
        self.clock += 1;
        let now = self.clock;
        let o = off as usize;
        for (k, used, page) in self.set(d) {
            if Self::holds(k, d) && !page.is_empty() {
                if let Some(src) = page.get(o..o + out.len()) {
                    out.copy_from_slice(src);
                    *used = now;
                    return true;
                }
            }
        }
        false
    }

    fn put(&mut self, d: &PageDesc, page: &[u8]) {
        self.clock += 1;
        let now = self.clock;
        // Two readers may decompress the same page at once (the lock is
        // not held meanwhile): the second replaces the first's entry.
        let set = self.set(d);
        let slot = match set.iter().position(|s| Self::holds(&s.0, d)) {
            Some(i) => set.get_mut(i),
            None => set.iter_mut().min_by_key(|s| s.1),
        };
        if let Some(s) = slot {
            s.0 = *d;
            s.1 = now;
            s.2.clear();
            s.2.extend_from_slice(page);
        }
    }
}

impl<R: ReadAt> PhysRead for KdumpDump<R> {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0usize;
        while done < buf.len() {
            let Some(at) = pa.0.checked_add(done as u64) else {
                break;
            };
            let pfn = at >> self.shift;
            let off = at & (self.block_size - 1);
            let n = usize::try_from(self.block_size - off)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            match self.read_in_page(pfn, off, &mut buf[done..done + n]) {
                Ok(()) => done += n,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        if done == 0 && !buf.is_empty() {
            return Err(Error::NotInMemory { pa: pa.0 });
        }
        Ok(done)
    }
}

impl<R: ReadAt + Send + Sync + core::fmt::Debug> Dump for KdumpDump<R> {
    fn info(&self) -> &DumpInfo {
        &self.info
    }
    /// Runs of saved pages (2nd bitmap); `value` is the descriptor index of
    /// the run's first page.
    fn ranges(&self) -> &[MapRange] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A version-1 file with one bitmap (legacy): `bits` PFNs, bitmap set
    /// where `dumpable(pfn)`, raw pages whose bytes are the PFN, zero pages
    /// sharing one stored page.
    fn single_bitmap(max_pfn: u64, dumpable: impl Fn(u64) -> bool) -> Vec<u8> {
        let bs = 4096usize;
        let bitmap_blocks = (max_pfn as usize).div_ceil(8).div_ceil(bs);
        let mut f = vec![0u8; bs * (2 + bitmap_blocks)];
        f[..8].copy_from_slice(KDUMP_SIGNATURE);
        f[8..12].copy_from_slice(&1u32.to_le_bytes());
        f[272..278].copy_from_slice(b"x86_64");
        for (off, v) in [
            (428, bs as u32),
            (432, 1),
            (436, bitmap_blocks as u32),
            (440, max_pfn as u32),
        ] {
            f[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        let pfns: Vec<u64> = (0..max_pfn).filter(|&p| dumpable(p)).collect();
        for &p in &pfns {
            f[2 * bs + (p / 8) as usize] |= 1 << (p % 8);
        }
        let table = f.len();
        let zero = table + 24 * pfns.len();
        f.resize(zero + bs, 0);
        for (i, &p) in pfns.iter().enumerate() {
            let off = if p % 5 == 0 {
                zero
            } else {
                let at = f.len();
                f.extend(core::iter::repeat_n(p as u8, bs));
                at
            };
            let d = table + 24 * i;
            f[d..d + 8].copy_from_slice(&(off as u64).to_le_bytes());
            f[d + 8..d + 12].copy_from_slice(&(bs as u32).to_le_bytes());
        }
        f
    }

    #[test]
    fn single_bitmap_rank_and_runs() {
        let pattern =
            |p: u64| !((p * 2_654_435_761) >> 7).is_multiple_of(3) || (1000..1700).contains(&p);
        let max = 20_000u64; // more than half of one block's 32768 bits
        let file = single_bitmap(max, pattern);
        let d = KdumpDump::open(file.as_slice()).unwrap();
        assert_eq!(d.max_pfn(), max);
        assert!(d.info().remarks.iter().any(|r| r.contains("single-bitmap")));
        let mut rank = 0;
        let mut page = vec![0u8; 4096];
        for p in 0..max + 10 {
            let r = d.read_phys(PhysAddr(p * 4096), &mut page);
            if p < max && pattern(p) {
                assert_eq!(d.page_state(p), PageState::Dumpable(rank), "pfn {p}");
                rank += 1;
                assert_eq!(r, Ok(4096));
                let want = if p % 5 == 0 { 0 } else { p as u8 };
                assert!(page.iter().all(|&b| b == want), "pfn {p}");
            } else {
                // One bitmap: no page can be told excluded.
                assert_eq!(r, Err(Error::NotInMemory { pa: p * 4096 }), "pfn {p}");
            }
        }
        assert_eq!(d.dumpable_pages(), rank);
        // Ranges are the runs of the bitmap, with their first rank.
        let mut expect = Vec::new();
        let mut r = 0;
        let mut p = 0;
        while p < max {
            if pattern(p) {
                let s = p;
                while p < max && pattern(p) {
                    p += 1;
                }
                expect.push(MapRange {
                    start: s * 4096,
                    len: (p - s) * 4096,
                    value: r,
                });
                r += p - s;
            } else {
                p += 1;
            }
        }
        assert_eq!(d.ranges(), &expect[..]);
        assert_eq!(d.memory_ranges().len(), expect.len());
    }

    #[test]
    fn runs_respect_the_limit() {
        let words = [u64::MAX, 0xf0f0, 1 << 63, 1, 0, u64::MAX];
        let mut all = Vec::new();
        runs(&words, u64::MAX, |s, n| all.push((s, n)));
        assert_eq!(all, vec![(0, 64), (68, 4), (76, 4), (191, 2), (320, 64)]);
        for limit in 0..=150 {
            let mut v = Vec::new();
            runs(&words, limit, |s, n| v.push((s, n)));
            let total: u64 = v.iter().map(|r| r.1).sum();
            assert_eq!(total, limit.min(138), "limit {limit}");
        }
        let mut w = [u64::MAX; 4];
        keep_only(&mut w, 70, 190);
        assert_eq!(w, [0, !0u64 << 6, (1 << 62) - 1, 0]);
    }

    #[test]
    fn hostile_headers_are_errors() {
        let mut h = vec![0u8; 464];
        h[..8].copy_from_slice(KDUMP_SIGNATURE);
        // Fuzzer find: a huge block size times huge counts overflowed
        // before the block size was checked.
        for (bs, sub, bitmap) in [
            (0x8000_0000u32, u32::MAX, u32::MAX),
            (u32::MAX, u32::MAX, u32::MAX),
            (4096, u32::MAX, u32::MAX),
            (1 << 20, u32::MAX, 1),
            (4096, 0, 0),
        ] {
            for base in [424, 412] {
                h[base + 4..base + 8].copy_from_slice(&bs.to_le_bytes());
                h[base + 8..base + 12].copy_from_slice(&sub.to_le_bytes());
                h[base + 12..base + 16].copy_from_slice(&bitmap.to_le_bytes());
                h[base + 16..base + 20].copy_from_slice(&u32::MAX.to_le_bytes());
            }
            assert!(parse_header(&h, 1 << 40).is_err() || (bs, bitmap) == (4096, u32::MAX));
            assert!(KdumpDump::open(h.as_slice()).is_err());
        }
        assert!(parse_header(&h[..451], u64::MAX).is_err());
        assert!(KdumpDump::open(&b"KDUMP  "[..]).is_err());
    }

    /// Counts the reads that reach the file.
    struct Counted<'a>(&'a [u8], core::cell::Cell<usize>);

    impl ReadAt for Counted<'_> {
        fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
            self.1.set(self.1.get() + 1);
            self.0.read_at(off, buf)
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
    }

    #[test]
    fn read_ahead_serves_what_the_file_holds() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let f = Counted(&data, core::cell::Cell::new(0));
        let mut ra = ReadAhead::default();
        let check = |ra: &mut ReadAhead, off: u64, len: usize| {
            let mut b = vec![0u8; len];
            let n = ra.read_at(&f, off, &mut b, 4096).unwrap();
            let want = &data[(off as usize).min(data.len())..(off as usize + len).min(data.len())];
            assert_eq!(&b[..n], want, "{off} {len}");
        };
        // A sequential scan in 24-byte steps: windows grow to 4096 bytes,
        // so far fewer file reads than steps.
        let mut off = 0;
        while off < 50_000 {
            check(&mut ra, off, 24);
            off += 24;
        }
        let seq_reads = f.1.get();
        assert!(seq_reads < 50_000 / 24 / 100, "{seq_reads} file reads");
        // Random reads go to the file, one each, at the size asked.
        let mut x = 0x1234_5678u64;
        for _ in 0..500 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(&mut ra, x % 110_000, (x >> 40) as usize % 5000 + 1);
        }
        // Up to and past the end of the file.
        let mut off = 99_000;
        while off < 100_100 {
            check(&mut ra, off, 100);
            off += 100;
        }
        // A lent window reads as empty; given back, it serves again.
        check(&mut ra, 10_000, 24);
        check(&mut ra, 10_024, 24);
        let i = ra.locate(&f, 10_048, 24, 4096).unwrap().unwrap();
        let w = ra.lend();
        assert_eq!(&w.buf[i..i + 24], &data[10_048..10_072]);
        let before = f.1.get();
        assert_eq!(ra.locate(&f, 20_000, 24, 4096).unwrap(), None);
        ra.give_back(w);
        check(&mut ra, 10_048, 24);
        assert_eq!(f.1.get(), before);
    }
}
