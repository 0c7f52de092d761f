//! Writes OpenBSD savecore dumps (FORMATS.md §4.3), amd64 and i386, as
//! `savecore` leaves them: `kcore_hdr_t` (padded to `ALIGN(12)`), the CPU
//! segment header, the CPU data (504 bytes, as the kernel's one disk
//! block holds them), the data segment header, then memory.
//!
//! - amd64: the CPU data is `cpu_kcore_hdr_t` (`ptdpaddr`, `nmemsegs`)
//!   and the RAM segments; memory is the segments back to back in list
//!   order. 30 segments fit: more ranges are merged across their smallest
//!   gaps (the gaps written as zeros), and refused when that would write
//!   over 1 GiB of zeros.
//! - i386: memory is a flat image from physical address 0, gaps written
//!   as zeros, as OpenBSD's libkvm reads it (`dump_off + pa`); the CPU
//!   data, which OpenBSD leaves undefined, holds this crate's tagged
//!   record of the root, PAE or not, and the ranges
//!   ([`crate::openbsd::cpu::I386_TAG`]). Memory above 4 GiB is refused.
//!
//! A page the source cannot give inside a range (a hole, a page a
//! filtered dump excluded) is written as zeros and counted
//! ([`KcoreSummary::zero_filled`]): the format has no way to say a page is
//! missing. The data segment's `c_size` is the memory's size truncated to
//! 32 bits, as savecore's `int` is.
//!
//! Never checked against OpenBSD's own libkvm: only read back by
//! [`crate::openbsd::KcoreDump`].

use super::Sink;
use crate::openbsd::cpu::{CpuHeader, PhysRamSeg, AMD64_MAX_SEGS, CPU_DSIZE, I386_MAX_SEGS};
use crate::openbsd::header::{
    self, align, KcoreHdr, KcoreSeg, MidMag, CORE_CPU, CORE_DATA, KCORESEG_MAGIC, KCORE_HDR_SIZE,
    KCORE_MAGIC, KCORE_SEG_SIZE,
};
use crate::Result;
use alloc::vec;
use alloc::vec::Vec;
use kvm_core::{Arch, Error, MapRange, Paging, PhysAddr, PhysRead};

/// Zeros merging may add before the writer refuses.
pub const MAX_MERGE_ZEROS: u64 = 1 << 30;
/// Bytes copied per read while writing.
const CHUNK: usize = 1 << 16;

/// The header of a kcore dump to write (what `kvm_dump_mkheader` builds):
/// the machine, the page-table root and the RAM segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KcoreHeader {
    arch: Arch,
    ptdpaddr: u64,
    pae: bool,
    /// Sorted by start.
    segs: Vec<PhysRamSeg>,
    merged_zeros: u64,
}

/// What was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KcoreSummary {
    /// Bytes of memory after the headers.
    pub memory: u64,
    /// Bytes inside the ranges the source could not give, written as
    /// zeros.
    pub zero_filled: u64,
    /// Bytes of the whole file.
    pub file_size: u64,
}

