//! Entry points for the fuzz targets in `fuzz/`, kept in the library so
//! that regressions replay as ordinary tests. Each must never panic, hang
//! or allocate by a size read from the input.

use kvm_core::{Arch, Endian, SourceInfo, VmCoreInfo};

/// VMCOREINFO text (and a CR3/CR4 pair from its first 16 bytes) through
/// the Linux paging discovery, for every architecture.
pub fn linux_paging(data: &[u8]) {
    let Ok(vi) = VmCoreInfo::parse(data) else {
        return;
    };
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(data.get(i..i + 8)?);
        Some(u64::from_le_bytes(b))
    };
    for arch in [Arch::X86_64, Arch::Aarch64, Arch::I386, Arch::Other(0)] {
        let mut info = SourceInfo::new("fuzz", Endian::Little);
        info.arch = Some(arch);
        info.page_size = vi.page_size();
        info.vmcoreinfo = Some(vi.clone());
        let _ = crate::linux::paging::kernel_paging(&info);
        info.vmcoreinfo = None;
        info.cpus.push(kvm_core::CpuState {
            cr3: word(0),
            cr4: word(8),
            ..Default::default()
        });
        let _ = crate::linux::paging::kernel_paging(&info);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostile_vmcoreinfo_values() {
        for text in [
            &b"SYMBOL(swapper_pg_dir)=ffffffffffffffff\nNUMBER(kimage_voffset)=0\nNUMBER(VA_BITS)=99\nPAGESIZE=4097\n"[..],
            b"SYMBOL(init_top_pgt)=0\nNUMBER(phys_base)=18446744073709551615\nNUMBER(pgtable_l5_enabled)=7\n",
            b"NUMBER(TCR_EL1_T1SZ)=0\nSYMBOL(swapper_pg_dir)=1\nNUMBER(kimage_voffset)=2\nPAGESIZE=65536\n",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff=\n",
        ] {
            super::linux_paging(text);
        }
    }
}
