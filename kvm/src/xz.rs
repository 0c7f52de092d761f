//! Whole-file `.xz` dumps (how small dumps are shipped), unpacked into
//! memory, bounded twice: by the size the file's own index states, read
//! from its end before anything is inflated (so a small file claiming a
//! huge dump is refused at once), and by [`MAX_XZ_DUMP`]. A stream that
//! inflates past what its index states is refused as damaged.
//!
//! The container's layout (stream header, blocks, index, stream footer,
//! stream padding) is the one in "The .xz File Format" 1.1.0, §2.1 and §4.

use crate::Error;
use kvm_core_file::ReadAt;
use std::path::Path;

/// The xz container's magic bytes (the stream header's first six).
pub(crate) const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
/// The stream footer's magic bytes (its last two).
const FOOTER_MAGIC: [u8; 2] = *b"YZ";
/// Stream header and footer size.
const EDGE: u64 = 12;
/// Largest stream index read.
const MAX_INDEX: u64 = 16 << 20;
/// Most stream padding taken between or after streams.
const MAX_PADDING: u64 = 1 << 20;
/// Largest dump unpacked from an .xz file into memory.
pub(crate) const MAX_XZ_DUMP: u64 = 256 << 20;

fn damaged(path: &Path, why: String) -> Error {
    Error::io(
        Some(path.to_path_buf()),
        std::io::Error::new(std::io::ErrorKind::InvalidData, why),
    )
}

/// A multibyte integer of the index (7 bits a byte, at most 9 bytes).
fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The streams of `f` (`[start, end)` in the file, in order) and the
/// uncompressed size their indexes state, read from the end of the file
/// backwards.
pub(crate) fn streams(f: &dyn ReadAt) -> Result<(Vec<(u64, u64)>, u64), String> {
    let mut end = f.size();
    let mut total = 0u64;
    let mut streams = Vec::new();
    let mut padding = 0u64;
    while end > 0 {
        // Stream padding: zero bytes in fours (xz writes none; more than
        // a MiB of it is not an .xz file's end).
        let mut word = [0u8; 4];
        if end >= 4 && f.read_exact_at(end - 4, &mut word, "").is_ok() && word == [0; 4] {
            end -= 4;
            padding += 4;
            if padding > MAX_PADDING {
                return Err("more than 1 MiB of zeros where a stream should end".into());
            }
            continue;
        }
        padding = 0;
        let stream_end = end;
        if end < 2 * EDGE {
            return Err(format!("{} bytes left before a stream's end", end));
        }
        let mut footer = [0u8; 12];
        f.read_exact_at(end - EDGE, &mut footer, "")
            .map_err(|e| format!("its stream footer cannot be read ({e})"))?;
        if footer[10..] != FOOTER_MAGIC {
            return Err("no stream footer at its end (cut short?)".into());
        }
        let backward = u64::from(u32::from_le_bytes(footer[4..8].try_into().expect("4")));
        let index_size = (backward + 1) * 4;
        // Ten bytes or so a block: an index of 16 MiB lists over a
        // million blocks, more than any dump kvm unpacks has.
        if index_size > MAX_INDEX {
            return Err("its index is larger than 16 MiB".into());
        }
        let index_start = (end - EDGE)
            .checked_sub(index_size)
            .filter(|&s| s >= EDGE)
            .ok_or("its index would start before the file")?;
        let index = f
            .read_vec_at(index_start, index_size, "")
            .map_err(|e| format!("its index cannot be read ({e})"))?;
        let mut at = 1;
        let records = match index.first() {
            Some(0) => varint(&index, &mut at).ok_or("its index is damaged")?,
            _ => return Err("its index is damaged (no index indicator)".into()),
        };
        // Each record is at least two bytes: a count beyond the index is
        // damage, not a reason to loop.
        if records > index_size / 2 {
            return Err("its index counts more blocks than it holds".into());
        }
        let mut blocks = 0u64;
        for _ in 0..records {
            let unpadded = varint(&index, &mut at).ok_or("its index is damaged")?;
            let size = varint(&index, &mut at).ok_or("its index is damaged")?;
            blocks = unpadded
                .checked_next_multiple_of(4)
                .and_then(|u| blocks.checked_add(u))
                .ok_or("its index is damaged")?;
            total = total.checked_add(size).ok_or("its index is damaged")?;
        }
        end = index_start
            .checked_sub(blocks)
            .and_then(|s| s.checked_sub(EDGE))
            .ok_or("its index describes more blocks than the file holds")?;
        let mut magic = [0u8; 6];
        f.read_exact_at(end, &mut magic, "")
            .map_err(|e| format!("a stream header cannot be read ({e})"))?;
        if magic != XZ_MAGIC {
            return Err("its index does not lead back to a stream header".into());
        }
        streams.push((end, stream_end));
        if streams.len() > 1 << 16 {
            return Err("more than 65,536 streams".into());
        }
    }
    streams.reverse();
    Ok((streams, total))
}

/// The uncompressed size all of `f`'s indexes state.
#[cfg(test)]
fn stated_size(f: &dyn ReadAt) -> Result<u64, String> {
    streams(f).map(|(_, total)| total)
}

