//! System.map and /proc/kallsyms text: see `kvm_elf::fuzz::system_map`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_elf::fuzz::system_map(data));
