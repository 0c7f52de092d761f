//! The Linux layer of the facade: symbols from the dump's own kallsyms,
//! types from its BTF, and the [`kvm_proc::Kernel`] the walkers need.

use crate::open::Kvm;
use kvm_core::{Error, PhysAddr, PhysRead, Result, Translate, VirtAddr, VirtRead};
use kvm_elf::kallsyms::{self, KallsymsOptions, KallsymsTables, NameIndex};
use kvm_elf::{LazyBtf, SymbolTable};
use std::sync::{Mutex, OnceLock};

/// How far past `_etext` the BTF search looks (arm64 kernels without data
/// symbols have no `__start_BTF`).
const BTF_SEARCH: u64 = 96 << 20;

/// What the facade learns about a Linux kernel, on first use and then as
/// lookups need it.
#[derive(Debug)]
pub(crate) struct LinuxData {
    /// The kernel's symbols.
    pub syms: KernelSymbols,
    /// The kernel's BTF, read only as far as the types asked for.
    btf: Mutex<LazyBtf>,
    /// The first BTF lookup that failed (corrupt or unreadable BTF).
    btf_failed: Mutex<Option<Error>>,
    /// The walker's layout and `init_task` (by symbol or search), once
    /// resolved.
    pub walker: OnceLock<(kvm_proc::linux::Layout, u64)>,
    /// Symbols of loaded modules, read on first use.
    pub modules: OnceLock<Vec<kvm_proc::ModuleSymbol>>,
}

/// The kernel's symbols: its own kallsyms, searched by name through their
/// sequence index and decoded whole only when a listing or a reverse
/// lookup needs them, and the `-N` file's.
#[derive(Debug)]
pub(crate) struct KernelSymbols {
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
    all: OnceLock<Result<SymbolTable>>,
    /// Symbols VMCOREINFO gives, which every kallsyms decoding must agree
    /// with.
    known: Vec<(&'static str, u64)>,
}

impl LinuxData {
    /// Finds the kernel's kallsyms (tables from VMCOREINFO; the `-N`
    /// file's symbols for kernels before 6.0) and its BTF (see
    /// [`find_btf`]).
    pub fn load(kvm: &Kvm, extra: Option<SymbolTable>) -> Result<LinuxData> {
        let vi = kvm
            .dump()
            .info()
            .vmcoreinfo
            .as_ref()
            .ok_or(Error::Unsupported("the dump has no VMCOREINFO"))?;
        let extra = match extra {
            Some(t) => Some(t.relocated(vi.kernel_offset().unwrap_or(0))?),
            None => None,
        };
        let tables = KallsymsTables::from_symbols(|n| vi.symbol(n));
        let mut syms = KernelSymbols {
            tables,
            index: None,
            extra,
            all: OnceLock::new(),
            known: vi
                .symbol("_stext")
                .map(|a| ("_stext", a))
                .into_iter()
                .collect(),
        };
        // Kernels before 6.2 (without the backport) have no sequence
        // index: their table is decoded whole, on first lookup.
        syms.index = tables.and_then(|t| NameIndex::new(kvm, &t, &syms.options()).ok());
        let btf = find_btf(kvm, &syms)?;
        Ok(LinuxData {
            syms,
            btf: Mutex::new(btf),
            btf_failed: Mutex::new(None),
            walker: OnceLock::new(),
            modules: OnceLock::new(),
        })
    }

    /// Runs a BTF lookup, loading what it needs from the dump. The walkers
    /// ask through `Option`s, so a lookup that fails (corrupt or unreadable
    /// BTF) answers `None` here and is kept for [`LinuxData::btf_checked`].
    pub fn btf<T>(&self, f: impl FnOnce(&mut LazyBtf) -> Result<Option<T>>) -> Option<T> {
        let r = match self.btf.lock() {
            Ok(mut btf) => f(&mut btf),
            Err(_) => Err(Error::Malformed("BTF: a lookup panicked")),
        };
        r.unwrap_or_else(|e| {
            if let Ok(mut first) = self.btf_failed.lock() {
                first.get_or_insert(e);
            }
            None
        })
    }

    /// The first BTF lookup that failed since the last call, if one did
    /// (and forgets it).
    fn take_btf_error(&self) -> Result<()> {
        match self.btf_failed.lock() {
            Ok(mut first) => first.take().map_or(Ok(()), Err),
            Err(_) => Err(Error::Malformed("BTF: a lookup panicked")),
        }
    }

    /// Runs `f`, whose BTF lookups answer `None` when they fail, and
    /// returns the first such failure instead of its result: a facade
    /// call reports its own failures, not a missing field.
    pub fn btf_checked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _ = self.take_btf_error(); // another call's
        let v = f()?;
        self.take_btf_error().map(|()| v)
    }
}

