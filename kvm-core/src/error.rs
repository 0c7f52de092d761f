//! The one error type of the core layers.

use core::fmt;

/// What went wrong, and at which address.
///
/// Small and `Copy` so that `no_std` code can return it without allocating;
/// the `kvm` facade wraps it with file names and I/O errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The physical address is not in the memory source (a hole, or beyond
    /// the end of memory).
    NotInMemory {
        /// The physical address.
        pa: u64,
    },
    /// The page exists in the machine but the dump left it out (a filtered
    /// kdump: `makedumpfile -d`).
    Excluded {
        /// The physical address.
        pa: u64,
    },
    /// The virtual address has no valid translation (a not-present entry).
    Unmapped {
        /// The virtual address.
        va: u64,
    },
    /// The virtual address is outside the architecture's address space
    /// (not canonical on x86-64, outside the translated half on arm64, above
    /// 4 GiB on i386).
    NonCanonical {
        /// The virtual address.
        va: u64,
    },
    /// A page-table entry is invalid for its level: a large page where the
    /// architecture forbids one, reserved bits set, a misaligned output
    /// address.
    BadEntry {
        /// The virtual address being translated.
        va: u64,
        /// The page-table level of the entry (1 = last level).
        level: u8,
        /// The raw entry.
        entry: u64,
    },
    /// A page-table page could not be read (not in the dump, excluded).
    TableNotReadable {
        /// The virtual address being translated.
        va: u64,
        /// The physical address of the table entry.
        pa: u64,
    },
    /// The data is malformed; the text says what was expected.
    Malformed(&'static str),
    /// A value is valid but this implementation does not handle it.
    Unsupported(&'static str),
    /// A write was attempted on a read-only source (a dump).
    ReadOnly,
    /// The system refused the access (a live door's policy: `/dev/mem`
    /// under CONFIG_STRICT_DEVMEM, lockdown); the text says which and what
    /// to use instead.
    Denied(&'static str),
    /// An operating-system I/O error (`errno`), from a std-based source.
    Io {
        /// The `errno` value, or 0 when unknown.
        errno: i32,
    },
}

/// `core::result::Result` with [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::NotInMemory { pa } => write!(f, "physical address {pa:#x} is not in memory"),
            Error::Excluded { pa } => {
                write!(f, "physical address {pa:#x} was excluded from the dump")
            }
            Error::Unmapped { va } => write!(f, "virtual address {va:#x} is not mapped"),
            Error::NonCanonical { va } => {
                write!(f, "virtual address {va:#x} is outside the address space")
            }
            Error::BadEntry { va, level, entry } => write!(
                f,
                "invalid page-table entry {entry:#x} at level {level} translating {va:#x}"
            ),
            Error::TableNotReadable { va, pa } => write!(
                f,
                "page table at physical address {pa:#x} (translating {va:#x}) is not readable"
            ),
            Error::Malformed(what) => write!(f, "malformed data: {what}"),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
            Error::ReadOnly => f.write_str(
                "the source is read-only (a dump is never written; writes go to live memory opened for writing)",
            ),
            Error::Denied(what) => write!(f, "access denied: {what}"),
            Error::Io { errno } => write!(f, "I/O error (errno {errno})"),
        }
    }
}

impl core::error::Error for Error {}
