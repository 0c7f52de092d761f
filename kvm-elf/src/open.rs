//! Opening symbol files and BTF blobs from the file system (feature
//! `std`).

use crate::{Btf, SymbolTable};
use kvm_core::{Error, Result};
use std::path::Path;

fn read(path: &Path) -> Result<std::vec::Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io {
        errno: e.raw_os_error().unwrap_or(0),
    })
}

impl SymbolTable {
    /// Reads the symbols of an ELF kernel file ([`SymbolTable::from_elf`]).
    pub fn open_elf(path: impl AsRef<Path>) -> Result<SymbolTable> {
        SymbolTable::from_elf(&read(path.as_ref())?)
    }

    /// Reads a `System.map` ([`SymbolTable::from_system_map`]).
    pub fn open_system_map(path: impl AsRef<Path>) -> Result<SymbolTable> {
        SymbolTable::from_system_map(&read(path.as_ref())?)
    }

    /// Reads `/proc/kallsyms` or a copy of it
    /// ([`SymbolTable::from_proc_kallsyms`]).
    pub fn open_proc_kallsyms(path: impl AsRef<Path>) -> Result<SymbolTable> {
        SymbolTable::from_proc_kallsyms(&read(path.as_ref())?)
    }

    /// Reads a kernel symbol file of any supported kind: ELF by its magic,
    /// otherwise `System.map`, otherwise `/proc/kallsyms` text (which may
    /// name modules).
    pub fn open(path: impl AsRef<Path>) -> Result<SymbolTable> {
        let bytes = read(path.as_ref())?;
        if bytes.starts_with(b"\x7fELF") {
            return SymbolTable::from_elf(&bytes);
        }
        SymbolTable::from_system_map(&bytes).or_else(|_| SymbolTable::from_proc_kallsyms(&bytes))
    }
}

impl Btf {
    /// Reads and parses a BTF file such as `/sys/kernel/btf/vmlinux`.
    pub fn open(path: impl AsRef<Path>) -> Result<Btf> {
        Btf::from_vec(read(path.as_ref())?)
    }
}
