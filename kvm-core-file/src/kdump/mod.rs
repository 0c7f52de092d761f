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
//! VMCOREINFO, with a remark in [`SourceInfo::remarks`]. QEMU's arm64 dumps
//! also use 64 KiB blocks for a 4 KiB-page kernel: [`SourceInfo::page_size`]
//! is then VMCOREINFO's PAGESIZE (the kernel's), while PFNs and
//! [`KdumpDump::block_size`] stay in blocks.

mod bitmap;
mod cache;
mod header;
mod metadata;
mod read;
mod readahead;

pub use bitmap::PageState;
pub use header::{
    parse_header, KdumpHeader, KdumpSubHeader, PageDesc, SubHeaderLayout, BLOCK_SIZE_RANGE,
    KDUMP_SIGNATURE, MAX_PFN_LIMIT, PAGE_DESC_SIZE, STATUS_EXCLUDED_VMEMMAP, STATUS_INCOMPLETE,
    STATUS_LZO, STATUS_SNAPPY, STATUS_ZLIB, STATUS_ZSTD,
};

use crate::flat::{self, FlatReader};
use crate::{ReadAt, Result};
use alloc::format;
use alloc::vec::Vec;
use bitmap::{first_saved_hole, keep_only, rank_index, read_bitmap, runs, Bitmaps};
use header::parse_sub_header;
use kvm_core::{Error, MapRange, PhysAddr, PhysRead};
use kvm_core::{OsHint, Source, SourceInfo};
use metadata::{read_metadata, MAX_NOTES};
use read::{Container, Pages};

/// A kdump-compressed dump (plain or flattened) as physical memory.
pub struct KdumpDump<R> {
    /// The file, its bitmaps and descriptors, and the reading state.
    pages: Pages<R>,
    info: SourceInfo,
    header: KdumpHeader,
    dumpable_pages: u64,
    ranges: Vec<MapRange>,
}

impl<R> core::fmt::Debug for KdumpDump<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KdumpDump")
            .field("format", &self.info.format)
            .field("version", &self.header.version)
            .field("block_size", &self.pages.block_size)
            .field("max_pfn", &self.pages.bitmaps.max_pfn())
            .field("dumpable_pages", &self.dumpable_pages)
            .finish_non_exhaustive()
    }
}

impl<R: ReadAt> KdumpDump<R> {
    /// Opens a kdump-compressed file, plain or flattened (detected by the
    /// "makedumpfile" signature).
    pub fn open(file: R) -> Result<Self> {
        let (file, format, budget) = if flat::is_flattened(&file)? {
            let f = FlatReader::open(file)?;
            let stored = f.stream_size();
            (Container::Flat(f), "kdump-flattened", stored)
        } else {
            let size = file.size();
            (Container::Plain(file), "kdump", size)
        };
        Self::open_source(file, format, budget)
    }

    fn open_source(file: Container<R>, format: &'static str, budget: u64) -> Result<Self> {
        let size = file.size();
        let mut hb = [0u8; 464];
        let n = file.read_at(0, &mut hb)?;
        if n < 8 || hb[..8] != KDUMP_SIGNATURE[..] {
            return Err(Error::Malformed("kdump signature missing"));
        }
        let mut header = parse_header(&hb[..n], size)?;
        let bs = u64::from(header.block_size);
        let shift = bs.trailing_zeros();
        let mut info = SourceInfo::new(format, header.endian);
        // makedumpfile's format: only Linux kernels are dumped in it.
        info.os = Some(OsHint::Linux);
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

        // A page saved where there is no memory: the bitmaps disagree,
        // and every descriptor from there on may belong to another page
        // (descriptors are found by counting saved pages). The pages
        // before it are still found right; the rest read as excluded.
        if let Some(bad) = first_saved_hole(&present, &dumpable) {
            keep_only(&mut dumpable, 0, bad);
            info.incomplete = true;
            info.remarks.push(format!(
                "kdump bitmaps disagree: PFN {bad:#x} is marked saved but has no memory; pages from there on read as excluded (their descriptors cannot be trusted)"
            ));
        }

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

        let (rank, count) = rank_index(&dumpable);
        let table = count * PAGE_DESC_SIZE;
        if table > budget {
            return Err(Error::Malformed(
                "kdump page descriptor table larger than the file could hold",
            ));
        }
        let cut = cut_short(&file, header.endian, data_offset, count, size);
        let remark = match (header.status & STATUS_INCOMPLETE != 0, cut) {
            (true, _) => Some(
                "incomplete kdump (makedumpfile ran out of space): lost pages read as excluded"
                    .into(),
            ),
            (false, Some(what)) => Some(format!(
                "truncated: the file ends at {size} bytes, inside {what}; the pages it lost read as excluded"
            )),
            (false, None) => None,
        };
        let descs = match remark {
            Some(r) => {
                info.incomplete = true;
                info.remarks.push(r);
                count.min((size - data_offset) / PAGE_DESC_SIZE)
            }
            None => count,
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
        let bitmaps = Bitmaps::new(max_pfn, present, dumpable, rank, descs);
        let pages = Pages::new(
            file,
            bitmaps,
            header.endian,
            info.incomplete,
            bs,
            shift,
            data_offset,
        );
        Ok(KdumpDump {
            pages,
            info,
            header,
            dumpable_pages: count,
            ranges,
        })
    }
}

/// Descriptors at the table's end whose data is checked at open.
const TAIL_DESCS: u64 = 4096;

/// Where a kdump file of `count` descriptors from `data_offset` was cut
/// short, if it was: inside the descriptor table, or before the end of
/// the data of one of the last [`TAIL_DESCS`] pages (the writers store
/// pages in descriptor order, zero pages excepted: those share one early
/// copy). A page past the end found later reads as excluded too.
fn cut_short<R: ReadAt>(
    file: &R,
    e: kvm_core::Endian,
    data_offset: u64,
    count: u64,
    size: u64,
) -> Option<&'static str> {
    if count == 0 {
        return None;
    }
    let last = data_offset.checked_add((count - 1) * PAGE_DESC_SIZE)?;
    if last
        .checked_add(PAGE_DESC_SIZE)
        .is_none_or(|end| end > size)
    {
        return Some("the page descriptor table");
    }
    let n = count.min(TAIL_DESCS);
    let from = last - (n - 1) * PAGE_DESC_SIZE;
    let mut b = alloc::vec![0u8; (n * PAGE_DESC_SIZE) as usize];
    if file.read_at(from, &mut b).ok() != Some(b.len()) {
        return Some("the page descriptor table");
    }
    let past = b.chunks_exact(PAGE_DESC_SIZE as usize).any(|d| {
        let mut off = [0u8; 8];
        off.copy_from_slice(&d[..8]);
        let (off, len) = (e.u64(off), u64::from(e.u32([d[8], d[9], d[10], d[11]])));
        off != 0 && off.checked_add(len).is_none_or(|end| end > size)
    });
    past.then_some("the page data")
}

