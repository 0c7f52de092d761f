//! Kernel symbols and types: the `kvm_nlist` layer.
//!
//! Sits between the kernel address space (a [`kvm_core::VirtRead`]) and the
//! OS walkers in `kvm-proc`: it turns names into addresses and addresses
//! into names from an ELF kernel's `.symtab`, a `System.map`, the text of
//! `/proc/kallsyms`, or the kernel's own compressed kallsyms tables read out
//! of memory, and it reads BTF type information so that walkers take struct
//! member offsets from the kernel they look at.
//!
//! `no_std` + `alloc`; the `std` feature opens files.
//!
//! Status: the symbol sources and the BTF reader are tracked in the symbols
//! issue; this crate exports nothing yet.
#![no_std]
#![forbid(unsafe_code)]
