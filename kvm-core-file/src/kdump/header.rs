//! The on-disk structures: `disk_dump_header` (its layout chosen as
//! libkdumpfile does), the `kdump_sub_header` in its three layouts, and
//! the page descriptor.

use crate::Result;
use alloc::string::String;
use kvm_core::{Endian, Error};

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

/// Reads fixed fields in one byte order; out of range reads as 0 (callers
/// check lengths first).
#[derive(Clone, Copy)]
pub(super) struct Fields<'a> {
    pub(super) b: &'a [u8],
    pub(super) e: Endian,
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
    pub(super) fn u32(&self, off: usize) -> u32 {
        self.get(off, 4).unwrap_or(0) as u32
    }
    pub(super) fn u64(&self, off: usize) -> u64 {
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
pub(super) fn parse_sub_header(
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
