//! The kernel address space of an open source: its translator, found once
//! from the OS layer (or the source itself), cached for dumps and never
//! for live memory.

use core::ops::ControlFlow;
use kvm_core::{
    CachedTranslate, PageRun, Paging, PhysRead, Result, Source, Translate, Translation, VirtAddr,
};
use kvm_proc::KernelPaging;
use std::sync::Arc;

/// Translations cached per open dump.
const TLB: usize = 1024;

/// The kernel's translator: cached for dumps, direct for live memory, or
/// the source's own (a format that carries its page-table array).
enum Tlb {
    Cached(Box<CachedTranslate<Paging, TLB>>),
    Live(Paging),
    Source(Arc<dyn Source>),
}

/// The kernel's paging as found, with its translator.
pub(crate) struct KernelSpace {
    tlb: Tlb,
    /// The paging found, and where its root came from.
    pub found: KernelPaging,
}

impl KernelSpace {
    /// The space of `found` over `source`: its own translator where it
    /// has one, else `found`'s tables, never cached on live memory (it
    /// changes under the reader).
    pub fn new(found: KernelPaging, source: &Arc<dyn Source>) -> Result<Self> {
        let tlb =
            match found.paging {
                _ if source.translator().is_some() => Tlb::Source(Arc::clone(source)),
                Some(p) if source.info().live => Tlb::Live(p),
                Some(p) => Tlb::Cached(Box::new(CachedTranslate::new(p))),
                None => return Err(kvm_core::Error::Unsupported(
                    "the OS layer found no page-table root and the source has no map of its own",
                )),
            };
        Ok(KernelSpace { tlb, found })
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
            Tlb::Source(s) => s.translator().ok_or(LOST)?.translate(mem, va),
        }
    }

    fn walk(
        &self,
        mem: &dyn PhysRead,
        f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
    ) -> Result<()> {
        match &self.tlb {
            Tlb::Cached(t) => t.walk(mem, f),
            Tlb::Live(t) => t.walk(mem, f),
            Tlb::Source(s) => s.translator().ok_or(LOST)?.walk(mem, f),
        }
    }
}

/// A source whose translator went away after the space was made.
const LOST: kvm_core::Error = kvm_core::Error::Unsupported("the source lost its translator");