impl KernelSymbols {
    /// How the kernel's kallsyms are decoded (x86-64 and arm64), checked
    /// against what VMCOREINFO knows.
    fn options(&self) -> KallsymsOptions<'_> {
        let mut o = KallsymsOptions::le64();
        o.known = &self.known;
        o
    }

    /// The kernel's whole symbol table, decoded on first call.
    pub fn all(&self, kvm: &Kvm) -> Result<&SymbolTable> {
        let all = self.all.get_or_init(|| match &self.tables {
            Some(t) => kallsyms::decode(kvm, t, &self.options()).map(|k| k.table),
            // Kernels before 6.0 do not say where their kallsyms are; the
            // kernel file's symbols then serve alone.
            None => self.extra.clone().ok_or(Error::Unsupported(
                "VMCOREINFO lacks the kallsyms_* symbols (kernels before 6.0): give the kernel's System.map with -N",
            )),
        });
        all.as_ref().map_err(|e| *e)
    }

    /// The address of `name` in the kernel's own kallsyms, by the index
    /// where there is one.
    fn kallsyms(&self, kvm: &Kvm, name: &str) -> Option<u64> {
        if let Some(idx) = &self.index {
            match idx.lookup(kvm, name) {
                Ok(Some((a, _))) => return Some(a.0),
                // Clang-LTO kernels sort names without their `.suffix`: a
                // name with a '.' of its own may sit elsewhere.
                Ok(None) if !name.contains('.') => return None,
                _ => {}
            }
        }
        self.all(kvm).ok()?.addr(name).map(|a| a.0)
    }

    /// The address of `name`: the kernel's kallsyms, then the `-N` file,
    /// then VMCOREINFO.
    pub fn addr(&self, kvm: &Kvm, name: &str) -> Option<u64> {
        self.kallsyms(kvm, name)
            .or_else(|| self.extra.as_ref().and_then(|t| t.addr(name)).map(|a| a.0))
            .or_else(|| {
                let vi = kvm.dump().info().vmcoreinfo.as_ref();
                vi.and_then(|v| v.symbol(name))
            })
    }
}

/// The kernel's BTF: `__start_BTF`..`__stop_BTF` where kallsyms has them,
/// else the first blob defining `task_struct` after the kallsyms tables
/// (BTF follows them in .rodata) or after `_etext`.
fn find_btf(kvm: &Kvm, syms: &KernelSymbols) -> Result<LazyBtf> {
    let sym = |n: &str| syms.kallsyms(kvm, n);
    if let (Some(s), Some(e)) = (sym("__start_BTF"), sym("__stop_BTF")) {
        return LazyBtf::new(kvm, VirtAddr(s), e.wrapping_sub(s));
    }
    let vi = kvm.dump().info().vmcoreinfo.as_ref();
    let from = vi
        .and_then(tables_end)
        .or_else(|| sym("_etext").map(VirtAddr))
        .ok_or(Error::Unsupported(
            "no BTF found: no kallsyms tables and no _etext",
        ))?;
    let mut vmlinux = |b: &mut LazyBtf| b.composite(kvm, "task_struct").ok().flatten().is_some();
    kvm_elf::btf::search_first(kvm, from, BTF_SEARCH, &mut vmlinux)
        .map(|(_, btf)| btf)
        .map_err(|_| {
            Error::Unsupported("no BTF found in the kernel image (CONFIG_DEBUG_INFO_BTF off?)")
        })
}

/// Where the kallsyms tables end (the last of them), per VMCOREINFO.
fn tables_end(vi: &kvm_core_file::VmCoreInfo) -> Option<VirtAddr> {
    [
        "kallsyms_token_index",
        "kallsyms_token_table",
        "kallsyms_names",
        "kallsyms_offsets",
    ]
    .iter()
    .filter_map(|n| vi.symbol(n))
    .max()
    .map(VirtAddr)
}

/// The view of a kernel that the process walkers use.
pub(crate) struct KernelView<'a> {
    pub kvm: &'a Kvm,
    pub data: &'a LinuxData,
}

impl kvm_proc::Kernel for KernelView<'_> {
    fn arch(&self) -> kvm_proc::Arch {
        match self.kvm.dump().info().arch {
            Some(kvm_core_file::Arch::Aarch64) => kvm_proc::Arch::Aarch64,
            _ => kvm_proc::Arch::X86_64,
        }
    }
    fn kernel(&self) -> &dyn VirtRead {
        self.kvm
    }
    fn phys(&self) -> &dyn PhysRead {
        self.kvm.dump()
    }
    fn kernel_to_phys(&self, va: VirtAddr) -> Result<PhysAddr> {
        self.kvm
            .translate(va.0)
            .map(|t| t.pa)
            .map_err(|e| e.core_error().unwrap_or(Error::Unmapped { va: va.0 }))
    }
    fn user_paging(&self, pgd: PhysAddr) -> Result<Box<dyn Translate + '_>> {
        let a = self
            .kvm
            .arch_paging()
            .ok_or(Error::Unsupported("no kernel paging"))?;
        Ok(Box::new(a.user(pgd)))
    }
    fn symbol(&self, name: &str) -> Option<u64> {
        if name == "init_task" {
            if let Some(&(_, a)) = self.data.walker.get() {
                return Some(a);
            }
        }
        self.data.syms.addr(self.kvm, name)
    }
    fn offset_of(&self, path: &str) -> Option<u64> {
        let m = self.data.btf(|b| b.member_path(self.kvm, path))?;
        Some(m.offset)
    }
    fn size_of(&self, name: &str) -> Option<u64> {
        self.data.btf(|b| match name.split_once('.') {
            Some(_) => match b.member_path(self.kvm, name)? {
                Some(m) => b.size_of(self.kvm, m.type_id).map(Some),
                None => Ok(None),
            },
            None => b.size_of_name(self.kvm, name),
        })
    }
    fn enum_value(&self, name: &str) -> Option<i64> {
        let v = self.data.btf(|b| b.enumerator(self.kvm, name))?;
        Some(v.bits as i64)
    }
}
