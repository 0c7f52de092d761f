//! Page compression of kdump-compressed files (FORMATS.md §1.7): zlib,
//! LZO1X, snappy (raw block format) and zstd (one frame).
//!
//! Decoders write into a caller-supplied buffer of exactly one page and fail
//! unless the page decodes to exactly that many bytes, so a hostile page can
//! neither grow a buffer nor leave stale bytes behind. The zstd decoder's
//! window is capped at [`MAX_ZSTD_WINDOW`] before it allocates.

use crate::{Error, Result};

/// Largest zstd window a page may declare (pages are at most 1 MiB).
pub const MAX_ZSTD_WINDOW: u64 = 8 << 20;

/// How a kdump page is stored; the values are the page descriptor's (and
/// the header status') flag bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Stored as is.
    None,
    /// zlib stream (RFC 1950), `DUMP_DH_COMPRESSED_ZLIB` (0x1).
    Zlib,
    /// LZO1X, `DUMP_DH_COMPRESSED_LZO` (0x2).
    Lzo,
    /// Raw snappy block, `DUMP_DH_COMPRESSED_SNAPPY` (0x4).
    Snappy,
    /// One zstd frame, `DUMP_DH_COMPRESSED_ZSTD` (0x20).
    Zstd,
}

impl Compression {
    /// Every method, `None` first.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Zlib,
        Compression::Lzo,
        Compression::Snappy,
        Compression::Zstd,
    ];

    /// The descriptor flag bit (0 for [`Compression::None`]).
    pub fn flag(self) -> u32 {
        match self {
            Compression::None => 0,
            Compression::Zlib => 0x1,
            Compression::Lzo => 0x2,
            Compression::Snappy => 0x4,
            Compression::Zstd => 0x20,
        }
    }

    /// Decodes a page descriptor's `flags`: one known bit at most.
    pub fn from_flags(flags: u32) -> Result<Compression> {
        const KNOWN: u32 = 0x1 | 0x2 | 0x4 | 0x20;
        if flags & !KNOWN != 0 {
            return Err(Error::Unsupported(
                "kdump page descriptor with an unknown compression flag",
            ));
        }
        Ok(match flags {
            0 => Compression::None,
            0x1 => Compression::Zlib,
            0x2 => Compression::Lzo,
            0x4 => Compression::Snappy,
            0x20 => Compression::Zstd,
            _ => {
                return Err(Error::Malformed(
                    "kdump page descriptor with more than one compression flag",
                ))
            }
        })
    }

    /// A short name: "none", "zlib", "lzo", "snappy", "zstd".
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Lzo => "lzo",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
        }
    }
}

/// Decodes `src` into `dst`, which must come out exactly full.
pub fn decompress(c: Compression, src: &[u8], dst: &mut [u8]) -> Result<()> {
    let n = match c {
        Compression::None => {
            if src.len() != dst.len() {
                return Err(Error::Malformed(
                    "kdump raw page whose size is not the block size",
                ));
            }
            dst.copy_from_slice(src);
            src.len()
        }
        Compression::Zlib => miniz_oxide::inflate::decompress_slice_iter_to_slice(
            dst,
            core::iter::once(src),
            true,
            false,
        )
        .map_err(|_| Error::Malformed("kdump zlib page does not decompress to one page"))?,
        Compression::Lzo => lzo::decompress_into(src, dst)
            .map_err(|_| Error::Malformed("kdump LZO page does not decompress to one page"))?,
        Compression::Snappy => snappy(src, dst)?,
        Compression::Zstd => zstd(src, dst)?,
    };
    if n != dst.len() {
        return Err(Error::Malformed(
            "kdump page decompresses to less than the block size",
        ));
    }
    Ok(())
}

#[cfg(feature = "std")]
fn snappy(src: &[u8], dst: &mut [u8]) -> Result<usize> {
    let bad = Error::Malformed("kdump snappy page does not decompress to one page");
    if snap::raw::decompress_len(src).map_err(|_| bad)? != dst.len() {
        return Err(bad);
    }
    snap::raw::Decoder::new()
        .decompress(src, dst)
        .map_err(|_| bad)
}