impl<R: ReadAt> KdumpDump<R> {
    /// The main and sub headers.
    pub fn header(&self) -> &KdumpHeader {
        &self.header
    }

    /// The page size of PFNs in this file (`block_size`).
    pub fn block_size(&self) -> u64 {
        self.pages.block_size
    }

    /// One past the highest PFN the bitmaps describe.
    pub fn max_pfn(&self) -> u64 {
        self.pages.bitmaps.max_pfn()
    }

    /// Pages whose contents the file holds (set bits of the 2nd bitmap).
    pub fn dumpable_pages(&self) -> u64 {
        self.dumpable_pages
    }

    /// Whether the file is flattened.
    pub fn is_flattened(&self) -> bool {
        matches!(self.pages.file, Container::Flat(_))
    }

    /// What the file says about `pfn`.
    pub fn page_state(&self, pfn: u64) -> PageState {
        self.pages.bitmaps.page_state(pfn)
    }

    /// The physical ranges of memory (1st bitmap), excluded pages
    /// included, sorted. Computed on each call.
    pub fn memory_ranges(&self) -> Vec<MapRange> {
        self.pages.bitmaps.memory_ranges(self.pages.shift)
    }

    /// The descriptor of dumpable page number `index`; `None` for a lost
    /// page (zero descriptor, or past the end) of an incomplete dump.
    pub fn page_desc(&self, index: u64) -> Result<Option<PageDesc>> {
        self.pages.page_desc_via(index, None)
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
        self.pages
            .file
            .read_vec_at(
                off,
                size,
                "kdump eraseinfo extends past the end of the file",
            )
            .map(Some)
    }
}

impl<R: ReadAt> PhysRead for KdumpDump<R> {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0usize;
        while done < buf.len() {
            let Some(at) = pa.0.checked_add(done as u64) else {
                break;
            };
            let pfn = at >> self.pages.shift;
            let off = at & (self.pages.block_size - 1);
            let n = usize::try_from(self.pages.block_size - off)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            match self.pages.read_in_page(pfn, off, &mut buf[done..done + n]) {
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

impl<R: ReadAt + Send + Sync + core::fmt::Debug> Source for KdumpDump<R> {
    fn info(&self) -> &SourceInfo {
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
    fn hostile_headers_are_errors() {
        let no_layout = Error::Malformed(
            "kdump header: no layout gives a power-of-two block size, a bitmap large enough for max_mapnr and bitmaps inside the file",
        );
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
            match parse_header(&h, 1 << 40) {
                Err(e) => assert_eq!(e, no_layout),
                Ok(_) => assert_eq!((bs, bitmap), (4096, u32::MAX)),
            }
            assert_eq!(KdumpDump::open(h.as_slice()).err(), Some(no_layout));
        }
        assert_eq!(
            parse_header(&h[..451], u64::MAX).err(),
            Some(Error::Malformed("kdump header truncated"))
        );
        assert_eq!(
            KdumpDump::open(&b"KDUMP  "[..]).err(),
            Some(Error::Malformed("kdump signature missing"))
        );
    }
}
