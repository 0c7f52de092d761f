//! The CPU segment's data: the machine-dependent header (FORMATS.md §4.4).
//!
//! amd64, per OpenBSD `sys/arch/amd64/include/kcore.h` and `cpu_dump()` in
//! `sys/arch/amd64/amd64/machdep.c`: `cpu_kcore_hdr_t` = `ptdpaddr` u64
//! (proc0's `pcb_cr3`: the kernel PML4) and `nmemsegs` u64, then at
//! `ALIGN(sizeof(cpu_kcore_hdr_t))` = 16 the `phys_ram_seg_t` list
//! (`start` u64, `size` u64 each), in one 512-byte disk block behind the
//! 8-byte segment header: 30 segments at most. (The kernel's own check,
//! `cpu_dumpsize()`, leaves out the 16 header bytes and would accept 31,
//! which do not fit the block.)
//!
//! i386: OpenBSD has no `cpu_kcore_hdr_t` at all. Its `cpu_dump()` (i386
//! `machdep.c`) writes only the segment header (`c_size` = 504) and
//! leaves the rest of the block as it was on the stack; `dumpsys()` puts
//! each page at disk offset `dumplo + 1 block + pa`, and libkvm's
//! `kvm_i386.c` reads physical address `pa` at `dump_off + pa` and takes
//! the page directory from the kernel symbol `_PTDpaddr`. So a dump made
//! by OpenBSD says nothing here. This crate's writer stores its own record
//! in those undefined bytes so that its i386 dumps carry the root and the
//! RAM ranges ([`I386_TAG`]); the reader trusts the bytes only behind that
//! tag.

use super::header::{align, KCORE_SEG_SIZE};
use crate::Result;
use alloc::vec::Vec;
use kvm_core::{Arch, Error};

/// One `phys_ram_seg_t`: a range of physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhysRamSeg {
    /// First physical address.
    pub start: u64,
    /// Bytes.
    pub size: u64,
}

/// Bytes of CPU data the kernel writes: one 512-byte disk block less the
/// aligned segment header (`dbtob(1) - ALIGN(sizeof(kcore_seg_t))`), which
/// savecore copies as the CPU segment (`ALIGN(504)` = 504 on both).
pub const CPU_DSIZE: u64 = 512 - KCORE_SEG_SIZE;
/// Bytes of amd64's `cpu_kcore_hdr_t` (`ptdpaddr`, `nmemsegs`).
pub const AMD64_CPU_HDR_SIZE: u64 = 16;
/// The most RAM segments an amd64 CPU block holds.
pub const AMD64_MAX_SEGS: usize = ((CPU_DSIZE - AMD64_CPU_HDR_SIZE) / 16) as usize;
/// Tag of this project's i386 record (not an OpenBSD structure): tag,
/// `ptdpaddr` u64, flags u64, `nmemsegs` u64, then the segments.
pub const I386_TAG: [u8; 8] = *b"kvm:i386";
/// Bytes of the i386 record before its segments.
pub const I386_RECORD_SIZE: u64 = 32;
/// The most RAM segments the i386 record holds.
pub const I386_MAX_SEGS: usize = ((CPU_DSIZE - I386_RECORD_SIZE) / 16) as usize;
/// The i386 record's flag for PAE paging (`ptdpaddr` is then the PDPT).
pub const I386_FLAG_PAE: u64 = 1;

/// What the CPU data says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuHeader {
    /// amd64's `cpu_kcore_hdr_t` and its segments (in list order, which
    /// is the order of the memory in the file).
    Amd64 {
        /// Physical address of the kernel's PML4.
        ptdpaddr: u64,
        /// The RAM segments.
        segs: Vec<PhysRamSeg>,
    },
    /// i386 with this project's record.
    I386Tagged {
        /// Physical address of the page directory (PDPT with PAE).
        ptdpaddr: u64,
        /// PAE paging.
        pae: bool,
        /// The RAM segments (the memory itself is a flat image from
        /// physical address 0, as OpenBSD lays it out).
        segs: Vec<PhysRamSeg>,
    },
    /// i386 as OpenBSD writes it: the CPU data holds nothing.
    I386Bare,
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// `n` segments starting at `off` in `data`, after checking they fit.
fn segs_at(data: &[u8], off: u64, n: u64) -> Result<Vec<PhysRamSeg>> {
    if n == 0 {
        return Err(Error::Malformed("OpenBSD kcore: nmemsegs is 0"));
    }
    let end = n
        .checked_mul(16)
        .and_then(|b| b.checked_add(off))
        .filter(|&e| e <= data.len() as u64)
        .ok_or(Error::Malformed(
            "OpenBSD kcore: nmemsegs does not fit the CPU segment",
        ))?;
    let (off, end) = (off as usize, end as usize);
    Ok(data[off..end]
        .chunks_exact(16)
        .map(|c| PhysRamSeg {
            start: u64_at(c, 0),
            size: u64_at(c, 8),
        })
        .collect())
}

