//! Page-table walkers, one module per architecture, over one shared radix
//! walk.
//!
//! Each architecture describes its tables as data (levels with their index
//! bits, entry size, byte order) plus one function that decodes an entry;
//! the `radix` module does the walking. Levels are numbered from the bottom: level 1
//! holds the entries that map the smallest pages (x86 "PT", arm64 "L3"), so
//! an error's level means the same thing on every architecture.

pub mod aarch64;
pub mod i386;
mod kind;
mod paging;
mod radix;
pub mod x86_64;

#[cfg(feature = "builder")]
mod build;

pub use kind::Arch;
pub use paging::Paging;
pub use radix::{Entry, MAX_WALK_TABLES};

/// `Translate` for an architecture's `Mmu`: the shared radix walk.
macro_rules! radix_translate {
    ($t:ty) => {
        impl $crate::Translate for $t {
            #[inline]
            fn translate(
                &self,
                mem: &dyn $crate::PhysRead,
                va: $crate::VirtAddr,
            ) -> $crate::Result<$crate::Translation> {
                super::radix::translate(self, mem, va.0)
            }
            fn walk(
                &self,
                mem: &dyn $crate::PhysRead,
                f: &mut dyn FnMut($crate::PageRun) -> core::ops::ControlFlow<()>,
            ) -> $crate::Result<()> {
                super::radix::walk(self, mem, f)
            }
        }
    };
}
pub(crate) use radix_translate;

/// The accessors every architecture's `Builder` shares.
#[cfg(feature = "builder")]
macro_rules! builder_accessors {
    ($mmu:ty) => {
        /// Writes a raw entry for `va` at `level` (for hostile tables);
        /// returns the entry's physical address.
        pub fn set_raw(&mut self, va: VirtAddr, level: u32, entry: u64) -> Result<u64> {
            self.0.set_raw(va.0, level, entry)
        }

        /// The memory holding the tables (and whatever else is written).
        pub fn mem_mut(&mut self) -> &mut SparseMem {
            self.0.mem_mut()
        }

        /// The translator for the tables built so far.
        pub fn paging(&self) -> $mmu {
            self.0.mmu
        }

        /// The memory and the translator.
        pub fn finish(self) -> (SparseMem, $mmu) {
            let mmu = self.0.mmu;
            (self.0.into_mem(), mmu)
        }
    };
}
#[cfg(feature = "builder")]
pub(crate) use builder_accessors;

use crate::Prot;

/// Rights that a level grants or takes away as the walk goes down: the
/// result is the intersection over all levels.
pub(crate) const ALL_RIGHTS: Prot = Prot::from_bits_truncate(0xf);

/// Sign-extends `v` from bit `bits - 1`.
#[inline]
pub(crate) const fn sign_extend(v: u64, bits: u32) -> u64 {
    let sh = 64 - bits;
    (((v << sh) as i64) >> sh) as u64
}
