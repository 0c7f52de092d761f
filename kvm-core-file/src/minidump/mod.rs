//! FreeBSD minidumps (`"minidump FreeBSD/<arch>"`): the kernel's message
//! buffer, its `dump_avail` ranges, a bitmap of the physical pages
//! written, the leaf level of the kernel's page tables over all of KVA,
//! then the pages themselves in bitmap order (FORMATS.md §3.3–3.5; per
//! FreeBSD's `sys/<arch>/<arch>/minidump_machdep.c` and libkvm's
//! `kvm_minidump_<arch>.c`). amd64 versions 1–3, arm64 1–3, i386 1–2.
//!
//! A minidump translates kernel addresses with its own page-table section
//! ([`Source::translator`]); user space is never in it.

mod bitmap;
mod header;
mod translate;
mod walk;

pub use header::{arch_of, Header};

use crate::{ReadAt, Result};
use alloc::format;
use alloc::vec::Vec;
use bitmap::Bitmap;
use kvm_core::{
    Endian, Error, MapRange, OsHint, PhysAddr, PhysRead, Source, SourceInfo, Translate,
};

/// The format name `kvm info` prints.
pub const FORMAT: &str = "freebsd-minidump";

/// A FreeBSD minidump.
#[derive(Debug)]
pub struct MinidumpDump<R> {
    file: R,
    header: Header,
    info: SourceInfo,
    bitmap: Bitmap,
    ranges: Vec<MapRange>,
    /// File offsets of the message buffer, page tables and page data.
    msgbuf_off: u64,
    pmap_off: u64,
    sparse_off: u64,
}

impl<R: ReadAt> MinidumpDump<R> {
    /// Reads the header, `dump_avail` and the bitmap (sections checked
    /// against the file size before they are read).
    pub fn open(file: R) -> Result<Self> {
        let mut first = [0u8; 80];
        file.read_exact_at(0, &mut first, "FreeBSD minidump header truncated")?;
        let h = Header::parse(&first)?;
        let msgbuf_off = h.page;
        let avail_off = add(msgbuf_off, h.round(h.msgbufsize)?)?;
        let bitmap_off = add(avail_off, h.round(h.dumpavailsize)?)?;
        let pmap_off = add(bitmap_off, h.round(h.bitmapsize)?)?;
        let sparse_off = add(pmap_off, h.round(h.pmapsize)?)?;
        if sparse_off > file.size() {
            return Err(Error::Malformed(
                "FreeBSD minidump sections extend past the end of the file",
            ));
        }
        let avail = match h.dumpavailsize {
            0 => None,
            n => Some(bitmap::avail_ranges(
                &file.read_vec_at(avail_off, n, "FreeBSD minidump dump_avail truncated")?,
                h.page,
            )?),
        };
        if let Some(a) = &avail {
            // The kernel sizes the bitmap for the pages dump_avail lists
            // (a bit each, in longs, rounded to a page: FreeBSD's
            // minidumpsys); one larger is a damaged header, not memory.
            // (avail_ranges checked that the sum fits.)
            let pages: u64 = a.iter().map(|&(_, n)| n).sum();
            let most = pages.div_ceil(64).saturating_mul(8);
            if h.bitmapsize > h.round(most)? {
                return Err(Error::Malformed(
                    "FreeBSD minidump bitmap larger than the memory dump_avail lists",
                ));
            }
        }
        let bitmap = Bitmap::read(&file, bitmap_off, h.bitmapsize, avail.as_deref(), h.page)?;
        let mut info = SourceInfo {
            arch: Some(h.arch),
            page_size: Some(h.page),
            os: Some(OsHint::FreeBsd),
            ..SourceInfo::new(FORMAT, Endian::Little)
        };
        let pages = bitmap.count();
        let wanted = pages.saturating_mul(h.page);
        let held = file.size() - sparse_off;
        if wanted > held {
            info.incomplete = true;
            info.remarks.push(format!(
                "truncated: the file ends {} bytes short of the {pages} pages the bitmap lists",
                wanted - held
            ));
        }
        let ranges = bitmap
            .ranges()
            .into_iter()
            .filter_map(|mut r| {
                // Page slots to file offsets; runs cut at the end of the file.
                let off = sparse_off.checked_add(r.value.checked_mul(h.page)?)?;
                r.len = r.len.min(file.size().checked_sub(off)?);
                r.value = off;
                (r.len > 0).then_some(r)
            })
            .collect();
        Ok(MinidumpDump {
            file,
            header: h,
            info,
            bitmap,
            ranges,
            msgbuf_off,
            pmap_off,
            sparse_off,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The kernel message buffer section (`msgbufsize` bytes: the
    /// `struct msgbuf` and its text, as the kernel left them).
    pub fn msgbuf(&self) -> Result<Vec<u8>> {
        self.file.read_vec_at(
            self.msgbuf_off,
            self.header.msgbufsize,
            "FreeBSD minidump message buffer truncated",
        )
    }

    /// The file offset of the page at `pa`, if held and (at least its
    /// start) in the file: a file cut mid-page keeps the first part.
    fn offset(&self, pa: u64) -> Option<u64> {
        let slot = self.bitmap.slot(pa)?;
        let off = self
            .sparse_off
            .checked_add(slot.checked_mul(self.header.page)?)?;
        (off < self.file.size()).then_some(off)
    }

    /// Page-table entry `i` of the page-table section, if inside it.
    fn pmap_entry(&self, i: u64) -> Result<Option<u64>> {
        let size = self.header.entry_size();
        if i >= self.header.pmapsize / size {
            return Ok(None);
        }
        let mut b = [0u8; 8];
        let b = &mut b[..size as usize];
        self.file.read_exact_at(
            self.pmap_off + i * size,
            b,
            "FreeBSD minidump page-table section truncated",
        )?;
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(b);
        Ok(Some(u64::from_le_bytes(a)))
    }
}

fn add(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or(Error::Malformed(
        "FreeBSD minidump section offsets overflow",
    ))
}

impl<R: ReadAt> PhysRead for MinidumpDump<R> {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        let page = self.header.page;
        let mut done = 0usize;
        while done < buf.len() {
            let Some(at) = pa.0.checked_add(done as u64) else {
                break;
            };
            let Some(off) = self.offset(at) else {
                break;
            };
            let within = at % page;
            let n = usize::try_from(page - within)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            let got = self.file.read_at(off + within, &mut buf[done..done + n])?;
            done += got;
            if got < n {
                break;
            }
        }
        if done == 0 && !buf.is_empty() {
            return Err(Error::NotInMemory { pa: pa.0 });
        }
        Ok(done)
    }
}

impl<R: ReadAt + Send + Sync + core::fmt::Debug> Source for MinidumpDump<R> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &self.ranges
    }
    fn translator(&self) -> Option<&dyn Translate> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
