//! The first page of a FreeBSD minidump: `struct minidumphdr` of amd64
//! (versions 1–3), arm64 (1–3) or i386 (1–2), per FreeBSD's
//! `sys/<arch>/include/minidump.h` and libkvm's `kvm_minidump_<arch>.c`
//! (FORMATS.md §3.4). Little-endian on all three.

use kvm_core::{Arch, Error, Result};

/// Bytes of the magic, NUL-padded.
const MAGIC_LEN: usize = 24;
/// Largest section believed (the header's sizes are 32-bit).
const MAX_SECTION: u64 = 1 << 32;

/// A minidump's header, whatever the architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The dumped machine.
    pub arch: Arch,
    /// `version`.
    pub version: u32,
    /// The kernel's page size (every section is rounded to it).
    pub page: u64,
    /// Bytes of the message buffer section.
    pub msgbufsize: u64,
    /// Bytes of the page bitmap.
    pub bitmapsize: u64,
    /// Bytes of the page-table section (i386: `ptesize`).
    pub pmapsize: u64,
    /// First kernel virtual address the page-table section covers.
    pub kernbase: u64,
    /// The direct map: `dmapbase..dmapend` maps `dmapphys..` (amd64:
    /// physical 0; i386 has none).
    pub dmapbase: u64,
    /// End of the direct map (exclusive).
    pub dmapend: u64,
    /// Physical address mapped at `dmapbase` (arm64's DMAP_MIN_PHYSADDR).
    pub dmapphys: u64,
    /// Bytes of the dump_avail section (0 when the version has none).
    pub dumpavailsize: u64,
    /// i386: 8-byte PAE entries.
    pub pae: bool,
}

/// Largest `dump_avail` section taken (4,096 ranges).
const MAX_DUMP_AVAIL: u64 = 64 << 10;

/// The architecture a minidump's magic names.
pub fn arch_of(magic: &[u8]) -> Option<Arch> {
    let name = magic.get(..MAGIC_LEN)?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(MAGIC_LEN);
    // The rest is NUL padding, compared whole as libkvm does.
    if name[end..].iter().any(|&b| b != 0) {
        return None;
    }
    match &name[..end] {
        b"minidump FreeBSD/amd64" => Some(Arch::X86_64),
        b"minidump FreeBSD/arm64" => Some(Arch::Aarch64),
        b"minidump FreeBSD/i386" => Some(Arch::I386),
        _ => None,
    }
}

impl Header {
    /// Parses the header from the first bytes of the file (at least the
    /// largest header, 80 bytes).
    pub fn parse(b: &[u8]) -> Result<Header> {
        if b.len() < 80 {
            return Err(Error::Malformed("FreeBSD minidump header truncated"));
        }
        let arch = arch_of(b).ok_or(Error::Malformed(
            "FreeBSD minidump magic is not amd64, arm64 or i386",
        ))?;
        let u32_at = |o: usize| u64::from(u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]));
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let version = u32_at(24) as u32;
        let mut h = Header {
            arch,
            version,
            page: 4096,
            msgbufsize: u32_at(28),
            bitmapsize: u32_at(32),
            pmapsize: u32_at(36),
            kernbase: 0,
            dmapbase: 0,
            dmapend: 0,
            dmapphys: 0,
            dumpavailsize: 0,
            pae: false,
        };
        match arch {
            Arch::X86_64 => {
                if !(1..=3).contains(&version) {
                    return Err(Error::Unsupported(
                        "FreeBSD/amd64 minidump version other than 1-3",
                    ));
                }
                (h.kernbase, h.dmapbase, h.dmapend) = (u64_at(40), u64_at(48), u64_at(56));
                if version == 3 {
                    h.dumpavailsize = u32_at(64);
                }
            }
            Arch::Aarch64 => {
                if !(1..=3).contains(&version) {
                    return Err(Error::Unsupported(
                        "FreeBSD/arm64 minidump version other than 1-3",
                    ));
                }
                h.kernbase = u64_at(40);
                (h.dmapphys, h.dmapbase, h.dmapend) = (u64_at(48), u64_at(56), u64_at(64));
                if version >= 2 {
                    h.dumpavailsize = u32_at(72);
                }
                if version >= 3 {
                    // flags bits 0-1: the page size (0 4 KiB, 1 16 KiB).
                    h.page = match u32_at(76) & 3 {
                        0 => 4096,
                        1 => 16384,
                        _ => {
                            return Err(Error::Unsupported(
                                "FreeBSD/arm64 minidump page size other than 4K or 16K",
                            ))
                        }
                    };
                }
            }
            _ => {
                if !(1..=2).contains(&version) {
                    return Err(Error::Unsupported(
                        "FreeBSD/i386 minidump version other than 1-2",
                    ));
                }
                h.kernbase = u32_at(40);
                h.pae = u32_at(44) != 0;
                if version == 2 {
                    h.dumpavailsize = u32_at(48);
                }
            }
        }
        if h.dmapend < h.dmapbase {
            return Err(Error::Malformed(
                "FreeBSD minidump direct map ends before it starts",
            ));
        }
        // The kernel maps whole pages: a base or end inside a page is
        // damage, and would shift every address translated through it.
        // (FreeBSD's pmap aligns them far more: KERNBASE to 2 MiB, the
        // direct map to 512 GiB on amd64.)
        if [h.kernbase, h.dmapbase, h.dmapend, h.dmapphys]
            .iter()
            .any(|&a| !a.is_multiple_of(h.page))
        {
            return Err(Error::Malformed(
                "FreeBSD minidump kernel or direct map base is not page-aligned",
            ));
        }
        let entry = h.entry_size();
        if !h.pmapsize.is_multiple_of(entry) {
            return Err(Error::Malformed(
                "FreeBSD minidump page-table section is not a whole number of entries",
            ));
        }
        if [h.msgbufsize, h.bitmapsize, h.pmapsize, h.dumpavailsize]
            .iter()
            .any(|&s| s >= MAX_SECTION)
        {
            return Err(Error::Malformed("FreeBSD minidump section size too large"));
        }
        // dump_avail is the kernel's small fixed array of physical ranges
        // (PHYS_AVAIL_ENTRIES pairs, 128 on amd64: 2 KiB, one page in the
        // dump).
        if h.dumpavailsize > MAX_DUMP_AVAIL {
            return Err(Error::Malformed(
                "FreeBSD minidump dump_avail larger than 64 KiB",
            ));
        }
        Ok(h)
    }

    /// Bytes of one page-table entry.
    pub fn entry_size(&self) -> u64 {
        if self.arch == Arch::I386 && !self.pae {
            4
        } else {
            8
        }
    }

    /// `size` rounded up to whole pages.
    pub fn round(&self, size: u64) -> Result<u64> {
        size.checked_next_multiple_of(self.page)
            .ok_or(Error::Malformed("FreeBSD minidump section size overflows"))
    }
}
