//! kvm(3) for Rust: one interface to kernel memory, live or from a crash
//! dump.
//!
//! The facade over the whole pipeline: open a live system or a dump (format,
//! architecture and OS detected from the content), then `read`, `write`
//! (live only), `nlist`, `getprocs`, `getargv`, `getenvv`, `getloadavg` and
//! `geterr`, as BSD's libkvm offers them. The `kvm` command-line tool is a
//! binary of this crate behind the `cli` feature.
//!
//! Status: today this crate re-exports the core layer ([`kvm_core`]); the
//! facade calls are tracked in the processes issue.
#![forbid(unsafe_code)]

pub use kvm_core as core;
