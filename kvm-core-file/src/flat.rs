//! makedumpfile's flattened format (`makedumpfile -F`, QEMU `kdump-zlib`,
//! `kdump-lzo`, `kdump-snappy`), read in place (FORMATS.md §1.9).
//!
//! The stream is a 4096-byte flat header followed by records (logical
//! offset, size, bytes). Opening scans the record headers once — O(number
//! of records), skipping the data — and builds an interval map from logical
//! offsets to stream offsets in which later records overwrite earlier ones.
//! [`FlatReader`] then serves the logical file as a [`ReadAt`]; bytes no
//! record wrote read as zero.

use crate::{Error, ReadAt, Result};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use kvm_core::MapRange;

/// The 16-byte signature: "makedumpfile" and four NUL bytes.
pub const FLAT_SIGNATURE: &[u8; 16] = b"makedumpfile\0\0\0\0";
/// Size of the flat header; the first record follows it.
pub const FLAT_HEADER_SIZE: u64 = 4096;
/// Size of a record header (big-endian offset and size).
const RECORD_HEADER: u64 = 16;
/// Bytes read at a time while scanning record headers.
const SCAN_CHUNK: usize = 1 << 20;
/// After a record at least this long, only the next record header is
/// read (one small read beats copying a chunk of data to find it).
const BIG_RECORD: u64 = 8 << 10;

/// A flattened kdump stream seen as the logical (rebuilt) file.
#[derive(Debug)]
pub struct FlatReader<R> {
    stream: R,
    /// Logical ranges, sorted and disjoint; `value` is the stream offset.
    map: Vec<MapRange>,
    /// Logical file size: the end of the furthest record.
    size: u64,
    records: u64,
}

fn be64(b: &[u8]) -> Option<u64> {
    let mut a = [0u8; 8];
    a.copy_from_slice(b.get(..8)?);
    Some(u64::from_be_bytes(a))
}

/// Whether `r` starts with the flattened-format signature.
pub fn is_flattened<R: ReadAt + ?Sized>(r: &R) -> Result<bool> {
    let mut sig = [0u8; 16];
    let n = r.read_at(0, &mut sig)?;
    Ok(n == sig.len() && &sig == FLAT_SIGNATURE)
}

impl<R: ReadAt> FlatReader<R> {
    /// Checks the flat header and indexes the records.
    pub fn open(stream: R) -> Result<Self> {
        let mut hdr = [0u8; 32];
        stream.read_exact_at(0, &mut hdr, "flattened kdump header truncated")?;
        if &hdr[..16] != FLAT_SIGNATURE {
            return Err(Error::Malformed("flattened kdump signature missing"));
        }
        if be64(&hdr[16..]) != Some(1) {
            return Err(Error::Malformed("flattened kdump header type is not 1"));
        }
        if be64(&hdr[24..]) != Some(1) {
            return Err(Error::Malformed("flattened kdump header version is not 1"));
        }
        let total = stream.size();
        if total < FLAT_HEADER_SIZE {
            return Err(Error::Malformed("flattened kdump header truncated"));
        }
        // Disjoint logical intervals: start -> (end, stream offset of start).
        let mut map: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        let mut pos = FLAT_HEADER_SIZE;
        let mut size = 0u64;
        let mut records = 0u64;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_at = 0u64;
        let mut last_len = 0u64;
        loop {
            if pos == total {
                break; // end of the stream without an end marker
            }
            let chunk = if last_len >= BIG_RECORD {
                RECORD_HEADER as usize
            } else {
                SCAN_CHUNK
            };
            let rh = record_header(&stream, pos, total, chunk, &mut buf, &mut buf_at)?;
            let (off, len) = (rh[0], rh[1]);
            if off == u64::MAX {
                break; // end marker (offset -1)
            }
            if i64::try_from(off).is_err() {
                return Err(Error::Malformed("flattened kdump record offset negative"));
            }
            if len == 0 || i64::try_from(len).is_err() {
                return Err(Error::Malformed("flattened kdump record size not positive"));
            }
            let end = off
                .checked_add(len)
                .filter(|&e| i64::try_from(e).is_ok())
                .ok_or(Error::Malformed("flattened kdump record wraps around"))?;
            let data = pos + RECORD_HEADER;
            let next = data
                .checked_add(len)
                .filter(|&n| n <= total)
                .ok_or(Error::Malformed(
                    "flattened kdump stream ends inside a record",
                ))?;
            insert(&mut map, off, end, data);
            size = size.max(end);
            records += 1;
            last_len = len;
            pos = next;
        }
        let map = map
            .into_iter()
            .map(|(start, (end, value))| MapRange {
                start,
                len: end - start,
                value,
            })
            .collect();
        Ok(FlatReader {
            stream,
            map,
            size,
            records,
        })
    }

