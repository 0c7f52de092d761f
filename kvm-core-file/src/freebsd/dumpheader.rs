//! The dump-device layout: what the kernel writes to its dump partition,
//! and what `dd` of that region gives (FORMATS.md §3.1).
//!
//! ```text
//!  | leader | key (opt.) | body: dumpextent bytes | trailer |
//!    1 block  dumpkeysize                           1 block
//! ```
//!
//! Per FreeBSD sys/kern/kern_shutdown.c (`dump_write_headers`,
//! `dump_start`): the leader is one `blocksize` block holding the 512-byte
//! `struct kerneldumpheader` (zero-padded), the encryption key block
//! follows it (`dumpkeysize` bytes, 0 unless encrypted), the body starts
//! right after and `dumpextent` bytes are reserved for it (`dumplength`
//! of them used: less for compressed dumps), and the trailer, a copy of
//! the leader, is the block after the extent. savecore copies out only
//! the body (sbin/savecore/savecore.c).
//!
//! A file that starts with a leader opens as its body: a minidump or an
//! ELF full dump, through a [`Window`]. The trailer is checked when the
//! file holds it: a valid header that differs from the leader belongs to
//! another dump and is an error; damaged or absent trailers are remarks.

use crate::{ReadAt, Result, Window};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Error, MapRange, PhysAddr, PhysRead, PhysWrite, Source, SourceInfo};
use kvm_core::{Translate, VirtRead};

/// Bytes of `struct kerneldumpheader`.
pub const HEADER_SIZE: usize = 512;

/// What a header's magic says the device holds (per FreeBSD
/// sys/sys/kerneldump.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpMagic {
    /// `"FreeBSD Kernel Dump"`: a memory dump.
    KernelDump,
    /// `"FreeBSD Text Dump"`: a tar of ddb output (textdump(4)).
    TextDump,
    /// `"Cleared Kernel Dump"`: savecore -c marked the dump as gone.
    Cleared,
}

impl DumpMagic {
    /// The 20-byte, NUL-padded magic.
    pub fn bytes(self) -> &'static [u8; 20] {
        match self {
            DumpMagic::KernelDump => b"FreeBSD Kernel Dump\0",
            DumpMagic::TextDump => b"FreeBSD Text Dump\0\0\0",
            DumpMagic::Cleared => b"Cleared Kernel Dump\0",
        }
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        [
            DumpMagic::KernelDump,
            DumpMagic::TextDump,
            DumpMagic::Cleared,
        ]
        .into_iter()
        .find(|m| &m.bytes()[..] == b)
    }
}

/// `struct kerneldumpheader`: all integers big-endian ("dump byte
/// order"), strings NUL-padded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelDumpHeader {
    /// The magic.
    pub magic: DumpMagic,
    /// `MACHINE_ARCH`: "amd64", "aarch64", "i386", …
    pub architecture: String,
    /// `KERNELDUMPVERSION`: 1 (FreeBSD ≤ 11) or 4 (12 and later).
    pub version: u32,
    /// `KERNELDUMP_<ARCH>_VERSION` (amd64 2, aarch64 1, i386 2).
    pub architecture_version: u32,
    /// Bytes of the body (excluding headers and key).
    pub dump_length: u64,
    /// Seconds since the epoch.
    pub dump_time: u64,
    /// Bytes of the encryption key block after the leader (v4), else 0.
    pub dump_key_size: u32,
    /// The device's block size: the leader and trailer take one block each.
    pub block_size: u32,
    /// The host name.
    pub hostname: String,
    /// The kernel's `version` string.
    pub version_string: String,
    /// The panic message.
    pub panic_string: String,
    /// 0 none, 1 gzip, 2 zstd (v4).
    pub compression: u8,
    /// Bytes reserved for the body on the device (v4; v1: `dump_length`).
    pub dump_extent: u64,
}

fn be32(b: &[u8], o: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[o..o + 4]);
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_be_bytes(a)
}

fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn put_text(b: &mut [u8], s: &str) {
    // Room for the NUL, like the kernel's strlcpy.
    let mut n = s.len().min(b.len() - 1);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// XOR of the 128 words of a header: 0 when it is intact. The XOR of the
/// bytes' big-endian words is 0 exactly when that of their little-endian
/// words is ("parity calculation is endian insensitive", kerneldump.h).
pub fn parity(b: &[u8; HEADER_SIZE]) -> u32 {
    b.chunks_exact(4)
        .fold(0, |p, w| p ^ u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

impl KernelDumpHeader {
    /// A version-4 header for an uncompressed, unencrypted body of
    /// `body_len` bytes.
    pub fn new(
        magic: DumpMagic,
        architecture: &str,
        architecture_version: u32,
        body_len: u64,
        block_size: u32,
    ) -> Self {
        KernelDumpHeader {
            magic,
            architecture: architecture.into(),
            version: 4,
            architecture_version,
            dump_length: body_len,
            dump_time: 0,
            dump_key_size: 0,
            block_size,
            hostname: String::new(),
            version_string: String::new(),
            panic_string: String::new(),
            compression: 0,
            dump_extent: body_len,
        }
    }

    /// Parses and checks a header: magic, parity, version, block size.
    pub fn parse(b: &[u8; HEADER_SIZE]) -> Result<Self> {
        let magic = DumpMagic::from_bytes(&b[..20])
            .ok_or(Error::Malformed("FreeBSD dump header: unknown magic"))?;
        if parity(b) != 0 {
            return Err(Error::Malformed("FreeBSD dump header: parity check failed"));
        }
        let version = be32(b, 32);
        let mut h = KernelDumpHeader {
            magic,
            architecture: text(&b[20..32]),
            version,
            architecture_version: be32(b, 36),
            dump_length: be64(b, 40),
            dump_time: be64(b, 48),
            dump_key_size: 0,
            block_size: 0,
            hostname: String::new(),
            version_string: String::new(),
            panic_string: String::new(),
            compression: 0,
            dump_extent: 0,
        };
        match version {
            // Per FreeBSD ≤ 11 sys/sys/kerneldump.h.
            1 => {
                h.block_size = be32(b, 56);
                h.hostname = text(&b[60..124]);
                h.version_string = text(&b[124..316]);
                h.panic_string = text(&b[316..508]);
                h.dump_extent = h.dump_length;
            }
            4 => {
                h.dump_key_size = be32(b, 56);
                h.block_size = be32(b, 60);
                h.hostname = text(&b[64..128]);
                h.version_string = text(&b[128..320]);
                h.panic_string = text(&b[320..495]);
                h.compression = b[495];
                h.dump_extent = be64(b, 496);
            }
            2 | 3 => {
                return Err(Error::Unsupported(
                    "FreeBSD dump header versions 2 and 3 (FreeBSD 12 development kernels)",
                ))
            }
            _ => {
                return Err(Error::Unsupported(
                    "FreeBSD dump header of an unknown version",
                ))
            }
        }
        if h.block_size < HEADER_SIZE as u32 || !h.block_size.is_power_of_two() {
            return Err(Error::Malformed(
                "FreeBSD dump header: block size is not a power of two of at least 512",
            ));
        }
        Ok(h)
    }

    /// The header's 512 bytes in its version's layout (1 or 4; others
    /// as 4), parity included.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[..20].copy_from_slice(self.magic.bytes());
        put_text(&mut b[20..32], &self.architecture);
        b[32..36].copy_from_slice(&self.version.to_be_bytes());
        b[36..40].copy_from_slice(&self.architecture_version.to_be_bytes());
        b[40..48].copy_from_slice(&self.dump_length.to_be_bytes());
        b[48..56].copy_from_slice(&self.dump_time.to_be_bytes());
        if self.version == 1 {
            b[56..60].copy_from_slice(&self.block_size.to_be_bytes());
            put_text(&mut b[60..124], &self.hostname);
            put_text(&mut b[124..316], &self.version_string);
            put_text(&mut b[316..508], &self.panic_string);
        } else {
            b[56..60].copy_from_slice(&self.dump_key_size.to_be_bytes());
            b[60..64].copy_from_slice(&self.block_size.to_be_bytes());
            put_text(&mut b[64..128], &self.hostname);
            put_text(&mut b[128..320], &self.version_string);
            put_text(&mut b[320..495], &self.panic_string);
            b[495] = self.compression;
            b[496..504].copy_from_slice(&self.dump_extent.to_be_bytes());
        }
        let p = parity(&b);
        b[508..512].copy_from_slice(&p.to_be_bytes());
        b
    }

    /// The header padded to one block, as the leader and trailer are
    /// written.
    pub fn encode_block(&self) -> Vec<u8> {
        let mut v = self.encode().to_vec();
        v.resize((self.block_size as usize).max(HEADER_SIZE), 0);
        v
    }

    /// Where the body starts: after the leader block and the key block.
    pub fn body_offset(&self) -> Option<u64> {
        u64::from(self.block_size).checked_add(u64::from(self.dump_key_size))
    }

    /// Where the trailer starts: after the body's extent.
    pub fn trailer_offset(&self) -> Option<u64> {
        self.body_offset()?.checked_add(self.dump_extent)
    }
}

/// Wraps `body` as a dump-device image: leader block, body, trailer block
/// (for tests and small bodies).
pub fn wrap(header: &KernelDumpHeader, body: &[u8]) -> Vec<u8> {
    let block = header.encode_block();
    let mut v = Vec::with_capacity(body.len() + 2 * block.len());
    v.extend_from_slice(&block);
    v.extend_from_slice(body);
    v.extend_from_slice(&block);
    v
}

/// A dump-device image opened as its body.
#[derive(Debug)]
pub struct DeviceDump {
    header: KernelDumpHeader,
    info: SourceInfo,
    body: Box<dyn Source>,
}

impl DeviceDump {
    /// Checks the leader (and the trailer when present) and opens the body
    /// by its content: a minidump or an ELF full dump.
    pub fn open<R: ReadAt + Send + Sync + core::fmt::Debug + 'static>(r: R) -> Result<Self> {
        let mut b = [0u8; HEADER_SIZE];
        r.read_exact_at(0, &mut b, "FreeBSD dump header truncated")?;
        let h = KernelDumpHeader::parse(&b)?;
        match h.magic {
            DumpMagic::KernelDump => {}
            DumpMagic::TextDump => {
                return Err(Error::Unsupported(
                    "FreeBSD text dumps (a tar of ddb output, no memory image)",
                ))
            }
            DumpMagic::Cleared => {
                return Err(Error::Unsupported(
                    "FreeBSD dump device whose dump was cleared (savecore -c)",
                ))
            }
        }
        if h.dump_key_size != 0 {
            return Err(Error::Unsupported("encrypted FreeBSD dumps"));
        }
        match h.compression {
            0 => {}
            1 | 2 => {
                return Err(Error::Unsupported(
                    "compressed FreeBSD dumps (gzip or zstd): extract the body with savecore and decompress it first",
                ))
            }
            _ => {
                return Err(Error::Malformed(
                    "FreeBSD dump header: unknown compression",
                ))
            }
        }
        if h.dump_length > h.dump_extent {
            return Err(Error::Malformed(
                "FreeBSD dump header: dumplength exceeds dumpextent",
            ));
        }
        let overflow = Error::Malformed("FreeBSD dump header: dump extent overflows");
        let body_off = h.body_offset().ok_or(overflow)?;
        let trailer_off = h.trailer_offset().ok_or(overflow)?;
        let size = r.size();
        let mut remarks = Vec::new();
        let mut incomplete = false;
        let held = size.saturating_sub(body_off).min(h.dump_length);
        if held < h.dump_length {
            incomplete = true;
            remarks.push(format!(
                "FreeBSD dump device: the body is cut short ({held} of {} bytes)",
                h.dump_length
            ));
        }
        let mut t = [0u8; HEADER_SIZE];
        let trailer = trailer_off
            .checked_add(HEADER_SIZE as u64)
            .is_some_and(|e| e <= size);
        if trailer {
            r.read_exact_at(trailer_off, &mut t, "FreeBSD dump trailer truncated")?;
            if t != b {
                if KernelDumpHeader::parse(&t).is_ok() {
                    return Err(Error::Malformed(
                        "FreeBSD dump device: the trailer header is of another dump",
                    ));
                }
                remarks.push("FreeBSD dump device: the trailer header is damaged".into());
            }
        } else {
            remarks.push("FreeBSD dump device: no trailer header after the body".into());
        }
        remarks.push(format!(
            "FreeBSD dump header: {} dump of host {:?}, panic {:?}",
            h.architecture, h.hostname, h.panic_string
        ));
        let w = Window::new(r, body_off, h.dump_length);
        let mut magic = [0u8; 8];
        let n = w.read_at(0, &mut magic)?;
        let body: Box<dyn Source> = match &magic[..n] {
            m if m.starts_with(b"minidump") => Box::new(crate::minidump::MinidumpDump::open(w)?),
            m if m.starts_with(b"\x7fELF") => Box::new(crate::elf::ElfDump::open(w)?),
            _ => {
                return Err(Error::Malformed(
                    "FreeBSD dump device: the body is neither a minidump nor an ELF core",
                ))
            }
        };
        let mut info = body.info().clone();
        info.incomplete |= incomplete;
        info.remarks.extend(remarks);
        Ok(DeviceDump {
            header: h,
            info,
            body,
        })
    }

    /// The leader header.
    pub fn header(&self) -> &KernelDumpHeader {
        &self.header
    }

    /// The body's own source (a minidump or an ELF dump).
    pub fn body(&self) -> &dyn Source {
        &*self.body
    }
}

impl PhysRead for DeviceDump {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        self.body.read_phys(pa, buf)
    }
}

