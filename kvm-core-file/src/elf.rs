//! ELF cores: Linux `/proc/vmcore` and its copies, makedumpfile `-E`, QEMU
//! `dump-guest-memory` (with and without paging), kcore-style files.
//!
//! Only program headers matter (FORMATS.md §2.1–2.3, §2.6): PT_LOAD
//! segments give memory by physical address (`p_paddr`) and by virtual
//! address (`p_vaddr`); PT_NOTE segments give VMCOREINFO and CPU notes.
//! Bytes between `p_filesz` and `p_memsz` exist but were not saved; reads
//! there report [`Error::Excluded`].

use crate::notes;
use crate::{ReadAt, Result};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Arch, OsHint, Source, SourceInfo};
use kvm_core::{Endian, Error, MapRange, PhysAddr, PhysRead, VirtAddr, VirtRead};

const ET_CORE: u16 = 4;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// `e_phnum` value meaning "the count is in section header 0's `sh_info`".
const PN_XNUM: u16 = 0xffff;
/// Most program headers accepted (QEMU paging dumps have a few hundred;
/// the format allows 2^32).
pub const MAX_PHNUM: u32 = 1_000_000;
/// Largest note segment read.
const MAX_NOTES: u64 = 16 << 20;
/// `p_paddr` of kcore segments without a physical address.
const NO_PADDR: u64 = u64::MAX;

/// One PT_LOAD as read from the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// File offset of the first byte.
    pub offset: u64,
    /// Virtual address (`p_vaddr`).
    pub vaddr: u64,
    /// Physical address (`p_paddr`; `u64::MAX` in kcore for none).
    pub paddr: u64,
    /// Bytes present in the file.
    pub filesz: u64,
    /// Bytes of memory the segment describes (≥ `filesz`).
    pub memsz: u64,
}

/// An ELF core file as a dump.
#[derive(Debug)]
pub struct ElfDump<R> {
    file: R,
    info: SourceInfo,
    segments: Vec<Segment>,
    /// Physical ranges saved in the file; `value` is the file offset.
    phys: Vec<MapRange>,
    /// Physical ranges described but not saved (`p_memsz > p_filesz`).
    excluded: Vec<MapRange>,
    /// Virtual ranges saved in the file; `value` is the file offset.
    virt: Vec<MapRange>,
}

struct Header {
    is64: bool,
    endian: Endian,
    /// `e_ident[EI_OSABI]`.
    osabi: u8,
    machine: u16,
    flags: u32,
    phoff: u64,
    phentsize: u16,
    phnum: u32,
}

/// The OS an `EI_OSABI` names: FreeBSD's kernel writes
/// `ELFOSABI_STANDALONE` (255) into its full dumps (sys/kern/kern_dump.c;
/// the real dumps in tests/data/freebsd carry it) and its user cores
/// `ELFOSABI_FREEBSD` (9), OpenBSD `ELFOSABI_OPENBSD` (12); Linux leaves 0
/// (SYSV), which names no OS.
fn os_of_abi(osabi: u8) -> Option<OsHint> {
    match osabi {
        9 | 255 => Some(OsHint::FreeBsd),
        12 => Some(OsHint::OpenBsd),
        _ => None,
    }
}

fn field(b: &[u8], off: usize, len: usize, e: Endian) -> u64 {
    let mut a = [0u8; 8];
    let Some(src) = b.get(off..off + len) else {
        return 0;
    };
    match e {
        Endian::Little => a[..len].copy_from_slice(src),
        Endian::Big => a[8 - len..].copy_from_slice(src),
    }
    e.u64(a)
}

