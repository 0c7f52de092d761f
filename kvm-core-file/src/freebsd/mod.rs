//! FreeBSD kernel dumps (FORMATS.md §3): the dump-device layout around a
//! body ([`DeviceDump`]: a `struct kerneldumpheader` leader and trailer),
//! whose body is a minidump ([`crate::minidump`]) or a full dump (an ELF
//! core, [`crate::elf`], `EI_OSABI` 255).

pub mod dumpheader;

pub use crate::minidump::MinidumpDump;
pub use dumpheader::{DeviceDump, DumpMagic, KernelDumpHeader};