impl Source for DeviceDump {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        self.body.ranges()
    }
    fn phys_write(&self) -> Option<&dyn PhysWrite> {
        None
    }
    fn kernel_virt(&self) -> Option<&dyn VirtRead> {
        self.body.kernel_virt()
    }
    fn translator(&self) -> Option<&dyn Translate> {
        self.body.translator()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_parse_round_trip_both_versions() {
        let mut h = KernelDumpHeader::new(DumpMagic::KernelDump, "amd64", 2, 0x1234, 512);
        h.hostname = "host".into();
        h.version_string = "FreeBSD 14.0-RELEASE".into();
        h.panic_string = "sysctl debug.kdb.panic".into();
        h.dump_time = 1_700_000_000;
        let b = h.encode();
        assert_eq!(parity(&b), 0);
        assert_eq!(KernelDumpHeader::parse(&b), Ok(h.clone()));
        h.version = 1;
        assert_eq!(KernelDumpHeader::parse(&h.encode()), Ok(h));
    }

    /// The fuzz target's first find: a hostname of 64 non-UTF-8 bytes
    /// reads lossily and cannot come back byte for byte (its round-trip
    /// check now compares the numbers only); strings are cut on a
    /// character boundary.
    #[test]
    fn lossy_strings_replay() {
        let h = KernelDumpHeader::new(DumpMagic::KernelDump, "i386", 2, 24576, 4096);
        let mut b = h.encode();
        b[64..128].fill(0xff);
        b[508..].fill(0);
        let p = parity(&b);
        b[508..].copy_from_slice(&p.to_be_bytes());
        let k = KernelDumpHeader::parse(&b).unwrap();
        assert_eq!(k.hostname.chars().count(), 64);
        let again = KernelDumpHeader::parse(&k.encode()).unwrap();
        assert_eq!(again.hostname.chars().count(), 21);
        crate::fuzz::freebsd_dumpheader(&b);
    }
}
