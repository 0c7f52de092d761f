//! The Linux kernel's page-table root and paging mode, from what a source
//! states (VMCOREINFO, else QEMU's CPU notes) (FORMATS.md §6.4, §6.5).

use crate::paging::{from_cpu_notes, none_found, KernelPaging};
use kvm_core::arch::aarch64::{Aarch64, Granule};
use kvm_core::arch::x86_64::X86_64;
use kvm_core::{Arch, Error, Paging, PhysAddr, Result, SourceInfo};

/// `__START_KERNEL_map`: where the x86-64 kernel image mapping starts.
pub const X86_64_START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// Finds the kernel's page tables.
///
/// x86-64: `SYMBOL(init_top_pgt)` (`init_level4_pgt` before 4.13) minus
/// `__START_KERNEL_map` plus `NUMBER(phys_base)`, 5-level when
/// `NUMBER(pgtable_l5_enabled)=1`, minus the SME C-bit; else the CR3 of
/// QEMU's CPU note. arm64: `SYMBOL(swapper_pg_dir)` minus
/// `NUMBER(kimage_voffset)`, VA size 64 − `NUMBER(TCR_EL1_T1SZ)` (else
/// `NUMBER(VA_BITS)`), granule = `PAGESIZE`.
pub fn kernel_paging(info: &SourceInfo) -> Result<KernelPaging> {
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
                return Ok(KernelPaging::new(
                    Paging::X86_64(t),
                    "VMCOREINFO init_top_pgt and phys_base",
                ));
            }
            from_cpu_notes(info)
        }
        Some(Arch::Aarch64) => {
            let vi = vi.ok_or_else(|| none_found(info))?;
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
            Ok(KernelPaging::new(
                Paging::Aarch64(t),
                "VMCOREINFO swapper_pg_dir and kimage_voffset",
            ))
        }
        Some(_) => Err(Error::Unsupported(
            "Linux kernel paging for this architecture",
        )),
        None => Err(Error::Unsupported(
            "the dump does not say which architecture it is",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_core::{Endian, VmCoreInfo};

    fn info(arch: Arch, vmcoreinfo: &str) -> SourceInfo {
        let mut i = SourceInfo::new("kdump", Endian::Little);
        i.arch = Some(arch);
        i.vmcoreinfo = Some(VmCoreInfo::parse(vmcoreinfo.as_bytes()).unwrap());
        i
    }

    #[test]
    fn x86_64_root_from_init_top_pgt_and_phys_base() {
        let i = info(
            Arch::X86_64,
            "SYMBOL(init_top_pgt)=ffffffff8a40a000\nNUMBER(phys_base)=115343360\nNUMBER(pgtable_l5_enabled)=1\n",
        );
        let p5 = kernel_paging(&i).unwrap();
        assert_eq!(
            p5.root().unwrap().0,
            0xffff_ffff_8a40_a000 - X86_64_START_KERNEL_MAP + 115_343_360
        );
        match p5.paging.unwrap() {
            Paging::X86_64(t) => assert_eq!(t.levels(), 5),
            other => panic!("{other:?}"),
        }
        assert_eq!(p5.source, "VMCOREINFO init_top_pgt and phys_base");
    }

    #[test]
    fn x86_64_falls_back_to_the_cr3_note() {
        let mut i = info(Arch::X86_64, "OSRELEASE=6.1.0\n");
        assert_eq!(
            kernel_paging(&i),
            Err(Error::Unsupported(
                "x86-64 dump without VMCOREINFO init_top_pgt/phys_base or a CR3 note"
            ))
        );
        i.cpus.push(kvm_core::CpuState {
            cr3: Some(0x1234_5000),
            cr4: Some(1 << 12),
            ..Default::default()
        });
        let p = kernel_paging(&i).unwrap();
        assert_eq!(
            (p.root().unwrap().0, p.source),
            (0x1234_5000, "CR3 of QEMU's CPU note")
        );
    }

    #[test]
    fn arm64_root_from_swapper_pg_dir_and_kimage_voffset() {
        let i = info(
            Arch::Aarch64,
            "PAGESIZE=16384\nSYMBOL(swapper_pg_dir)=ffff800081a5c000\nNUMBER(kimage_voffset)=0xffff7fff40000000\nNUMBER(VA_BITS)=47\n",
        );
        let p = kernel_paging(&i).unwrap();
        assert_eq!(
            p.root().unwrap().0,
            0xffff_8000_81a5_c000 - 0xffff_7fff_4000_0000
        );
        match p.paging.unwrap() {
            Paging::Aarch64(t) => assert_eq!((t.granule(), t.va_bits()), (Granule::K16, 47)),
            other => panic!("{other:?}"),
        }
        let i = info(Arch::Aarch64, "PAGESIZE=4096\n");
        assert_eq!(
            kernel_paging(&i),
            Err(Error::Unsupported(
                "VMCOREINFO lacks SYMBOL(swapper_pg_dir)"
            ))
        );
    }
}
