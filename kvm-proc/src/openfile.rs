//! An open file of a process, as `/proc/PID/fd` and `/proc/PID/fdinfo`
//! show it (`kvm_getfiles`).

use alloc::vec::Vec;

/// One descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenFile {
    /// The descriptor.
    pub fd: u32,
    /// The path `/proc/PID/fd/N` links to: `/tmp/x`, `pipe:[1234]`,
    /// `socket:[5678]`, `anon_inode:[eventfd]`, `/tmp/y (deleted)`.
    pub path: Vec<u8>,
    /// The open flags as fdinfo prints them (octal there), `O_CLOEXEC`
    /// included when the descriptor has it.
    pub flags: u32,
    /// The file position.
    pub pos: i64,
    /// What the inode is: `file`, `dir`, `char`, `block`, `fifo`,
    /// `socket`, `link`, `anon_inode`, `unknown`.
    pub kind: &'static str,
    /// The inode's mode (`S_IFMT` type and permission bits).
    pub mode: u16,
    /// The inode's number.
    pub inode: u64,
    /// The kernel's `struct file` address (for debugging).
    pub file: u64,
}
