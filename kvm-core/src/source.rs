//! The source contract: what every kernel memory source offers, whether a
//! crash dump (kvm-core-file), a live door such as `/proc/kcore` or
//! `/dev/mem`, or a running VM's RAM (kvm-dev).
//!
//! A source is physical memory ([`PhysRead`], and [`Source::phys_write`]
//! where the door allows writes) plus the facts it carries about the
//! machine ([`SourceInfo`]): architecture, page size, an OS hint,
//! VMCOREINFO, CPU states, whether it is live. A source may also read
//! kernel virtual addresses directly ([`Source::kernel_virt`]: the
//! `p_vaddr` segments of an ELF core, `/proc/kcore`) or own a translator
//! ([`Source::translator`]: a FreeBSD minidump's page-table array). Which
//! OS wrote the memory, and so where its page tables are, is found above
//! this contract by the OS layers (kvm-proc).

use crate::Arch;
use crate::{Endian, MapRange, PhysRead, PhysWrite, Translate, VirtRead, VmCoreInfo};
use alloc::string::String;
use alloc::vec::Vec;

/// The operating system a source says (or its format implies) it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OsHint {
    /// Linux (VMCOREINFO, a kdump header, `/proc/kcore`).
    Linux,
    /// FreeBSD (its ELF OSABI or minidump magic).
    FreeBsd,
    /// OpenBSD (its `kcore_hdr_t`).
    OpenBsd,
}

impl OsHint {
    /// The name `kvm info` prints (`uname -s`, lowercase).
    pub fn name(self) -> &'static str {
        match self {
            OsHint::Linux => "linux",
            OsHint::FreeBsd => "freebsd",
            OsHint::OpenBsd => "openbsd",
        }
    }
}

/// Registers of one CPU at the time of the dump.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuState {
    /// `pr_pid` of NT_PRSTATUS: the task running on the CPU (kdump), or
    /// the CPU number + 1 (QEMU).
    pub pid: u32,
    /// Program counter.
    pub pc: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Frame pointer (x86 `rbp`/`ebp`, arm64 `x29`), where the note has it.
    pub fp: Option<u64>,
    /// Every register of the note's `pr_reg`, in its order (x86-64's
    /// `user_regs_struct`: 27, r15 first; arm64: x0–x30, sp, pc, pstate;
    /// i386: 17, ebx first); empty when the source has no such note.
    pub regs: Vec<u64>,
    /// CR3 (x86, from QEMU's CPU-state note).
    pub cr3: Option<u64>,
    /// CR4 (x86, from QEMU's CPU-state note).
    pub cr4: Option<u64>,
}

/// Facts a source states about the machine beyond its memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    /// The format or door: `"elf"`, `"kdump"`, `"kdump-flattened"`,
    /// `"lime"`, `"raw"`, …
    pub format: &'static str,
    /// The architecture, when the source says (or VMCOREINFO implies) it.
    pub arch: Option<Arch>,
    /// Byte order of the machine.
    pub endian: Endian,
    /// Page size of the kernel.
    pub page_size: Option<u64>,
    /// The OS the format or its metadata names, if any (a hint: the OS
    /// layers decide).
    pub os: Option<OsHint>,
    /// The kernel's VMCOREINFO, when the source carries it.
    pub vmcoreinfo: Option<VmCoreInfo>,
    /// One entry per CPU note, in source order.
    pub cpus: Vec<CpuState>,
    /// The kernel release from a header (kdump), if any.
    pub release: Option<String>,
    /// The source says it was cut short.
    pub incomplete: bool,
    /// Live memory: it changes under the reader, so nothing read from it
    /// (translations, pages) may be cached.
    pub live: bool,
    /// Remarks about where facts came from (e.g. a header left empty by
    /// QEMU, so the architecture came from VMCOREINFO).
    pub remarks: Vec<String>,
}

impl SourceInfo {
    /// Empty facts for `format`.
    pub fn new(format: &'static str, endian: Endian) -> Self {
        SourceInfo {
            format,
            arch: None,
            endian,
            page_size: None,
            os: None,
            vmcoreinfo: None,
            cpus: Vec::new(),
            release: None,
            incomplete: false,
            live: false,
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

/// A kernel memory source: physical memory plus the facts about it.
///
/// Reads follow [`PhysRead`]'s contract (a short count at a hole or the end
/// of memory). Everything else has a default: read-only, no direct virtual
/// reads, no translator of its own.
pub trait Source: PhysRead + Send + Sync + core::fmt::Debug {
    /// Facts the source states.
    fn info(&self) -> &SourceInfo;

    /// The physical ranges with content, sorted (`value` is
    /// source-specific, e.g. a file offset).
    fn ranges(&self) -> &[MapRange];

    /// Physical writes, for the live doors that allow them; dumps are
    /// read-only (`None`).
    fn phys_write(&self) -> Option<&dyn PhysWrite> {
        None
    }

    /// Kernel virtual memory the source reads without page tables (an ELF
    /// core's `p_vaddr` segments, `/proc/kcore`), if it can.
    fn kernel_virt(&self) -> Option<&dyn VirtRead> {
        None
    }

    /// A translator the format owns (a FreeBSD minidump's page-table
    /// array), used instead of walking the kernel's page tables.
    fn translator(&self) -> Option<&dyn Translate> {
        None
    }
}

impl<S: Source + ?Sized> Source for alloc::boxed::Box<S> {
    fn info(&self) -> &SourceInfo {
        (**self).info()
    }
    fn ranges(&self) -> &[MapRange] {
        (**self).ranges()
    }
    fn phys_write(&self) -> Option<&dyn PhysWrite> {
        (**self).phys_write()
    }
    fn kernel_virt(&self) -> Option<&dyn VirtRead> {
        (**self).kernel_virt()
    }
    fn translator(&self) -> Option<&dyn Translate> {
        (**self).translator()
    }
}