impl<R: ReadAt> ElfDump<R> {
    /// Parses the headers and notes of an ELF core.
    pub fn open(file: R) -> Result<Self> {
        let h = header(&file)?;
        let segments = program_headers(&file, &h)?;
        let mut reserved = alloc::vec![
            (0, if h.is64 { 64 } else { 52 }),
            (
                h.phoff,
                h.phoff
                    .saturating_add(u64::from(h.phnum) * u64::from(h.phentsize))
            ),
        ];
        reserved.extend(
            segments
                .iter()
                .filter(|s| s.0 == PT_NOTE)
                .map(|s| (s.1.offset, s.1.offset.saturating_add(s.1.filesz))),
        );
        let loads: Vec<Segment> = segments
            .iter()
            .filter(|s| s.0 == PT_LOAD)
            .map(|s| s.1)
            .collect();
        crate::elf_layout::check(&loads, &reserved)?;
        let mut info = SourceInfo::new("elf", h.endian);
        info.arch = Some(Arch::from_elf_machine(h.machine));
        info.os = os_of_abi(h.osabi);
        info.incomplete = h.flags & 1 != 0;
        let mut phys = Vec::new();
        let mut excluded = Vec::new();
        let mut virt = Vec::new();
        let size = file.size();
        // Bytes of PT_LOAD data past the end of the file (a dump cut short:
        // the disk filled up, or a file minimised after the fact).
        let mut missing = 0u64;
        for mut s in segments.iter().filter(|s| s.0 == PT_LOAD).map(|s| s.1) {
            if s.filesz > s.memsz {
                return Err(Error::Malformed("ELF PT_LOAD with p_filesz > p_memsz"));
            }
            if s.offset.checked_add(s.filesz).is_none() {
                return Err(Error::Malformed("ELF PT_LOAD extends past 2^64"));
            }
            // What the file holds of the segment; the rest reads as not
            // in memory, and the dump is marked incomplete.
            let held = size.saturating_sub(s.offset).min(s.filesz);
            missing = missing.saturating_add(s.filesz - held);
            let saved = s.filesz;
            s.filesz = held;
            if s.filesz > 0 {
                if s.paddr != NO_PADDR {
                    phys.push(MapRange {
                        start: s.paddr,
                        len: s.filesz,
                        value: s.offset,
                    });
                }
                virt.push(MapRange {
                    start: s.vaddr,
                    len: s.filesz,
                    value: s.offset,
                });
            }
            // Bytes the dump tool chose not to save (p_memsz beyond
            // p_filesz), not those the file lost.
            if s.memsz > saved && s.paddr != NO_PADDR {
                let start = s
                    .paddr
                    .checked_add(saved)
                    .ok_or(Error::Malformed("ELF PT_LOAD wraps"))?;
                excluded.push(MapRange {
                    start,
                    len: s.memsz - saved,
                    value: 0,
                });
            }
        }
        if missing > 0 {
            info.incomplete = true;
            // Headers claiming more than 2^64 bytes in all (damage).
            let missing = match missing {
                u64::MAX => String::from("2^64 or more"),
                n => format!("{n}"),
            };
            info.remarks.push(format!(
                "truncated: {missing} bytes of PT_LOAD data lie past the end of the file ({size} bytes); they read as not in memory"
            ));
        }
        let dropped = disjoint(&mut phys);
        if dropped {
            info.remarks
                .push("overlapping physical segments: the first one wins".into());
        }
        disjoint(&mut excluded);
        // Saved bytes take precedence over a not-saved tail of another segment.
        excluded = subtract(&excluded, &phys);
        disjoint(&mut virt);
        for s in segments.iter().filter(|s| s.0 == PT_NOTE).map(|s| s.1) {
            if s.filesz > MAX_NOTES {
                return Err(Error::Malformed("ELF PT_NOTE larger than 16 MiB"));
            }
            let data = file.read_vec_at(
                s.offset,
                s.filesz,
                "ELF PT_NOTE extends past the end of the file",
            )?;
            notes::read_notes(&mut info, &data)?;
        }
        Ok(ElfDump {
            file,
            info,
            segments: segments
                .into_iter()
                .filter(|s| s.0 == PT_LOAD)
                .map(|s| s.1)
                .collect(),
            phys,
            excluded,
            virt,
        })
    }

    /// The PT_LOAD segments in file order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Virtual ranges saved in the file (QEMU paging dumps, kcore): reads
    /// through them need no page tables.
    pub fn virt_ranges(&self) -> &[MapRange] {
        &self.virt
    }

