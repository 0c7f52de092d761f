//! The registers a FreeBSD `struct pcb` holds: what `savectx` stored
//! when the thread was switched out or the kernel dumped.

use crate::os::Machine;
use crate::Registers;
use alloc::vec::Vec;
use kvm_core::{Arch, Result, VirtAddr, VirtReadExt};

/// amd64 `struct pcb` begins with the callee-saved registers, the stack
/// and the return address (sys/amd64/include/pcb.h: `pcb_r15`, `pcb_r14`,
/// `pcb_r13`, `pcb_r12`, `pcb_rbp`, `pcb_rsp`, `pcb_rbx`, `pcb_rip`).
const AMD64: [&str; 8] = ["r15", "r14", "r13", "r12", "rbp", "rsp", "rbx", "rip"];

/// arm64 until FreeBSD 14 (sys/arm64/include/pcb.h in stable/13):
/// `pcb_x[30]` (x0–x29), `pcb_lr`, a reserved word, `pcb_sp`. The saved
/// lr is where the thread resumes, so it is the frame's pc, as debuggers
/// show it.
const ARM64_13: [&str; 34] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
    "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
    "x28", "fp", "pc", "", "sp", "",
];

/// arm64 from FreeBSD 14 (`__FreeBSD_version` 1400084): only the
/// callee-saved `pcb_x[12]` (x19–x30) and `pcb_sp`.
const ARM64_14: [&str; 13] = [
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "fp", "pc", "sp",
];

/// The first `osreldate` with the FreeBSD 14 arm64 layout.
const ARM64_14_OSRELDATE: i32 = 1_400_084;

/// The registers of the pcb at `pcb` on `arch`; `osreldate` chooses the
/// arm64 layout (absent: the FreeBSD 13 one, which kernels without the
/// variable in their symbol table have). `None` on architectures whose
/// layout is not known here.
pub fn registers(m: &Machine<'_>, pcb: u64, osreldate: Option<i32>) -> Result<Option<Registers>> {
    let names: &[&str] = match m.arch() {
        Some(Arch::X86_64) => &AMD64,
        Some(Arch::Aarch64) if osreldate.is_some_and(|v| v >= ARM64_14_OSRELDATE) => &ARM64_14,
        Some(Arch::Aarch64) => &ARM64_13,
        _ => return Ok(None),
    };
    let mut out = Vec::with_capacity(names.len());
    let mut words = [0u8; 8 * 34];
    let words = &mut words[..8 * names.len()];
    m.read_virt_exact(VirtAddr(pcb), words)?;
    for (name, w) in names.iter().zip(words.chunks_exact(8)) {
        if !name.is_empty() {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            out.push((*name, u64::from_le_bytes(b)));
        }
    }
    Ok(Some(out))
}
