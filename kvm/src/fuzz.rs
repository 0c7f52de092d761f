//! Entry points for the fuzz targets of the facade's own parsers (in
//! `fuzz/`), kept in the library so that regressions replay as ordinary
//! tests (`tests/fuzz_regressions.rs`). Each must never panic, hang or
//! allocate without bound, whatever the input.

/// A whole-file `.xz`: its index read backwards from the end, then
/// unpacked within what the index states.
pub fn xz(data: &[u8]) {
    let v = data.to_vec();
    if crate::xz::streams(&v).is_ok() {
        let _ = crate::xz::unpack(std::path::Path::new("fuzz.xz"), &v);
    }
}
