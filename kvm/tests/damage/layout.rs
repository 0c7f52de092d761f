//! Where each fixture format keeps its headers and tables: the bytes the
//! sweep flips (every byte of the headers) and the offsets it cuts the
//! file at (every header and table boundary, and every 4 KiB of the
//! first 64 KiB). Read from the intact file's own fields, as FORMATS.md
//! lays each format out.

use std::ops::Range;

/// A fixture's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// kdump-compressed, plain.
    Kdump,
    /// kdump-compressed, flattened (makedumpfile -F).
    Flat,
    /// ELF core (Linux, FreeBSD full dumps).
    Elf,
    /// LiME.
    Lime,
    /// A whole-file `.xz`.
    Xz,
    /// FreeBSD minidump.
    Minidump,
    /// OpenBSD savecore kcore.
    OpenBsd,
}

/// What to damage.
#[derive(Debug, Default)]
pub struct Spots {
    /// Byte ranges whose every byte is flipped, one at a time.
    pub header: Vec<Range<u64>>,
    /// Lengths the file is cut to.
    pub cuts: Vec<u64>,
}

fn u16le(b: &[u8], at: u64) -> u64 {
    b.get(at as usize..at as usize + 2)
        .map_or(0, |v| u64::from(u16::from_le_bytes([v[0], v[1]])))
}
fn u32le(b: &[u8], at: u64) -> u64 {
    b.get(at as usize..at as usize + 4)
        .map_or(0, |v| u64::from(u32::from_le_bytes(v.try_into().unwrap())))
}
fn u64le(b: &[u8], at: u64) -> u64 {
    b.get(at as usize..at as usize + 8)
        .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()))
}
fn u64be(b: &[u8], at: u64) -> u64 {
    b.get(at as usize..at as usize + 8)
        .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()))
}
fn page(v: u64) -> u64 {
    v.next_multiple_of(4096)
}

/// The spots of a file of kind `k` and `len` bytes that starts with `b`
/// (all of it, or the first MiB of a large sparse one).
pub fn spots(k: Kind, b: &[u8], len: u64) -> Spots {
    let mut s = Spots::default();
    match k {
        Kind::Kdump => kdump(b, 0, &mut s),
        Kind::Flat => {
            s.header.push(0..32);
            s.cuts.push(4096);
            // The first records: their 16-byte headers (offset, size,
            // big-endian), the kdump header inside the first.
            let mut at = 4096;
            for _ in 0..16 {
                if at + 16 > len {
                    break;
                }
                s.header.push(at..at + 16);
                let size = u64be(b, at + 8);
                s.cuts.extend([at + 8, at + 16]);
                at = match (at + 16).checked_add(size) {
                    Some(n) if n <= len => n,
                    _ => break,
                };
            }
            s.cuts.extend([len - 16, len - 8]);
        }
        Kind::Elf => {
            let (phoff, entsize, phnum) = (u64le(b, 32), u16le(b, 54), u16le(b, 56));
            s.header.push(0..64);
            s.header.push(phoff..phoff + entsize * phnum);
            s.cuts.extend([52, 64, phoff + entsize * phnum]);
            for i in 0..phnum.min(16) {
                let h = phoff + i * entsize;
                s.cuts.push(h + entsize / 2);
                let (off, size) = (u64le(b, h + 8), u64le(b, h + 32));
                s.cuts.extend([off, off + size / 2, off + size]);
            }
        }
        Kind::Lime => {
            let mut at = 0;
            for _ in 0..64 {
                if at + 32 > len {
                    break;
                }
                s.header.push(at..at + 32);
                s.cuts.extend([at + 16, at + 32]);
                let (start, end) = (u64le(b, at + 8), u64le(b, at + 16));
                at = match end
                    .checked_sub(start)
                    .and_then(|n| (at + 33).checked_add(n))
                {
                    Some(n) if n <= len => n,
                    _ => break,
                };
                s.cuts.push(at - 1);
            }
        }
        Kind::Xz => {
            // Stream header, the first block's header, the index and the
            // stream footer.
            let block = 12 + (u64::from(b[12]) + 1) * 4;
            let backward = u32le(b, len - 8);
            let index = len - 12 - (backward + 1) * 4;
            s.header.extend([0..block, index..len]);
            s.cuts
                .extend([6, 12, block, index, index + 1, len - 12, len - 2]);
        }
        Kind::Minidump => {
            s.header.push(0..128);
            // Header page, message buffer, dump_avail, bitmap, page
            // tables (amd64 and arm64 lay the sizes out alike first).
            let (msgbuf, bitmap, pmap) = (u32le(b, 28), u32le(b, 32), u32le(b, 36));
            let avail = if &b[..22] == b"minidump FreeBSD/arm64" {
                u32le(b, 72)
            } else if u32le(b, 24) >= 3 {
                u32le(b, 64)
            } else {
                0
            };
            let mut at = 4096;
            for size in [msgbuf, avail, bitmap, pmap] {
                s.cuts.push(at + size / 2);
                at += page(size);
                s.cuts.push(at);
            }
        }
        Kind::OpenBsd => {
            s.header.push(0..512);
            s.cuts.extend([8, 12, 20, 512, 1024]);
        }
    }
    s.cuts.extend((4096..=65536).step_by(4096));
    s.cuts.push(len - 1);
    s.cuts.retain(|&c| c > 0 && c < len);
    s.cuts.sort_unstable();
    s.cuts.dedup();
    for r in &mut s.header {
        r.end = r.end.min(len);
    }
    s
}

/// A plain kdump at `base`: the main header's fields (the 64-bit
/// layout: block size at 428, sub header blocks at 432, bitmap blocks
/// at 436), the sub header, the two bitmaps, the descriptor table
/// (popcount of the second bitmap × 24 bytes) and the first page's data.
fn kdump(b: &[u8], base: u64, s: &mut Spots) {
    let bs = u32le(b, base + 428);
    let sub = u32le(b, base + 432);
    let bitmap_blocks = u32le(b, base + 436);
    s.header
        .extend([base..base + 464, base + bs..base + bs + 104]);
    let bitmaps = base + (1 + sub) * bs;
    let half = bitmap_blocks * bs / 2;
    let second = &b[(bitmaps + half) as usize..(bitmaps + 2 * half).min(b.len() as u64) as usize];
    let descs: u64 = second.iter().map(|v| u64::from(v.count_ones())).sum();
    let table = bitmaps + 2 * half;
    let first_data = u64le(b, table);
    s.cuts.extend([
        base + 8,
        base + 432,
        base + bs,
        base + bs + 52,
        bitmaps,
        bitmaps + half,
        table,
        table + 12,
        table + descs * 24 / 2,
        table + descs * 24,
        first_data,
        first_data + 100,
    ]);
}
