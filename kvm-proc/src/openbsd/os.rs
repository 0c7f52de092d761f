//! OpenBSD as an [`Os`].

use crate::bsd::{self, KernelFile};
use crate::os::{Machine, Os, TypeInfo};
use crate::paging::KernelPaging;
use crate::{KernelSymbol, ModuleSymbol, Process, Strings};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Error, OsHint, Result, Source};
use kvm_elf::SymbolTable;

/// Takes a source that says it holds OpenBSD.
pub fn probe(source: &dyn Source) -> core::result::Result<Box<dyn Os>, &'static str> {
    match source.info().os {
        Some(OsHint::OpenBsd) => Ok(Box::new(OpenBsdOs::default())),
        Some(_) => Err("the source names another OS"),
        None => Err("the source does not say it is OpenBSD"),
    }
}

/// An OpenBSD kernel, read through its kernel file's symbols.
#[derive(Debug, Default)]
pub struct OpenBsdOs {
    file: KernelFile,
}

/// Why there is no process list.
const NO_PROCS: Error = Error::Unsupported(
    "OpenBSD process lists (they need the kernel's structure layouts from its CTF, which kvm does not read)",
);

impl Os for OpenBsdOs {
    fn name(&self) -> &'static str {
        "openbsd"
    }

    fn kernel_paging(&self, source: &dyn Source) -> Result<KernelPaging> {
        match source.translator() {
            Some(_) => Ok(KernelPaging {
                paging: None,
                source: "the kcore's CPU header (ptdpaddr)",
            }),
            None => Err(Error::Unsupported(
                "an OpenBSD source without the kcore CPU header",
            )),
        }
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
        Err(Error::Unsupported("OpenBSD has no loadable kernel modules"))
    }

    fn type_info(&self, _: &Machine<'_>, _: &str) -> Result<Option<TypeInfo>> {
        Err(Error::Unsupported(
            "OpenBSD type information (CTF) is not read",
        ))
    }

    fn processes(&self, _: &Machine<'_>) -> Result<Vec<Process>> {
        Err(NO_PROCS)
    }

    fn argv(&self, _: &Machine<'_>, _: &Process) -> Result<Strings> {
        Err(NO_PROCS)
    }

    fn envv(&self, _: &Machine<'_>, _: &Process) -> Result<Strings> {
        Err(NO_PROCS)
    }

    fn loadavg(&self, m: &Machine<'_>) -> Result<[f64; 3]> {
        bsd::loadavg(m, &self.file)
    }

    fn release(&self, m: &Machine<'_>) -> Result<String> {
        bsd::release(m, &self.file)
    }
}
