//! In-memory kallsyms decoding and the table search on arbitrary memory:
//! see `kvm_elf::fuzz::kallsyms`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_elf::fuzz::kallsyms(data));
