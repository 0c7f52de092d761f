//! OpenBSD savecore dumps ("kcore", FORMATS.md §4), amd64 and i386.
//!
//! The file savecore writes (OpenBSD `lib/libkvm/kvm.c`,
//! `kvm_dump_wrtheader` and `_kvm_get_header`): a `kcore_hdr_t` padded to
//! `c_hdrsize`, the CPU segment's `kcore_seg_t` padded to `c_seghdrsize`,
//! the CPU data (`c_size` bytes), the data segment's `kcore_seg_t`, then
//! physical memory. Where each physical address lies depends on the
//! machine:
//! - amd64: the CPU data is `cpu_kcore_hdr_t` (the kernel PML4's address
//!   `ptdpaddr` and up to 30 `phys_ram_seg_t`), and memory is the
//!   segments back to back in list order (`_kvm_pa2off` in
//!   `kvm_amd64.c`);
//! - i386: memory is a flat image from physical address 0
//!   (`dump_off + pa`, `kvm_i386.c`) and the CPU data holds nothing
//!   OpenBSD defined ([`cpu`]); the page-table root is the kernel
//!   symbol `_PTDpaddr`, so such a dump has no translator here. Dumps
//!   written by this crate ([`crate::write::openbsd`]) carry the root, PAE
//!   or not, and the RAM ranges in a tagged record.
//!
//! The data segment's `c_size` is an `int` in savecore, wrong for dumps
//! of 4 GiB and more: the memory's extent comes from the segment list and
//! the file size. Pages past the end of the file are missing: the source
//! says it is incomplete and reads of them fail, as on a truncated dump
//! libkvm reads short.
//!
//! The translator ([`KcoreTranslate`]) does what libkvm does for a dead
//! kernel: on amd64 the direct map without tables, else a walk from
//! `ptdpaddr`.
//!
//! **Never checked against a dump written by OpenBSD itself**: none could
//! be had. The layouts were read from OpenBSD's sources (cited where
//! used) and are tested by round trips through this crate's writer.

pub mod cpu;
pub mod header;
pub mod translate;

#[cfg(test)]
mod tests;

use crate::{ReadAt, Result};
use alloc::format;
use alloc::vec::Vec;
use cpu::{CpuHeader, PhysRamSeg};
use header::{KcoreHdr, KcoreSeg, CORE_CPU, CORE_DATA, KCORESEG_MAGIC, KCORE_MAGIC};
use kvm_core::arch::x86_64::FRAME_MASK;
use kvm_core::{Arch, Endian, Error, MapRange, Paging, PhysAddr, PhysRead, Translate};
use kvm_core::{OsHint, Source, SourceInfo};
pub use translate::{DirectMap, KcoreTranslate};

/// The format name in [`SourceInfo::format`].
pub const FORMAT: &str = "openbsd-kcore";
/// Largest `c_hdrsize` / `c_seghdrsize` accepted.
const MAX_HDR: u16 = 4096;
/// Largest CPU segment accepted.
const MAX_CPU: u32 = 64 << 10;

/// An OpenBSD savecore dump as physical memory.
#[derive(Debug)]
pub struct KcoreDump<R> {
    file: R,
    info: SourceInfo,
    arch: Arch,
    /// Sorted, clipped to the file; `value` = file offset.
    ranges: Vec<MapRange>,
    cpu: CpuHeader,
    dump_off: u64,
    data_size: u32,
    vtop: Option<KcoreTranslate>,
}

fn seg_at<R: ReadAt>(file: &R, off: u64, what: &'static str) -> Result<KcoreSeg> {
    let mut b = [0u8; 8];
    file.read_exact_at(off, &mut b, what)?;
    Ok(KcoreSeg::decode(&b))
}

