//! The Linux kernel's symbols: its own kallsyms in memory (searched by
//! name through their sequence index, decoded whole only when a listing
//! needs them), the kernel file's (`-N`), and VMCOREINFO's.

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::OnceCell;
use kvm_core::{Error, Result, VirtAddr, VirtRead, VmCoreInfo};
use kvm_elf::kallsyms::{self, KallsymsOptions, KallsymsTables, NameIndex};
use kvm_elf::SymbolTable;

use crate::KernelSymbol;

/// The kernel's symbols, in lookup order.
#[derive(Debug)]
pub(super) struct KernelSymbols {
    /// Where the kernel's kallsyms tables are (VMCOREINFO, 6.0+).
    tables: Option<KallsymsTables>,
    /// By-name lookups without decoding (kernels with
    /// `kallsyms_seqs_of_names`).
    index: Option<NameIndex>,
    /// Symbols of the kernel file given with `-N` (System.map or vmlinux),
    /// relocated by the dump's KASLR offset: used for names the kernel's
    /// own kallsyms lacks (data symbols on arm64).
    extra: Option<SymbolTable>,
    /// The whole table (kallsyms in memory, runtime addresses; the `-N`
    /// file's before 6.0), decoded on first need.
    all: OnceCell<Result<SymbolTable>>,
    /// Symbols VMCOREINFO gives, which every kallsyms decoding must agree
    /// with.
    known: Vec<(&'static str, u64)>,
}

impl KernelSymbols {
    /// Finds the kernel's kallsyms from VMCOREINFO (the `-N` file's
    /// symbols, `extra`, for kernels before 6.0), with the by-name index
    /// where the kernel has one.
    pub fn new(mem: &dyn VirtRead, vi: &VmCoreInfo, extra: Option<SymbolTable>) -> Result<Self> {
        let extra = match extra {
            Some(t) => Some(matching(t.relocated(vi.kernel_offset().unwrap_or(0))?, vi)?),
            None => None,
        };
        let tables = KallsymsTables::from_symbols(|n| vi.symbol(n));
        let mut syms = KernelSymbols {
            tables,
            index: None,
            extra,
            all: OnceCell::new(),
            known: vi
                .symbol("_stext")
                .map(|a| ("_stext", a))
                .into_iter()
                .collect(),
        };
        // Kernels before 6.2 (without the backport) have no sequence
        // index: their table is decoded whole, on first lookup.
        syms.index = tables.and_then(|t| NameIndex::new(mem, &t, &syms.options()).ok());
        Ok(syms)
    }

    /// How the kernel's kallsyms are decoded (x86-64 and arm64), checked
    /// against what VMCOREINFO knows.
    fn options(&self) -> KallsymsOptions<'_> {
        let mut o = KallsymsOptions::le64();
        o.known = &self.known;
        o
    }

    /// The kernel's whole symbol table, decoded on first call.
    pub fn all(&self, mem: &dyn VirtRead) -> Result<&SymbolTable> {
        let all = self.all.get_or_init(|| match &self.tables {
            Some(t) => kallsyms::decode(mem, t, &self.options()).map(|k| k.table),
            // Kernels before 6.0 do not say where their kallsyms are; the
            // kernel file's symbols then serve alone.
            None => self.extra.clone().ok_or(Error::Unsupported(
                "VMCOREINFO lacks the kallsyms_* symbols (kernels before 6.0): give the kernel's System.map with -N",
            )),
        });
        all.as_ref().map_err(|e| *e)
    }

    /// `name` in the kernel's own kallsyms, by the index where there is
    /// one.
    pub fn kallsyms(&self, mem: &dyn VirtRead, name: &str) -> Option<KernelSymbol> {
        if let Some(idx) = &self.index {
            match idx.lookup(mem, name) {
                Ok(Some((a, kind))) => return Some(KernelSymbol { addr: a.0, kind }),
                // Clang-LTO kernels sort names without their `.suffix`: a
                // name with a '.' of its own may sit elsewhere.
                Ok(None) if !name.contains('.') => return None,
                _ => {}
            }
        }
        found(self.all(mem).ok()?, name)
    }

    /// The kernel symbol at or nearest below `addr` (the first of those
    /// at one address, as the kernel's `kallsyms_lookup`): name, address,
    /// type letter. Through the index where there is one (a binary
    /// search), else the decoded table.
    pub fn nearest(&self, mem: &dyn VirtRead, addr: u64) -> Option<(String, u64, u8)> {
        if let Some(idx) = &self.index {
            if let Ok(found) = idx.nearest(mem, addr) {
                return found.map(|(n, a, k)| (n, a.0, k));
            }
        }
        let n = self.all(mem).ok()?.nearest_first(VirtAddr(addr))?;
        Some((n.symbol.name.into(), n.symbol.addr.0, n.symbol.kind))
    }

    /// `name`: the kernel's kallsyms, then the `-N` file, then VMCOREINFO
    /// (which gives no type: `?`).
    pub fn lookup(&self, mem: &dyn VirtRead, vi: &VmCoreInfo, name: &str) -> Option<KernelSymbol> {
        self.kallsyms(mem, name)
            .or_else(|| found(self.extra.as_ref()?, name))
            .or_else(|| {
                vi.symbol(name)
                    .map(|addr| KernelSymbol { addr, kind: b'?' })
            })
    }
}

/// `table` (the `-N` file's, relocated) if it is this kernel's: every
/// symbol VMCOREINFO names that it also has must be at the same address
/// (another build's System.map would give wrong answers, silently).
fn matching(table: SymbolTable, vi: &VmCoreInfo) -> Result<SymbolTable> {
    for (key, value) in vi.entries() {
        let Some(name) = key
            .strip_prefix("SYMBOL(")
            .and_then(|k| k.strip_suffix(')'))
        else {
            continue;
        };
        // With SPARSEMEM_EXTREME, VMCOREINFO gives mem_section's value
        // (a pointer to the root array), not its address.
        if name == "mem_section" {
            continue;
        }
        let (Some(want), Some(got)) = (u64::from_str_radix(value, 16).ok(), table.addr(name))
        else {
            continue;
        };
        if got.0 != want {
            return Err(Error::Malformed(
                "the kernel file given with -N is not this dump's kernel: its symbols disagree with the dump's VMCOREINFO (another build or architecture?)",
            ));
        }
    }
    Ok(table)
}

/// `name` in `table`, with its type.
fn found(table: &SymbolTable, name: &str) -> Option<KernelSymbol> {
    table.lookup(name).map(|s| KernelSymbol {
        addr: s.addr.0,
        kind: s.kind,
    })
}
