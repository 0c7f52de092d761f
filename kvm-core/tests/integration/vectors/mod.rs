//! The translators against libkdumpfile's page-table translation vectors
//! (`tests/data/libkdumpfile-xlat/`, provenance and license in SOURCE.md
//! there).
//!
//! Each case is sparse physical memory (`.data`), the symbols libkdumpfile's
//! driver gives it (`.sym`), and what libkdumpfile expects (`.expect`): the
//! page-table root and layout (`@rootpgt`), and address ranges that follow a
//! linear offset (the direct map, kernel text). A small strict loader reads
//! all three notations: any line it does not understand fails the test.
//!
//! # What is checked, and why that is sound
//!
//! libkdumpfile describes a LINEAR range as the span it *treats* as linear;
//! the page tables excerpted in `.data` may leave holes in it (x86_64-5l's
//! direct map leaves most of 1.5–2 GiB and the PCI hole at 2–4 GiB unmapped:
//! not-present entries in the data). So for every KV -> PHYS range
//! mapped to a LINEAR method, every page is translated and:
//!
//! 1. a page that translates must land exactly at `va + off` (mod 2^64), at
//!    its start, at its last byte and (for huge pages) at every sub-step in
//!    between: every smallest-page start for pages up to 512 small pages
//!    (2 MiB on x86-64, so every 4 KiB start of a 4 KiB/2 MiB-mapped direct
//!    map), every `size / 512` for larger ones (every 2 MiB of a 1 GiB page);
//!    its size must be one the `fields=` layout allows;
//! 2. a page that does not translate must fail with `Unmapped` (a
//!    not-present entry in the data), never with an unreadable table, a bad
//!    entry or a non-canonical address;
//! 3. the first and last page of the range translate (libkdumpfile's ranges
//!    end at mapped pages);
//! 4. the pages found, by size, equal a per-case table written below from a
//!    reading of the `.data` file (the comments show the arithmetic), so a
//!    translator that wrongly reported `Unmapped` cannot pass;
//! 5. `walk` reports exactly the same pages (VA, PA, size, rights) in the
//!    range.
//!
//! Each KPHYS -> DIRECT range mapped to a LINEAR method is the inverse view
//! of the same map: its image in the kernel space (`pa + off`) must be a
//! KV -> PHYS LINEAR range with the opposite offset, checked as above. Where
//! KV -> PHYS has no such range (ia32-pae: the data holds one page of the
//! direct map) the image is checked with rules 1, 2, 4 and 5: every direct-map
//! address that translates maps back to its physical address, and the page
//! count table says how many do. x86_64-ktext-1G has an empty KPHYS -> DIRECT.
//!
//! Around each LINEAR range, the page just below and the page just above must
//! not translate to the linear value (aarch64-5.8-va48's `ffff00003ffff000`
//! has an invalid PTE) unless the case lists it: x86_64-ktext-1G's data maps
//! `ffffffffc0000000` linearly on purpose ("this page should be ignored,
//! although it extends the linear map") and libkdumpfile ends the kernel-text
//! range at 1 GiB regardless.
//!
//! Ranges the `.expect` maps to NONE (in KV -> HW and KV -> PHYS) must give
//! `NonCanonical` (both ends and 63 points between); `@rootpgt` ranges must
//! not. The arm64 user half is `@userpgt` with no root: the kernel-half
//! (TTBR1) translator must call it `NonCanonical` too.
//!
//! Finally every page `walk` reports (in the whole space) is re-translated at
//! its first and last byte and must agree with the walk.
//!
//! Every translation whose result is asserted is counted; the counts are
//! printed per case and must reach a per-case minimum.

mod cases;
mod check;
mod loader;

use cases::{CASES, DATA_DIR};
use check::run_case;

#[test]
fn x86_64_4_13_kaslr() {
    run_case("x86_64-4.13-kaslr");
}

#[test]
fn x86_64_5l() {
    run_case("x86_64-5l");
}

#[test]
fn x86_64_ktext_1g() {
    run_case("x86_64-ktext-1G");
}

#[test]
fn aarch64_5_8_va48() {
    run_case("aarch64-5.8-va48");
}

#[test]
fn aarch64_5_16_64k() {
    run_case("aarch64-5.16-64k");
}

#[test]
fn ia32_pae() {
    run_case("ia32-pae");
}

/// Every data file in the directory belongs to a case in [`CASES`], and every
/// case has its files.
#[test]
fn every_vector_has_a_case() {
    let mut stems = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(DATA_DIR).expect("vector directory") {
        let name = entry.expect("directory entry").file_name();
        let name = name.to_str().expect("UTF-8 file name");
        if let Some(rest) = name.strip_prefix("xlat-linux-") {
            let stem = rest
                .strip_suffix(".data")
                .or_else(|| rest.strip_suffix(".expect"))
                .or_else(|| rest.strip_suffix(".sym"))
                .unwrap_or_else(|| panic!("unexpected file {name}"));
            stems.insert(stem.to_owned());
        } else {
            assert!(
                name == "SOURCE.md" || name == "README.md",
                "unexpected file {name}"
            );
        }
    }
    let cases: std::collections::BTreeSet<String> =
        CASES.iter().map(|c| c.name.to_owned()).collect();
    assert_eq!(stems, cases);
}
