//! OpenBSD as an [`crate::Os`]: a savecore kcore names it; the kernel
//! file (`-N`) gives the symbols. Its page tables come with the dump (the
//! CPU header's `ptdpaddr`, translated by the source), so reads, `nlist`,
//! the load average and the release work.
//!
//! Not yet: processes. OpenBSD exports no structure offsets; reading
//! `allprocess` needs the kernel's own layouts (its CTF), which kvm does
//! not read, so [`crate::Os::processes`] says so instead of guessing.

mod os;

pub use os::{probe, OpenBsdOs};
