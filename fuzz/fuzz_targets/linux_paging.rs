//! See `kvm_proc::fuzz::linux_paging`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_proc::fuzz::linux_paging(data));
