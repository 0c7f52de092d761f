//! Finding a Linux kernel's VMCOREINFO in physical memory that carries no
//! metadata (a raw image, LiME, a running VM's RAM, `/dev/mem`).
//!
//! Kernels built with crash support keep the VMCOREINFO text in two
//! page-aligned buffers (`kernel/crash_core.c`, 6.1): `vmcoreinfo_data`, a
//! zeroed page whose text starts with `OSRELEASE=`, and `vmcoreinfo_note`,
//! the ELF note the kdump kernel is given (a 12-byte note header, the name
//! `VMCOREINFO\0` padded to 12 bytes, then the same text). Both start a
//! page, so the scan reads the first bytes of each page of each range and
//! nothing else: one small read per page.
//!
//! The text names the architecture only indirectly: x86-64 kernels export
//! `SYMBOL(init_top_pgt)` (`init_level4_pgt` before 4.13) and
//! `NUMBER(phys_base)`, arm64 kernels `NUMBER(kimage_voffset)` and
//! `NUMBER(PHYS_OFFSET)` (`arch_crash_save_vmcoreinfo` of each).

use crate::{Arch, MapRange, OsHint, PhysAddr, PhysRead, Result, SourceInfo, VmCoreInfo};
use alloc::format;
use alloc::vec;

/// The start of `vmcoreinfo_data`.
const DATA_MAGIC: &[u8] = b"OSRELEASE=";
/// The note name, after the 12-byte note header.
const NOTE_NAME: &[u8] = b"VMCOREINFO\0";
/// Where the note's text starts: header (12) + name padded to 4 (12).
const NOTE_DESC: u64 = 24;
/// The largest text read: the kernel's buffer is one page (`VMCOREINFO_BYTES`
/// is `PAGE_SIZE`), at most 64 KiB.
const MAX_TEXT: u64 = 64 << 10;

/// VMCOREINFO found in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Physical address of the text.
    pub pa: PhysAddr,
    /// The parsed text.
    pub vmcoreinfo: VmCoreInfo,
    /// The architecture its entries imply, if they imply one.
    pub arch: Option<Arch>,
    /// Pages whose start was read before the text was found.
    pub pages_scanned: u64,
}

impl Found {
    /// Puts what was found into `info`: VMCOREINFO, the OS, and the
    /// architecture and page size where the source did not state them,
    /// with a remark saying where they came from.
    pub fn apply(&self, info: &mut SourceInfo) {
        info.vmcoreinfo = Some(self.vmcoreinfo.clone());
        info.os = Some(OsHint::Linux);
        info.arch = info.arch.or(self.arch);
        info.page_size = info.page_size.or(self.vmcoreinfo.page_size());
        info.remarks.push(format!(
            "VMCOREINFO found in memory at physical address {:#x} by a scan of {} pages (the architecture and page size from it)",
            self.pa.0, self.pages_scanned
        ));
    }
}

/// The architecture a VMCOREINFO text implies.
pub fn arch_of(vi: &VmCoreInfo) -> Option<Arch> {
    if vi.number("kimage_voffset").is_some() {
        Some(Arch::Aarch64)
    } else if vi.symbol("init_top_pgt").is_some()
        || vi.symbol("init_level4_pgt").is_some()
        || vi.number("phys_base").is_some()
    {
        Some(Arch::X86_64)
    } else {
        None
    }
}

/// Scans the pages of `ranges` (physical addresses, `page`-aligned starts)
/// for the kernel's VMCOREINFO; the first text that parses and states
/// `OSRELEASE` and a plausible `PAGESIZE` wins. Pages that cannot be read
/// are skipped. `page` is the step (4096, the default for 0, finds the text
/// on every page size).
pub fn find_vmcoreinfo(mem: &dyn PhysRead, ranges: &[MapRange], page: u64) -> Option<Found> {
    let page = if page == 0 { 4096 } else { page };
    let mut scanned = 0u64;
    for r in ranges {
        let mut pa = r.start.div_ceil(page).saturating_mul(page);
        while pa < r.end() && pa >= r.start {
            scanned += 1;
            if let Some(found) = at(mem, PhysAddr(pa)) {
                return Some(Found {
                    pages_scanned: scanned,
                    ..found
                });
            }
            pa = match pa.checked_add(page) {
                Some(p) => p,
                None => break,
            };
        }
    }
    None
}

/// The VMCOREINFO whose note or data page starts at `pa` (where the
/// kernel says it is: `/sys/kernel/vmcoreinfo`), if it is there.
pub fn at(mem: &dyn PhysRead, pa: PhysAddr) -> Option<Found> {
    let mut head = [0u8; 24];
    let n = mem.read_phys(pa, &mut head).ok()?;
    let (text_pa, len) = text_at(pa.0, &head[..n])?;
    let vi = read_text(mem, text_pa, len).ok()??;
    Some(Found {
        pa: PhysAddr(text_pa),
        arch: arch_of(&vi),
        vmcoreinfo: vi,
        pages_scanned: 1,
    })
}

