//! The VMCOREINFO scan of raw memory: see `kvm_core::fuzz::discover`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_core::fuzz::discover(data));