/// The dump inside the `.xz` file `f` (at `path`).
pub(crate) fn unpack(path: &Path, f: &dyn ReadAt) -> Result<Vec<u8>, Error> {
    use std::io::Write;
    let (streams, stated) = streams(f).map_err(|why| damaged(path, format!("xz: {why}")))?;
    if stated > MAX_XZ_DUMP {
        return Err(damaged(
            path,
            format!(
                "xz: its index says it unpacks to {stated} bytes; kvm unpacks at most {} MiB of \
                 .xz into memory: unpack it (xz -dk) and open the result",
                MAX_XZ_DUMP >> 20
            ),
        ));
    }
    // Capped at the stated size: a stream that inflates past its own
    // index is damaged (or lying), and never costs more memory than it
    // claimed.
    struct Capped(Vec<u8>, usize);
    impl Write for Capped {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0.len() + b.len() > self.1 {
                return Err(std::io::Error::other(
                    "it inflates past the size its index states",
                ));
            }
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let stated = stated as usize;
    let mut out = Capped(Vec::with_capacity(stated), stated);
    // Each stream on its own (the decompressor reads one).
    for (at, end) in streams {
        let mut reader = Reader { f, at, end };
        lzma_rs::xz_decompress(&mut std::io::BufReader::new(&mut reader), &mut out)
            .map_err(|e| damaged(path, format!("xz: {e}")))?;
    }
    if out.0.len() != stated {
        return Err(damaged(
            path,
            format!(
                "xz: it unpacks to {} bytes, not the {stated} its index states",
                out.0.len()
            ),
        ));
    }
    Ok(out.0)
}

/// `[at, end)` of `f` as a stream, for the decompressor.
struct Reader<'a> {
    f: &'a dyn ReadAt,
    at: u64,
    end: u64,
}

impl std::io::Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = (self.end - self.at).min(buf.len() as u64) as usize;
        let n = self
            .f
            .read_at(self.at, &mut buf[..room])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `xz -c` of 100 zero bytes (xz 5.4, default options).
    fn small() -> Vec<u8> {
        let mut v = Vec::new();
        lzma_rs::xz_compress(&mut &[0u8; 100][..], &mut v).unwrap();
        v
    }

    #[test]
    fn the_index_states_the_size() {
        let x = small();
        assert_eq!(stated_size(&x), Ok(100));
        // Stream padding after the stream, and a second stream.
        let mut two = x.clone();
        two.extend([0; 8]);
        two.extend(&x);
        assert_eq!(stated_size(&two), Ok(200));
        let p = Path::new("t.xz");
        assert_eq!(unpack(p, &two).unwrap(), vec![0u8; 200]);
    }

    /// `x` (one stream, one block) with its index rewritten to state
    /// `size` uncompressed bytes (index and footer CRCs left stale: the
    /// size check comes before the decompressor's).
    fn claiming(x: &[u8], size: u64) -> Vec<u8> {
        let footer = x.len() - 12;
        let backward = u32::from_le_bytes(x[footer + 4..footer + 8].try_into().unwrap());
        let index = footer - (backward as usize + 1) * 4;
        let mut at = index + 2;
        let unpadded = varint(x, &mut at).unwrap();
        let mut new = vec![0u8, 1];
        for mut v in [unpadded, size] {
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                new.push(if v == 0 { b } else { b | 0x80 });
                if v == 0 {
                    break;
                }
            }
        }
        while new.len() % 4 != 0 {
            new.push(0);
        }
        new.extend([0; 4]); // CRC32
        let mut out = x[..index].to_vec();
        out.extend(&new);
        let mut f = x[footer..].to_vec();
        f[4..8].copy_from_slice(&((new.len() / 4 - 1) as u32).to_le_bytes());
        out.extend(f);
        out
    }

    #[test]
    fn damage_is_named() {
        let x = small();
        let cut = x[..x.len() - 1].to_vec();
        assert_eq!(
            stated_size(&cut),
            Err("no stream footer at its end (cut short?)".into())
        );
        // 1 GiB claimed by a file of 60-odd bytes: refused before any
        // inflating.
        let bomb = claiming(&x, 1 << 30);
        assert_eq!(stated_size(&bomb), Ok(1 << 30));
        let e = unpack(Path::new("bomb.xz"), &bomb).unwrap_err().to_string();
        assert!(
            e.starts_with("bomb.xz: xz: its index says it unpacks to 1073741824 bytes"),
            "{e}"
        );
        // Claiming less than it holds: stopped at the claim.
        let e = unpack(Path::new("less.xz"), &claiming(&x, 50))
            .unwrap_err()
            .to_string();
        assert!(e.contains("inflates past the size its index states"), "{e}");
        // A MiB of zeros after the stream.
        let mut zeros = x.clone();
        zeros.extend(vec![0u8; (1 << 20) + 4]);
        assert_eq!(
            stated_size(&zeros),
            Err("more than 1 MiB of zeros where a stream should end".into())
        );
        // A backward size of 2^32 - 1: a 16 GiB index, not read.
        let mut huge = x.clone();
        let n = huge.len();
        huge[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            stated_size(&huge),
            Err("its index is larger than 16 MiB".into())
        );
        // The index pointing before the file.
        let mut far = x.clone();
        let n = far.len();
        far[n - 8..n - 4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            stated_size(&far),
            Err("its index would start before the file".into())
        );
    }
}
