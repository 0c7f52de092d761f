//! The generic kcore headers: `kcore_hdr_t`, `kcore_seg_t` and the
//! `c_midmag` word they start with (FORMATS.md §4.1–4.2).
//!
//! Facts, per OpenBSD `sys/sys/kcore.h` and `sys/sys/core.h`:
//! - `c_midmag` is stored in network (big-endian) byte order; once
//!   converted, bits 31..26 are the flag, 25..16 the machine id, 15..0 the
//!   magic (`CORE_GETMAGIC`/`CORE_GETMID`/`CORE_GETFLAG`).
//! - `kcore_hdr_t` (12 bytes): `c_midmag` u32, `c_hdrsize` u16,
//!   `c_seghdrsize` u16, `c_nseg` u32; `kcore_seg_t` (8 bytes): `c_midmag`
//!   u32, `c_size` u32. Every field but `c_midmag` is in the machine's
//!   byte order (little-endian on amd64 and i386).

use kvm_core::Arch;

/// `KCORE_MAGIC`: the file header and the on-device CPU segment header.
pub const KCORE_MAGIC: u16 = 0x8fca;
/// `KCORESEG_MAGIC`: the segment headers of the savecore file.
pub const KCORESEG_MAGIC: u16 = 0x8fac;
/// `CORE_CPU`: the machine-dependent segment.
pub const CORE_CPU: u8 = 1;
/// `CORE_DATA`: the memory segment.
pub const CORE_DATA: u8 = 2;
/// `MID_I386` (OpenBSD `sys/sys/exec.h`).
pub const MID_I386: u16 = 134;
/// `MID_AMD64` (OpenBSD `sys/sys/exec.h`).
pub const MID_AMD64: u16 = 157;

/// Bytes of `kcore_hdr_t`.
pub const KCORE_HDR_SIZE: u64 = 12;
/// Bytes of `kcore_seg_t`.
pub const KCORE_SEG_SIZE: u64 = 8;

/// A decoded `c_midmag` word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MidMag {
    /// Bits 31..26 (6 bits).
    pub flag: u8,
    /// Bits 25..16 (10 bits): the machine id.
    pub mid: u16,
    /// Bits 15..0.
    pub magic: u16,
}

impl MidMag {
    /// Decodes the word from its four bytes on disk (big-endian).
    pub fn decode(b: [u8; 4]) -> MidMag {
        let v = u32::from_be_bytes(b);
        MidMag {
            flag: ((v >> 26) & 0x3f) as u8,
            mid: ((v >> 16) & 0x3ff) as u16,
            magic: (v & 0xffff) as u16,
        }
    }

    /// The four bytes on disk (`CORE_SETMAGIC`: fields masked to their
    /// widths, then big-endian).
    pub fn encode(self) -> [u8; 4] {
        let v = (u32::from(self.flag & 0x3f) << 26)
            | (u32::from(self.mid & 0x3ff) << 16)
            | u32::from(self.magic);
        v.to_be_bytes()
    }
}

/// The machine id of an architecture that has a kcore layout here.
pub fn mid_of(arch: Arch) -> Option<u16> {
    match arch {
        Arch::X86_64 => Some(MID_AMD64),
        Arch::I386 => Some(MID_I386),
        _ => None,
    }
}

/// The architecture of a machine id read here.
pub fn arch_of(mid: u16) -> Option<Arch> {
    match mid {
        MID_AMD64 => Some(Arch::X86_64),
        MID_I386 => Some(Arch::I386),
        _ => None,
    }
}

/// `ALIGN(n)` of the machine: round up to `_ALIGNBYTES + 1`, which is 4 on
/// i386 (`sizeof(int) - 1`, per OpenBSD `sys/arch/i386/include/_types.h`)
/// and 8 on amd64 (`sizeof(long) - 1`; FORMATS.md §4.2, not re-read here).
pub fn align(arch: Arch, n: u64) -> u64 {
    let a = if arch == Arch::I386 { 4 } else { 8 };
    n.div_ceil(a).saturating_mul(a)
}

