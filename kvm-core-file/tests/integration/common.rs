//! Sources built in memory for the tests: physical memory with holes, a
//! `Dump` over it, and an ELF core of it.

use kvm_core::{Endian, Error, MapRange, PhysAddr, PhysRead, Result};
use kvm_core_file::write::{elf, kdump::notes_for, Sink};
use kvm_core_file::{Arch, CpuState, Source, SourceInfo, VmCoreInfo};

/// Physical memory: disjoint ranges of bytes, plus ranges that exist but
/// read as excluded.
#[derive(Debug, Clone)]
pub struct Mem {
    pub ranges: Vec<(u64, Vec<u8>)>,
    pub excluded: Vec<(u64, u64)>,
    pub info: SourceInfo,
    pub map: Vec<MapRange>,
}

impl PhysRead for Mem {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        for (start, data) in &self.ranges {
            if pa.0 >= *start && pa.0 - start < data.len() as u64 {
                let off = (pa.0 - start) as usize;
                let n = buf.len().min(data.len() - off);
                buf[..n].copy_from_slice(&data[off..off + n]);
                return Ok(n);
            }
        }
        if self
            .excluded
            .iter()
            .any(|&(s, l)| pa.0 >= s && pa.0 - s < l)
        {
            return Err(Error::Excluded { pa: pa.0 });
        }
        Err(Error::NotInMemory { pa: pa.0 })
    }
}

impl Source for Mem {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &self.map
    }
}

/// A small deterministic generator.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Fills a page with one of several kinds of content: zeros, text,
/// structured words, noise (incompressible), a repeated byte.
pub fn page_content(kind: u64, pfn: u64, size: usize, rng: &mut Rng) -> Vec<u8> {
    match kind % 6 {
        0 => vec![0; size],
        1 => (0..size)
            .map(|i| b"the quick brown fox jumps over the lazy dog "[(i + pfn as usize) % 44])
            .collect(),
        2 => (0..size / 8)
            .flat_map(|i| {
                (0xffff_8880_0000_0000u64 + pfn * 0x1000 + (i as u64 % 13) * 64).to_le_bytes()
            })
            .collect(),
        3 => (0..size).map(|_| rng.next() as u8).collect(),
        4 => vec![(pfn as u8) | 1; size],
        _ => {
            let mut p = vec![0u8; size];
            p[size / 2] = 0x5a; // almost zero
            p[..8].copy_from_slice(&pfn.to_le_bytes());
            p
        }
    }
}

/// Facts of a Linux x86-64 dump with two CPUs (one with QEMU's CR3).
pub fn x86_info() -> SourceInfo {
    let mut info = SourceInfo::new("test", Endian::Little);
    info.arch = Some(Arch::X86_64);
    info.page_size = Some(4096);
    info.vmcoreinfo = Some(
        VmCoreInfo::parse(
            b"OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff8a40a000\n\
NUMBER(phys_base)=-115343360\nKERNELOFFSET=9000000\nCRASHTIME=1700000000\n",
        )
        .unwrap(),
    );
    info.cpus = [
        (1234, 0xffff_ffff_8100_1000, 0xffff_c900_0001_3f00),
        (0, 0xffff_ffff_8100_2000, 0xffff_c900_0002_3f00),
    ]
    .map(|(pid, pc, sp)| CpuState {
        pid,
        pc,
        sp,
        fp: Some(sp + 0x40),
        regs: x86_64_regs(pc, sp, sp + 0x40),
        cr3: Some(0x1_2345_6000),
        cr4: Some(0x3606f0),
    })
    .to_vec();
    info
}

/// An x86-64 `pr_reg` (`user_regs_struct`): every register a value of
/// its own, rbp, rip and rsp where they belong.
pub fn x86_64_regs(pc: u64, sp: u64, fp: u64) -> Vec<u64> {
    let mut r: Vec<u64> = (0..27).map(|i| 0x5a00 + i).collect();
    (r[4], r[16], r[19]) = (fp, pc, sp);
    r
}

/// Memory of `pages` pages of `page_size` in three ranges with holes
/// between them (one range not page aligned at its end), of varied
/// content; the last `excluded` pages of the second range read as excluded.
pub fn memory(page_size: u64, pages: u64, excluded: u64, info: SourceInfo) -> Mem {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let a = pages / 4;
    let b = pages / 2;
    let c = pages - a - b;
    let layout = [(0u64, a), (a + 7, b), (a + 7 + b + 100, c)];
    let mut ranges = Vec::new();
    let mut map = Vec::new();
    let mut excl = Vec::new();
    for (i, &(first, n)) in layout.iter().enumerate() {
        let mut data = Vec::new();
        for p in 0..n {
            let kind = rng.next() % 7;
            data.extend(page_content(kind, first + p, page_size as usize, &mut rng));
        }
        let mut len = n * page_size;
        if i == 1 && excluded > 0 {
            len -= excluded * page_size;
            data.truncate(len as usize);
            excl.push((first * page_size + len, excluded * page_size));
        }
        let mut start = first * page_size;
        if i == 1 {
            // A range starting inside a page: the start of the page reads
            // as zeros in the kdump.
            start += 512;
            len -= 512;
            data.drain(..512);
        }
        if i == 2 {
            // A range ending inside a page: the rest of the page reads as
            // zeros in the kdump.
            len -= 100;
            data.truncate(len as usize);
        }
        ranges.push((start, data));
        map.push(MapRange {
            start,
            len,
            value: 0,
        });
    }
    Mem {
        ranges,
        excluded: excl,
        info,
        map,
    }
}

/// The page at `pfn` as the kdump should hold it (zeros past a range end).
pub fn expected_page(m: &Mem, pfn: u64, page_size: u64) -> Option<Vec<u8>> {
    let pa = pfn * page_size;
    let mut page = vec![0u8; page_size as usize];
    let mut any = false;
    for (start, data) in &m.ranges {
        let end = start + data.len() as u64;
        if pa + page_size <= *start || pa >= end {
            continue;
        }
        let s = pa.max(*start);
        let e = (pa + page_size).min(end);
        page[(s - pa) as usize..(e - pa) as usize]
            .copy_from_slice(&data[(s - start) as usize..(e - start) as usize]);
        any = true;
    }
    any.then_some(page)
}

/// An ELF core of `m` (4 KiB pages), with the notes of `m.info`.
pub fn elf_core(m: &Mem) -> Vec<u8> {
    let notes = notes_for(&m.info, m.info.endian);
    let mut out: Vec<u8> = Vec::new();
    let opts = elf::ElfOptions {
        is64: true,
        endian: m.info.endian,
        machine: 62,
    };
    elf::write_elf(
        &mut out as &mut dyn Sink,
        opts,
        m,
        &m.map,
        &notes,
        &mut |_| {},
    )
    .unwrap();
    out
}