/// Where the text of a page starting with `head` is, and at most how long.
fn text_at(pa: u64, head: &[u8]) -> Option<(u64, u64)> {
    if head.starts_with(DATA_MAGIC) {
        return Some((pa, MAX_TEXT));
    }
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(head.get(o..o + 4)?.try_into().ok()?))
    };
    // Elf64_Nhdr: namesz 11, descsz, type 0, then the name (little-endian
    // kernels: both arches here).
    if u32_at(0)? == NOTE_NAME.len() as u32
        && u32_at(8)? == 0
        && head.get(12..12 + NOTE_NAME.len())? == NOTE_NAME
    {
        let len = u64::from(u32_at(4)?).min(MAX_TEXT);
        return Some((pa + NOTE_DESC, len));
    }
    None
}

/// Reads and checks the text at `pa`: `None` when it is not a kernel's.
fn read_text(mem: &dyn PhysRead, pa: u64, len: u64) -> Result<Option<VmCoreInfo>> {
    let mut buf = vec![0u8; len as usize];
    let n = mem.read_phys(PhysAddr(pa), &mut buf)?;
    let vi = match VmCoreInfo::parse(&buf[..n]) {
        Ok(vi) => vi,
        Err(_) => return Ok(None),
    };
    let release_ok = vi
        .osrelease()
        .is_some_and(|r| !r.is_empty() && r.len() < 65 && r.bytes().all(|b| b.is_ascii_graphic()));
    let page_ok = vi
        .page_size()
        .is_some_and(|p| p.is_power_of_two() && (4096..=65536).contains(&p));
    Ok((release_ok && page_ok).then_some(vi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SparseMem;

    const TEXT: &[u8] = b"OSRELEASE=6.1.0-28-arm64\nPAGESIZE=4096\n\
        SYMBOL(swapper_pg_dir)=ffff800009b5a000\nNUMBER(kimage_voffset)=0xffff7fff47600000\n";

    fn ranges(len: u64) -> [MapRange; 1] {
        [MapRange {
            start: 0x4000_0000,
            len,
            value: 0,
        }]
    }

    #[test]
    fn finds_the_data_page_and_names_the_arch() {
        let mut m = SparseMem::new();
        m.write(PhysAddr(0x4000_0000), &[0xaa; 4096]).unwrap();
        m.write(PhysAddr(0x4000_3000), TEXT).unwrap();
        let f = find_vmcoreinfo(&m, &ranges(0x10_0000), 4096).unwrap();
        assert_eq!(f.pa, PhysAddr(0x4000_3000));
        assert_eq!(f.arch, Some(Arch::Aarch64));
        assert_eq!(f.vmcoreinfo.osrelease(), Some("6.1.0-28-arm64"));
        // Pages 0, 1 and 2 (page 1 and 2 not in memory: skipped), then 3.
        assert_eq!(f.pages_scanned, 4);
    }

    #[test]
    fn finds_the_note_and_reads_only_its_descsz() {
        let text = b"OSRELEASE=6.1.0-28-cloud-amd64\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff9a40a000\nNUMBER(phys_base)=0\n";
        let mut note = vec![];
        note.extend_from_slice(&11u32.to_le_bytes());
        note.extend_from_slice(&(text.len() as u32).to_le_bytes());
        note.extend_from_slice(&0u32.to_le_bytes());
        note.extend_from_slice(b"VMCOREINFO\0\0");
        note.extend_from_slice(text);
        // Garbage after the note's descsz is not part of the text.
        note.extend_from_slice(b"OSRELEASE=other\n");
        let mut m = SparseMem::new();
        m.write(PhysAddr(0x4000_2000), &note).unwrap();
        let f = find_vmcoreinfo(&m, &ranges(0x4000), 4096).unwrap();
        assert_eq!(f.pa, PhysAddr(0x4000_2018));
        assert_eq!(f.arch, Some(Arch::X86_64));
        assert_eq!(f.vmcoreinfo.osrelease(), Some("6.1.0-28-cloud-amd64"));
    }

    #[test]
    fn text_that_is_not_a_kernels_is_passed_over() {
        let mut m = SparseMem::new();
        // A page that starts like the text but has no PAGESIZE, one with a
        // bad page size, one with a release of control bytes.
        m.write(PhysAddr(0x4000_0000), b"OSRELEASE=6.1\nFOO=1\n")
            .unwrap();
        m.write(PhysAddr(0x4000_1000), b"OSRELEASE=6.1\nPAGESIZE=4097\n")
            .unwrap();
        m.write(
            PhysAddr(0x4000_2000),
            b"OSRELEASE=\x01\x02\nPAGESIZE=4096\n",
        )
        .unwrap();
        assert_eq!(find_vmcoreinfo(&m, &ranges(0x4000), 4096), None);
        m.write(PhysAddr(0x4000_3000), TEXT).unwrap();
        assert_eq!(
            find_vmcoreinfo(&m, &ranges(0x4000), 4096).map(|f| f.pa),
            Some(PhysAddr(0x4000_3000))
        );
    }

    #[test]
    fn ranges_at_the_top_of_the_address_space_end() {
        let m = SparseMem::new();
        let top = [MapRange {
            start: u64::MAX - 0x1fff,
            len: 0x2000,
            value: 0,
        }];
        assert_eq!(find_vmcoreinfo(&m, &top, 4096), None);
        assert_eq!(find_vmcoreinfo(&m, &top, 0), None);
    }
}
