//! See `kvm_proc::fuzz::kernel_log`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_proc::fuzz::kernel_log(data));
