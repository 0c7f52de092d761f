//! Live kernel memory: the doors to a running kernel.
//!
//! - [`kcore`]: `/proc/kcore` (Linux: kernel virtual addresses as an ELF
//!   core), the default live source;
//! - [`devmem`]: `/dev/mem` (physical memory, bounded by the "System RAM"
//!   ranges of `/proc/iomem`; CONFIG_STRICT_DEVMEM refusals made clear);
//! - [`ramfile`]: a file of physical memory: a running VM's shared RAM file
//!   (`-object memory-backend-file,share=on`), or a raw image (`pmemsave`);
//! - [`process`]: a running QEMU's guest RAM through `/proc/PID/mem`
//!   (`-M qemu:PID`).
//!
//! Each is a [`kvm_core::Source`]: physical reads, writes where the door
//! and the open mode allow them, `SourceInfo::live` set for running
//! memory so that nothing read is cached. Where the door carries no
//! metadata the kernel's VMCOREINFO is found in the memory itself
//! ([`kvm_core::discover`]).
#![forbid(unsafe_code)]

mod amended;
pub mod devmem;
pub mod fuzz;
pub mod iomem;
pub mod kcore;
pub mod mapped;
pub mod pause;
pub mod process;
pub mod qemu;
pub mod ramfile;

pub use amended::Amended;

use kvm_core::discover::Found;
use kvm_core::{Arch, PhysAddr, PhysRead};
use std::path::{Path, PathBuf};

/// Why a door could not be opened: the file concerned and the reason.
#[derive(Debug)]
pub enum DoorError {
    /// An I/O error (its message may be ours, naming the cause).
    Io(PathBuf, std::io::Error),
    /// A format or memory error.
    Core(PathBuf, kvm_core::Error),
}

impl DoorError {
    /// An I/O error of `kind` with our `message`.
    pub(crate) fn io(path: &Path, kind: std::io::ErrorKind, message: &str) -> DoorError {
        DoorError::Io(
            path.to_path_buf(),
            std::io::Error::new(kind, message.to_owned()),
        )
    }
}

impl std::fmt::Display for DoorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DoorError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            DoorError::Core(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for DoorError {}

/// The QEMU process behind the door `core`: `qemu:PID`, or the QEMU that
/// maps the RAM file `core` (for [`pause::Paused`]).
pub fn qemu_pid_of(core: &Path) -> Option<u32> {
    process::door_pid(core).or_else(|| ramfile::qemu_mapper(core))
}

/// The architecture this program runs on: a live door's machine.
pub fn host_arch() -> Arch {
    if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else if cfg!(target_arch = "x86") {
        Arch::I386
    } else {
        Arch::X86_64
    }
}

/// The running kernel's VMCOREINFO note, read through `mem` at the
/// physical address `/sys/kernel/vmcoreinfo` gives ("<hex address> <hex
/// size>", `kernel/ksysfs.c`), or why not.
pub(crate) fn sysfs_vmcoreinfo(mem: &dyn PhysRead) -> Result<Found, String> {
    let p = "/sys/kernel/vmcoreinfo";
    let text = std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?;
    let pa = text
        .split_whitespace()
        .next()
        .and_then(|a| u64::from_str_radix(a, 16).ok())
        .ok_or_else(|| format!("{p}: {text:?} does not parse"))?;
    let mut b = [0u8; 1];
    if let Err(e) = mem.read_phys(PhysAddr(pa), &mut b) {
        return Err(format!("the note at {pa:#x} ({p}) cannot be read: {e}"));
    }
    kvm_core::discover::at(mem, PhysAddr(pa))
        .ok_or_else(|| format!("no VMCOREINFO note at {pa:#x}, where {p} points"))
}
