//! Opening a dump by its content: the format is chosen from the first
//! bytes, never from the file name.

use crate::{ReadAt, Result};
use alloc::boxed::Box;
use kvm_core::{Arch, Error, Source};

/// ELF magic.
const ELF_MAGIC: &[u8] = b"\x7fELF";
/// kdump-compressed signature.
const KDUMP_MAGIC: &[u8] = b"KDUMP   ";
/// makedumpfile's flattened-stream signature.
const FLAT_MAGIC: &[u8] = b"makedumpfile\0\0\0\0";
/// FreeBSD minidumps: `"minidump FreeBSD/<arch>"`.
const MINIDUMP_MAGIC: &[u8] = b"minidump";
/// A FreeBSD dump-device image: `struct kerneldumpheader` magics (the
/// first 16 bytes; the header check compares all 20).
const FREEBSD_DEVICE_MAGICS: [&[u8]; 3] = [
    b"FreeBSD Kernel D",
    b"FreeBSD Text Dum",
    b"Cleared Kernel D",
];
/// LiME header magic, little-endian 0x4C694D45.
const LIME_MAGIC: &[u8] = b"EMiL";

/// Whether `magic` starts like an OpenBSD kcore: a big-endian `c_midmag`
/// with KCORE_MAGIC and a machine id read here (amd64, i386).
fn is_openbsd_kcore(magic: &[u8]) -> bool {
    use crate::openbsd::header::{arch_of, MidMag, KCORE_MAGIC};
    let Some(&[a, b, c, d]) = magic.get(..4) else {
        return false;
    };
    let m = MidMag::decode([a, b, c, d]);
    m.magic == KCORE_MAGIC && arch_of(m.mid).is_some()
}

/// Opens a dump, choosing the format by its content.
///
/// Returns [`Error::Malformed`] naming the format when its header is
/// damaged, and [`Error::Unsupported`] when no known format matches.
pub fn open<R: ReadAt + Send + Sync + core::fmt::Debug + 'static>(r: R) -> Result<Box<dyn Source>> {
    let source = open_format(r)?;
    agree(&*source)?;
    Ok(source)
}

/// The dump's two accounts of its machine must agree: the format's own
/// (an ELF `e_machine`, a kdump's utsname) and its VMCOREINFO's (which
/// names symbols only one architecture has). A damaged header would
/// otherwise send every translation through the wrong page tables.
fn agree(source: &dyn Source) -> Result<()> {
    let info = source.info();
    let Some(vi) = &info.vmcoreinfo else {
        return Ok(());
    };
    let named = kvm_core::discover::arch_of(vi);
    if let (Some(said), Some(named)) = (info.arch, named) {
        if said != named {
            return Err(Error::Malformed(
                "the dump's header and its VMCOREINFO name different architectures (a damaged header?)",
            ));
        }
    }
    // PAGESIZE, where stated, is one of the architecture's page sizes
    // (x86 has 4 KiB pages only; arm64 4, 16 or 64 KiB): every RSS and
    // every page walk depends on it.
    if let (Some(text), Some(arch)) = (vi.get("PAGESIZE"), info.arch.or(named)) {
        let sizes: &[&str] = match arch {
            Arch::Aarch64 => &["4096", "16384", "65536"],
            _ => &["4096"],
        };
        if !sizes.contains(&text.trim()) {
            return Err(Error::Malformed(
                "VMCOREINFO's PAGESIZE is not a page size of the dump's architecture",
            ));
        }
    }
    Ok(())
}

fn open_format<R: ReadAt + Send + Sync + core::fmt::Debug + 'static>(
    r: R,
) -> Result<Box<dyn Source>> {
    let mut magic = [0u8; 16];
    let n = r.read_at(0, &mut magic)?;
    let magic = &magic[..n];
    if magic.starts_with(ELF_MAGIC) {
        return Ok(Box::new(crate::elf::ElfDump::open(r)?));
    }
    if magic.starts_with(KDUMP_MAGIC) || magic.starts_with(FLAT_MAGIC) {
        return Ok(Box::new(crate::kdump::KdumpDump::open(r)?));
    }
    if magic.starts_with(LIME_MAGIC) {
        return Ok(Box::new(crate::lime::open(r)?));
    }
    if magic.starts_with(MINIDUMP_MAGIC) {
        return Ok(Box::new(crate::minidump::MinidumpDump::open(r)?));
    }
    if FREEBSD_DEVICE_MAGICS.iter().any(|m| magic.starts_with(m)) {
        return Ok(Box::new(crate::freebsd::DeviceDump::open(r)?));
    }
    if is_openbsd_kcore(magic) {
        return Ok(Box::new(crate::openbsd::KcoreDump::open(r)?));
    }
    if magic.starts_with(b"DISKDUMP") {
        return Err(Error::Unsupported("legacy diskdump files"));
    }
    Err(Error::Unsupported(
        "unknown dump format (not ELF, kdump, flattened kdump, LiME, FreeBSD minidump or OpenBSD kcore)",
    ))
}