impl<R: ReadAt> KcoreDump<R> {
    /// Reads the headers and the segment list (FORMATS.md §4.6).
    pub fn open(file: R) -> Result<Self> {
        let size = file.size();
        let mut b = [0u8; 12];
        file.read_exact_at(
            0,
            &mut b,
            "OpenBSD kcore: file shorter than kcore_hdr_t (12 bytes)",
        )?;
        let hdr = KcoreHdr::decode(&b);
        if hdr.midmag.magic != KCORE_MAGIC {
            return Err(Error::Malformed(
                "OpenBSD kcore: kcore_hdr_t magic is not KCORE_MAGIC (0x8fca)",
            ));
        }
        let arch = header::arch_of(hdr.midmag.mid).ok_or(Error::Unsupported(
            "OpenBSD kcore: machine id is neither amd64 (157) nor i386 (134)",
        ))?;
        if hdr.midmag.flag != 0 {
            return Err(Error::Malformed("OpenBSD kcore: kcore_hdr_t flag is not 0"));
        }
        if hdr.nseg != 2 {
            return Err(Error::Malformed("OpenBSD kcore: c_nseg is not 2"));
        }
        if !(12..=MAX_HDR).contains(&hdr.hdrsize) {
            return Err(Error::Malformed(
                "OpenBSD kcore: c_hdrsize is outside 12..=4096",
            ));
        }
        if !(8..=MAX_HDR).contains(&hdr.seghdrsize) {
            return Err(Error::Malformed(
                "OpenBSD kcore: c_seghdrsize is outside 8..=4096",
            ));
        }
        let (hdrsize, seghdrsize) = (u64::from(hdr.hdrsize), u64::from(hdr.seghdrsize));
        let cpu_seg = seg_at(
            &file,
            hdrsize,
            "OpenBSD kcore: file ends inside the CPU segment header",
        )?;
        if cpu_seg.midmag.magic != KCORESEG_MAGIC {
            return Err(Error::Malformed(
                "OpenBSD kcore: CPU segment header magic is not KCORESEG_MAGIC (0x8fac)",
            ));
        }
        if cpu_seg.midmag.flag != CORE_CPU {
            return Err(Error::Malformed(
                "OpenBSD kcore: first segment is not CORE_CPU",
            ));
        }
        if !(16..=MAX_CPU).contains(&cpu_seg.size) {
            return Err(Error::Malformed(
                "OpenBSD kcore: CPU segment c_size is outside 16..=65536",
            ));
        }
        // Both sizes are bounded above: no overflow.
        let cpu_off = hdrsize + seghdrsize;
        let data = file.read_vec_at(
            cpu_off,
            u64::from(cpu_seg.size),
            "OpenBSD kcore: file ends inside the CPU segment",
        )?;
        let data_hdr_off = cpu_off + u64::from(cpu_seg.size);
        let data_seg = seg_at(
            &file,
            data_hdr_off,
            "OpenBSD kcore: file ends inside the data segment header",
        )?;
        if data_seg.midmag.magic != KCORESEG_MAGIC {
            return Err(Error::Malformed(
                "OpenBSD kcore: data segment header magic is not KCORESEG_MAGIC (0x8fac)",
            ));
        }
        if data_seg.midmag.flag != CORE_DATA {
            return Err(Error::Malformed(
                "OpenBSD kcore: second segment is not CORE_DATA",
            ));
        }
        let dump_off = data_hdr_off + seghdrsize;
        let cpu = CpuHeader::parse(arch, &data)?;
        let mut info = SourceInfo {
            arch: Some(arch),
            page_size: Some(4096),
            os: Some(OsHint::OpenBsd),
            ..SourceInfo::new(FORMAT, Endian::Little)
        };
        let stated = stated_ranges(&cpu, dump_off, data_seg.size, size)?;
        let vtop = translator(&cpu, &stated, &mut info)?;
        let stated_len = stated.iter().fold(0u64, |a, r| a.saturating_add(r.len));
        // The data segment's size is only a 32-bit hint (savecore's int).
        let flat_len = match cpu {
            CpuHeader::Amd64 { .. } => stated_len,
            _ => stated.last().map_or(0, MapRange::end),
        };
        if flat_len as u32 != data_seg.size {
            info.remarks.push(format!(
                "the data segment's c_size ({:#x}) disagrees with the RAM segments ({flat_len:#x} bytes): the segments are used",
                data_seg.size
            ));
        }
        let ranges = clip_to_file(&stated, size);
        let kept = ranges.iter().fold(0u64, |a, r| a.saturating_add(r.len));
        if kept < stated_len {
            info.incomplete = true;
            info.remarks.push(format!(
                "the file ends {:#x} bytes short of the memory its segments list: those pages are missing",
                stated_len - kept
            ));
        }
        Ok(KcoreDump {
            file,
            info,
            arch,
            ranges,
            cpu,
            dump_off,
            data_size: data_seg.size,
            vtop,
        })
    }
}

/// The physical ranges the header states (sorted; `value` = file offset),
/// before comparing with the file.
fn stated_ranges(
    cpu: &CpuHeader,
    dump_off: u64,
    data_size: u32,
    file_size: u64,
) -> Result<Vec<MapRange>> {
    let mut out = Vec::new();
    let mut packed = 0u64;
    for s in cpu.segs() {
        if s.size == 0 {
            return Err(Error::Malformed("OpenBSD kcore: a RAM segment has size 0"));
        }
        s.start.checked_add(s.size).ok_or(Error::Malformed(
            "OpenBSD kcore: a RAM segment wraps around the address space",
        ))?;
        let value = match cpu {
            // amd64: back to back in list order (_kvm_pa2off).
            CpuHeader::Amd64 { .. } => dump_off.checked_add(packed),
            // i386: a flat image from physical address 0.
            _ => dump_off.checked_add(s.start),
        }
        .filter(|v| v.checked_add(s.size).is_some())
        .ok_or(Error::Malformed(
            "OpenBSD kcore: RAM segments reach past the largest file offset",
        ))?;
        packed = packed.saturating_add(s.size);
        out.push(MapRange {
            start: s.start,
            len: s.size,
            value,
        });
    }
    if let CpuHeader::I386Bare = cpu {
        // OpenBSD's own i386 dump: all of the flat image savecore
        // copied. Its c_size fits 32 bits (i386 dumps stay below 4 GiB).
        let len = match u64::from(data_size) {
            0 => file_size.saturating_sub(dump_off),
            n => n,
        };
        if len == 0 {
            return Err(Error::Malformed(
                "OpenBSD kcore: no memory follows the headers",
            ));
        }
        out.push(MapRange {
            start: 0,
            len,
            value: dump_off,
        });
    }
    out.sort_by_key(|r| r.start);
    if out.windows(2).any(|w| w[0].end() > w[1].start) {
        return Err(Error::Malformed("OpenBSD kcore: RAM segments overlap"));
    }
    Ok(out)
}

