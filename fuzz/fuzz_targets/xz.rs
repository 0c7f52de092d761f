//! See `kvm::fuzz::xz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm::fuzz::xz(data));
