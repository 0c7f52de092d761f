//! The `no_std` core of kvm: addresses, the error type, the memory traits and
//! the page-table walkers.
//!
//! Everything above this crate reads kernel memory through the traits defined
//! here, so a kernel debugger or firmware that cannot link `std` can bring its
//! own physical-memory reader and still use the translators and, above them,
//! the dump parsers and process walkers.
//!
//! ```text
//!  live: /proc/kcore, /dev/mem          dump: ELF vmcore, kdump, FreeBSD, OpenBSD, LiME
//!           │                                      │
//!           ▼                                      ▼
//!   PhysRead (+ PhysWrite)  ◄──── one source per format (kvm-dev, kvm-core-file)
//!           │
//!           ▼
//!   Translate: x86-64 4/5-level, i386 PAE/non-PAE, arm64 4K/16K/64K  (this crate)
//!           │
//!           ▼
//!   VirtRead = Translated<PhysRead, Translate>: the kernel address space
//!           │
//!           ▼
//!   symbols (kvm-elf) → OS walkers (kvm-proc) → facade and CLI (kvm)
//! ```
//!
//! Contracts (see each trait): reads take `&self` (sources are positional
//! I/O); a read that stops early returns the count read so far and fails only
//! when not even the first byte is readable; the `*_exact` helpers turn a
//! short read into an error. Every error is a small `Copy` value, [`Error`],
//! naming what failed and where. Bad input never panics.
//!
//! Features: `alloc` adds heap-backed helpers ([`RangeMap`],
//! [`SparseMem`]) and the source contract ([`Source`], [`SourceInfo`],
//! [`VmCoreInfo`]); `builder` adds page-table builders used by tests,
//! benchmarks and synthetic dumps.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

mod addr;
pub mod arch;
mod cache;
#[cfg(feature = "alloc")]
pub mod discover;
mod error;
pub mod fuzz;
mod mem;
mod range;
#[cfg(feature = "alloc")]
pub mod source;
mod translate;
#[cfg(feature = "alloc")]
pub mod vmcoreinfo;

pub use addr::{PhysAddr, VirtAddr};
pub use arch::{Arch, Paging};
pub use cache::CachedTranslate;
pub use error::{Error, Result};
#[cfg(feature = "alloc")]
pub use mem::SparseMem;
pub use mem::{
    Endian, PhysRead, PhysReadExt, PhysWrite, SliceMem, VirtRead, VirtReadExt, VirtWrite,
};
pub use range::MapRange;
#[cfg(feature = "alloc")]
pub use range::RangeMap;
#[cfg(feature = "alloc")]
pub use source::{CpuState, OsHint, Source, SourceInfo};
pub use translate::{PageRun, Prot, Translate, Translated, Translation};
#[cfg(feature = "alloc")]
pub use vmcoreinfo::VmCoreInfo;
