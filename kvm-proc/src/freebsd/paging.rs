//! The page-table root of a FreeBSD full dump (an ELF core of physical
//! memory): a kernel variable holds it, at `&var − kernbase` in physical
//! memory, since KERNBASE maps physical 0 (per FreeBSD's libkvm,
//! kvm_amd64.c and kvm_i386.c). Minidumps translate with their own
//! page-table array instead.

use crate::bsd::KernelFile;
use crate::paging::KernelPaging;
use kvm_core::arch::i386::I386;
use kvm_core::arch::x86_64::X86_64;
use kvm_core::{Arch, Error, Paging, PhysAddr, PhysReadExt, Result, Source};

/// amd64's KERNBASE (sys/amd64/include/vmparam.h), when the kernel file
/// lacks the `kernbase` symbol.
const AMD64_KERNBASE: u64 = 0xffff_ffff_8000_0000;

/// The kernel's paging over `source`, from the kernel file's symbols.
pub fn kernel_paging(source: &dyn Source, file: &KernelFile) -> Result<KernelPaging> {
    if source.translator().is_some() {
        return Ok(KernelPaging {
            paging: None,
            source: "the minidump's page-table array",
        });
    }
    if file.table().is_err() {
        return Err(Error::Unsupported(
            "FreeBSD full dumps need the kernel file (-N) to find the page tables",
        ));
    }
    let kernbase = file.get("kernbase")?;
    let phys = |var: u64, kernbase: u64| {
        var.checked_sub(kernbase).ok_or(Error::Malformed(
            "a page-table variable lies below kernbase",
        ))
    };
    match source.info().arch {
        Some(Arch::X86_64) => {
            let var = file.need("KPML4phys", "the kernel file has no KPML4phys")?;
            let kernbase = kernbase.unwrap_or(AMD64_KERNBASE);
            let root = source.read_u64_le(PhysAddr(phys(var, kernbase)?))?;
            if root % 4096 != 0 || root == 0 {
                return Err(Error::Malformed("KPML4phys is not a page address"));
            }
            Ok(KernelPaging::new(
                Paging::X86_64(X86_64::new(PhysAddr(root), 4)?),
                "KPML4phys",
            ))
        }
        Some(Arch::I386) => {
            let kernbase = kernbase.ok_or(Error::Unsupported("the kernel file has no kernbase"))?;
            // PAE kernels keep the PDPT's address in IdlePDPT, others the
            // page directory's in IdlePTD.
            let (var, pae) = match file.get("IdlePDPT")? {
                Some(v) => (v, true),
                None => (file.need("IdlePTD", "the kernel file has neither IdlePDPT nor IdlePTD")?, false),
            };
            let root = u64::from(source.read_u32_le(PhysAddr(phys(var, kernbase)?))?);
            let t = if pae { I386::new_pae(PhysAddr(root)) } else { I386::new(PhysAddr(root)) };
            Ok(KernelPaging::new(
                Paging::I386(t),
                if pae { "IdlePDPT" } else { "IdlePTD" },
            ))
        }
        Some(Arch::Aarch64) => Err(Error::Unsupported(
            "FreeBSD/arm64 full dumps (the kernel pmap's root is not looked up yet; minidumps work)",
        )),
        _ => Err(Error::Unsupported(
            "FreeBSD full dumps of this architecture",
        )),
    }
}
