//! FreeBSD as an [`Os`]: taken when the source names FreeBSD (a minidump's
//! magic, a full dump's ELF OSABI); everything else comes from the kernel
//! file (`-N`).

use super::paging::kernel_paging;
use super::walker::Walker;
use crate::bsd::{self, KernelFile};
use crate::os::{Machine, Os, TypeInfo};
use crate::paging::KernelPaging;
use crate::{KernelSymbol, ModuleSymbol, Process, Strings};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Error, OsHint, Result, Source};
use kvm_elf::SymbolTable;

/// Takes a source that says it holds FreeBSD.
pub fn probe(source: &dyn Source) -> core::result::Result<Box<dyn Os>, &'static str> {
    match source.info().os {
        Some(OsHint::FreeBsd) => Ok(Box::new(FreeBsdOs::default())),
        Some(_) => Err("the source names another OS"),
        None => Err("the source does not say it is FreeBSD"),
    }
}

/// A FreeBSD kernel, read through its kernel file's symbols.
#[derive(Debug, Default)]
pub struct FreeBsdOs {
    file: KernelFile,
}

/// What the exported offsets do not reach.
const NO_ARGV: Error =
    Error::Unsupported("FreeBSD process arguments (the kernel exports no offsets to reach them)");

impl Os for FreeBsdOs {
    fn name(&self) -> &'static str {
        "freebsd"
    }

    fn kernel_paging(&self, source: &dyn Source) -> Result<KernelPaging> {
        kernel_paging(source, &self.file)
    }

    fn kaslr_offset(&self) -> Option<u64> {
        None
    }

    fn add_kernel_symbols(&mut self, table: SymbolTable) -> Result<()> {
        self.file.add(table)
    }

    fn symbol(&self, _: &Machine<'_>, name: &str) -> Result<Option<KernelSymbol>> {
        self.file.lookup(name)
    }

    fn symbols(&self, _: &Machine<'_>) -> Result<&SymbolTable> {
        self.file.table()
    }

    fn module_symbols(&self, _: &Machine<'_>) -> Result<&[ModuleSymbol]> {
        Err(Error::Unsupported(
            "FreeBSD kernel modules (linker files) are not read",
        ))
    }

    fn type_info(&self, _: &Machine<'_>, _: &str) -> Result<Option<TypeInfo>> {
        Err(Error::Unsupported(
            "FreeBSD type information (CTF) is not read",
        ))
    }

    fn processes(&self, m: &Machine<'_>) -> Result<Vec<Process>> {
        Walker::new(m, &self.file)?.processes()
    }

    fn argv(&self, _: &Machine<'_>, _: &Process) -> Result<Strings> {
        Ok(Strings::Unavailable(NO_ARGV))
    }

    fn envv(&self, _: &Machine<'_>, _: &Process) -> Result<Strings> {
        Ok(Strings::Unavailable(NO_ARGV))
    }

    fn loadavg(&self, m: &Machine<'_>) -> Result<[f64; 3]> {
        bsd::loadavg(m, &self.file)
    }

    fn release(&self, m: &Machine<'_>) -> Result<String> {
        bsd::release(m, &self.file)
    }
}
