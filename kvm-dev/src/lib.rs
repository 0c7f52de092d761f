//! Live kernel memory.
//!
//! `/proc/kcore` (Linux: kernel virtual addresses as an ELF core),
//! `/dev/mem` (physical memory, bounded by the "System RAM" ranges of
//! `/proc/iomem`) and a running VM's RAM as [`kvm_core::Source`]s: physical
//! reads, [`kvm_core::Source::phys_write`] where the system allows writes,
//! [`kvm_core::Source::kernel_virt`] for doors that read kernel virtual
//! addresses directly, and `SourceInfo::live` set so that nothing read is
//! cached: live memory changes under the reader.
//!
//! Status: exports nothing yet. Today the `kvm` facade reads the live
//! kernel's `/proc/kcore` with kvm-core-file's ELF reader (uncached); the
//! live doors and writes belong here and are still to do (the live-kernel
//! issue).
#![forbid(unsafe_code)]
