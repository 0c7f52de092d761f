//! The real dumps, unpacked once per target directory.
//!
//! [`unpack`] writes `CARGO_TARGET_TMPDIR/freebsd/<name>` from
//! `tests/data/freebsd/<name>.bz2`, sparsely (zero 64 KiB blocks become
//! holes: the dumps are mostly holes), under a unique name then renamed,
//! so that tests running at once never see a half-written file; a file
//! already there with the expected size is reused. kvm's
//! `tests/freebsd.rs` unpacks into the same place with the same names, so
//! either crate's tests reuse the other's copy. Copy this module to unpack
//! them from another crate's tests.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/freebsd");

/// The three dumps and their unpacked sizes (SOURCE.md).
pub const AMD64_FULL: (&str, u64) = ("vmcore-amd64-full", 127_043_584);
pub const AMD64_MINI: (&str, u64) = ("vmcore-amd64-minidump", 101_685_248);
pub const ARM64_MINI: (&str, u64) = ("vmcore-arm64-minidump", 76_643_328);

/// The path of dump `(name, size)` unpacked.
pub fn unpack((name, size): (&str, u64)) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("freebsd");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    if std::fs::metadata(&out).is_ok_and(|m| m.len() == size) {
        return out;
    }
    let f = std::fs::File::open(Path::new(DATA).join(format!("{name}.bz2"))).unwrap();
    let mut r = bzip2::read::BzDecoder::new(std::io::BufReader::new(f));
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{name}.{}.{n}.part", std::process::id()));
    let mut w = std::fs::File::create(&tmp).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        // Fill the block (read may return less) so zero blocks are seen whole.
        let mut got = 0;
        while got < buf.len() {
            match r.read(&mut buf[got..]).unwrap() {
                0 => break,
                k => got += k,
            }
        }
        if got == 0 {
            break;
        }
        if buf[..got].iter().all(|&b| b == 0) {
            w.seek(SeekFrom::Current(got as i64)).unwrap();
        } else {
            w.write_all(&buf[..got]).unwrap();
        }
        len += got as u64;
    }
    w.set_len(len).unwrap();
    drop(w);
    assert_eq!(len, size, "{name}: unpacked size");
    std::fs::rename(&tmp, &out).unwrap();
    // kvm's tests/freebsd.rs marks a finished copy so.
    let _ = std::fs::write(dir.join(format!("{name}.done")), b"");
    out
}
