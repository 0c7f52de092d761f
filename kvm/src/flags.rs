//! How a source is opened: read-only or read-write.

/// How a source is opened (`kvm_openfiles`' `flags`: `O_RDONLY`,
/// `O_RDWR`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OpenFlags {
    /// Reads only: [`Kvm::write`](crate::Kvm::write) is refused.
    #[default]
    ReadOnly,
    /// Reads and writes where the source allows them (live doors; dumps
    /// stay read-only).
    ReadWrite,
}