    /// The number of data records.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The logical ranges that records wrote, sorted; `value` is the
    /// stream offset of `start`.
    pub fn ranges(&self) -> &[MapRange] {
        &self.map
    }

    /// The flattened stream.
    pub fn stream(&self) -> &R {
        &self.stream
    }

    /// Size of the flattened stream in bytes (what is really stored, as
    /// opposed to [`ReadAt::size`], the logical size).
    pub fn stream_size(&self) -> u64 {
        self.stream.size()
    }
}

/// Reads the 16-byte record header at `pos` through a read-ahead buffer
/// refilled `chunk` bytes at a time.
fn record_header<R: ReadAt>(
    stream: &R,
    pos: u64,
    total: u64,
    chunk: usize,
    buf: &mut Vec<u8>,
    buf_at: &mut u64,
) -> Result<[u64; 2]> {
    let short = Error::Malformed("flattened kdump stream ends inside a record header");
    if total - pos < RECORD_HEADER {
        return Err(short);
    }
    let in_buf = pos >= *buf_at && pos - *buf_at + RECORD_HEADER <= buf.len() as u64;
    if !in_buf {
        let want = (total - pos).min(chunk as u64) as usize;
        buf.resize(want, 0);
        let n = stream.read_at(pos, buf)?;
        buf.truncate(n);
        *buf_at = pos;
        if (n as u64) < RECORD_HEADER {
            return Err(short);
        }
    }
    let i = (pos - *buf_at) as usize;
    let h = buf.get(i..i + 16).ok_or(short)?;
    Ok([be64(h).ok_or(short)?, be64(&h[8..]).ok_or(short)?])
}

/// Inserts `[start, end)` → `data`, trimming whatever it overlaps (later
/// records win).
fn insert(map: &mut BTreeMap<u64, (u64, u64)>, start: u64, end: u64, data: u64) {
    // An interval starting before `start` may reach into the new one.
    if let Some((&s, &(e, v))) = map.range(..start).next_back() {
        if e > start {
            map.insert(s, (start, v));
            if e > end {
                // The new record punches a hole in the middle.
                map.insert(end, (e, v + (end - s)));
            }
        }
    }
    // Intervals starting inside the new one are dropped or cut at `end`.
    let inside: Vec<u64> = map.range(start..end).map(|(&s, _)| s).collect();
    for s in inside {
        if let Some((e, v)) = map.remove(&s) {
            if e > end {
                map.insert(end, (e, v + (end - s)));
            }
        }
    }
    map.insert(start, (end, data));
}

