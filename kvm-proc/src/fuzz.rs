//! Entry points for the fuzz targets in `fuzz/`, kept in the library so
//! that regressions replay as ordinary tests. Each must never panic, hang
//! or allocate by a size read from the input.

use kvm_core::{Arch, Endian, Error, Result, SourceInfo, VirtAddr, VirtRead, VmCoreInfo};

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

/// Kernel memory for [`kernel_log`] and [`unwind`]: the input, at a
/// kernel address.
struct Mem<'a>(&'a [u8]);

/// Where [`kernel_log`]'s and [`unwind`]'s memory starts.
const LOG_BASE: u64 = 0xffff_8880_0000_0000;

impl VirtRead for Mem<'_> {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        let off =
            va.0.checked_sub(LOG_BASE)
                .and_then(|o| usize::try_from(o).ok())
                .filter(|&o| o < self.0.len())
                .ok_or(Error::Unmapped { va: va.0 })?;
        let n = buf.len().min(self.0.len() - off);
        buf[..n].copy_from_slice(&self.0[off..off + n]);
        Ok(n)
    }
}

/// The kernel log readers over memory the input gives: its first byte
/// picks the layout (even: the 5.10+ ring buffer, odd: `log_buf`), the
/// rest is kernel memory at a fixed address where VMCOREINFO's symbols
/// point (Debian 6.1's offsets; 5.4's for `log_buf`).
pub fn kernel_log(data: &[u8]) {
    let Some((&which, mem)) = data.split_first() else {
        return;
    };
    let b = LOG_BASE;
    let text = if which & 1 == 0 {
        alloc::format!(
            "SYMBOL(prb)={b:x}\nOFFSET(printk_ringbuffer.desc_ring)=0\n\
             OFFSET(printk_ringbuffer.text_data_ring)=48\nOFFSET(prb_desc_ring.count_bits)=0\n\
             OFFSET(prb_desc_ring.descs)=8\nOFFSET(prb_desc_ring.infos)=16\n\
             OFFSET(prb_desc_ring.head_id)=24\nOFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\n\
             OFFSET(prb_desc.state_var)=0\nOFFSET(prb_desc.text_blk_lpos)=8\n\
             OFFSET(prb_data_blk_lpos.begin)=0\nOFFSET(prb_data_blk_lpos.next)=8\n\
             SIZE(printk_info)=88\nOFFSET(printk_info.seq)=0\nOFFSET(printk_info.ts_nsec)=8\n\
             OFFSET(printk_info.text_len)=16\nOFFSET(printk_info.caller_id)=20\n\
             OFFSET(prb_data_ring.size_bits)=0\nOFFSET(prb_data_ring.data)=8\nSIZE(atomic_long_t)=8\n"
        )
    } else {
        alloc::format!(
            "SYMBOL(log_buf)={b:x}\nSYMBOL(log_buf_len)={:x}\nSYMBOL(log_first_idx)={:x}\n\
             SYMBOL(log_next_idx)={:x}\nSIZE(printk_log)=16\nOFFSET(printk_log.ts_nsec)=0\n\
             OFFSET(printk_log.len)=8\nOFFSET(printk_log.text_len)=10\n",
            b + 8,
            b + 12,
            b + 16
        )
    };
    let Ok(vi) = VmCoreInfo::parse(text.as_bytes()) else {
        return;
    };
    let seq = |n: &str| (n == "log_first_seq").then_some(b + 24);
    let _ = crate::linux::log::read(&Mem(mem), Endian::Little, &vi, &seq);
}

/// Both kernel stack unwinders (x86-64 ORC, arm64 frame records) over
/// memory the input gives: its first byte is the ORC table's entry count
/// (its table at the start of the memory), the second picks the entry
/// layout (bit 0) and the third where the walk starts; the rest is code
/// and stack. Every walk must end within its frame bound.
pub fn unwind(data: &[u8]) {
    let (Some(&count), Some(&fmt), Some(&start)) = (data.first(), data.get(1), data.get(2)) else {
        return;
    };
    let mem = Mem(data);
    crate::linux::fuzz_walk(
        &mem,
        LOG_BASE,
        data.len() as u64,
        u64::from(count),
        u64::from(start) * 8,
        fmt & 1 == 1,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn unwind_on_small_inputs() {
        for fill in [0u8, 0x08, 0xff] {
            for head in [[0u8, 0, 0], [2, 1, 4], [255, 0, 255]] {
                let mut d = alloc::vec![fill; 4096];
                d[..3].copy_from_slice(&head);
                super::unwind(&d);
            }
        }
        super::unwind(&[]);
        super::unwind(&[1, 2]);
        // The fuzzer's first find: a REGS entry whose stack address plus
        // the pt_regs offsets overflowed.
        let crash = "01f000fa0a00e4e42801ffffffffffffffffffffffff2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c\
                     2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2cf000ff01e400";
        let bytes: alloc::vec::Vec<u8> = (0..crash.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&crash[i..i + 2], 16).unwrap())
            .collect();
        super::unwind(&bytes);
    }

    #[test]
    fn kernel_log_on_small_inputs() {
        // Both layouts over zeros, ones and a ring whose pointers lead
        // back into the input.
        for which in [0u8, 1] {
            for fill in [0u8, 0xff] {
                let mut d = alloc::vec![fill; 512];
                d[0] = which;
                super::kernel_log(&d);
            }
        }
        let mut d = alloc::vec![0u8; 0x400];
        let base = super::LOG_BASE;
        d[1..9].copy_from_slice(&(base + 0x10).to_le_bytes()); // prb
        d[0x11..0x15].copy_from_slice(&27u32.to_le_bytes()); // count_bits
        d[0x41..0x45].copy_from_slice(&28u32.to_le_bytes()); // size_bits
        super::kernel_log(&d);
    }

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
