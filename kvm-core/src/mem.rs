//! Memory traits: physical reads and writes, virtual reads and writes, and
//! the typed helpers on top of them.

use crate::{Error, PhysAddr, Result, VirtAddr};
use zerocopy::{FromBytes, IntoBytes};

/// Reads physical memory: a dump file, `/dev/mem`, a byte slice.
///
/// ```
/// use kvm_core::{PhysAddr, PhysRead, PhysReadExt, SliceMem};
/// let bytes = [1u8, 2, 3, 4];
/// let mem = SliceMem::new(PhysAddr(0x1000), &bytes);
/// let mut buf = [0u8; 8];
/// // A read past the end stops early and says how far it got.
/// assert_eq!(mem.read_phys(PhysAddr(0x1002), &mut buf)?, 2);
/// assert_eq!(mem.read_u32_le(PhysAddr(0x1000))?, 0x0403_0201);
/// assert!(mem.read_phys_exact(PhysAddr(0x1002), &mut buf).is_err());
/// # Ok::<(), kvm_core::Error>(())
/// ```
pub trait PhysRead {
    /// Reads up to `buf.len()` bytes at `pa`.
    ///
    /// Returns the number of bytes read, which is less than `buf.len()` when
    /// the read reaches a hole or the end of memory (`Ok(0)` only for an
    /// empty `buf`). Returns an error when not even the first byte can be
    /// read, saying why (not in memory, excluded from the dump, I/O).
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize>;
}

/// Writes physical memory (live systems only).
pub trait PhysWrite: PhysRead {
    /// Writes up to `buf.len()` bytes at `pa`; same count semantics as
    /// [`PhysRead::read_phys`].
    fn write_phys(&self, pa: PhysAddr, buf: &[u8]) -> Result<usize>;
}

/// Reads a virtual address space: the kernel's (`kvm_read`), or a process's.
pub trait VirtRead {
    /// Reads up to `buf.len()` bytes at `va`; returns the count read, short
    /// when the read reaches an unmapped or unreadable page, and an error
    /// when the first byte cannot be read.
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<usize>;
}

/// Writes a virtual address space (`kvm_write`, live systems only).
pub trait VirtWrite: VirtRead {
    /// Writes up to `buf.len()` bytes at `va`; same count semantics as
    /// [`VirtRead::read_virt`].
    fn write_virt(&self, va: VirtAddr, buf: &[u8]) -> Result<usize>;
}

/// Byte order chosen at run time (a dump says which one it holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

impl Endian {
    /// Decodes a `u16` in this byte order.
    #[inline]
    pub fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    /// Decodes a `u32` in this byte order.
    #[inline]
    pub fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
    /// Decodes a `u64` in this byte order.
    #[inline]
    pub fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }
}

