//! The types every part of the kallsyms reader shares: where the tables
//! are ([`KallsymsTables`]), how they encode addresses and name lengths,
//! what the decoder is told ([`KallsymsOptions`]) and what it returns
//! ([`Kallsyms`]).

use crate::symtab::SymbolTable;
use kvm_core::{Endian, VirtAddr};

/// Longest decoded symbol (type letter and name), in bytes: the kernel's
/// `KSYM_NAME_LEN` since 6.1 (128 before).
pub const KSYM_NAME_LEN: usize = 512;

/// Default cap on `kallsyms_num_syms` (4 Mi symbols; a 6.x distro kernel
/// has about 200 000).
pub const DEFAULT_MAX_SYMS: u32 = 1 << 22;

/// Where the kallsyms tables are (runtime virtual addresses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KallsymsTables {
    /// `kallsyms_num_syms`.
    pub num_syms: VirtAddr,
    /// `kallsyms_names`.
    pub names: VirtAddr,
    /// `kallsyms_markers` (optional: used to check the name stream and to
    /// choose the name-length encoding; VMCOREINFO does not give it).
    pub markers: Option<VirtAddr>,
    /// `kallsyms_token_table`.
    pub token_table: VirtAddr,
    /// `kallsyms_token_index`.
    pub token_index: VirtAddr,
    /// `kallsyms_addresses` (absolute kernels).
    pub addresses: Option<VirtAddr>,
    /// `kallsyms_offsets` (relative kernels).
    pub offsets: Option<VirtAddr>,
    /// `kallsyms_relative_base` (relative kernels before 7.0).
    pub relative_base: Option<VirtAddr>,
}

impl KallsymsTables {
    /// The tables from a symbol lookup such as VMCOREINFO's `SYMBOL(name)`
    /// (`|n| info.symbol(n)`). `None` unless `kallsyms_num_syms`,
    /// `kallsyms_names`, `kallsyms_token_table`, `kallsyms_token_index`
    /// and one of `kallsyms_offsets` / `kallsyms_addresses` are present.
    pub fn from_symbols(mut sym: impl FnMut(&str) -> Option<u64>) -> Option<Self> {
        let mut get = |n: &str| sym(n).map(VirtAddr);
        let t = KallsymsTables {
            num_syms: get("kallsyms_num_syms")?,
            names: get("kallsyms_names")?,
            markers: get("kallsyms_markers"),
            token_table: get("kallsyms_token_table")?,
            token_index: get("kallsyms_token_index")?,
            addresses: get("kallsyms_addresses"),
            offsets: get("kallsyms_offsets"),
            relative_base: get("kallsyms_relative_base"),
        };
        (t.addresses.is_some() || t.offsets.is_some()).then_some(t)
    }
}

/// How `kallsyms_addresses` / `kallsyms_offsets` encode addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrEncoding {
    /// `kallsyms_addresses[i]`, pointer-sized (no `KALLSYMS_BASE_RELATIVE`;
    /// gone in 6.11).
    Absolute,
    /// `relative_base + (u32)offsets[i]` (4.6 … 6.x).
    BaseRelative,
    /// `offsets[i] >= 0`: the absolute value `offsets[i]` (per-CPU
    /// symbols); else `relative_base - 1 - offsets[i]` (x86-64 SMP, 4.6 …
    /// 6.14).
    AbsolutePercpu,
    /// `&offsets[i] + offsets[i]`: relative to the table slot (7.0+).
    PlaceRelative,
}

/// How each name's length is stored in `kallsyms_names`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameLen {
    /// Try [`NameLen::TwoByte`], checked against `kallsyms_markers` when
    /// known, then [`NameLen::OneByte`].
    Auto,
    /// One byte (before 6.1).
    OneByte,
    /// One byte, or two (ULEB128) when its top bit is set (6.1+).
    TwoByte,
}

/// What the decoder needs to know about the kernel, and what it checks.
#[derive(Clone, Copy, Debug)]
pub struct KallsymsOptions<'a> {
    /// Byte order of the kernel.
    pub endian: Endian,
    /// Pointer size: 4 or 8.
    pub ptr_size: u8,
    /// The address encoding, or `None` to detect it.
    pub encoding: Option<AddrEncoding>,
    /// The name-length encoding.
    pub name_len: NameLen,
    /// Symbols whose addresses are known (VMCOREINFO `SYMBOL(_stext)` …):
    /// each must decode to its address, or the decoding is rejected.
    pub known: &'a [(&'a str, u64)],
    /// Largest accepted `kallsyms_num_syms`.
    pub max_syms: u32,
}

impl KallsymsOptions<'_> {
    /// Options for a kernel of this byte order and pointer size, detecting
    /// everything else, checking nothing known.
    pub fn new(endian: Endian, ptr_size: u8) -> Self {
        KallsymsOptions {
            endian,
            ptr_size,
            encoding: None,
            name_len: NameLen::Auto,
            known: &[],
            max_syms: DEFAULT_MAX_SYMS,
        }
    }

    /// Little-endian 64-bit (x86-64, arm64).
    pub fn le64() -> Self {
        Self::new(Endian::Little, 8)
    }
}

/// A decoded kallsyms table and how it was encoded.
#[derive(Clone, Debug)]
pub struct Kallsyms {
    /// The symbols (runtime addresses, no sizes).
    pub table: SymbolTable,
    /// The address encoding used.
    pub encoding: AddrEncoding,
    /// The name-length encoding used ([`NameLen::OneByte`] or
    /// [`NameLen::TwoByte`]).
    pub name_len: NameLen,
    /// Whether `kallsyms_markers` was read and agreed with the names.
    pub markers_checked: bool,
}
