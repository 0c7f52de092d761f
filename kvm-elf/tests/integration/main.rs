//! kvm-elf integration tests: one binary (see STYLE.md §11).

mod btf;
mod elf;
mod kallsyms;
mod text;

use std::io::Read;
use std::path::PathBuf;

/// A file under `tests/data`.
pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The decompressed contents of a gzip file under `tests/data`.
pub fn gunzip(name: &str) -> Vec<u8> {
    let f = std::fs::File::open(data_path(name)).expect("test data present");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

/// Runs `f` and fails if it takes longer than `secs` (corrupt inputs must
/// fail fast, not hang).
pub fn within<T>(secs: u64, f: impl FnOnce() -> T) -> T {
    let t = std::time::Instant::now();
    let r = f();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(secs),
        "took {:?}",
        t.elapsed()
    );
    r
}
