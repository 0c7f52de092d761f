//! The Linux kernel's BTF: found in the image, read lazily as lookups
//! need it, with the first failure kept for the call that caused it.

use super::symbols::KernelSymbols;
use core::cell::{Cell, RefCell};
use kvm_core::{Error, Result, VirtAddr, VirtRead, VmCoreInfo};
use kvm_elf::LazyBtf;

/// How far past `_etext` the BTF search looks (arm64 kernels without data
/// symbols have no `__start_BTF`).
const BTF_SEARCH: u64 = 96 << 20;

/// The kernel's BTF, read only as far as the types asked for.
#[derive(Debug)]
pub(super) struct KernelBtf {
    btf: RefCell<LazyBtf>,
    /// The first BTF lookup that failed (corrupt or unreadable BTF).
    failed: Cell<Option<Error>>,
}

impl KernelBtf {
    /// The kernel's BTF: `__start_BTF`..`__stop_BTF` where kallsyms has
    /// them, else the first blob defining `task_struct` after the kallsyms
    /// tables (BTF follows them in .rodata) or after `_etext`.
    /// `incomplete`: the dump lacks memory (cut short, or flagged by its
    /// tool), so a BTF not found may just be missing from it.
    pub fn find(
        mem: &dyn VirtRead,
        vi: &VmCoreInfo,
        syms: &KernelSymbols,
        incomplete: bool,
    ) -> Result<Self> {
        let sym = |n: &str| syms.kallsyms(mem, n).map(|s| s.addr);
        let btf = if let (Some(s), Some(e)) = (sym("__start_BTF"), sym("__stop_BTF")) {
            LazyBtf::new(mem, VirtAddr(s), e.wrapping_sub(s))?
        } else {
            let from = tables_end(vi)
                .or_else(|| sym("_etext").map(VirtAddr))
                .ok_or(Error::Unsupported(
                    "no BTF found: no kallsyms tables and no _etext",
                ))?;
            let mut vmlinux =
                |b: &mut LazyBtf| b.composite(mem, "task_struct").ok().flatten().is_some();
            kvm_elf::btf::search_first(mem, from, BTF_SEARCH, &mut vmlinux)
                .map(|(_, btf)| btf)
                .map_err(|_| {
                    Error::Unsupported(if incomplete {
                        "no BTF found in the kernel image: the dump is incomplete (kvm info says what it lacks), and the BTF may be in what it lost"
                    } else {
                        "no BTF found in the kernel image (CONFIG_DEBUG_INFO_BTF off?)"
                    })
                })?
        };
        Ok(KernelBtf {
            btf: RefCell::new(btf),
            failed: Cell::new(None),
        })
    }

    /// Runs a BTF lookup, loading what it needs. The walkers ask through
    /// `Option`s, so a lookup that fails (corrupt or unreadable BTF)
    /// answers `None` here and is kept for [`KernelBtf::checked`].
    pub fn with<T>(&self, f: impl FnOnce(&mut LazyBtf) -> Result<Option<T>>) -> Option<T> {
        let r = match self.btf.try_borrow_mut() {
            Ok(mut btf) => f(&mut btf),
            Err(_) => Err(Error::Malformed("BTF: a lookup re-entered another")),
        };
        r.unwrap_or_else(|e| {
            if self.failed.get().is_none() {
                self.failed.set(Some(e));
            }
            None
        })
    }

    /// Runs `f`, whose BTF lookups answer `None` when they fail, and
    /// returns the first such failure instead of its result or error: a
    /// call reports its own failures, not a missing field.
    pub fn checked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.failed.set(None); // another call's
        let v = f();
        // A lookup that failed is the reason, even where `f` then failed
        // for want of the answer (a member "missing" from unreadable BTF).
        self.failed.take().map_or(v, Err)
    }
}

/// Where the kallsyms tables end (the last of them), per VMCOREINFO.
fn tables_end(vi: &VmCoreInfo) -> Option<VirtAddr> {
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
