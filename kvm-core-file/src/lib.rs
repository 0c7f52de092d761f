//! Crash-dump files as physical memory.
//!
//! One source per format, each a [`kvm_core::PhysRead`] plus the facts
//! needed to translate: architecture, page size, physical ranges,
//! VMCOREINFO, CPU registers and so the kernel's page-table root.
//!
//! ```text
//!  dump file ──ReadAt──► format parser (elf, kdump, …) ──► kvm_core::Source:
//!                                                            PhysRead + SourceInfo
//! ```
//!
//! Which OS wrote the dump, and so where its page tables are, is found
//! above this crate (kvm-proc's OS layers) from the facts a source states.
//!
//! Parsers are `no_std` + `alloc` over anything that implements [`ReadAt`]
//! (a byte slice, or with the `std` feature a file read with `pread`). The
//! format is detected from the content, never from the file name
//! ([`open`]). Every offset and count read from a file is checked before
//! use; bad input gives an [`Error`], never a panic or an allocation sized
//! by the file.
//!
//! Status: ELF cores (vmcore, QEMU dumps), kdump-compressed files (plain
//! and flattened, every compression), LiME, OpenBSD savecore files
//! ([`openbsd`], amd64 and i386: never checked against a dump OpenBSD
//! itself wrote) and VMCOREINFO are read; kdump files ([`write::kdump`],
//! feature `std`) and OpenBSD savecore files ([`write::openbsd`]) are
//! written; the other formats are tracked in the dump issue.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod codec;
mod detect;
pub mod elf;
mod elf_layout;
pub mod flat;
pub mod freebsd;
pub mod fuzz;
mod io;
pub mod kdump;
pub mod lime;
pub mod minidump;
#[cfg(feature = "std")]
pub mod mmap;
pub mod notes;
pub mod openbsd;
pub mod raw;
mod window;
pub mod write;

pub use detect::open;
pub use flat::FlatReader;
#[cfg(feature = "std")]
pub use io::FileReader;
pub use io::ReadAt;
pub use kdump::KdumpDump;
pub use kvm_core::{
    vmcoreinfo, Arch, CpuState, Error, OsHint, Result, Source, SourceInfo, VmCoreInfo,
};
pub use window::Window;
