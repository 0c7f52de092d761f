//! A source marked live: the running kernel's memory changes under the
//! reader, so nothing read from it may be cached (translations, and
//! whatever the layers above decide from `SourceInfo::live`).

use kvm_core::{MapRange, PhysAddr, PhysRead, PhysWrite, Result, Source, SourceInfo};
use kvm_core::{Translate, VirtRead};

/// `inner` with `SourceInfo::live` set.
#[derive(Debug)]
pub(crate) struct Live {
    inner: Box<dyn Source>,
    info: SourceInfo,
}

impl Live {
    pub fn new(inner: Box<dyn Source>) -> Live {
        let info = SourceInfo {
            live: true,
            ..inner.info().clone()
        };
        Live { inner, info }
    }
}

impl PhysRead for Live {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        self.inner.read_phys(pa, buf)
    }
}

impl Source for Live {
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