impl CpuHeader {
    /// Decodes the CPU data of a dump of `arch` (amd64 or i386).
    pub fn parse(arch: Arch, data: &[u8]) -> Result<CpuHeader> {
        match arch {
            Arch::X86_64 => {
                if (data.len() as u64) < AMD64_CPU_HDR_SIZE {
                    return Err(Error::Malformed(
                        "OpenBSD kcore: CPU segment shorter than cpu_kcore_hdr_t (16 bytes)",
                    ));
                }
                let segs = segs_at(data, align(arch, AMD64_CPU_HDR_SIZE), u64_at(data, 8))?;
                Ok(CpuHeader::Amd64 {
                    ptdpaddr: u64_at(data, 0),
                    segs,
                })
            }
            Arch::I386 => {
                if !data.starts_with(&I386_TAG) {
                    return Ok(CpuHeader::I386Bare);
                }
                if (data.len() as u64) < I386_RECORD_SIZE {
                    return Err(Error::Malformed(
                        "OpenBSD kcore: CPU segment shorter than kvm's i386 record (32 bytes)",
                    ));
                }
                let flags = u64_at(data, 16);
                if flags & !I386_FLAG_PAE != 0 {
                    return Err(Error::Unsupported(
                        "OpenBSD kcore: unknown flags in kvm's i386 record",
                    ));
                }
                let segs = segs_at(data, I386_RECORD_SIZE, u64_at(data, 24))?;
                Ok(CpuHeader::I386Tagged {
                    ptdpaddr: u64_at(data, 8),
                    pae: flags & I386_FLAG_PAE != 0,
                    segs,
                })
            }
            _ => Err(Error::Unsupported(
                "OpenBSD kcore: only amd64 and i386 CPU headers are known",
            )),
        }
    }

    /// The page-table root, when the header has one.
    pub fn ptdpaddr(&self) -> Option<u64> {
        match self {
            CpuHeader::Amd64 { ptdpaddr, .. } | CpuHeader::I386Tagged { ptdpaddr, .. } => {
                Some(*ptdpaddr)
            }
            CpuHeader::I386Bare => None,
        }
    }

    /// The RAM segments the header lists.
    pub fn segs(&self) -> &[PhysRamSeg] {
        match self {
            CpuHeader::Amd64 { segs, .. } | CpuHeader::I386Tagged { segs, .. } => segs,
            CpuHeader::I386Bare => &[],
        }
    }

    /// The [`CPU_DSIZE`] bytes of CPU data, zero-padded; fails when the
    /// segments do not fit ([`AMD64_MAX_SEGS`], [`I386_MAX_SEGS`]).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(CPU_DSIZE as usize);
        let (max, segs) = match self {
            CpuHeader::Amd64 { ptdpaddr, segs } => {
                out.extend_from_slice(&ptdpaddr.to_le_bytes());
                out.extend_from_slice(&(segs.len() as u64).to_le_bytes());
                (AMD64_MAX_SEGS, segs)
            }
            CpuHeader::I386Tagged {
                ptdpaddr,
                pae,
                segs,
            } => {
                out.extend_from_slice(&I386_TAG);
                out.extend_from_slice(&ptdpaddr.to_le_bytes());
                let flags = if *pae { I386_FLAG_PAE } else { 0 };
                out.extend_from_slice(&flags.to_le_bytes());
                out.extend_from_slice(&(segs.len() as u64).to_le_bytes());
                (I386_MAX_SEGS, segs)
            }
            CpuHeader::I386Bare => (0, &Vec::new()),
        };
        if segs.len() > max {
            return Err(Error::Unsupported(
                "OpenBSD kcore: more RAM segments than the CPU header holds",
            ));
        }
        for s in segs {
            out.extend_from_slice(&s.start.to_le_bytes());
            out.extend_from_slice(&s.size.to_le_bytes());
        }
        out.resize(CPU_DSIZE as usize, 0);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(CPU_DSIZE, 504);
        assert_eq!(AMD64_MAX_SEGS, 30);
        assert_eq!(I386_MAX_SEGS, 29);
    }

    #[test]
    fn round_trips() {
        let segs = |n: u64| {
            (0..n)
                .map(|i| PhysRamSeg {
                    start: i << 20,
                    size: 0x1000,
                })
                .collect::<Vec<_>>()
        };
        for h in [
            CpuHeader::Amd64 {
                ptdpaddr: 0x1000,
                segs: segs(30),
            },
            CpuHeader::I386Tagged {
                ptdpaddr: 0x10_0020,
                pae: true,
                segs: segs(29),
            },
        ] {
            let b = h.encode().unwrap();
            assert_eq!(b.len(), 504);
            let arch = match h {
                CpuHeader::Amd64 { .. } => Arch::X86_64,
                _ => Arch::I386,
            };
            assert_eq!(CpuHeader::parse(arch, &b).unwrap(), h);
        }
        let too_many = CpuHeader::Amd64 {
            ptdpaddr: 0,
            segs: segs(31),
        };
        assert_eq!(
            too_many.encode(),
            Err(Error::Unsupported(
                "OpenBSD kcore: more RAM segments than the CPU header holds"
            ))
        );
        // OpenBSD's own i386 block: whatever was on the stack.
        assert_eq!(
            CpuHeader::parse(Arch::I386, &[0xa5; 504]).unwrap(),
            CpuHeader::I386Bare
        );
    }
}
