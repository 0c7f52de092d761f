//! See `kvm_core_file::fuzz::freebsd_minidump`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_core_file::fuzz::freebsd_minidump(data));
