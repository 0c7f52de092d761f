//! The Linux kernel's page-table root and paging mode, from what a dump
//! states (VMCOREINFO, QEMU CPU notes): the one place where this crate
//! knows which OS wrote the dump (FORMATS.md §6.4, §6.5).

use crate::dump::{Arch, DumpInfo};
use crate::{Error, Result};
use core::ops::ControlFlow;
use kvm_core::arch::aarch64::{Aarch64, Granule, Half};
use kvm_core::arch::x86_64::X86_64;
use kvm_core::{PageRun, PhysAddr, PhysRead, Translate, Translation, VirtAddr};

/// `__START_KERNEL_map`: where the x86-64 kernel image mapping starts.
pub const X86_64_START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// The kernel address space of a Linux dump: its paging (a translator,
/// see [`ArchPaging`]) and a note of where its root came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelPaging {
    /// The kernel's paging; also builds process address spaces.
    pub arch: ArchPaging,
    /// Where the root came from (for `kvm info`).
    pub source: &'static str,
}

/// A paging configuration, concrete (the kernel's, or a process's made
/// from it by [`ArchPaging::user`]), and a translator itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchPaging {
    /// x86-64.
    X86_64(X86_64),
    /// arm64 (the kernel half).
    Aarch64(Aarch64),
}

impl ArchPaging {
    /// The kernel's top table.
    pub fn root(&self) -> PhysAddr {
        match self {
            ArchPaging::X86_64(t) => t.root(),
            ArchPaging::Aarch64(t) => t.root(),
        }
    }

    /// A translator for a process whose top table (`mm->pgd`) is at
    /// physical address `pgd`: the same paging mode (levels, masks,
    /// granule, VA size); on arm64 the user half (TTBR0).
    pub fn user(&self, pgd: PhysAddr) -> ArchPaging {
        match *self {
            ArchPaging::X86_64(t) => ArchPaging::X86_64(t.with_root(pgd)),
            ArchPaging::Aarch64(t) => ArchPaging::Aarch64(t.with_half(Half::User, pgd)),
        }
    }
}

impl Translate for ArchPaging {
    #[inline]
    fn translate(&self, mem: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
        match self {
            ArchPaging::X86_64(t) => t.translate(mem, va),
            ArchPaging::Aarch64(t) => t.translate(mem, va),
        }
    }
    fn walk(
        &self,
        mem: &dyn PhysRead,
        f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
    ) -> Result<()> {
        match self {
            ArchPaging::X86_64(t) => t.walk(mem, f),
            ArchPaging::Aarch64(t) => t.walk(mem, f),
        }
    }
}

/// Finds the kernel's page tables.
///
/// x86-64: `SYMBOL(init_top_pgt)` (`init_level4_pgt` before 4.13) minus
/// `__START_KERNEL_map` plus `NUMBER(phys_base)`, 5-level when
/// `NUMBER(pgtable_l5_enabled)=1`, minus the SME C-bit; else the CR3 of
/// QEMU's CPU note. arm64: `SYMBOL(swapper_pg_dir)` minus
/// `NUMBER(kimage_voffset)`, VA size 64 − `NUMBER(TCR_EL1_T1SZ)` (else
/// `NUMBER(VA_BITS)`), granule = `PAGESIZE`.
pub fn kernel_paging(info: &DumpInfo) -> Result<KernelPaging> {
    let vi = info.vmcoreinfo.as_ref();
    match info.arch {
        Some(Arch::X86_64) => {
            let sym = vi.and_then(|v| {
                v.symbol("init_top_pgt")
                    .or_else(|| v.symbol("init_level4_pgt"))
                    .or_else(|| v.symbol("swapper_pg_dir"))
            });
            let phys_base = vi.and_then(|v| v.number("phys_base"));
            if let (Some(sym), Some(pb)) = (sym, phys_base) {
                let root = sym.wrapping_sub(X86_64_START_KERNEL_MAP).wrapping_add(pb);
                let levels = if vi.and_then(|v| v.number("pgtable_l5_enabled")) == Some(1) {
                    5
                } else {
                    4
                };
                let mut t = X86_64::new(PhysAddr(root), levels)?;
                if let Some(mask) = vi.and_then(|v| v.number("sme_mask")).filter(|&m| m != 0) {
                    t = t.with_encryption_mask(mask);
                }
                return Ok(KernelPaging {
                    arch: ArchPaging::X86_64(t),
                    source: "VMCOREINFO init_top_pgt and phys_base",
                });
            }
            let cpu = info.cpus.iter().find(|c| c.cr3.is_some_and(|c| c != 0));
            if let Some((cr3, cr4)) = cpu.and_then(|c| Some((c.cr3?, c.cr4.unwrap_or(0)))) {
                let levels = if cr4 & (1 << 12) != 0 { 5 } else { 4 };
                let t = X86_64::new(PhysAddr(cr3), levels)?;
                return Ok(KernelPaging {
                    arch: ArchPaging::X86_64(t),
                    source: "CR3 of QEMU's CPU note",
                });
            }
            Err(Error::Unsupported(
                "x86-64 dump without VMCOREINFO init_top_pgt/phys_base or a CR3 note",
            ))
        }
        Some(Arch::Aarch64) => {
            let vi = vi.ok_or(Error::Unsupported("arm64 dump without VMCOREINFO"))?;
            let pgd = vi.symbol("swapper_pg_dir").ok_or(Error::Unsupported(
                "VMCOREINFO lacks SYMBOL(swapper_pg_dir)",
            ))?;
            let voff = vi.number("kimage_voffset").ok_or(Error::Unsupported(
                "VMCOREINFO lacks NUMBER(kimage_voffset)",
            ))?;
            let va_bits = match vi.number("TCR_EL1_T1SZ") {
                Some(t1sz) if (12..=39).contains(&t1sz) => 64 - t1sz as u32,
                _ => vi
                    .number("VA_BITS")
                    .filter(|b| (25..=52).contains(b))
                    .ok_or(Error::Unsupported("VMCOREINFO lacks a usable VA_BITS"))?
                    as u32,
            };
            let page = vi
                .page_size()
                .or(info.page_size)
                .ok_or(Error::Unsupported("unknown arm64 page size"))?;
            let granule = Granule::from_page_size(page)
                .ok_or(Error::Malformed("arm64 page size is not 4K, 16K or 64K"))?;
            let pa52 = vi.number("MAX_PHYSMEM_BITS") == Some(52);
            let t = Aarch64::kernel(PhysAddr(pgd.wrapping_sub(voff)), granule, va_bits)?
                .with_pa52(pa52);
            Ok(KernelPaging {
                arch: ArchPaging::Aarch64(t),
                source: "VMCOREINFO swapper_pg_dir and kimage_voffset",
            })
        }
        Some(_) => Err(Error::Unsupported(
            "Linux kernel paging for this architecture",
        )),
        None => Err(Error::Unsupported(
            "the dump does not say which architecture it is",
        )),
    }
}
