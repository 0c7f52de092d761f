//! /proc/iomem, QEMU command lines and /proc/PID/maps: see
//! `kvm_dev::fuzz::live_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kvm_dev::fuzz::live_text(data));
