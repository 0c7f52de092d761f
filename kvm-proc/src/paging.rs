//! The kernel's paging when no OS layer knows better: the page-table root
//! a CPU held when the dump was taken (QEMU's CPU-state notes carry CR3
//! and CR4), which maps the kernel whatever the OS.

use kvm_core::arch::x86_64::X86_64;
use kvm_core::{Arch, Error, Paging, PhysAddr, Result, SourceInfo};

/// A kernel's paging and where its root came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelPaging {
    /// The kernel's paging; also builds process address spaces
    /// ([`Paging::user`]). `None` when the source translates with a map
    /// of its own ([`kvm_core::Source::translator`]: a FreeBSD
    /// minidump's page-table array) and no root is known.
    pub paging: Option<Paging>,
    /// Where the root came from, or which translator serves (for `kvm
    /// info`).
    pub source: &'static str,
}

impl KernelPaging {
    /// Paging from a root.
    pub fn new(paging: Paging, source: &'static str) -> Self {
        KernelPaging {
            paging: Some(paging),
            source,
        }
    }

    /// The physical address of the kernel's top page table, if known.
    pub fn root(&self) -> Option<PhysAddr> {
        self.paging.map(|p| p.root())
    }
}

/// `CR4.LA57`: 5-level paging.
const CR4_LA57: u64 = 1 << 12;

/// The paging of the first CPU note with a non-zero CR3 (x86-64 QEMU
/// dumps), or the error saying why a source has none.
pub fn from_cpu_notes(info: &SourceInfo) -> Result<KernelPaging> {
    let cpu = info
        .cpus
        .iter()
        .find(|c| c.cr3.is_some_and(|c| c != 0))
        .filter(|_| info.arch == Some(Arch::X86_64));
    let Some((cr3, cr4)) = cpu.and_then(|c| Some((c.cr3?, c.cr4.unwrap_or(0)))) else {
        return Err(none_found(info));
    };
    let levels = if cr4 & CR4_LA57 != 0 { 5 } else { 4 };
    X86_64::new(PhysAddr(cr3), levels)
        .map(|t| KernelPaging::new(Paging::X86_64(t), "CR3 of QEMU's CPU note"))
}

/// Why a source has no paging when neither an OS layer nor a CPU note
/// gives one.
pub(crate) fn none_found(info: &SourceInfo) -> Error {
    match info.arch {
        Some(Arch::X86_64) => Error::Unsupported(
            "x86-64 dump without VMCOREINFO init_top_pgt/phys_base or a CR3 note",
        ),
        Some(Arch::Aarch64) => Error::Unsupported("arm64 dump without VMCOREINFO"),
        Some(_) => Error::Unsupported("no OS layer knows this kernel's page tables"),
        None => Error::Unsupported("the dump does not say which architecture it is"),
    }
}
