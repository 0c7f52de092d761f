//! See `kvm_proc::fuzz::unwind`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_proc::fuzz::unwind(data));
