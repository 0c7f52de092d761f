//! Reading a page: its descriptor, its stored bytes (through the
//! read-ahead) and their decompression (through the page cache), over the
//! file plain or flattened.

use super::bitmap::{Bitmaps, PageState};
use super::cache::PageCache;
use super::header::{Fields, PageDesc, PAGE_DESC_SIZE};
use super::readahead::Streams;
use crate::codec::{self, Compression};
use crate::flat::FlatReader;
use crate::{ReadAt, Result};
use alloc::vec::Vec;
use kvm_core::{Endian, Error};

/// Largest read-ahead of the descriptor table (256 descriptors).
const DESC_WINDOW: usize = 256 * PAGE_DESC_SIZE as usize;
/// Largest read-ahead of page data.
const DATA_WINDOW: usize = 128 << 10;

/// The file under a kdump: plain, or flattened and rebuilt in place.
#[derive(Debug)]
pub(super) enum Container<R> {
    Plain(R),
    Flat(FlatReader<R>),
}

impl<R: ReadAt> ReadAt for Container<R> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        match self {
            Container::Plain(r) => r.read_at(off, buf),
            Container::Flat(f) => f.read_at(off, buf),
        }
    }
    fn size(&self) -> u64 {
        match self {
            Container::Plain(r) => r.size(),
            Container::Flat(f) => f.size(),
        }
    }
}

/// The pages of a kdump file: the file, the bitmaps and descriptors that
/// locate each page in it, and what its readers share.
#[derive(Debug)]
pub(super) struct Pages<R> {
    pub(super) file: Container<R>,
    pub(super) bitmaps: Bitmaps,
    /// Byte order of the descriptors (the dumped machine's).
    endian: Endian,
    /// The dump is marked incomplete: lost pages read as excluded.
    incomplete: bool,
    pub(super) block_size: u64,
    pub(super) shift: u32,
    data_offset: u64,
    /// Page cache and read-ahead, shared by all readers (std only).
    #[cfg(feature = "std")]
    state: std::sync::Mutex<ReadState>,
}

/// What readers share: the page cache, read-ahead of the descriptor
/// table and of the page data, and a buffer for stored bytes.
#[derive(Debug)]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
struct ReadState {
    cache: PageCache,
    descs: Streams,
    data: Streams,
    scratch: Vec<u8>,
}

#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl ReadState {
    fn new(block_size: u64) -> Self {
        ReadState {
            cache: PageCache::new(block_size),
            descs: Streams::default(),
            data: Streams::default(),
            scratch: Vec::new(),
        }
    }
}

impl<R: ReadAt> Pages<R> {
    /// The pages of `file`, whose descriptor table starts at
    /// `data_offset`, in blocks of `block_size` (`1 << shift`) bytes.
    pub(super) fn new(
        file: Container<R>,
        bitmaps: Bitmaps,
        endian: Endian,
        incomplete: bool,
        block_size: u64,
        shift: u32,
        data_offset: u64,
    ) -> Self {
        Pages {
            file,
            bitmaps,
            endian,
            incomplete,
            block_size,
            shift,
            data_offset,
            #[cfg(feature = "std")]
            state: std::sync::Mutex::new(ReadState::new(block_size)),
        }
    }

    /// [`KdumpDump::page_desc`](super::KdumpDump::page_desc), reading
    /// through `ahead` when given.
    pub(super) fn page_desc_via(
        &self,
        index: u64,
        ahead: Option<&mut Streams>,
    ) -> Result<Option<PageDesc>> {
        if index >= self.bitmaps.descs() {
            return Ok(None);
        }
        let off = index
            .checked_mul(PAGE_DESC_SIZE)
            .and_then(|o| o.checked_add(self.data_offset))
            .ok_or(Error::Malformed("kdump page descriptor offset overflows"))?;
        let mut b = [0u8; 24];
        let n = match ahead {
            Some(a) => {
                let i = a.pick(off);
                a.slots[i].read_at(&self.file, off, &mut b, DESC_WINDOW)?
            }
            None => self.file.read_at(off, &mut b)?,
        };
        if n < b.len() {
            return if self.incomplete {
                Ok(None)
            } else {
                Err(Error::Malformed(
                    "kdump page descriptor past the end of the file",
                ))
            };
        }
        let f = Fields {
            b: &b,
            e: self.endian,
        };
        let d = PageDesc {
            offset: f.u64(0),
            size: f.u32(8),
            flags: f.u32(12),
            page_flags: f.u64(16),
        };
        if d.offset == 0 {
            return if self.incomplete {
                Ok(None)
            } else {
                Err(Error::Malformed(
                    "kdump page descriptor with offset 0 in a dump not marked incomplete",
                ))
            };
        }
        Ok(Some(d))
    }

