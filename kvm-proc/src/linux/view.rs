//! The [`Kernel`] the walker reads through: a [`Machine`] with the
//! kernel's symbols and BTF.

use super::btf::KernelBtf;
use super::symbols::KernelSymbols;
use crate::{Kernel, KernelSymbol, Machine};
use alloc::boxed::Box;
use kvm_core::{Arch, PhysAddr, PhysRead, Result, Translate, VirtAddr, VirtRead, VmCoreInfo};

/// A Linux kernel as the walker sees it.
pub(super) struct View<'a> {
    pub m: &'a Machine<'a>,
    pub vi: &'a VmCoreInfo,
    pub syms: &'a KernelSymbols,
    /// The kernel's BTF, where it was found.
    pub btf: Option<&'a KernelBtf>,
    /// `init_task`, once found (by symbol or search).
    pub init_task: Option<u64>,
}

impl View<'_> {
    /// `name` with its type (`init_task` as found, a data symbol).
    pub fn lookup(&self, name: &str) -> Option<KernelSymbol> {
        match self.init_task {
            Some(addr) if name == "init_task" => Some(KernelSymbol { addr, kind: b'D' }),
            _ => self.syms.lookup(self.m, self.vi, name),
        }
    }
}

impl Kernel for View<'_> {
    fn arch(&self) -> Arch {
        self.m.arch().unwrap_or(Arch::Other(0))
    }
    fn kernel(&self) -> &dyn VirtRead {
        self.m
    }
    fn phys(&self) -> &dyn PhysRead {
        self.m.phys()
    }
    fn kernel_to_phys(&self, va: VirtAddr) -> Result<PhysAddr> {
        self.m.kernel_to_phys(va)
    }
    fn user_paging(&self, pgd: PhysAddr) -> Result<Box<dyn Translate + '_>> {
        Ok(Box::new(self.m.user_paging(pgd)?))
    }
    fn symbol(&self, name: &str) -> Option<u64> {
        self.lookup(name).map(|s| s.addr)
    }
    fn offset_of(&self, path: &str) -> Option<u64> {
        let m = self.btf?.with(|b| b.member_path(self.m, path))?;
        Some(m.offset)
    }
    fn size_of(&self, name: &str) -> Option<u64> {
        self.btf?.with(|b| match name.split_once('.') {
            Some(_) => match b.member_path(self.m, name)? {
                Some(m) => b.size_of(self.m, m.type_id).map(Some),
                None => Ok(None),
            },
            None => b.size_of_name(self.m, name),
        })
    }
    fn enum_value(&self, name: &str) -> Option<i64> {
        let v = self.btf?.with(|b| b.enumerator(self.m, name))?;
        Some(v.bits as i64)
    }
}
