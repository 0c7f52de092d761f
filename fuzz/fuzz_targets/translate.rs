//! Page-table walkers on arbitrary memory: see `kvm_core::fuzz::translate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_core::fuzz::translate(data));
