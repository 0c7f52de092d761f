//! See `kvm_core_file::fuzz::freebsd_dumpheader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_core_file::fuzz::freebsd_dumpheader(data));
