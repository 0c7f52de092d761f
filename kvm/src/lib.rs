//! kvm(3) for Rust: one interface to kernel memory, live or from a crash
//! dump.
//!
//! The facade over the whole pipeline: open a source (a dump's format and
//! architecture found from its content, its OS by kvm-proc's probe, the
//! kernel's paging by that OS), then read kernel virtual or physical
//! memory, look symbols up and list processes, as BSD's libkvm offers it;
//! errors carry the file name and the reason, and the last one is kept for
//! [`Kvm::geterr`]. The `kvm` command-line tool is a binary of this crate
//! behind the `cli` feature.
//!
//! ```
//! use kvm::{Kvm, ProcOp};
//! # let core = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/amd64-kaslr/vmcore.kdump.xz");
//! // A real Linux 6.1 dump (cut down); no vmlinux needed.
//! let kd = Kvm::open_dump(core)?;
//! let banner = kd.nlist(&["linux_banner"])?[0].expect("in kallsyms");
//! let mut text = [0u8; 13];
//! kd.read(banner, &mut text)?;
//! assert_eq!(&text, b"Linux version");
//! for p in kd.getprocs(ProcOp::Uid(1000))? {
//!     println!("{} {} {:?}", p.pid, p.comm, kd.getargv(&p)?);
//! }
//! let load = kd.getloadavg()?;
//! assert!(load[0] > 0.0);
//! # Ok::<(), kvm::Error>(())
//! ```
//!
//! Status: Linux dumps (ELF cores, kdump-compressed, LiME) work, on
//! x86-64 and arm64; live systems (kvm-dev) and the BSD dump formats are
//! tracked in their issues.
#![deny(unsafe_code)]

#[cfg(feature = "capi")]
pub mod capi;
pub mod convert;
mod error;
mod flags;
pub mod fuzz;
mod handle;
mod info;
mod kcore;
mod open;
mod output;
mod procs;
pub mod record;
mod space;
mod xz;

pub use error::Error;
pub use flags::OpenFlags;
pub use handle::Kvm;
pub use info::Info;
pub use kvm_core as core;
pub use kvm_core_file as file;
pub use kvm_proc::{
    Backtrace, Frame, KernelLog, KernelSymbol, LogRecord, Mapping, Module, ModuleSymbol, OnCpu,
    OpenFile, PanicInfo, Process, Registers, StackEnd, Thread,
};
pub use procs::ProcOp;
