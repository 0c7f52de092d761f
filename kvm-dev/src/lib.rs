//! Live kernel memory.
//!
//! `/proc/kcore` (Linux: kernel virtual addresses as an ELF core) and
//! `/dev/mem` (physical memory, bounded by the "System RAM" ranges of
//! `/proc/iomem`) as [`kvm_core::PhysRead`]/[`kvm_core::VirtRead`] sources,
//! with writes where the system allows them. Never cached: live memory
//! changes under the reader.
//!
//! Status: tracked in the processes issue (live mode); this crate exports
//! nothing yet.
#![forbid(unsafe_code)]