/// The parts of `stated` that lie inside a file of `size` bytes.
fn clip_to_file(stated: &[MapRange], size: u64) -> Vec<MapRange> {
    stated
        .iter()
        .filter(|r| r.value < size)
        .map(|r| MapRange {
            len: r.len.min(size - r.value),
            ..*r
        })
        .collect()
}

/// The translator of the CPU header, after checking its root.
fn translator(
    cpu: &CpuHeader,
    stated: &[MapRange],
    info: &mut SourceInfo,
) -> Result<Option<KcoreTranslate>> {
    let (root, align, wide) = match *cpu {
        CpuHeader::Amd64 { ptdpaddr, .. } => (ptdpaddr, 0x1000, ptdpaddr & !FRAME_MASK != 0),
        CpuHeader::I386Tagged { ptdpaddr, pae, .. } => (
            ptdpaddr,
            if pae { 32 } else { 0x1000 },
            ptdpaddr > u64::from(u32::MAX),
        ),
        CpuHeader::I386Bare => {
            info.remarks.push(
                "i386 dump made by OpenBSD: the page-table root is the kernel symbol _PTDpaddr, not in the dump"
                    .into(),
            );
            return Ok(None);
        }
    };
    if !root.is_multiple_of(align) {
        return Err(Error::Malformed(
            "OpenBSD kcore: ptdpaddr is not aligned to its table",
        ));
    }
    if wide {
        return Err(Error::Malformed(
            "OpenBSD kcore: ptdpaddr is beyond the physical address width",
        ));
    }
    if MapRange::find(stated, root).is_none() {
        return Err(Error::Malformed(
            "OpenBSD kcore: ptdpaddr is outside every RAM segment",
        ));
    }
    Ok(Some(match *cpu {
        CpuHeader::I386Tagged { pae, .. } => KcoreTranslate::i386(root, pae),
        _ => {
            let end = stated.last().map_or(0, MapRange::end);
            KcoreTranslate::amd64(root, DirectMap::FOUR_SLOTS, end)?
        }
    }))
}

impl<R> KcoreDump<R> {
    /// The machine (amd64 or i386).
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The decoded CPU data.
    pub fn cpu_header(&self) -> &CpuHeader {
        &self.cpu
    }

    /// The page-table root the dump states, if any.
    pub fn ptdpaddr(&self) -> Option<u64> {
        self.cpu.ptdpaddr()
    }

    /// The RAM segments in list order (empty for an i386 dump made by
    /// OpenBSD).
    pub fn segments(&self) -> &[PhysRamSeg] {
        self.cpu.segs()
    }

    /// File offset of physical memory (`dump_off`).
    pub fn dump_offset(&self) -> u64 {
        self.dump_off
    }

    /// The data segment's `c_size` as stored (a 32-bit hint only).
    pub fn data_seg_size(&self) -> u32 {
        self.data_size
    }

    /// The kernel's page tables (the translator's walk, without the
    /// direct map), when the dump states the root.
    pub fn paging(&self) -> Option<Paging> {
        self.vtop.map(|t| t.paging())
    }

    /// The same dump with another amd64 direct-map window (the default is
    /// [`DirectMap::FOUR_SLOTS`], current OpenBSD).
    pub fn with_direct_map(mut self, d: DirectMap) -> Self {
        self.vtop = self.vtop.map(|t| t.with_direct_map(d));
        self
    }
}

impl<R: ReadAt> PhysRead for KcoreDump<R> {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        crate::io::read_ranges(&self.file, &self.ranges, pa.0, buf)?
            .ok_or(Error::NotInMemory { pa: pa.0 })
    }
}

impl<R: ReadAt + Send + Sync + core::fmt::Debug> Source for KcoreDump<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &self.ranges
    }
    fn translator(&self) -> Option<&dyn Translate> {
        self.vtop.as_ref().map(|t| t as &dyn Translate)
    }
}
