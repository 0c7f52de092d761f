//! Writers: the same formats the readers understand, from any physical
//! memory source (`kvm convert`, committed test fixtures, round-trip
//! tests).

pub mod elf;
#[cfg(feature = "std")]
pub mod kdump;
pub mod lime;
pub mod openbsd;
pub mod raw;

use crate::Result;
use alloc::vec::Vec;
use kvm_core::{MapRange, PhysAddr, PhysRead};

/// Bytes copied per read while writing.
const CHUNK: usize = 1 << 16;

/// Appends the bytes of range `r` of `mem` to `out`, `written` counting
/// them and `progress` told; fails if a byte cannot be read (a hole).
pub(crate) fn copy_range(
    out: &mut dyn Sink,
    mem: &dyn PhysRead,
    r: &MapRange,
    written: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut buf = alloc::vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < r.len {
        let n = (r.len - done).min(CHUNK as u64) as usize;
        let pa = PhysAddr(r.start + done);
        kvm_core::PhysReadExt::read_phys_exact(mem, pa, &mut buf[..n])?;
        out.put(&buf[..n])?;
        done += n as u64;
        *written += n as u64;
        progress(*written);
    }
    Ok(())
}

/// Where a writer puts its bytes, in order (no seeking needed).
pub trait Sink {
    /// Appends `buf`.
    fn put(&mut self, buf: &[u8]) -> Result<()>;
}

impl Sink for Vec<u8> {
    fn put(&mut self, buf: &[u8]) -> Result<()> {
        self.extend_from_slice(buf);
        Ok(())
    }
}

/// A [`Sink`] over any `std::io::Write`.
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct IoSink<W>(pub W);

#[cfg(feature = "std")]
impl<W: std::io::Write> Sink for IoSink<W> {
    fn put(&mut self, buf: &[u8]) -> Result<()> {
        self.0.write_all(buf).map_err(|e| kvm_core::Error::Io {
            errno: e.raw_os_error().unwrap_or(0),
        })
    }
}

/// Appends one ELF note record (4-byte aligned name and descriptor) to
/// `out`, in byte order `e`.
pub fn push_note(out: &mut Vec<u8>, e: kvm_core::Endian, name: &[u8], kind: u32, desc: &[u8]) {
    let word = |v: u32| match e {
        kvm_core::Endian::Little => v.to_le_bytes(),
        kvm_core::Endian::Big => v.to_be_bytes(),
    };
    out.extend_from_slice(&word(name.len() as u32 + 1));
    out.extend_from_slice(&word(desc.len() as u32));
    out.extend_from_slice(&word(kind));
    out.extend_from_slice(name);
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
}
