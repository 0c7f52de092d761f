//! Kernel virtual addresses through a minidump's own page-table section
//! (FORMATS.md §3.4): amd64's PTE (v1) or PDE (v2–3) array from
//! `kernbase` and its direct map; arm64's direct map, then its L3 array;
//! i386's PTE array. Anything else is not in a minidump.

use super::MinidumpDump;
use crate::ReadAt;
use kvm_core::{
    Arch, Error, PhysAddr, PhysRead, PhysReadExt, Prot, Result, Translate, Translation, VirtAddr,
};

/// x86 entry bits: present, writable, large page, no-execute.
pub(super) const PG_V: u64 = 1;
pub(super) const PG_RW: u64 = 1 << 1;
pub(super) const PG_U: u64 = 1 << 2;
pub(super) const PG_PS: u64 = 1 << 7;
pub(super) const PG_NX: u64 = 1 << 63;
/// x86 frame bits of a 4 KiB and a 2 MiB entry.
pub(super) const FRAME_4K: u64 = 0x000f_ffff_ffff_f000;
pub(super) const FRAME_2M: u64 = 0x000f_ffff_ffe0_0000;
/// arm64 L3 page descriptor: bits[1:0] = 0b11; AP[1] (EL0) bit 6, AP[2] (read-only) bit 7;
/// PXN bit 53; output address bits [47:12].
pub(super) const ARM_L3_PAGE: u64 = 3;
pub(super) const ARM_RDONLY: u64 = 1 << 7;
pub(super) const ARM_EL0: u64 = 1 << 6;
pub(super) const ARM_PXN: u64 = 1 << 53;
pub(super) const ARM_OA: u64 = 0x0000_ffff_ffff_f000;

/// The rights of an x86 entry; `nx_bit`: whether bit 63 means
/// no-execute (PAE and long mode; not 32-bit entries).
pub(super) fn x86_prot(e: u64, nx_bit: bool) -> Prot {
    let mut p = Prot::READ;
    if e & PG_RW != 0 {
        p = p | Prot::WRITE;
    }
    if e & PG_U != 0 {
        p = p | Prot::USER;
    }
    if !nx_bit || e & PG_NX == 0 {
        p = p | Prot::EXEC;
    }
    p
}

/// The rights of an arm64 L3 page descriptor.
pub(super) fn arm_prot(e: u64) -> Prot {
    let mut p = Prot::READ;
    if e & ARM_RDONLY == 0 {
        p = p | Prot::WRITE;
    }
    if e & ARM_EL0 != 0 {
        p = p | Prot::USER;
    }
    if e & ARM_PXN == 0 {
        p = p | Prot::EXEC;
    }
    p
}

/// A translation of `va` at `pa` within a page of `size`.
fn page(va: u64, pa: u64, size: u64, prot: Prot) -> Translation {
    let off = va & (size - 1);
    Translation {
        pa: PhysAddr(pa + off),
        len: size - off,
        page_size: size,
        prot,
    }
}

impl<R: ReadAt> MinidumpDump<R> {
    fn amd64(&self, va: u64) -> Result<Translation> {
        let h = &self.header;
        let unmapped = Error::Unmapped { va };
        if va >= h.kernbase {
            let rel = va - h.kernbase;
            if h.version == 1 {
                let pte = self.pmap_entry(rel >> 12)?.ok_or(unmapped)?;
                if pte & PG_V == 0 {
                    return Err(unmapped);
                }
                return Ok(page(va, pte & FRAME_4K, 4096, x86_prot(pte, true)));
            }
            let pde = self.pmap_entry(rel >> 21)?.ok_or(unmapped)?;
            if pde & PG_V == 0 {
                return Err(unmapped);
            }
            if pde & PG_PS != 0 {
                return Ok(page(va, pde & FRAME_2M, 2 << 20, x86_prot(pde, true)));
            }
            // The PTE page is one of the dumped pages.
            let at = (pde & FRAME_4K) + ((va >> 12) & 511) * 8;
            let pte = self
                .read_u64_le(PhysAddr(at))
                .map_err(|_| Error::TableNotReadable { va, pa: at })?;
            if pte & PG_V == 0 {
                return Err(unmapped);
            }
            return Ok(page(va, pte & FRAME_4K, 4096, x86_prot(pte, true)));
        }
        if va >= h.dmapbase && va < h.dmapend {
            return Ok(page(
                va,
                (va - h.dmapbase) & !0xfff,
                4096,
                Prot::READ | Prot::WRITE,
            ));
        }
        Err(unmapped)
    }

    fn arm64(&self, va: u64) -> Result<Translation> {
        let h = &self.header;
        let unmapped = Error::Unmapped { va };
        let size = h.page;
        if va >= h.dmapbase && va < h.dmapend {
            let pa = (va - h.dmapbase).checked_add(h.dmapphys).ok_or(unmapped)?;
            return Ok(page(va, pa & !(size - 1), size, Prot::READ | Prot::WRITE));
        }
        if va < h.kernbase {
            return Err(unmapped);
        }
        let shift = size.trailing_zeros();
        let e = self
            .pmap_entry((va - h.kernbase) >> shift)?
            .ok_or(unmapped)?;
        if e & 3 != ARM_L3_PAGE {
            return Err(unmapped);
        }
        Ok(page(va, e & ARM_OA & !(size - 1), size, arm_prot(e)))
    }

    fn i386(&self, va: u64) -> Result<Translation> {
        let h = &self.header;
        let unmapped = Error::Unmapped { va };
        if va > u64::from(u32::MAX) {
            return Err(Error::NonCanonical { va });
        }
        if va < h.kernbase {
            return Err(unmapped);
        }
        let pte = self.pmap_entry((va - h.kernbase) >> 12)?.ok_or(unmapped)?;
        if pte & PG_V == 0 {
            return Err(unmapped);
        }
        let frame = if h.pae {
            pte & FRAME_4K
        } else {
            pte & 0xffff_f000
        };
        Ok(page(va, frame, 4096, x86_prot(pte, h.pae)))
    }
}

impl<R: ReadAt> Translate for MinidumpDump<R> {
    /// Translates through the dump's own tables; `mem` is unused (the
    /// dump reads its own page-table pages).
    fn translate(&self, _: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
        match self.header.arch {
            Arch::X86_64 => self.amd64(va.0),
            Arch::Aarch64 => self.arm64(va.0),
            _ => self.i386(va.0),
        }
    }

    /// The section's pages and the direct map's dumped pages, in VA
    /// order (see `walk.rs`).
    fn walk(
        &self,
        _: &dyn PhysRead,
        f: &mut dyn FnMut(kvm_core::PageRun) -> core::ops::ControlFlow<()>,
    ) -> Result<()> {
        self.walk_pages(f)
    }
}
