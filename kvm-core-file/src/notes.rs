//! ELF note streams (a PT_NOTE segment, a kdump note buffer) and the notes
//! dump tools use: NT_PRSTATUS, VMCOREINFO, QEMU's CPU state
//! (FORMATS.md §2.3).

use crate::{Error, Result, VmCoreInfo};
use alloc::vec::Vec;
use kvm_core::Endian;
use kvm_core::{Arch, CpuState, OsHint, SourceInfo};

/// `NT_PRSTATUS`: one per CPU, name "CORE".
pub const NT_PRSTATUS: u32 = 1;

/// One note record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note<'a> {
    /// The name without its terminating NUL.
    pub name: &'a [u8],
    /// `n_type`.
    pub kind: u32,
    /// The descriptor bytes.
    pub desc: &'a [u8],
}

/// Iterates over the notes in `data`. Stops at the end, at a zero record
/// (the padding of the kernel's per-CPU note buffers), or with an error at
/// a record that does not fit.
#[derive(Clone, Debug)]
pub struct Notes<'a> {
    data: &'a [u8],
    endian: Endian,
}

impl<'a> Notes<'a> {
    /// Notes of a target with byte order `endian`.
    pub fn new(data: &'a [u8], endian: Endian) -> Self {
        Notes { data, endian }
    }
}

fn align4(n: u32) -> Option<usize> {
    usize::try_from(n).ok()?.checked_add(3).map(|v| v & !3)
}

impl<'a> Iterator for Notes<'a> {
    type Item = Result<Note<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let hdr = self.data.get(..12)?;
        let word = |i: usize| {
            self.endian
                .u32([hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]])
        };
        let (namesz, descsz, kind) = (word(0), word(4), word(8));
        if namesz == 0 && descsz == 0 && kind == 0 {
            self.data = &[];
            return None;
        }
        let bad = || Some(Err(Error::Malformed("ELF note extends past its segment")));
        let (Some(nlen), Some(dlen)) = (align4(namesz), align4(descsz)) else {
            return bad();
        };
        let rest = &self.data[12..];
        let Some(name) = rest.get(..namesz as usize) else {
            return bad();
        };
        let Some(desc) = rest.get(nlen..).and_then(|d| d.get(..descsz as usize)) else {
            return bad();
        };
        self.data = rest.get(nlen + dlen..).unwrap_or_default();
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        Some(Ok(Note { name, kind, desc }))
    }
}

/// Registers from an `NT_PRSTATUS` descriptor of `arch` (layouts in
/// FORMATS.md §2.3.1), or `None` when the size does not match the
/// architecture's `struct elf_prstatus`.
pub fn prstatus(arch: Arch, desc: &[u8], e: Endian) -> Option<CpuState> {
    let u32_at = |o: usize| desc.get(o..o + 4).map(|b| e.u32([b[0], b[1], b[2], b[3]]));
    let u64_at = |o: usize| {
        desc.get(o..o + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            e.u64(a)
        })
    };
    // pr_reg: x86-64 user_regs_struct (rbp 4th, rip 16th, rsp 19th),
    // arm64 x0..x30, sp, pc; i386 (ebp 5th, eip 12th, esp 15th).
    let (words, width, at) = match (arch, desc.len()) {
        (Arch::X86_64, 336) => (27, 8, 112),
        (Arch::Aarch64, 392) => (34, 8, 112),
        (Arch::I386, 144) => (17, 4, 72),
        _ => return None,
    };
    let regs = (0..words)
        .map(|i| match width {
            8 => u64_at(at + 8 * i),
            _ => u32_at(at + 4 * i).map(u64::from),
        })
        .collect::<Option<Vec<u64>>>()?;
    let (pc, sp, fp, pid_off) = match (arch, desc.len()) {
        (Arch::X86_64, 336) => (
            u64_at(112 + 16 * 8)?,
            u64_at(112 + 19 * 8)?,
            u64_at(112 + 4 * 8)?,
            32,
        ),
        (Arch::Aarch64, 392) => (
            u64_at(112 + 32 * 8)?,
            u64_at(112 + 31 * 8)?,
            u64_at(112 + 29 * 8)?,
            32,
        ),
        (Arch::I386, 144) => (
            u64::from(u32_at(72 + 12 * 4)?),
            u64::from(u32_at(72 + 15 * 4)?),
            u64::from(u32_at(72 + 5 * 4)?),
            24,
        ),
        _ => return None,
    };
    Some(CpuState {
        pid: u32_at(pid_off)?,
        pc,
        sp,
        fp: Some(fp),
        regs,
        cr3: None,
        cr4: None,
    })
}

/// QEMU's x86-64 CPU state note (name "QEMU"): returns (cr3, cr4) when the
/// descriptor is long enough to hold them (FORMATS.md §2.3.4).
pub fn qemu_cpu_state(desc: &[u8]) -> Option<(u64, u64)> {
    let u32_at = |o: usize| {
        desc.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        desc.get(o..o + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    let size = u32_at(4)? as usize;
    if size < 432 || size > desc.len() {
        return None;
    }
    Some((u64_at(416)?, u64_at(424)?))
}

/// Fills `info` from a note stream in `info.endian` byte order: VMCOREINFO
/// (and the page size it states, when `info` has none), one [`CpuState`] per
/// `NT_PRSTATUS` (parsed for `info.arch`), and CR3/CR4 from QEMU's CPU
/// notes, matched to the CPUs in order. Shared by the ELF and kdump
/// sources.
pub fn read_notes(info: &mut SourceInfo, data: &[u8]) -> Result<()> {
    for note in Notes::new(data, info.endian) {
        let note = note?;
        match (note.name, note.kind) {
            (b"VMCOREINFO", 0) => {
                let v = VmCoreInfo::parse(note.desc)?;
                if info.page_size.is_none() {
                    info.page_size = v.page_size();
                }
                // Only Linux writes VMCOREINFO.
                info.os.get_or_insert(OsHint::Linux);
                info.vmcoreinfo = Some(v);
            }
            (b"CORE", NT_PRSTATUS) => {
                if let Some(cpu) = info.arch.and_then(|a| prstatus(a, note.desc, info.endian)) {
                    info.cpus.push(cpu);
                }
            }
            (b"QEMU", 0) => {
                // One per vCPU, in the same order as the NT_PRSTATUS notes.
                if let Some((cr3, cr4)) = qemu_cpu_state(note.desc) {
                    let i = info.cpus.iter().position(|c| c.cr3.is_none());
                    match i {
                        Some(i) => {
                            info.cpus[i].cr3 = Some(cr3);
                            info.cpus[i].cr4 = Some(cr4);
                        }
                        None => info.cpus.push(CpuState {
                            cr3: Some(cr3),
                            cr4: Some(cr4),
                            ..Default::default()
                        }),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(name);
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn iterate_and_stop() {
        let mut d = note(b"CORE", 1, &[1, 2, 3]);
        d.extend(note(b"VMCOREINFO", 0, b"A=1\n"));
        d.extend([0u8; 12]);
        d.extend(note(b"AFTER", 0, b""));
        let v: Vec<_> = Notes::new(&d, Endian::Little)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, b"CORE");
        assert_eq!(v[0].desc, &[1, 2, 3]);
        assert_eq!(v[1].desc, b"A=1\n");
        // A descriptor size larger than the buffer is an error, not a panic.
        let mut bad = note(b"CORE", 1, &[0; 8]);
        bad[4] = 0xff;
        bad[7] = 0xff;
        assert!(Notes::new(&bad, Endian::Little).next().unwrap().is_err());
    }
}