    /// Locks the state shared by readers (std); none without std.
    #[cfg(feature = "std")]
    fn state(&self) -> Option<std::sync::MutexGuard<'_, ReadState>> {
        Some(self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Locks the state shared by readers (std); none without std.
    #[cfg(not(feature = "std"))]
    fn state(&self) -> Option<&'static mut ReadState> {
        None
    }

    /// Reads a raw page's bytes, through the data read-ahead when given.
    fn read_data(&self, st: Option<&mut ReadState>, off: u64, buf: &mut [u8]) -> Result<()> {
        let n = match st {
            Some(s) => {
                let i = s.data.pick(off);
                s.data.slots[i].read_at(&self.file, off, buf, DATA_WINDOW)?
            }
            None => self.file.read_at(off, buf)?,
        };
        if n < buf.len() {
            return Err(Error::Malformed("kdump page data past the end of the file"));
        }
        Ok(())
    }

    /// Fills `out` from page `pfn` starting at byte `off` of the page.
    ///
    /// With std, one lock covers the descriptor, a cache hit, or the read
    /// of the stored bytes (through read-ahead, so that sequential reads
    /// cost one `pread` per window rather than two per page); it is
    /// released while the page decompresses, and taken again to cache it.
    pub(super) fn read_in_page(&self, pfn: u64, off: u64, out: &mut [u8]) -> Result<()> {
        let pa = (pfn << self.shift) + off;
        let index = match self.bitmaps.page_state(pfn) {
            PageState::Hole => return Err(Error::NotInMemory { pa }),
            PageState::Excluded => return Err(Error::Excluded { pa }),
            PageState::Dumpable(i) => i,
        };
        let mut st = self.state();
        let Some(d) = self.page_desc_via(index, st.as_deref_mut().map(|s| &mut s.descs))? else {
            return Err(Error::Excluded { pa });
        };
        let bs = self.block_size;
        if d.size == 0 || u64::from(d.size) > bs {
            return Err(Error::Malformed(
                "kdump page descriptor size is 0 or larger than the block size",
            ));
        }
        let c = Compression::from_flags(d.flags)?;
        if d.offset
            .checked_add(u64::from(d.size))
            .is_none_or(|e| e > self.file.size())
        {
            // The file lost it (cut short): not in the dump.
            return Err(Error::Excluded { pa });
        }
        if c == Compression::None {
            if u64::from(d.size) != bs {
                return Err(Error::Malformed(
                    "kdump raw page whose size is not the block size",
                ));
            }
            return self.read_data(st.as_deref_mut(), d.offset + off, out);
        }
        if let Some(s) = st.as_deref_mut() {
            if s.cache.get(&d, off, out) {
                return Ok(());
            }
        }
        // The stored bytes: in the read-ahead window, lent out while the
        // page decompresses, or else read into the scratch buffer.
        let size = d.size as usize;
        let mut lent = None;
        let mut scratch = Vec::new();
        if let Some(s) = st.as_deref_mut() {
            let slot = s.data.pick(d.offset);
            match s.data.slots[slot].locate(&self.file, d.offset, size, DATA_WINDOW)? {
                Some(i) => lent = Some((s.data.slots[slot].lend(), i, slot)),
                None => scratch = core::mem::take(&mut s.scratch),
            }
        }
        #[allow(clippy::drop_non_drop)] // a lock guard with std
        drop(st);
        let src = match &lent {
            Some((w, i, _)) => w.buf.get(*i..*i + size).unwrap_or_default(),
            None => {
                scratch.clear();
                scratch.resize(size, 0);
                if self.file.read_at(d.offset, &mut scratch)? < size {
                    return Err(Error::Malformed("kdump page data past the end of the file"));
                }
                &scratch
            }
        };
        let whole = off == 0 && out.len() as u64 == bs;
        let mut page = Vec::new();
        if whole {
            codec::decompress(c, src, out)?;
        } else {
            page.resize(bs as usize, 0);
            codec::decompress(c, src, &mut page)?;
            let o = off as usize;
            out.copy_from_slice(page.get(o..o + out.len()).unwrap_or_default());
        }
        // A page read whole as part of a sequential scan (its bytes came
        // through the read-ahead) is not cached: the scan does not come
        // back to it, and caching it would cost a copy into a cold slot
        // and evict pages that other reads come back to.
        let scan = whole && lent.is_some();
        if let Some(s) = self.state().as_mut() {
            if !scan {
                s.cache.put(&d, if whole { out } else { &page });
            }
            match lent {
                Some((w, _, slot)) => s.data.slots[slot].give_back(w),
                None => s.scratch = scratch,
            }
        }
        Ok(())
    }
}
