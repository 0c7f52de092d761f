//! Every input the fuzzers ever crashed on, replayed through the same
//! entry point as its target (`fuzz/regressions/<target>/*`, kept by
//! `cargo xtask fuzz`). A replay must return: a panic fails the test.

use std::path::{Path, PathBuf};

/// A fuzz target's entry point.
type Entry = fn(&[u8]);

/// Each fuzz target's entry point (the bodies of `fuzz/fuzz_targets`).
const TARGETS: &[(&str, Entry)] = &[
    ("btf", kvm_elf::fuzz::btf),
    ("discover", kvm_core::fuzz::discover),
    ("elf", kvm_core_file::fuzz::elf),
    ("elf_symbols", kvm_elf::fuzz::elf_symbols),
    (
        "freebsd_dumpheader",
        kvm_core_file::fuzz::freebsd_dumpheader,
    ),
    ("freebsd_minidump", kvm_core_file::fuzz::freebsd_minidump),
    ("kallsyms", kvm_elf::fuzz::kallsyms),
    ("kdump", kvm_core_file::fuzz::kdump),
    ("kernel_log", kvm_proc::fuzz::kernel_log),
    ("lime", kvm_core_file::fuzz::lime),
    ("linux_paging", kvm_proc::fuzz::linux_paging),
    ("live_text", kvm_dev::fuzz::live_text),
    ("notes", kvm_core_file::fuzz::notes),
    ("open", kvm_core_file::fuzz::open),
    ("openbsd_kcore", kvm_core_file::fuzz::openbsd_kcore),
    ("system_map", kvm_elf::fuzz::system_map),
    ("translate", kvm_core::fuzz::translate),
    ("unwind", kvm_proc::fuzz::unwind),
    ("xz", kvm::fuzz::xz),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every target in `fuzz/fuzz_targets` has its entry point here, so no
/// target's regressions go unreplayed, and the call in each target file
/// is the one listed.
#[test]
fn every_fuzz_target_is_listed() {
    let listed: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    let mut found = Vec::new();
    for p in files(&fuzz_dir().join("fuzz_targets")) {
        let name = p.file_stem().unwrap().to_str().unwrap().to_string();
        let src = std::fs::read_to_string(&p).unwrap();
        assert!(
            src.contains(&format!("::fuzz::{name}(data)")),
            "{} does not call the entry point named after it",
            p.display()
        );
        found.push(name);
    }
    found.sort();
    assert_eq!(found, listed, "fuzz/fuzz_targets and TARGETS differ");
}

/// Every kept crash input runs through its target without a panic.
#[test]
fn every_kept_crash_replays_cleanly() {
    let mut replayed = 0;
    for dir in files(&fuzz_dir().join("regressions")) {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let Some((_, f)) = TARGETS.iter().find(|(n, _)| *n == name) else {
            panic!("fuzz/regressions/{name}: no such fuzz target");
        };
        for input in files(&dir) {
            let data = std::fs::read(&input).unwrap();
            eprintln!("replaying {}", input.display());
            f(&data);
            replayed += 1;
        }
    }
    // The directory holds at least the unwinder's first crash (an
    // overflow in the pt_regs address arithmetic, fixed in stop 21).
    assert!(replayed >= 1, "no regression inputs found");
}