impl KcoreHeader {
    /// The header of a dump of `ranges` (`start`/`len`; `value` ignored)
    /// on `arch` (amd64 or i386), with the kernel's top page table at
    /// `ptdpaddr` (the PML4 on amd64; the page directory, or with `pae`
    /// the PDPT, on i386; `pae` is ignored on amd64).
    ///
    /// Adjacent ranges are joined; more ranges than the CPU header holds
    /// are merged across their smallest gaps (see the module docs).
    pub fn new(arch: Arch, ptdpaddr: u64, pae: bool, ranges: &[MapRange]) -> Result<Self> {
        let max = match arch {
            Arch::X86_64 => AMD64_MAX_SEGS,
            Arch::I386 => I386_MAX_SEGS,
            _ => {
                return Err(Error::Unsupported(
                    "OpenBSD kcore: only amd64 and i386 dumps can be written",
                ))
            }
        };
        let mut rs: Vec<MapRange> = ranges.iter().filter(|r| r.len > 0).copied().collect();
        rs.sort_by_key(|r| r.start);
        let mut segs: Vec<PhysRamSeg> = Vec::new();
        for r in &rs {
            let end = r.start.checked_add(r.len).ok_or(Error::Malformed(
                "OpenBSD kcore: a range to write wraps around the address space",
            ))?;
            match segs.last_mut() {
                Some(p) if p.start + p.size > r.start => {
                    return Err(Error::Malformed(
                        "OpenBSD kcore: the ranges to write overlap",
                    ))
                }
                Some(p) if p.start + p.size == r.start => p.size += r.len,
                _ => segs.push(PhysRamSeg {
                    start: r.start,
                    size: end - r.start,
                }),
            }
        }
        if segs.is_empty() {
            return Err(Error::Malformed(
                "OpenBSD kcore: no physical memory to write",
            ));
        }
        if arch == Arch::I386 && segs.iter().any(|s| s.start + s.size > 1 << 32) {
            return Err(Error::Unsupported(
                "OpenBSD kcore: i386 dumps hold physical memory below 4 GiB only",
            ));
        }
        let mut merged_zeros = 0u64;
        while segs.len() > max {
            // Join the pair with the smallest gap.
            let (i, gap) = segs
                .windows(2)
                .enumerate()
                .map(|(i, w)| (i, w[1].start - (w[0].start + w[0].size)))
                .min_by_key(|&(_, g)| g)
                .unwrap_or((0, 0));
            merged_zeros = merged_zeros.saturating_add(gap);
            if merged_zeros > MAX_MERGE_ZEROS {
                return Err(Error::Unsupported(
                    "OpenBSD kcore: more ranges than the CPU header holds, and merging them would write over 1 GiB of zeros",
                ));
            }
            let next = segs.remove(i + 1);
            segs[i].size = next.start + next.size - segs[i].start;
        }
        let align_to = if arch == Arch::I386 && pae {
            32
        } else {
            0x1000
        };
        if !ptdpaddr.is_multiple_of(align_to) {
            return Err(Error::Malformed(
                "OpenBSD kcore: the page-table root is not aligned to its table",
            ));
        }
        if !segs
            .iter()
            .any(|s| ptdpaddr >= s.start && ptdpaddr - s.start < s.size)
        {
            return Err(Error::Malformed(
                "OpenBSD kcore: the page-table root is outside every range to write",
            ));
        }
        Ok(KcoreHeader {
            arch,
            ptdpaddr,
            pae: arch == Arch::I386 && pae,
            segs,
            merged_zeros,
        })
    }

    /// The header of a dump of `ranges` whose kernel uses `paging`
    /// (x86-64 with 4 levels, or i386).
    pub fn from_paging(paging: &Paging, ranges: &[MapRange]) -> Result<Self> {
        match paging {
            Paging::X86_64(t) if t.levels() == 4 => {
                Self::new(Arch::X86_64, t.root().0, false, ranges)
            }
            Paging::X86_64(_) => Err(Error::Unsupported(
                "OpenBSD kcore: 5-level paging does not fit the amd64 header (ptdpaddr is a PML4)",
            )),
            Paging::I386(t) => Self::new(Arch::I386, t.root().0, t.pae(), ranges),
            _ => Err(Error::Unsupported(
                "OpenBSD kcore: only amd64 and i386 dumps can be written",
            )),
        }
    }

    /// The machine.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The page-table root.
    pub fn ptdpaddr(&self) -> u64 {
        self.ptdpaddr
    }

    /// PAE paging (i386).
    pub fn pae(&self) -> bool {
        self.pae
    }

    /// The RAM segments, sorted (also the order of memory in an amd64
    /// file).
    pub fn segments(&self) -> &[PhysRamSeg] {
        &self.segs
    }

    /// Zeros the merging of ranges added (amd64 more than 30 ranges,
    /// i386 more than 29).
    pub fn merged_zeros(&self) -> u64 {
        self.merged_zeros
    }

    /// Bytes of memory after the headers: the segments' sizes (amd64) or
    /// the flat image up to the last segment's end (i386).
    pub fn memory_len(&self) -> u64 {
        match self.arch {
            Arch::I386 => self.segs.last().map_or(0, |s| s.start + s.size),
            _ => self.segs.iter().map(|s| s.size).sum(),
        }
    }

    fn hdrsize(&self) -> u64 {
        align(self.arch, KCORE_HDR_SIZE)
    }
    fn seghdrsize(&self) -> u64 {
        align(self.arch, KCORE_SEG_SIZE)
    }

    /// Bytes of the headers: the file offset of memory (`dump_off`).
    pub fn header_len(&self) -> u64 {
        self.hdrsize() + 2 * self.seghdrsize() + align(self.arch, CPU_DSIZE)
    }

