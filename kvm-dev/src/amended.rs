//! A source with amended facts: marked live (the running kernel's memory
//! changes under the reader, so nothing read from it may be cached:
//! translations, and whatever the layers above decide from
//! `SourceInfo::live`), or given what a scan of its memory found.

use kvm_core::{MapRange, PhysAddr, PhysRead, PhysWrite, Result, Source, SourceInfo};
use kvm_core::{Translate, VirtRead};

/// `inner` with its facts amended.
#[derive(Debug)]
pub struct Amended {
    inner: Box<dyn Source>,
    info: SourceInfo,
}

impl Amended {
    /// `inner` with `SourceInfo::live` set.
    pub fn live(inner: Box<dyn Source>) -> Amended {
        Amended::with(inner, |i| i.live = true)
    }

    /// `inner` with its facts changed by `amend`.
    pub fn with(inner: Box<dyn Source>, amend: impl FnOnce(&mut SourceInfo)) -> Amended {
        let mut info = inner.info().clone();
        amend(&mut info);
        Amended { inner, info }
    }
}

impl PhysRead for Amended {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        self.inner.read_phys(pa, buf)
    }
}

impl Source for Amended {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        self.inner.ranges()
    }
    fn phys_write(&self) -> Option<&dyn PhysWrite> {
        self.inner.phys_write()
    }
    fn kernel_virt(&self) -> Option<&dyn VirtRead> {
        self.inner.kernel_virt()
    }
    fn translator(&self) -> Option<&dyn Translate> {
        self.inner.translator()
    }
}
