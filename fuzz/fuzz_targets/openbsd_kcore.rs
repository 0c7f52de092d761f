//! See `kvm_core_file::fuzz::openbsd_kcore`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_core_file::fuzz::openbsd_kcore(data));
