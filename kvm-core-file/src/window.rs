//! A window onto part of a file: `len` bytes from `start`, read as a file
//! of its own (the body of a FreeBSD dump-device image, between its
//! headers).

use crate::{ReadAt, Result};

/// `len` bytes of `inner` from `start`, seen as a file that begins at 0.
///
/// The window ends early where `inner` does; reads never reach outside it.
#[derive(Debug)]
pub struct Window<R> {
    inner: R,
    start: u64,
    size: u64,
}

impl<R: ReadAt> Window<R> {
    /// The bytes `[start, start + len)` of `inner` (clipped to its end).
    pub fn new(inner: R, start: u64, len: u64) -> Self {
        let size = inner.size().saturating_sub(start).min(len);
        Window { inner, start, size }
    }

    /// Where the window starts in the inner file.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The inner file.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: ReadAt> ReadAt for Window<R> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        if off >= self.size {
            return Ok(0);
        }
        let n = usize::try_from(self.size - off)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        // start + off ≤ start + size ≤ inner.size(): no overflow.
        self.inner.read_at(self.start + off, &mut buf[..n])
    }
    fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_to_window_and_file() {
        let data: alloc::vec::Vec<u8> = (0u8..100).collect();
        let w = Window::new(&data[..], 10, 20);
        assert_eq!(w.size(), 20);
        let mut b = [0u8; 8];
        assert_eq!(w.read_at(0, &mut b), Ok(8));
        assert_eq!(b[0], 10);
        assert_eq!(w.read_at(16, &mut b), Ok(4));
        assert_eq!(&b[..4], &[26, 27, 28, 29]);
        assert_eq!(w.read_at(20, &mut b), Ok(0));
        assert_eq!(w.read_at(u64::MAX, &mut b), Ok(0));
        // Past the end of the inner file.
        let w = Window::new(&data[..], 90, 20);
        assert_eq!(w.size(), 10);
        let w = Window::new(&data[..], 200, 20);
        assert_eq!(w.size(), 0);
        assert_eq!(w.read_at(0, &mut b), Ok(0));
    }
}
