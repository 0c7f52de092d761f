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
mod radix;
pub mod x86_64;

#[cfg(feature = "builder")]
mod build;

pub use radix::{Entry, MAX_WALK_TABLES};

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
