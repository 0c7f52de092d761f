//! ELF symbol tables through goblin: see `kvm_elf::fuzz::elf_symbols`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_elf::fuzz::elf_symbols(data));
