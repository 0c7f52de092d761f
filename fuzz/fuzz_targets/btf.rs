//! BTF parsing and lookups: see `kvm_elf::fuzz::btf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_elf::fuzz::btf(data));