// Both extension traits have the same shape over different address types and
// error constructors; a macro keeps the two in step.
macro_rules! read_ext {
    ($(#[$doc:meta])* $ext:ident, $base:ident, $read:ident, $exact:ident, $addr:ident, $short:expr) => {
        $(#[$doc])*
        pub trait $ext: $base {
            /// Fills `buf` or fails; a short read becomes the error of the
            /// first byte that could not be read.
            fn $exact(&self, addr: $addr, buf: &mut [u8]) -> Result<()> {
                let mut done = 0usize;
                while done < buf.len() {
                    let at = addr
                        .checked_add(done as u64)
                        .ok_or(Error::Malformed("read wraps around the address space"))?;
                    let rest = buf.get_mut(done..).unwrap_or_default();
                    match self.$read(at, rest)? {
                        0 => return Err($short(at.0)),
                        n => done += n,
                    }
                }
                Ok(())
            }

            /// Reads a plain-old-data value (any bytes valid) at `addr`.
            fn read_pod<T: FromBytes + IntoBytes>(&self, addr: $addr) -> Result<T> {
                let mut v = T::new_zeroed();
                self.$exact(addr, v.as_mut_bytes())?;
                Ok(v)
            }

            /// Reads a `u8`.
            fn read_u8(&self, addr: $addr) -> Result<u8> {
                let mut b = [0u8; 1];
                self.$exact(addr, &mut b)?;
                Ok(b[0])
            }
            /// Reads a `u16` in byte order `e`.
            fn read_u16(&self, addr: $addr, e: Endian) -> Result<u16> {
                let mut b = [0u8; 2];
                self.$exact(addr, &mut b)?;
                Ok(e.u16(b))
            }
            /// Reads a `u32` in byte order `e`.
            fn read_u32(&self, addr: $addr, e: Endian) -> Result<u32> {
                let mut b = [0u8; 4];
                self.$exact(addr, &mut b)?;
                Ok(e.u32(b))
            }
            /// Reads a `u64` in byte order `e`.
            fn read_u64(&self, addr: $addr, e: Endian) -> Result<u64> {
                let mut b = [0u8; 8];
                self.$exact(addr, &mut b)?;
                Ok(e.u64(b))
            }
            /// Reads a little-endian `u32`.
            fn read_u32_le(&self, addr: $addr) -> Result<u32> {
                self.read_u32(addr, Endian::Little)
            }
            /// Reads a little-endian `u64`.
            fn read_u64_le(&self, addr: $addr) -> Result<u64> {
                self.read_u64(addr, Endian::Little)
            }
            /// Reads a big-endian `u32`.
            fn read_u32_be(&self, addr: $addr) -> Result<u32> {
                self.read_u32(addr, Endian::Big)
            }
            /// Reads a big-endian `u64`.
            fn read_u64_be(&self, addr: $addr) -> Result<u64> {
                self.read_u64(addr, Endian::Big)
            }
        }

        impl<M: $base + ?Sized> $ext for M {}
    };
}

read_ext!(
    /// Helpers on every [`PhysRead`]: exact reads and typed values.
    PhysReadExt, PhysRead, read_phys, read_phys_exact, PhysAddr,
    |pa| Error::NotInMemory { pa }
);
read_ext!(
    /// Helpers on every [`VirtRead`]: exact reads and typed values.
    VirtReadExt, VirtRead, read_virt, read_virt_exact, VirtAddr,
    |va| Error::Unmapped { va }
);

// Forwarding impls so that references, boxes and shared pointers are sources too.
macro_rules! forward {
    ($tr:ident, $m:ident, $buf:ty, $addr:ty, $ty:ty) => {
        impl<M: $tr + ?Sized> $tr for $ty {
            #[inline]
            fn $m(&self, a: $addr, buf: $buf) -> Result<usize> {
                (**self).$m(a, buf)
            }
        }
    };
}
forward!(PhysRead, read_phys, &mut [u8], PhysAddr, &M);
forward!(VirtRead, read_virt, &mut [u8], VirtAddr, &M);
forward!(PhysWrite, write_phys, &[u8], PhysAddr, &M);
#[cfg(feature = "alloc")]
mod alloc_forward {
    use super::*;
    use alloc::{boxed::Box, sync::Arc};
    forward!(PhysRead, read_phys, &mut [u8], PhysAddr, Box<M>);
    forward!(PhysRead, read_phys, &mut [u8], PhysAddr, Arc<M>);
    forward!(VirtRead, read_virt, &mut [u8], VirtAddr, Box<M>);
    forward!(VirtRead, read_virt, &mut [u8], VirtAddr, Arc<M>);
}

/// Physical memory held in one byte slice starting at `base`.
///
/// Reads outside `[base, base + len)` fail with [`Error::NotInMemory`].
#[derive(Clone, Copy, Debug)]
pub struct SliceMem<'a> {
    base: u64,
    bytes: &'a [u8],
}

impl<'a> SliceMem<'a> {
    /// Memory whose first byte is at physical address `base`.
    pub fn new(base: PhysAddr, bytes: &'a [u8]) -> Self {
        SliceMem {
            base: base.0,
            bytes,
        }
    }
}

impl PhysRead for SliceMem<'_> {
    #[inline]
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        let not_in = Error::NotInMemory { pa: pa.0 };
        let off = pa.0.checked_sub(self.base).ok_or(not_in)?;
        let off = usize::try_from(off).map_err(|_| not_in)?;
        let src = match self.bytes.get(off..) {
            Some(s) if !s.is_empty() || buf.is_empty() => s,
            _ => return Err(not_in),
        };
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
}

#[cfg(feature = "alloc")]
pub use sparse::SparseMem;

