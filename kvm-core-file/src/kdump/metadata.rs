//! What a kdump file says besides its pages: VMCOREINFO and the ELF notes,
//! and the architecture and kernel release from the header or from them.

use super::header::KdumpHeader;
use crate::notes::{self, Notes};
use crate::{ReadAt, Result, VmCoreInfo};
use alloc::format;
use kvm_core::Error;
use kvm_core::{Arch, SourceInfo};

/// Largest note buffer read.
pub(super) const MAX_NOTES: u64 = 16 << 20;

/// The architecture a `utsname.machine` names, including ones without a
/// walker (as their ELF `e_machine`).
fn arch_from_machine(m: &str) -> Option<Arch> {
    if let Some(a) = Arch::from_uname(m) {
        return Some(a);
    }
    let em = match m {
        "ppc64" | "ppc64le" => 21,
        "ppc" | "ppcle" => 20,
        "s390x" | "s390" => 22,
        "riscv64" | "riscv32" => 243,
        "loongarch64" => 258,
        "mips" | "mipsel" | "mips64" | "mips64el" => 8,
        "sparc64" => 43,
        "ia64" => 50,
        _ if m.starts_with("arm") => 40,
        _ => return None,
    };
    Some(Arch::Other(em))
}

/// The architecture VMCOREINFO implies (for headers that do not say).
fn arch_from_vmcoreinfo(v: &VmCoreInfo) -> Option<Arch> {
    if v.number("kimage_voffset").is_some() {
        return Some(Arch::Aarch64);
    }
    if v.symbol("init_top_pgt").is_some() || v.symbol("init_level4_pgt").is_some() {
        return Some(Arch::X86_64);
    }
    if v.get("CONFIG_X86_PAE").is_some() {
        return Some(Arch::I386);
    }
    None
}

/// Reads VMCOREINFO and the notes, and fills in `info` from the header and
/// from them.
pub(super) fn read_metadata<R: ReadAt>(
    file: &R,
    h: &KdumpHeader,
    info: &mut SourceInfo,
) -> Result<()> {
    let sub = h.sub.as_ref().map(|s| &s.1);
    info.arch = arch_from_machine(&h.machine);
    if !h.release.is_empty() {
        info.release = Some(h.release.clone());
    }
    let notes = match sub.and_then(|s| s.note).filter(|n| n.1 > 0) {
        Some((off, size)) => {
            if size > MAX_NOTES {
                return Err(Error::Malformed("kdump note buffer larger than 16 MiB"));
            }
            Some(file.read_vec_at(off, size, "kdump notes extend past the end of the file")?)
        }
        None => None,
    };
    let mut vmcoreinfo = match sub.and_then(|s| s.vmcoreinfo).filter(|v| v.1 > 0) {
        Some((off, size)) => {
            if size > crate::vmcoreinfo::MAX_LEN as u64 {
                return Err(Error::Malformed("kdump VMCOREINFO larger than 1 MiB"));
            }
            let text = file.read_vec_at(
                off,
                size,
                "kdump VMCOREINFO extends past the end of the file",
            )?;
            Some(VmCoreInfo::parse(&text)?)
        }
        None => None,
    };
    if vmcoreinfo.is_none() {
        // Look for the VMCOREINFO note, to learn the architecture before
        // the CPU notes are parsed.
        for note in Notes::new(notes.as_deref().unwrap_or_default(), h.endian) {
            let note = note?;
            if note.name == b"VMCOREINFO" && note.kind == 0 {
                vmcoreinfo = Some(VmCoreInfo::parse(note.desc)?);
            }
        }
    }
    if info.arch.is_none() {
        if let Some(a) = vmcoreinfo.as_ref().and_then(arch_from_vmcoreinfo) {
            info.arch = Some(a);
            info.remarks.push(format!(
                "the kdump header's utsname.machine ({:?}) names no architecture (QEMU); {} inferred from VMCOREINFO",
                h.machine,
                a.name()
            ));
        }
    }
    info.vmcoreinfo = vmcoreinfo;
    info.page_size = Some(u64::from(h.block_size));
    if let Some(n) = &notes {
        notes::read_notes(info, n)?;
    }
    let Some(v) = info.vmcoreinfo.as_ref() else {
        return Ok(());
    };
    if info.release.is_none() {
        if let Some(r) = v.osrelease() {
            info.release = Some(r.into());
            info.remarks.push(
                "the kdump header leaves utsname.release empty (QEMU); kernel release taken from VMCOREINFO"
                    .into(),
            );
        }
    }
    if let Some(p) = v.page_size().filter(|&p| p != u64::from(h.block_size)) {
        info.page_size = Some(p);
        info.remarks.push(format!(
            "kdump block size {} differs from the kernel's PAGESIZE {p} (VMCOREINFO); PFNs use the block size",
            h.block_size
        ));
    }
    let number = match info.arch {
        Some(Arch::X86_64) => v.number("phys_base"),
        Some(Arch::Aarch64) => v.number("PHYS_OFFSET"),
        _ => None,
    };
    if let (Some(vb), Some(s)) = (number, sub) {
        if s.phys_base != vb && s.phys_base != 0 {
            info.remarks.push(format!(
                "kdump sub-header phys_base {:#x} differs from VMCOREINFO's {vb:#x}; VMCOREINFO is used",
                s.phys_base
            ));
        }
    }
    Ok(())
}
