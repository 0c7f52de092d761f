//! One concrete paging configuration of any architecture: the kernel's
//! (found by an OS layer from what the kernel left behind) or a process's
//! made from it, and a translator itself.

use super::aarch64::{Aarch64, Half};
use super::i386::I386;
use super::x86_64::X86_64;
use super::Arch;
use crate::{PageRun, PhysAddr, PhysRead, Result, Translate, Translation, VirtAddr};
use core::ops::ControlFlow;

/// A paging mode with its root: x86-64 4- or 5-level, i386 PAE or not,
/// arm64 with its granule and VA size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// x86-64.
    X86_64(X86_64),
    /// 32-bit x86, PAE or not.
    I386(I386),
    /// arm64 (one half of the address space).
    Aarch64(Aarch64),
}

impl Paging {
    /// The architecture.
    pub fn arch(&self) -> Arch {
        match self {
            Paging::X86_64(_) => Arch::X86_64,
            Paging::I386(_) => Arch::I386,
            Paging::Aarch64(_) => Arch::Aarch64,
        }
    }

    /// The top table.
    pub fn root(&self) -> PhysAddr {
        match self {
            Paging::X86_64(t) => t.root(),
            Paging::I386(t) => t.root(),
            Paging::Aarch64(t) => t.root(),
        }
    }

    /// A translator for a process whose top table (Linux `mm->pgd`,
    /// FreeBSD `pm_pml4`) is at physical address `pgd`: the same paging
    /// mode (levels, masks, granule, VA size); on arm64 the user half
    /// (TTBR0).
    pub fn user(&self, pgd: PhysAddr) -> Paging {
        match *self {
            Paging::X86_64(t) => Paging::X86_64(t.with_root(pgd)),
            Paging::I386(t) if t.pae() => Paging::I386(I386::new_pae(pgd)),
            Paging::I386(_) => Paging::I386(I386::new(pgd)),
            Paging::Aarch64(t) => Paging::Aarch64(t.with_half(Half::User, pgd)),
        }
    }
}

impl Translate for Paging {
    #[inline]
    fn translate(&self, mem: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
        match self {
            Paging::X86_64(t) => t.translate(mem, va),
            Paging::I386(t) => t.translate(mem, va),
            Paging::Aarch64(t) => t.translate(mem, va),
        }
    }
    fn walk(
        &self,
        mem: &dyn PhysRead,
        f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
    ) -> Result<()> {
        match self {
            Paging::X86_64(t) => t.walk(mem, f),
            Paging::I386(t) => t.walk(mem, f),
            Paging::Aarch64(t) => t.walk(mem, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::aarch64::Granule;

    #[test]
    fn user_keeps_the_mode_and_takes_the_root() {
        let k = Paging::I386(I386::new_pae(PhysAddr(0x1000)));
        let u = k.user(PhysAddr(0x2fe0));
        assert_eq!(u, Paging::I386(I386::new_pae(PhysAddr(0x2fe0))));
        assert_eq!(u.arch(), Arch::I386);
        let k = Paging::I386(I386::new(PhysAddr(0x1000)));
        assert_eq!(k.user(PhysAddr(0x3000)).root(), PhysAddr(0x3000));
        let k = Paging::X86_64(X86_64::new(PhysAddr(0x1000), 5).unwrap());
        match k.user(PhysAddr(0x5000)) {
            Paging::X86_64(t) => assert_eq!((t.levels(), t.root()), (5, PhysAddr(0x5000))),
            other => panic!("{other:?}"),
        }
        let a = Aarch64::kernel(PhysAddr(0x4000), Granule::K16, 47).unwrap();
        match Paging::Aarch64(a).user(PhysAddr(0x8000)) {
            Paging::Aarch64(u) => {
                assert_eq!((u.granule(), u.va_bits()), (Granule::K16, 47));
                assert_eq!(u.root(), PhysAddr(0x8000));
            }
            other => panic!("{other:?}"),
        }
    }
}