#[cfg(feature = "alloc")]
mod sparse {
    use super::*;
    use alloc::{boxed::Box, collections::BTreeMap};

    const PAGE: u64 = 4096;

    /// Sparse physical memory made of 4 KiB pages, for tests, builders and
    /// synthetic dumps. Pages never written are holes.
    #[derive(Clone, Debug, Default)]
    pub struct SparseMem {
        pages: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
    }

    impl SparseMem {
        /// Empty memory: every address is a hole.
        pub fn new() -> Self {
            Self::default()
        }

        /// Writes `data` at `pa`, creating zero-filled pages as needed.
        ///
        /// Returns an error if the range wraps around the address space.
        pub fn write(&mut self, pa: PhysAddr, data: &[u8]) -> Result<()> {
            pa.0.checked_add(data.len() as u64)
                .ok_or(Error::Malformed("write wraps around the address space"))?;
            let mut at = pa.0;
            let mut rest = data;
            while !rest.is_empty() {
                let off = (at % PAGE) as usize;
                let n = rest.len().min(PAGE as usize - off);
                let page = self
                    .pages
                    .entry(at / PAGE)
                    .or_insert_with(|| Box::new([0; PAGE as usize]));
                page[off..off + n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                at += n as u64;
            }
            Ok(())
        }

        /// Makes the 4 KiB page holding `pa` present (zero-filled if new).
        pub fn touch(&mut self, pa: PhysAddr) {
            self.pages
                .entry(pa.0 / PAGE)
                .or_insert_with(|| Box::new([0; PAGE as usize]));
        }

        /// Number of present 4 KiB pages.
        pub fn page_count(&self) -> usize {
            self.pages.len()
        }

        /// Iterates over the present pages as (physical address, bytes), in
        /// address order.
        pub fn pages(&self) -> impl Iterator<Item = (PhysAddr, &[u8])> + '_ {
            self.pages.iter().map(|(k, v)| (PhysAddr(k * PAGE), &v[..]))
        }
    }

    impl PhysRead for SparseMem {
        fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
            let mut done = 0usize;
            while done < buf.len() {
                let at = match pa.0.checked_add(done as u64) {
                    Some(a) => a,
                    None => break,
                };
                let Some(page) = self.pages.get(&(at / PAGE)) else {
                    break;
                };
                let off = (at % PAGE) as usize;
                let n = (buf.len() - done).min(PAGE as usize - off);
                buf[done..done + n].copy_from_slice(&page[off..off + n]);
                done += n;
            }
            if done == 0 && !buf.is_empty() {
                return Err(Error::NotInMemory { pa: pa.0 });
            }
            Ok(done)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_mem_bounds() {
        let b = [0xAAu8; 16];
        let m = SliceMem::new(PhysAddr(100), &b);
        let mut buf = [0u8; 4];
        assert_eq!(
            m.read_phys(PhysAddr(99), &mut buf),
            Err(Error::NotInMemory { pa: 99 })
        );
        assert_eq!(
            m.read_phys(PhysAddr(116), &mut buf),
            Err(Error::NotInMemory { pa: 116 })
        );
        assert_eq!(m.read_phys(PhysAddr(114), &mut buf), Ok(2));
        assert_eq!(
            m.read_phys(PhysAddr(u64::MAX), &mut buf),
            Err(Error::NotInMemory { pa: u64::MAX })
        );
        assert_eq!(
            m.read_phys_exact(PhysAddr(114), &mut buf),
            Err(Error::NotInMemory { pa: 116 })
        );
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn sparse_mem_holes() {
        let mut m = SparseMem::new();
        m.write(PhysAddr(0x1ffe), &[1, 2, 3, 4]).unwrap();
        assert_eq!(m.page_count(), 2);
        let mut buf = [0u8; 8];
        assert_eq!(m.read_phys(PhysAddr(0x2ffc), &mut buf), Ok(4));
        assert_eq!(m.read_u32_be(PhysAddr(0x1ffe)), Ok(0x0102_0304));
        assert_eq!(
            m.read_phys(PhysAddr(0x3000), &mut buf),
            Err(Error::NotInMemory { pa: 0x3000 })
        );
        assert!(m.write(PhysAddr(u64::MAX), &[1, 2]).is_err());
    }
}
