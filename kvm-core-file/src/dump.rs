//! What every dump source offers, and detection by content.

use crate::{ReadAt, Result, VmCoreInfo};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Endian, Error, MapRange, PhysRead};

/// The dumped machine's architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Arch {
    /// x86-64 (amd64).
    X86_64,
    /// 64-bit Arm (arm64).
    Aarch64,
    /// 32-bit x86.
    I386,
    /// Another architecture; the value is its ELF `e_machine`.
    Other(u16),
}

impl Arch {
    /// From an ELF `e_machine` value.
    pub fn from_elf_machine(m: u16) -> Arch {
        match m {
            62 => Arch::X86_64,
            183 => Arch::Aarch64,
            3 => Arch::I386,
            other => Arch::Other(other),
        }
    }

    /// The ELF `e_machine` value (the inverse of [`Arch::from_elf_machine`]).
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
            Arch::I386 => 3,
            Arch::Other(m) => m,
        }
    }

    /// From a `utsname.machine` string ("x86_64", "aarch64", "i686", …).
    pub fn from_uname(m: &str) -> Option<Arch> {
        match m {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            "i386" | "i486" | "i586" | "i686" => Some(Arch::I386),
            _ => None,
        }
    }

    /// The name `uname -m` prints.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::I386 => "i386",
            Arch::Other(_) => "unknown",
        }
    }
}

/// Registers of one CPU at the time of the dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuState {
    /// `pr_pid` of NT_PRSTATUS: the task running on the CPU (kdump), or
    /// the CPU number + 1 (QEMU).
    pub pid: u32,
    /// Program counter.
    pub pc: u64,
    /// Stack pointer.
    pub sp: u64,
    /// CR3 (x86, from QEMU's CPU-state note).
    pub cr3: Option<u64>,
    /// CR4 (x86, from QEMU's CPU-state note).
    pub cr4: Option<u64>,
}

/// Facts a dump states about the machine beyond its memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpInfo {
    /// The format: `"elf"`, `"kdump"`, `"kdump-flattened"`, `"lime"`, `"raw"`.
    pub format: &'static str,
    /// The architecture, when the dump says (or VMCOREINFO implies) it.
    pub arch: Option<Arch>,
    /// Byte order of the dumped machine.
    pub endian: Endian,
    /// Page size of the dumped kernel.
    pub page_size: Option<u64>,
    /// The kernel's VMCOREINFO, when the dump carries it.
    pub vmcoreinfo: Option<VmCoreInfo>,
    /// One entry per CPU note, in dump order.
    pub cpus: Vec<CpuState>,
    /// The kernel release from the dump header (kdump), if any.
    pub release: Option<String>,
    /// The dump says it was cut short.
    pub incomplete: bool,
    /// Remarks about where facts came from (e.g. a header left empty by
    /// QEMU, so the architecture came from VMCOREINFO).
    pub remarks: Vec<String>,
}

impl DumpInfo {
    /// Empty facts for `format`.
    pub fn new(format: &'static str, endian: Endian) -> Self {
        DumpInfo {
            format,
            arch: None,
            endian,
            page_size: None,
            vmcoreinfo: None,
            cpus: Vec::new(),
            release: None,
            incomplete: false,
            remarks: Vec::new(),
        }
    }

    /// The kernel release: VMCOREINFO's OSRELEASE, else the header's.
    pub fn kernel_release(&self) -> Option<&str> {
        self.vmcoreinfo
            .as_ref()
            .and_then(|v| v.osrelease())
            .or(self.release.as_deref())
    }
}

/// A dump: physical memory plus the facts about it.
pub trait Dump: PhysRead + Send + Sync + core::fmt::Debug {
    /// Facts the dump states.
    fn info(&self) -> &DumpInfo;
    /// The physical ranges with content, sorted (`value` is
    /// format-specific, e.g. a file offset).
    fn ranges(&self) -> &[MapRange];
}

/// ELF magic.
const ELF_MAGIC: &[u8] = b"\x7fELF";
/// kdump-compressed signature.
const KDUMP_MAGIC: &[u8] = b"KDUMP   ";
/// makedumpfile's flattened-stream signature.
const FLAT_MAGIC: &[u8] = b"makedumpfile\0\0\0\0";
/// LiME header magic, little-endian 0x4C694D45.
const LIME_MAGIC: &[u8] = b"EMiL";

/// Opens a dump, choosing the format by its content.
///
/// Returns [`Error::Malformed`] naming the format when its header is
/// damaged, and [`Error::Unsupported`] when no known format matches.
pub fn open<R: ReadAt + Send + Sync + core::fmt::Debug + 'static>(r: R) -> Result<Box<dyn Dump>> {
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
        return Ok(Box::new(crate::lime::LimeDump::open(r)?));
    }
    if magic.starts_with(b"DISKDUMP") {
        return Err(Error::Unsupported("legacy diskdump files"));
    }
    Err(Error::Unsupported(
        "unknown dump format (not ELF, kdump, flattened kdump or LiME)",
    ))
}
