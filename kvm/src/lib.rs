//! kvm(3) for Rust: one interface to kernel memory, live or from a crash
//! dump.
//!
//! The facade over the whole pipeline: open a dump (format, architecture
//! and kernel paging found from its content), then read kernel virtual or
//! physical memory, as BSD's libkvm offers it; errors carry the file name
//! and the reason, and the last one is kept for [`Kvm::geterr`]. The `kvm`
//! command-line tool is a binary of this crate behind the `cli` feature.
//!
//! ```no_run
//! let kd = kvm::Kvm::open_dump("vmcore")?;
//! let mut banner = [0u8; 64];
//! let n = kd.read(0xffff_ffff_8200_0100, &mut banner)?;
//! println!("{} bytes", n);
//! # Ok::<(), kvm::Error>(())
//! ```
//!
//! Status: dumps (ELF cores, LiME) and kernel reads work; symbols,
//! processes and live systems are tracked in their issues.
#![forbid(unsafe_code)]

mod error;
mod linux;
mod open;
pub mod record;

pub use error::Error;
pub use kvm_core as core;
pub use kvm_core_file as file;
pub use kvm_proc::{Process, Thread};
pub use open::{Info, Kvm, ProcOp};
