//! The kernel file's symbols (`-N`): a BSD dump carries none of its own.

use kvm_core::{Error, Result};
use kvm_elf::SymbolTable;

use crate::KernelSymbol;

/// Why a symbol lookup cannot be made: no kernel file was given.
const NO_KERNEL_FILE: Error =
    Error::Unsupported("BSD dumps carry no symbol table: give the kernel file with -N");

/// The kernel file's symbol table, once given.
#[derive(Debug, Default)]
pub struct KernelFile(Option<SymbolTable>);

impl KernelFile {
    /// Takes the table (once: the first lookup may already have used the
    /// previous one).
    pub fn add(&mut self, table: SymbolTable) -> Result<()> {
        if self.0.is_some() {
            return Err(Error::Unsupported("a kernel file was given already"));
        }
        self.0 = Some(table);
        Ok(())
    }

    /// The whole table, or the error saying to give one.
    pub fn table(&self) -> Result<&SymbolTable> {
        self.0.as_ref().ok_or(NO_KERNEL_FILE)
    }

    /// `name`'s address; `None` when the file lacks it.
    pub fn get(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.lookup(name)?.map(|s| s.addr))
    }

    /// `name`'s address and type letter.
    pub fn lookup(&self, name: &str) -> Result<Option<KernelSymbol>> {
        Ok(self.table()?.lookup(name).map(|s| KernelSymbol {
            addr: s.addr.0,
            kind: s.kind,
        }))
    }

    /// `name`'s address, or [`Error::Unsupported`]`(why)` when the file
    /// lacks it.
    pub fn need(&self, name: &str, why: &'static str) -> Result<u64> {
        self.get(name)?.ok_or(Error::Unsupported(why))
    }
}