/// `kcore_hdr_t` as read from a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KcoreHdr {
    /// The header's `c_midmag`.
    pub midmag: MidMag,
    /// `c_hdrsize`: the header padded to the machine's alignment.
    pub hdrsize: u16,
    /// `c_seghdrsize`: a segment header padded likewise.
    pub seghdrsize: u16,
    /// `c_nseg`: 2 in every file savecore writes.
    pub nseg: u32,
}

impl KcoreHdr {
    /// Decodes the 12 bytes; `c_hdrsize`, `c_seghdrsize` and `c_nseg` are
    /// little-endian (the byte order of both machines read here).
    pub fn decode(b: &[u8; 12]) -> KcoreHdr {
        KcoreHdr {
            midmag: MidMag::decode([b[0], b[1], b[2], b[3]]),
            hdrsize: u16::from_le_bytes([b[4], b[5]]),
            seghdrsize: u16::from_le_bytes([b[6], b[7]]),
            nseg: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        }
    }

    /// The 12 bytes of this header (little-endian fields).
    pub fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.midmag.encode());
        b[4..6].copy_from_slice(&self.hdrsize.to_le_bytes());
        b[6..8].copy_from_slice(&self.seghdrsize.to_le_bytes());
        b[8..].copy_from_slice(&self.nseg.to_le_bytes());
        b
    }
}

/// `kcore_seg_t` as read from a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KcoreSeg {
    /// The segment's `c_midmag` (`KCORESEG_MAGIC`, mid 0, the flag).
    pub midmag: MidMag,
    /// `c_size`: bytes of the segment. The data segment's is an `int` in
    /// savecore (the dump size in bytes): wrong for dumps of 4 GiB and
    /// more.
    pub size: u32,
}

impl KcoreSeg {
    /// Decodes the 8 bytes.
    pub fn decode(b: &[u8; 8]) -> KcoreSeg {
        KcoreSeg {
            midmag: MidMag::decode([b[0], b[1], b[2], b[3]]),
            size: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The 8 bytes of this header.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.midmag.encode());
        b[4..].copy_from_slice(&self.size.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midmag_matches_formats_example() {
        // FORMATS.md §4.1: the amd64 file header word is 0x009d8fca.
        let m = MidMag {
            flag: 0,
            mid: MID_AMD64,
            magic: KCORE_MAGIC,
        };
        assert_eq!(m.encode(), [0x00, 0x9d, 0x8f, 0xca]);
        assert_eq!(MidMag::decode(m.encode()), m);
        let cpu = MidMag {
            flag: CORE_CPU,
            mid: 0,
            magic: KCORESEG_MAGIC,
        };
        assert_eq!(cpu.encode(), [0x04, 0x00, 0x8f, 0xac]);
        let data = MidMag {
            flag: CORE_DATA,
            ..cpu
        };
        assert_eq!(data.encode(), [0x08, 0x00, 0x8f, 0xac]);
        // All bits set decode to the field widths.
        assert_eq!(
            MidMag::decode([0xff; 4]),
            MidMag {
                flag: 0x3f,
                mid: 0x3ff,
                magic: 0xffff
            }
        );
    }

    #[test]
    fn align_per_machine() {
        assert_eq!(align(Arch::X86_64, 12), 16);
        assert_eq!(align(Arch::X86_64, 8), 8);
        assert_eq!(align(Arch::I386, 12), 12);
        assert_eq!(align(Arch::I386, 13), 16);
        assert_eq!(align(Arch::X86_64, u64::MAX), u64::MAX);
    }

    #[test]
    fn headers_round_trip() {
        let h = KcoreHdr {
            midmag: MidMag {
                flag: 0,
                mid: MID_I386,
                magic: KCORE_MAGIC,
            },
            hdrsize: 12,
            seghdrsize: 8,
            nseg: 2,
        };
        assert_eq!(KcoreHdr::decode(&h.encode()), h);
        let s = KcoreSeg {
            midmag: h.midmag,
            size: 0x1234_5678,
        };
        assert_eq!(KcoreSeg::decode(&s.encode()), s);
    }
}
