//! Process walkers: Linux tasks, FreeBSD `allproc`, OpenBSD `allprocess`.
//!
//! Written against a kernel address space ([`kvm_core::VirtRead`]) and a
//! symbol and type lookup from `kvm-elf`, never against a file format:
//! processes, threads, argv and environment (read through each process's
//! own page tables), and the load average.
//!
//! `no_std` + `alloc`.
//!
//! Status: tracked in the processes issue; this crate exports nothing yet.
#![no_std]
#![forbid(unsafe_code)]