    /// The underlying file.
    pub fn file(&self) -> &R {
        &self.file
    }
}

/// Sorts ranges and trims overlaps (earlier start wins); reports whether
/// anything was trimmed.
fn disjoint(v: &mut Vec<MapRange>) -> bool {
    v.sort_by_key(|r| r.start);
    let mut out: Vec<MapRange> = Vec::with_capacity(v.len());
    let mut trimmed = false;
    for mut r in v.drain(..) {
        if let Some(last) = out.last() {
            let last_end = last.end();
            if r.start < last_end {
                trimmed = true;
                let cut = last_end - r.start;
                if cut >= r.len {
                    continue;
                }
                r.start += cut;
                r.len -= cut;
                r.value = r.value.saturating_add(cut);
            }
        }
        out.push(r);
    }
    *v = out;
    trimmed
}

/// The parts of `a` not covered by `b` (both sorted and disjoint).
fn subtract(a: &[MapRange], b: &[MapRange]) -> Vec<MapRange> {
    let mut out = Vec::new();
    for r in a {
        let mut start = r.start;
        let end = r.end();
        for c in b {
            if c.start >= end || c.end() <= start {
                continue;
            }
            if c.start > start {
                out.push(MapRange {
                    start,
                    len: c.start - start,
                    value: 0,
                });
            }
            start = start.max(c.end());
        }
        if start < end {
            out.push(MapRange {
                start,
                len: end - start,
                value: 0,
            });
        }
    }
    out
}

fn header<R: ReadAt>(file: &R) -> Result<Header> {
    let mut b = [0u8; 64];
    let n = file.read_at(0, &mut b)?;
    if n < 52 || &b[..4] != b"\x7fELF" {
        return Err(Error::Malformed("ELF header truncated"));
    }
    let is64 = match b[4] {
        1 => false,
        2 => true,
        _ => return Err(Error::Malformed("ELF class is neither 32- nor 64-bit")),
    };
    if is64 && n < 64 {
        return Err(Error::Malformed("ELF header truncated"));
    }
    let endian = match b[5] {
        1 => Endian::Little,
        2 => Endian::Big,
        _ => {
            return Err(Error::Malformed(
                "ELF byte order is neither little nor big endian",
            ))
        }
    };
    let f = |off, len| field(&b, off, len, endian);
    if f(16, 2) as u16 != ET_CORE {
        return Err(Error::Malformed(
            "ELF file is not a core file (e_type != ET_CORE)",
        ));
    }
    let (phoff, shoff, flags, phentsize, phnum, shentsize) = if is64 {
        (f(32, 8), f(40, 8), f(48, 4), f(54, 2), f(56, 2), f(58, 2))
    } else {
        (f(28, 4), f(32, 4), f(36, 4), f(42, 2), f(44, 2), f(46, 2))
    };
    let want = if is64 { 56 } else { 32 };
    if phentsize != want {
        return Err(Error::Malformed("ELF e_phentsize does not match the class"));
    }
    let mut phnum = phnum as u32;
    if phnum == u32::from(PN_XNUM) {
        // The real count is in section header 0's sh_info.
        let (sh_want, info_off) = if is64 { (64, 44) } else { (40, 28) };
        if shentsize != sh_want {
            return Err(Error::Malformed(
                "ELF PN_XNUM without a valid section header",
            ));
        }
        let mut sh = [0u8; 64];
        file.read_exact_at(
            shoff,
            &mut sh[..sh_want as usize],
            "ELF section header 0 past the end of the file",
        )?;
        phnum = field(&sh, info_off, 4, endian) as u32;
    }
    if phnum > MAX_PHNUM {
        return Err(Error::Malformed(
            "ELF has more than 1,000,000 program headers",
        ));
    }
    Ok(Header {
        osabi: b[7],
        is64,
        endian,
        machine: f(18, 2) as u16,
        flags: flags as u32,
        phoff,
        phentsize: phentsize as u16,
        phnum,
    })
}