    /// The headers (`kvm_dump_wrtheader`) with `dumpsize` as the data
    /// segment's `c_size` (truncated to 32 bits, as savecore's `int`).
    pub fn header_bytes(&self, dumpsize: u64) -> Result<Vec<u8>> {
        let mid = header::mid_of(self.arch).ok_or(Error::Unsupported(
            "OpenBSD kcore: only amd64 and i386 dumps can be written",
        ))?;
        let seg = |flag, size| KcoreSeg {
            midmag: MidMag {
                flag,
                mid: 0,
                magic: KCORESEG_MAGIC,
            },
            size,
        };
        let hdr = KcoreHdr {
            midmag: MidMag {
                flag: 0,
                mid,
                magic: KCORE_MAGIC,
            },
            hdrsize: self.hdrsize() as u16,
            seghdrsize: self.seghdrsize() as u16,
            nseg: 2,
        };
        let cpu = match self.arch {
            Arch::I386 => CpuHeader::I386Tagged {
                ptdpaddr: self.ptdpaddr,
                pae: self.pae,
                segs: self.segs.clone(),
            },
            _ => CpuHeader::Amd64 {
                ptdpaddr: self.ptdpaddr,
                segs: self.segs.clone(),
            },
        }
        .encode()?;
        let cpu_size = align(self.arch, CPU_DSIZE);
        let mut out = Vec::with_capacity(self.header_len() as usize);
        out.extend_from_slice(&hdr.encode());
        out.resize(self.hdrsize() as usize, 0);
        out.extend_from_slice(&seg(CORE_CPU, cpu_size as u32).encode());
        out.resize((self.hdrsize() + self.seghdrsize()) as usize, 0);
        out.extend_from_slice(&cpu);
        out.resize((self.hdrsize() + self.seghdrsize() + cpu_size) as usize, 0);
        out.extend_from_slice(&seg(CORE_DATA, (dumpsize & 0xffff_ffff) as u32).encode());
        out.resize(self.header_len() as usize, 0);
        Ok(out)
    }
}

/// Writes the headers of `hdr` to `out` with `dumpsize` as the data
/// segment's size; returns their length (`kvm_dump_wrtheader`).
pub fn write_header(out: &mut dyn Sink, hdr: &KcoreHeader, dumpsize: u64) -> Result<u64> {
    let b = hdr.header_bytes(dumpsize)?;
    out.put(&b)?;
    Ok(b.len() as u64)
}