impl<R: ReadAt> ReadAt for FlatReader<R> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        if off >= self.size {
            return Ok(0);
        }
        let want = usize::try_from(self.size - off)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let buf = &mut buf[..want];
        let mut done = 0usize;
        while done < buf.len() {
            let at = off + done as u64;
            let rest = &mut buf[done..];
            let n = match MapRange::find(&self.map, at) {
                Some((r, o)) => {
                    let n = usize::try_from(r.len - o)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let got = self.stream.read_at(r.value + o, &mut rest[..n])?;
                    if got < n {
                        // The stream shrank under us: stop short.
                        return Ok(done + got);
                    }
                    n
                }
                None => {
                    // Never written: zeros up to the next record.
                    let next = MapRange::next_after(&self.map, at).map_or(self.size, |r| r.start);
                    let n = usize::try_from(next - at)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    rest[..n].fill(0);
                    n
                }
            };
            done += n;
        }
        Ok(done)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn stream(records: &[(u64, &[u8])], end_marker: bool) -> Vec<u8> {
        let mut s = vec![0u8; 4096];
        s[..16].copy_from_slice(FLAT_SIGNATURE);
        s[16..24].copy_from_slice(&1u64.to_be_bytes());
        s[24..32].copy_from_slice(&1u64.to_be_bytes());
        for (off, data) in records {
            s.extend_from_slice(&off.to_be_bytes());
            s.extend_from_slice(&(data.len() as u64).to_be_bytes());
            s.extend_from_slice(data);
        }
        if end_marker {
            s.extend_from_slice(&[0xff; 16]);
        }
        s
    }

    fn logical(f: &FlatReader<Vec<u8>>) -> Vec<u8> {
        let mut v = vec![0u8; f.size() as usize];
        assert_eq!(f.read_at(0, &mut v).unwrap(), v.len());
        v
    }

    #[test]
    fn later_records_win() {
        let s = stream(
            &[
                (0, b"aaaaaaaa"),
                (10, b"bbbb"),
                (2, b"CC"),
                (6, b"DDDDDD"),
                (20, b"e"),
                (13, b"F"),
            ],
            true,
        );
        let f = FlatReader::open(s).unwrap();
        assert_eq!(f.records(), 6);
        assert_eq!(&logical(&f), b"aaCCaaDDDDDDbF\0\0\0\0\0\0e");
        // Reads starting anywhere agree with the whole.
        let whole = logical(&f);
        for at in 0..whole.len() {
            let mut b = [0u8; 5];
            let n = f.read_at(at as u64, &mut b).unwrap();
            assert_eq!(&b[..n], &whole[at..(at + 5).min(whole.len())]);
        }
        assert_eq!(f.read_at(100, &mut [0u8; 4]).unwrap(), 0);
    }

    #[test]
    fn hole_punching_and_covering() {
        let s = stream(
            &[(0, b"0123456789"), (3, b"xy"), (0, b"ABCDEFGHIJKL")],
            false,
        );
        let f = FlatReader::open(s).unwrap();
        assert_eq!(&logical(&f), b"ABCDEFGHIJKL");
        assert_eq!(f.ranges().len(), 1);
        let s = stream(&[(0, b"0123456789"), (3, b"xy")], false);
        let f = FlatReader::open(s).unwrap();
        assert_eq!(&logical(&f), b"012xy56789");
        assert_eq!(f.ranges().len(), 3);
    }

    #[test]
    fn malformed_streams() {
        let good = stream(&[(0, b"abcd")], true);
        assert!(FlatReader::open(good.clone()).is_ok());
        let mut bad = good.clone();
        bad[23] = 2; // type
        assert!(FlatReader::open(bad).is_err());
        let mut bad = good.clone();
        bad[31] = 9; // version
        assert!(FlatReader::open(bad).is_err());
        // Cut inside the record data and inside the record header.
        for cut in [4097, 4100, 4096 + 16 + 2] {
            assert!(FlatReader::open(good[..cut].to_vec()).is_err(), "{cut}");
        }
        // Zero and negative sizes, negative offsets, wrapping.
        for (off, size) in [
            (0u64, 0u64),
            (0, 1 << 63),
            (1 << 63, 4),
            (i64::MAX as u64, 4),
        ] {
            let mut s = stream(&[], false);
            s.extend_from_slice(&off.to_be_bytes());
            s.extend_from_slice(&size.to_be_bytes());
            s.extend_from_slice(b"abcd");
            assert!(FlatReader::open(s).is_err(), "{off:#x} {size:#x}");
        }
        assert!(FlatReader::open(vec![0u8; 100]).is_err());
    }
}