fn program_headers<R: ReadAt>(file: &R, h: &Header) -> Result<Vec<(u32, Segment)>> {
    let len = u64::from(h.phnum) * u64::from(h.phentsize);
    let table = file.read_vec_at(
        h.phoff,
        len,
        "ELF program headers extend past the end of the file",
    )?;
    let e = h.endian;
    let mut out = Vec::with_capacity(h.phnum as usize);
    for ph in table.chunks_exact(usize::from(h.phentsize)) {
        let f = |off, len| field(ph, off, len, e);
        let (kind, seg) = if h.is64 {
            (
                f(0, 4) as u32,
                Segment {
                    offset: f(8, 8),
                    vaddr: f(16, 8),
                    paddr: f(24, 8),
                    filesz: f(32, 8),
                    memsz: f(40, 8),
                },
            )
        } else {
            let paddr = f(12, 4);
            let paddr = if paddr == u64::from(u32::MAX) {
                NO_PADDR
            } else {
                paddr
            };
            (
                f(0, 4) as u32,
                Segment {
                    offset: f(4, 4),
                    vaddr: f(8, 4),
                    paddr,
                    filesz: f(16, 4),
                    memsz: f(20, 4),
                },
            )
        };
        if kind == PT_LOAD
            && (seg.vaddr.checked_add(seg.memsz).is_none()
                || (seg.paddr != NO_PADDR && seg.paddr.checked_add(seg.memsz).is_none()))
        {
            return Err(Error::Malformed(
                "ELF PT_LOAD wraps around the address space",
            ));
        }
        out.push((kind, seg));
    }
    Ok(out)
}

impl<R: ReadAt> PhysRead for ElfDump<R> {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        if let Some(n) = crate::io::read_ranges(&self.file, &self.phys, pa.0, buf)? {
            return Ok(n);
        }
        if MapRange::find(&self.excluded, pa.0).is_some() {
            return Err(Error::Excluded { pa: pa.0 });
        }
        Err(Error::NotInMemory { pa: pa.0 })
    }
}

/// Reads by virtual address through the segments' `p_vaddr` (QEMU paging
/// dumps, kcore), without page tables.
impl<R: ReadAt> VirtRead for ElfDump<R> {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        crate::io::read_ranges(&self.file, &self.virt, va.0, buf)?
            .ok_or(Error::Unmapped { va: va.0 })
    }
}

