//! What `kvm info` prints: facts about an open source.

/// Facts about the open source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The dump format (`elf`, `kdump`, `kdump-flattened`, `lime`, …).
    pub format: &'static str,
    /// `uname -m` of the dumped machine, if known.
    pub arch: Option<&'static str>,
    /// The operating system, when an OS layer recognised it (`linux`).
    pub os: Option<&'static str>,
    /// The kernel release.
    pub release: Option<String>,
    /// The kernel's page size.
    pub page_size: Option<u64>,
    /// The KASLR slide of the kernel image.
    pub kaslr_offset: Option<u64>,
    /// Physical address of the kernel's top page table.
    pub root: Option<u64>,
    /// Where the root came from, or why there is none.
    pub paging: String,
    /// Number of physical ranges and their total size in bytes.
    pub ranges: (usize, u64),
    /// Whether the dump says it is incomplete.
    pub incomplete: bool,
    /// Remarks on where facts came from.
    pub remarks: Vec<String>,
}
