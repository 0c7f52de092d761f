//! The kernel's own compressed symbol table (kallsyms), decoded from
//! memory through any [`VirtRead`] (FORMATS.md §7.1).
//!
//! The tables are found by address: from VMCOREINFO `SYMBOL(kallsyms_*)`
//! lines on 6.x kernels ([`KallsymsTables::from_symbols`]), or, where those
//! are missing, by a checked search of a memory range ([`search`]).
//!
//! Every address encoding is handled ([`AddrEncoding`]): absolute,
//! base-relative, base-relative with absolute per-CPU symbols, and 7.0's
//! place-relative offsets; names with one-byte lengths (before 6.1) and
//! two-byte ULEB128 lengths (6.1+). The encoding is detected when not
//! given: the decoded addresses must be sorted (the kernel sorts them and
//! binary-searches them) and every symbol the caller knows (VMCOREINFO
//! `SYMBOL(_stext)` …) must decode to its known address.
//!
//! Bounds: the symbol count is capped ([`KallsymsOptions::max_syms`]),
//! every token index and token string is checked, decoded names are at
//! most [`KSYM_NAME_LEN`] bytes, reads go through a fixed-size window, and
//! memory is allocated only as symbols are actually decoded.
//!
//! The decoded table holds runtime addresses ([`crate::AddrSpace::Runtime`]):
//! the kernel's tables are relocated with the kernel, so the KASLR slide is
//! already in them. Per-CPU symbols of absolute-per-CPU kernels (x86-64
//! before 6.15) are offsets into each CPU's per-CPU area, type `A`.
//!
//! [`search`]: fn@search

// Names the module docs' [`VirtRead`] link.
#[cfg(doc)]
use kvm_core::VirtRead;

mod decode;
mod index;
mod read;
mod search;
mod types;

pub use decode::decode;
pub use index::NameIndex;
pub(crate) use search::read_range;
pub use search::{search, MAX_SEARCH_LEN};
pub use types::{
    AddrEncoding, Kallsyms, KallsymsOptions, KallsymsTables, NameLen, DEFAULT_MAX_SYMS,
    KSYM_NAME_LEN,
};
