//! Unpacking test data sparsely: the real dumps are mostly zero-filled
//! holes, so a copy that seeks over zero blocks costs little disk.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Copies `r` into a new file `to`, leaving zero blocks as holes.
pub fn sparse_copy(mut r: impl Read, to: &Path) {
    let mut w = std::fs::File::create(to).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            w.seek(SeekFrom::Current(n as i64)).unwrap();
        } else {
            w.write_all(&buf[..n]).unwrap();
        }
        len += n as u64;
    }
    w.set_len(len).unwrap();
}