/// Writes a whole dump: the headers of `hdr`, then the memory of `mem`
/// its segments cover (module docs for holes and gaps). `progress` is
/// called with (bytes of memory written, bytes to write).
pub fn write_kcore(
    out: &mut dyn Sink,
    hdr: &KcoreHeader,
    mem: &dyn PhysRead,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<KcoreSummary> {
    let total = hdr.memory_len();
    let head = write_header(out, hdr, total)?;
    let mut w = Copier {
        out,
        buf: vec![0u8; CHUNK],
        zeros: vec![0u8; CHUNK],
        done: 0,
        total,
        zero_filled: 0,
        progress,
    };
    let mut cursor = 0u64;
    for s in &hdr.segs {
        if hdr.arch == Arch::I386 {
            w.zeros(s.start - cursor)?;
            cursor = s.start + s.size;
        }
        w.copy(mem, s.start, s.size)?;
    }
    Ok(KcoreSummary {
        memory: w.done,
        zero_filled: w.zero_filled,
        file_size: head + w.done,
    })
}

struct Copier<'a> {
    out: &'a mut dyn Sink,
    buf: Vec<u8>,
    zeros: Vec<u8>,
    done: u64,
    total: u64,
    zero_filled: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl Copier<'_> {
    fn zeros(&mut self, mut n: u64) -> Result<()> {
        while n > 0 {
            let k = n.min(CHUNK as u64) as usize;
            self.out.put(&self.zeros[..k])?;
            n -= k as u64;
            self.advance(k as u64);
        }
        Ok(())
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        (self.progress)(self.done, self.total);
    }

    /// Copies `[start, start + len)` of `mem`, zeros where it has no page.
    fn copy(&mut self, mem: &dyn PhysRead, start: u64, len: u64) -> Result<()> {
        let end = start + len;
        let mut at = start;
        while at < end {
            let n = (end - at).min(CHUNK as u64) as usize;
            match mem.read_phys(PhysAddr(at), &mut self.buf[..n]) {
                Ok(got) if got > 0 => {
                    let got = got.min(n);
                    self.out.put(&self.buf[..got])?;
                    at += got as u64;
                    self.advance(got as u64);
                }
                Ok(_) | Err(Error::NotInMemory { .. } | Error::Excluded { .. }) => {
                    // To the end of this 4 KiB page: the next may be there.
                    let z = ((at | 0xfff) + 1 - at).min(end - at);
                    self.zero_filled += z;
                    self.zeros(z)?;
                    at += z;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, len: u64) -> MapRange {
        MapRange {
            start,
            len,
            value: 0,
        }
    }

    #[test]
    fn joins_merges_and_refuses() {
        // Adjacent ranges join; unsorted input is sorted.
        let h = KcoreHeader::new(
            Arch::X86_64,
            0x1000,
            false,
            &[r(0x2000, 0x1000), r(0, 0x2000)],
        )
        .unwrap();
        assert_eq!(
            h.segments(),
            &[PhysRamSeg {
                start: 0,
                size: 0x3000
            }]
        );
        // 32 ranges 16 MiB apart, two of them close to the one before:
        // merged down to 30 across those two gaps.
        let mut many: Vec<MapRange> = (0..32).map(|i| r(i << 24, 0x1000)).collect();
        many[4].start = (3 << 24) + 0x2000;
        many[10].start = (9 << 24) + 0x3000;
        let h = KcoreHeader::new(Arch::X86_64, 0x0, false, &many).unwrap();
        assert_eq!(h.segments().len(), 30);
        assert_eq!(h.merged_zeros(), 0x1000 + 0x2000);
        assert_eq!(
            h.segments()[3],
            PhysRamSeg {
                start: 3 << 24,
                size: 0x3000
            }
        );
        let spread: Vec<MapRange> = (0..31).map(|i| r(i << 32, 0x1000)).collect();
        assert_eq!(
            KcoreHeader::new(Arch::X86_64, 0, false, &spread),
            Err(Error::Unsupported(
                "OpenBSD kcore: more ranges than the CPU header holds, and merging them would write over 1 GiB of zeros"
            ))
        );
        assert_eq!(
            KcoreHeader::new(Arch::X86_64, 0, false, &[r(0, 0x2000), r(0x1000, 0x2000)]),
            Err(Error::Malformed(
                "OpenBSD kcore: the ranges to write overlap"
            ))
        );
        assert_eq!(
            KcoreHeader::new(Arch::X86_64, 0x5000, false, &[r(0, 0x2000)]),
            Err(Error::Malformed(
                "OpenBSD kcore: the page-table root is outside every range to write"
            ))
        );
        assert_eq!(
            KcoreHeader::new(Arch::I386, 0x1020, true, &[r(0, 0x2000)]).map(|h| h.pae()),
            Ok(true)
        );
        assert_eq!(
            KcoreHeader::new(Arch::I386, 0x1020, false, &[r(0, 0x2000)]),
            Err(Error::Malformed(
                "OpenBSD kcore: the page-table root is not aligned to its table"
            ))
        );
        assert_eq!(
            KcoreHeader::new(Arch::I386, 0, false, &[r(0xffff_f000, 0x2000)]),
            Err(Error::Unsupported(
                "OpenBSD kcore: i386 dumps hold physical memory below 4 GiB only"
            ))
        );
        assert_eq!(
            KcoreHeader::new(Arch::Aarch64, 0, false, &[r(0, 0x2000)]),
            Err(Error::Unsupported(
                "OpenBSD kcore: only amd64 and i386 dumps can be written"
            ))
        );
        assert_eq!(
            KcoreHeader::new(Arch::X86_64, 0, false, &[]),
            Err(Error::Malformed(
                "OpenBSD kcore: no physical memory to write"
            ))
        );
    }

    #[test]
    fn header_layout_amd64() {
        let h = KcoreHeader::new(Arch::X86_64, 0x1000, false, &[r(0, 0x4000)]).unwrap();
        let b = h.header_bytes(0x1_0000_4000).unwrap();
        // 16 + 8 + 504 + 8 (FORMATS.md §4.3).
        assert_eq!((b.len(), h.header_len()), (536, 536));
        assert_eq!(&b[..12], &[0x00, 0x9d, 0x8f, 0xca, 16, 0, 8, 0, 2, 0, 0, 0]);
        assert_eq!(&b[16..24], &[0x04, 0, 0x8f, 0xac, 0xf8, 1, 0, 0]);
        assert_eq!(&b[24..32], &0x1000u64.to_le_bytes());
        assert_eq!(&b[32..40], &1u64.to_le_bytes());
        assert_eq!(
            &b[40..56],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0]
        );
        // c_size truncated to 32 bits.
        assert_eq!(&b[528..], &[0x08, 0, 0x8f, 0xac, 0, 0x40, 0, 0]);
        let i = KcoreHeader::new(Arch::I386, 0x1000, false, &[r(0, 0x4000)]).unwrap();
        // 12 + 8 + 504 + 8.
        assert_eq!(i.header_len(), 532);
        assert_eq!(&i.header_bytes(0).unwrap()[..4], &[0x00, 0x86, 0x8f, 0xca]);
    }
}
