//! OpenBSD's savecore calls on an open kernel (`kvm_dump(3)`):
//! [`Kvm::dump_mkheader`], [`Kvm::dump_wrtheader`], [`Kvm::dump_inval`].
//!
//! OpenBSD's `kvm_dump_mkheader` reads the header the kernel left on the
//! dump device; here the header is made from the open source instead (its
//! architecture and physical ranges, and the kernel's page-table root as
//! found), so that any amd64 or i386 kernel can be written as an OpenBSD
//! savecore file ([`kvm_core_file::write::openbsd`]; `kvm convert --to
//! openbsd`).

use crate::{Error, Kvm, OpenFlags};
use kvm_core::{Arch, PhysAddr};
use kvm_core_file::write::openbsd::KcoreHeader;

impl Kvm {
    /// The kcore header of this kernel (`kvm_dump_mkheader`): amd64 or
    /// i386, the kernel's top page table (4-level on amd64; PAE or not on
    /// i386) and the source's physical ranges (more than fit the CPU
    /// header are merged, the gaps to be written as zeros).
    pub fn dump_mkheader(&self) -> Result<KcoreHeader, Error> {
        let info = self.source().info();
        if !matches!(info.arch, Some(Arch::X86_64 | Arch::I386)) {
            return Err(self.fail(kvm_core::Error::Unsupported(
                "OpenBSD kcore: only amd64 and i386 kernels can be written",
            )));
        }
        let paging = self.kernel_paging()?.ok_or_else(|| {
            self.fail(kvm_core::Error::Unsupported(
                "OpenBSD kcore: the kernel's page-table root is not known (the source translates with a map of its own)",
            ))
        })?;
        if Some(paging.arch()) != info.arch {
            return Err(self.fail(kvm_core::Error::Malformed(
                "OpenBSD kcore: the kernel's paging is not of the source's architecture",
            )));
        }
        KcoreHeader::from_paging(&paging, self.source().ranges()).map_err(|e| self.fail(e))
    }

    /// Writes the headers of [`Kvm::dump_mkheader`] to `out`
    /// (`kvm_dump_wrtheader`) with `dumpsize` bytes of memory to follow
    /// (stored truncated to 32 bits, as savecore's `int`); returns their
    /// length, the file offset at which memory starts.
    pub fn dump_wrtheader(
        &self,
        out: &mut impl std::io::Write,
        dumpsize: u64,
    ) -> Result<u64, Error> {
        let h = self.dump_mkheader()?;
        let b = h.header_bytes(dumpsize).map_err(|e| self.fail(e))?;
        out.write_all(&b).map_err(|e| Error::io(None, e))?;
        Ok(b.len() as u64)
    }

    /// Invalidates the dump (`kvm_dump_inval`): writes zero over the
    /// kernel's `dumpmag` in the dump, so that savecore sees no dump
    /// there again. Needs a source opened [`OpenFlags::ReadWrite`] that
    /// takes writes (a dump device, not a dump file: those are read-only,
    /// [`kvm_core::Error::ReadOnly`]); refused on a live kernel, as
    /// OpenBSD refuses it.
    pub fn dump_inval(&self) -> Result<(), Error> {
        if self.source().info().live {
            return Err(self.fail(kvm_core::Error::Unsupported(
                "dump_inval on a live kernel (it clears the dump magic of a saved dump)",
            )));
        }
        if self.flags() != OpenFlags::ReadWrite || self.source().phys_write().is_none() {
            return Err(self.fail(kvm_core::Error::ReadOnly));
        }
        // OpenBSD's nlist name is `_dumpmag`; OS layers may give either.
        let found = self.nlist(&["dumpmag", "_dumpmag"])?;
        let va = found.iter().flatten().next().copied().ok_or_else(|| {
            self.fail(kvm_core::Error::Unsupported(
                "dump_inval: dumpmag is not in the kernel's symbols",
            ))
        })?;
        let pa = self.translate(va)?.pa;
        // `u_long dumpmag`: a pointer's size.
        let size = self
            .source()
            .info()
            .arch
            .and_then(Arch::pointer_size)
            .unwrap_or(8) as usize;
        let zeros = [0u8; 8];
        let n = self.write_phys(pa.0, &zeros[..size])?;
        if n != size {
            return Err(self.fail(kvm_core::Error::NotInMemory {
                pa: PhysAddr(pa.0 + n as u64).0,
            }));
        }
        Ok(())
    }
}
