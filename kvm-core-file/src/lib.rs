//! Crash-dump files as physical memory.
//!
//! One source per format (ELF vmcore, kdump-compressed and its flattened
//! form, FreeBSD full dumps and minidumps, OpenBSD savecore dumps, LiME,
//! raw), each a [`kvm_core::PhysRead`] plus the facts needed to translate:
//! architecture, page size, physical ranges, VMCOREINFO, CPU registers and
//! so the kernel's page-table root. Writers produce the same formats.
//!
//! Parsers are `no_std` + `alloc` over byte slices or a positional reader;
//! the `std` feature opens files.
//!
//! Status: the formats are tracked in the dump issue; this crate exports
//! nothing yet.
#![no_std]
#![deny(unsafe_code)]
