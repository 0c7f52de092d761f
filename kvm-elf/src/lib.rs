//! Kernel symbols and types: the `kvm_nlist` layer.
//!
//! Sits between the kernel address space (a [`kvm_core::VirtRead`]) and the
//! OS walkers in `kvm-proc`: it turns names into addresses and addresses
//! into names, and reads BTF type information so that walkers take struct
//! member offsets from the kernel they look at.
//!
//! ```text
//!  ELF kernel file ─┐   (.symtab/.dynsym, goblin)        link-time ─┐
//!  System.map ──────┤                                               ├─ relocate(KERNELOFFSET) ─┐
//!  /proc/kallsyms ──┤                                    runtime ───┤                          ├─► SymbolTable
//!  kallsyms in memory (VirtRead + table addresses) ─────  runtime ───┘                          │   name → addr
//!                                                                                               │   addr → nearest
//!  BTF (__start_BTF..__stop_BTF, /sys/kernel/btf/vmlinux) ─► Btf: member offsets, sizes, enums ──┘
//! ```
//!
//! - [`SymbolTable`]: one interface for every source; hashed name lookups
//!   and a sorted address index; the KASLR state of its addresses
//!   ([`AddrSpace`]) so the slide is applied exactly once.
//! - [`kallsyms`]: the kernel's compressed tables decoded from memory,
//!   every address encoding, with a checked search for kernels whose
//!   VMCOREINFO does not name the tables; and [`kallsyms::NameIndex`],
//!   by-name lookups through `kallsyms_seqs_of_names` that decode about
//!   17 names instead of all of them.
//! - [`btf`]: the BPF Type Format, all kinds; member lookup by path,
//!   sizes, enum values; [`LazyBtf`] reads a blob from memory only as far
//!   as its lookups need.
//! - [`fuzz`]: entry points of the fuzz targets.
//! - `write` (feature `builder`): encoders for synthetic kallsyms tables and
//!   BTF blobs (tests, benchmarks).
//!
//! `no_std` + `alloc`; the `std` feature opens files. Every input is
//! untrusted: bad data is an `Err`, never a panic, a hang or an unbounded
//! allocation.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod btf;
mod elf;
pub mod fuzz;
pub mod kallsyms;
#[cfg(feature = "std")]
mod open;
mod symtab;
mod text;
#[cfg(feature = "builder")]
pub mod write;

pub use btf::{Btf, LazyBtf, TypeId};
pub use symtab::{
    AddrSpace, Nearest, Symbol, SymbolTable, SymbolTableBuilder, MAX_NAME_LEN, MAX_SYMBOLS,
};
