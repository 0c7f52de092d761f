//! A dump wrapper that records which pages are read: how `kvm convert
//! --keep-read-by` cuts a dump down to what a command needs (the committed
//! test fixtures are made this way).

use kvm_core::{MapRange, PhysAddr, PhysRead, Result};
use kvm_core::{Source, SourceInfo};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The 4 KiB frames read so far.
pub type PageSet = Arc<Mutex<BTreeSet<u64>>>;

/// A [`Source`] that notes every 4 KiB frame it serves.
#[derive(Debug)]
pub struct Recording {
    inner: Box<dyn Source>,
    pages: PageSet,
}

impl Recording {
    /// Wraps `inner`; the frames read go into `pages`.
    pub fn new(inner: Box<dyn Source>, pages: PageSet) -> Self {
        Recording { inner, pages }
    }
}

impl PhysRead for Recording {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        let n = self.inner.read_phys(pa, buf)?;
        if n > 0 {
            let (first, last) = (pa.0 >> 12, (pa.0 + n as u64 - 1) >> 12);
            if let Ok(mut p) = self.pages.lock() {
                p.extend(first..=last);
            }
        }
        Ok(n)
    }
}

impl Source for Recording {
    fn info(&self) -> &SourceInfo {
        self.inner.info()
    }
    fn ranges(&self) -> &[MapRange] {
        self.inner.ranges()
    }
}