impl<R: ReadAt + Send + Sync + core::fmt::Debug> Source for ElfDump<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &self.phys
    }
    /// Only where a segment's `p_vaddr` is a kernel address of its own:
    /// QEMU writes `p_vaddr = p_paddr` (or 0) when it knows no virtual
    /// address, and reading physical bytes as virtual ones would be wrong.
    fn kernel_virt(&self) -> Option<&dyn VirtRead> {
        let real = self
            .segments
            .iter()
            .any(|s| s.filesz > 0 && s.vaddr != 0 && s.vaddr != s.paddr);
        real.then_some(self as &dyn VirtRead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::elf::{write_elf, ElfOptions};
    use crate::write::push_note;
    use alloc::vec;
    use kvm_core::{PhysReadExt, SparseMem};

    /// Memory with a recognisable byte pattern in a few ranges.
    fn memory(ranges: &[MapRange]) -> SparseMem {
        let mut m = SparseMem::new();
        for r in ranges {
            let bytes: Vec<u8> = (0..r.len)
                .map(|i| ((r.start + i) * 7 % 251) as u8)
                .collect();
            m.write(PhysAddr(r.start), &bytes).unwrap();
        }
        m
    }

    fn build(opts: ElfOptions, ranges: &[MapRange], notes: &[u8]) -> Vec<u8> {
        let mem = memory(ranges);
        let mut out = Vec::new();
        write_elf(&mut out, opts, &mem, ranges, notes, &mut |_| {}).unwrap();
        out
    }

    const RANGES: [MapRange; 3] = [
        MapRange {
            start: 0,
            len: 0x3000,
            value: 0,
        },
        MapRange {
            start: 0x10_0000,
            len: 0x2000,
            value: 0,
        },
        MapRange {
            start: 0x7fff_e000,
            len: 0x1000,
            value: 0,
        },
    ];

    #[test]
    fn round_trip_every_class_and_byte_order() {
        for is64 in [false, true] {
            for endian in [Endian::Little, Endian::Big] {
                let mut notes = Vec::new();
                push_note(
                    &mut notes,
                    endian,
                    b"VMCOREINFO",
                    0,
                    b"OSRELEASE=6.1.0-test\nPAGESIZE=4096\n",
                );
                let file = build(
                    ElfOptions {
                        is64,
                        endian,
                        machine: 62,
                    },
                    &RANGES,
                    &notes,
                );
                let d = ElfDump::open(file).unwrap();
                assert_eq!(d.info().arch, Some(Arch::X86_64));
                assert_eq!(d.info().endian, endian);
                assert_eq!(d.info().kernel_release(), Some("6.1.0-test"));
                assert_eq!(d.info().page_size, Some(4096));
                assert_eq!(d.ranges().len(), 3);
                let want = memory(&RANGES);
                for r in &RANGES {
                    let mut a = vec![0u8; r.len as usize];
                    let mut b = vec![0u8; r.len as usize];
                    d.read_phys_exact(PhysAddr(r.start), &mut a).unwrap();
                    want.read_phys_exact(PhysAddr(r.start), &mut b).unwrap();
                    assert_eq!(a, b);
                }
                // A read running into a hole stops there; one starting in it fails.
                let mut buf = [0u8; 0x20];
                assert_eq!(d.read_phys(PhysAddr(0x2ff0), &mut buf), Ok(0x10));
                assert_eq!(
                    d.read_phys(PhysAddr(0x3000), &mut buf),
                    Err(Error::NotInMemory { pa: 0x3000 })
                );
            }
        }
    }

    #[test]
    fn a_truncated_dump_opens_marked_incomplete() {
        let opts = ElfOptions {
            is64: true,
            endian: Endian::Little,
            machine: 62,
        };
        let whole = build(opts, &RANGES, &[]);
        // The last segment (0x7fff_e000, one page) loses its second half;
        // the first is still read.
        let cut = &whole[..whole.len() - 0x800];
        let d = ElfDump::open(cut).unwrap();
        assert!(d.info().incomplete);
        assert_eq!(
            d.info().remarks,
            [format!(
                "truncated: 2048 bytes of PT_LOAD data lie past the end of the file ({} bytes); they read as not in memory",
                cut.len()
            )]
        );
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        d.read_phys_exact(PhysAddr(0x7fff_e000), &mut a).unwrap();
        ElfDump::open(&whole[..])
            .unwrap()
            .read_phys_exact(PhysAddr(0x7fff_e000), &mut b)
            .unwrap();
        assert_eq!(a, b);
        // The lost half is not in memory, not "excluded by the dump tool".
        assert_eq!(
            d.read_phys(PhysAddr(0x7fff_e800), &mut a),
            Err(Error::NotInMemory { pa: 0x7fff_e800 })
        );
        // The whole dump is not marked.
        assert!(!ElfDump::open(&whole[..]).unwrap().info().incomplete);
    }

    #[test]
    fn segments_missing_more_than_2_64_bytes_in_all_are_counted_without_overflow() {
        // Found by the fuzz campaign (`elf`): 242 program headers whose
        // PT_LOADs past the end of an 18,550-byte file add up past 2^64.
        let file: &[u8] = include_bytes!(
            "../../fuzz/regressions/elf/crash-abe487746400e79eff65418dd5e8ac2943b8b0e6"
        );
        let d = ElfDump::open(file).unwrap();
        assert!(d.info().incomplete);
        assert_eq!(
            d.info().remarks,
            ["truncated: 2^64 or more bytes of PT_LOAD data lie past the end of the file (18550 bytes); they read as not in memory"]
        );
        assert!(d.ranges().is_empty());
    }

    #[test]
    fn os_hints_and_direct_virtual_reads() {
        let opts = ElfOptions {
            is64: true,
            endian: Endian::Little,
            machine: 62,
        };
        let mut notes = Vec::new();
        push_note(
            &mut notes,
            Endian::Little,
            b"VMCOREINFO",
            0,
            b"PAGESIZE=4096\n",
        );
        // A VMCOREINFO note: Linux.
        let d = ElfDump::open(build(opts, &RANGES, &notes)).unwrap();
        assert_eq!(d.info().os, Some(OsHint::Linux));
        // No note, no OSABI: no hint.
        let plain = build(opts, &RANGES, &[]);
        assert_eq!(ElfDump::open(plain.clone()).unwrap().info().os, None);
        // FreeBSD and OpenBSD cores say so in EI_OSABI.
        for (abi, os) in [
            (9u8, OsHint::FreeBsd),
            (255, OsHint::FreeBsd),
            (12, OsHint::OpenBsd),
        ] {
            let mut f = plain.clone();
            f[7] = abi;
            assert_eq!(ElfDump::open(f).unwrap().info().os, Some(os));
        }
        // The writer sets p_vaddr = p_paddr, as QEMU does without paging:
        // no virtual addresses of its own.
        let d = ElfDump::open(plain.clone()).unwrap();
        assert!(d.kernel_virt().is_none());
        // With real p_vaddrs (kcore, QEMU's paging dumps), reads by segment.
        let mut f = plain;
        let phoff = u64::from_le_bytes(f[32..40].try_into().unwrap()) as usize;
        let base = 0xffff_8880_0000_0000u64;
        for i in 1..=RANGES.len() {
            let ph = phoff + 56 * i; // PT_NOTE first, then the PT_LOADs
            let paddr = u64::from_le_bytes(f[ph + 24..ph + 32].try_into().unwrap());
            f[ph + 16..ph + 24].copy_from_slice(&(base + paddr).to_le_bytes());
        }
        let d = ElfDump::open(f).unwrap();
        let v = d.kernel_virt().expect("PT_LOAD segments with p_vaddr");
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        assert_eq!(v.read_virt(VirtAddr(base + 0x10_0010), &mut a), Ok(16));
        d.read_phys_exact(PhysAddr(0x10_0010), &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            v.read_virt(VirtAddr(0x10_0010), &mut a),
            Err(Error::Unmapped { va: 0x10_0010 })
        );
        // No segments, no virtual reads.
        let empty = ElfDump::open(build(opts, &[], &[])).unwrap();
        assert!(empty.kernel_virt().is_none());
    }

    #[test]
    fn more_than_65535_segments_use_pn_xnum() {
        let ranges: Vec<MapRange> = (0..70_000u64)
            .map(|i| MapRange {
                start: i * 0x2000,
                len: 16,
                value: 0,
            })
            .collect();
        let file = build(
            ElfOptions {
                is64: true,
                endian: Endian::Little,
                machine: 183,
            },
            &ranges,
            &[],
        );
        let d = ElfDump::open(file).unwrap();
        assert_eq!(d.segments().len(), 70_000);
        assert_eq!(d.info().arch, Some(Arch::Aarch64));
        let last = ranges[69_999].start;
        assert_eq!(
            d.read_u64_le(PhysAddr(last)).unwrap(),
            memory(&ranges[69_999..])
                .read_u64_le(PhysAddr(last))
                .unwrap()
        );
    }

    #[test]
    fn unsaved_tail_is_excluded_and_disagreeing_overlaps_refused() {
        let mut file = build(
            ElfOptions {
                is64: true,
                endian: Endian::Little,
                machine: 62,
            },
            &RANGES,
            &[],
        );
        // Grow the second PT_LOAD's p_memsz by 0x1000: its tail exists but was not saved.
        let ph = 64 + 56 * 2;
        let memsz = u64::from_le_bytes(file[ph + 40..ph + 48].try_into().unwrap());
        file[ph + 40..ph + 48].copy_from_slice(&(memsz + 0x1000).to_le_bytes());
        // Make the third segment overlap the first one at other file
        // bytes: damage, refused (both cannot be right).
        let ph3 = 64 + 56 * 3;
        let mut overlapping = file.clone();
        overlapping[ph3 + 24..ph3 + 32].copy_from_slice(&0x2800u64.to_le_bytes());
        assert_eq!(
            ElfDump::open(overlapping).err(),
            Some(Error::Malformed(
                "two ELF PT_LOADs disagree on where the same memory is (damaged program headers)"
            ))
        );
        let d = ElfDump::open(file).unwrap();
        let mut b = [0u8; 4];
        assert_eq!(
            d.read_phys(PhysAddr(0x10_2000), &mut b),
            Err(Error::Excluded { pa: 0x10_2000 })
        );
        assert_eq!(
            d.read_phys(PhysAddr(0x10_3000), &mut b),
            Err(Error::NotInMemory { pa: 0x10_3000 })
        );
    }

    /// Issue 16, finding 3: `e_machine` 183 (aarch64) on a dump whose
    /// VMCOREINFO describes an x86-64 kernel was shown as aarch64; the
    /// two accounts must agree.
    #[test]
    fn a_machine_the_vmcoreinfo_contradicts_is_refused() {
        let mut notes = Vec::new();
        let text = b"OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff8a40a000\n";
        push_note(&mut notes, Endian::Little, b"VMCOREINFO", 0, text);
        let elf = |machine| {
            let opts = ElfOptions {
                is64: true,
                endian: Endian::Little,
                machine,
            };
            build(opts, &RANGES, &notes)
        };
        assert!(crate::open(elf(62)).is_ok());
        assert_eq!(
            crate::open(elf(183)).err(),
            Some(Error::Malformed(
                "the dump's header and its VMCOREINFO name different architectures (a damaged header?)"
            ))
        );
    }

    /// Issue 16, finding 3: PAGESIZE 0 or 4097 was taken from an ELF
    /// (and 8192 on x86-64 doubled every RSS). It must be one of the
    /// architecture's page sizes.
    #[test]
    fn a_page_size_the_architecture_lacks_is_refused() {
        let elf = |machine, pagesize: &str| {
            let mut notes = Vec::new();
            let text = alloc::format!("OSRELEASE=6.1.0\nPAGESIZE={pagesize}\n");
            push_note(
                &mut notes,
                Endian::Little,
                b"VMCOREINFO",
                0,
                text.as_bytes(),
            );
            let opts = ElfOptions {
                is64: true,
                endian: Endian::Little,
                machine,
            };
            crate::open(build(opts, &RANGES, &notes)).err()
        };
        let bad = Some(Error::Malformed(
            "VMCOREINFO's PAGESIZE is not a page size of the dump's architecture",
        ));
        for p in ["0", "4097", "8192", "65536"] {
            assert_eq!(elf(62, p), bad, "x86-64 PAGESIZE={p}");
        }
        assert_eq!(elf(62, "4096"), None);
        for p in ["4096", "16384", "65536"] {
            assert_eq!(elf(183, p), None, "arm64 PAGESIZE={p}");
        }
        assert_eq!(elf(183, "8192"), bad);
    }

    #[test]
    fn truncation_and_bit_flips_give_errors_not_panics() {
        let mut notes = Vec::new();
        push_note(
            &mut notes,
            Endian::Little,
            b"VMCOREINFO",
            0,
            b"OSRELEASE=x\n",
        );
        let file = build(
            ElfOptions {
                is64: true,
                endian: Endian::Little,
                machine: 62,
            },
            &RANGES,
            &notes,
        );
        let headers = 64 + 56 * 4 + notes.len();
        for cut in 0..headers {
            assert!(ElfDump::open(file[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        for byte in 0..headers {
            for bit in 0..8 {
                let mut f = file.clone();
                f[byte] ^= 1 << bit;
                if let Ok(d) = ElfDump::open(f) {
                    let mut b = [0u8; 64];
                    for r in d.ranges().iter().take(8) {
                        let _ = d.read_phys(PhysAddr(r.start), &mut b);
                    }
                }
            }
        }
    }
}
