//! Live kernel memory.
//!
//! `/proc/kcore` (Linux: kernel virtual addresses as an ELF core) and
//! `/dev/mem` (physical memory, bounded by the "System RAM" ranges of
//! `/proc/iomem`) as [`kvm_core::PhysRead`]/[`kvm_core::VirtRead`] sources,
//! with writes where the system allows them. Never cached: live memory
//! changes under the reader.
//!
//! Status: exports nothing yet. Today the `kvm` facade reads the live
//! kernel's `/proc/kcore` with kvm-core-file's ELF reader (uncached);
//! `/dev/mem`, `/dev/kmem`-style direct virtual reads and writes belong
//! here and are still to do.
#![forbid(unsafe_code)]
