//! The kernel address space of an open source: its translator, found once
//! from the OS layer (or the source itself), cached for dumps and never
//! for live memory.

use kvm_core::{
    CachedTranslate, Paging, PhysRead, Result, Source, Translate, Translation, VirtAddr,
};
use kvm_proc::KernelPaging;

/// Translations cached per open dump.
const TLB: usize = 1024;

/// The kernel's translator: cached for dumps, direct for live memory.
enum Tlb {
    Cached(Box<CachedTranslate<Paging, TLB>>),
    Live(Paging),
}

/// The kernel's paging as found, with its translator.
pub(crate) struct KernelSpace {
    tlb: Tlb,
    /// The paging found, and where its root came from.
    pub found: KernelPaging,
}

impl KernelSpace {
    /// The space of `found`; `live` memory changes under the reader, so
    /// its translations are never cached.
    pub fn new(found: KernelPaging, live: bool) -> Self {
        let tlb = if live {
            Tlb::Live(found.paging)
        } else {
            Tlb::Cached(Box::new(CachedTranslate::new(found.paging)))
        };
        KernelSpace { tlb, found }
    }

    /// The OS layer's view of this space over `source`.
    pub fn machine<'a>(&'a self, source: &'a dyn Source) -> kvm_proc::Machine<'a> {
        kvm_proc::Machine {
            source,
            kernel: self,
            paging: self.found.paging,
        }
    }
}

impl Translate for KernelSpace {
    fn translate(&self, mem: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
        match &self.tlb {
            Tlb::Cached(t) => t.translate(mem, va),
            Tlb::Live(t) => t.translate(mem, va),
        }
    }
}