#[cfg(not(feature = "std"))]
fn snappy(_src: &[u8], _dst: &mut [u8]) -> Result<usize> {
    Err(Error::Unsupported(
        "snappy-compressed kdump pages need the std feature",
    ))
}

fn zstd(src: &[u8], dst: &mut [u8]) -> Result<usize> {
    use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
    use ruzstd::io::Read;
    let bad = Error::Malformed("kdump zstd page does not decompress to one page");
    let mut input = src;
    let mut d = FrameDecoder::new();
    d.set_max_window_size(MAX_ZSTD_WINDOW);
    d.init(&mut input).map_err(|_| bad)?;
    if d.content_size() != 0 && d.content_size() != dst.len() as u64 {
        return Err(bad);
    }
    // Decode at most one page (plus the block that crosses it).
    let limit = dst.len().saturating_add(1);
    d.decode_blocks(&mut input, BlockDecodingStrategy::UptoBytes(limit))
        .map_err(|_| bad)?;
    if !d.is_finished() || d.can_collect() != dst.len() || !input.is_empty() {
        return Err(bad);
    }
    let mut done = 0;
    while done < dst.len() {
        match d.read(dst.get_mut(done..).unwrap_or_default()) {
            Ok(0) | Err(_) => return Err(bad),
            Ok(n) => done += n,
        }
    }
    Ok(done)
}

/// Compresses one page; `None` when the result would not be smaller than
/// the page (makedumpfile then stores the page raw).
#[cfg(feature = "std")]
pub fn compress(c: Compression, page: &[u8]) -> Option<alloc::vec::Vec<u8>> {
    let out = match c {
        Compression::None => return None,
        // makedumpfile calls compress2(..., Z_BEST_SPEED).
        Compression::Zlib => miniz_oxide::deflate::compress_to_vec_zlib(page, 1),
        Compression::Lzo => lzokay_native::compress(page).ok()?,
        Compression::Snappy => snap::raw::Encoder::new().compress_vec(page).ok()?,
        Compression::Zstd => {
            ruzstd::encoding::compress_to_vec(page, ruzstd::encoding::CompressionLevel::Fastest)
        }
    };
    (out.len() < page.len()).then_some(out)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn page() -> Vec<u8> {
        (0..4096u32)
            .map(|i| (i / 7 % 13) as u8 ^ (i >> 9) as u8)
            .collect()
    }

    #[test]
    fn round_trip_every_method() {
        let p = page();
        for c in Compression::ALL {
            let mut out = alloc::vec![0u8; 4096];
            match compress(c, &p) {
                Some(z) => {
                    assert!(z.len() < p.len(), "{c:?}");
                    decompress(c, &z, &mut out).unwrap();
                }
                None => {
                    assert_eq!(c, Compression::None);
                    decompress(c, &p, &mut out).unwrap();
                }
            }
            assert_eq!(out, p, "{c:?}");
            assert_eq!(Compression::from_flags(c.flag()), Ok(c));
        }
    }

    #[test]
    fn wrong_sizes_and_garbage_fail() {
        let p = page();
        for c in Compression::ALL.into_iter().skip(1) {
            let z = compress(c, &p).unwrap();
            // Output one byte short or long: an error, never a panic.
            let mut small = alloc::vec![0u8; 4095];
            assert!(decompress(c, &z, &mut small).is_err(), "{c:?} short");
            let mut big = alloc::vec![0u8; 4097];
            assert!(decompress(c, &z, &mut big).is_err(), "{c:?} long");
            // Truncated and bit-flipped input.
            let mut out = alloc::vec![0u8; 4096];
            for cut in [0, 1, z.len() / 2, z.len() - 1] {
                assert!(
                    decompress(c, &z[..cut], &mut out).is_err(),
                    "{c:?} cut {cut}"
                );
            }
            for i in 0..z.len().min(64) {
                let mut f = z.clone();
                f[i] ^= 0x5a;
                let _ = decompress(c, &f, &mut out);
            }
        }
        assert!(Compression::from_flags(0x3).is_err());
        assert!(Compression::from_flags(0x40).is_err());
        // Incompressible data is not stored compressed.
        let mut x = 0x1234_5678_9abc_def1u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(compress(Compression::Snappy, &noise), None);
    }
}
