//! Opening symbol files and BTF blobs from the file system (feature
//! `std`).

use crate::{Btf, SymbolTable};
use kvm_core::{Error, Result};
use std::path::Path;

fn io(e: std::io::Error) -> Error {
    Error::Io {
        errno: e.raw_os_error().unwrap_or(0),
    }
}

fn read(path: &Path) -> Result<std::vec::Vec<u8>> {
    std::fs::read(path).map_err(io)
}

/// A text symbol file larger than this is not one (a 6.x kernel's
/// `System.map` is about 5 MB, `/proc/kallsyms` about 12 MB).
const MAX_TEXT: u64 = 256 << 20;

/// Reads an ELF file's symbols from `file` where they are
/// ([`SymbolTable::from_elf_read`]: never the whole file).
fn elf_symbols(file: &std::fs::File) -> Result<SymbolTable> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().map_err(io)?.len();
    SymbolTable::from_elf_read(&mut |off, n| {
        if off.checked_add(n).is_none_or(|end| end > len) {
            return Err(Error::Malformed("ELF: section outside the file"));
        }
        let mut v = std::vec![0u8; n as usize];
        file.read_exact_at(&mut v, off).map_err(io)?;
        Ok(v)
    })
}

/// Whether `file` starts with the ELF magic.
fn is_elf(file: &std::fs::File) -> Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut magic = [0u8; 4];
    Ok(file.read_at(&mut magic, 0).map_err(io)? == 4 && &magic == b"\x7fELF")
}

/// The whole of a text symbol file, refused above [`MAX_TEXT`].
fn read_text(path: &Path, file: &std::fs::File) -> Result<std::vec::Vec<u8>> {
    if file.metadata().map_err(io)?.len() > MAX_TEXT {
        return Err(Error::Malformed(
            "not a symbol file: no ELF, and larger than 256 MiB for a text one",
        ));
    }
    read(path)
}

impl SymbolTable {
    /// Reads the symbols of an ELF kernel file ([`SymbolTable::from_elf`]),
    /// reading only its headers and symbol and string tables.
    pub fn open_elf(path: impl AsRef<Path>) -> Result<SymbolTable> {
        elf_symbols(&std::fs::File::open(path).map_err(io)?)
    }

    /// A kernel file as `-N` names it: an ELF vmlinux (read only where its
    /// symbol table is: about 10 MB of a 600 MB debug vmlinux, never its
    /// DWARF) or a `System.map` (link-time addresses, both).
    pub fn open_kernel_file(path: impl AsRef<Path>) -> Result<SymbolTable> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(io)?;
        if is_elf(&file)? {
            return elf_symbols(&file);
        }
        SymbolTable::from_system_map(&read_text(path, &file)?)
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
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(io)?;
        if is_elf(&file)? {
            return elf_symbols(&file);
        }
        let bytes = read_text(path, &file)?;
        SymbolTable::from_system_map(&bytes).or_else(|_| SymbolTable::from_proc_kallsyms(&bytes))
    }
}

impl Btf {
    /// Reads and parses a BTF file such as `/sys/kernel/btf/vmlinux`.
    pub fn open(path: impl AsRef<Path>) -> Result<Btf> {
        Btf::from_vec(read(path.as_ref())?)
    }
}
