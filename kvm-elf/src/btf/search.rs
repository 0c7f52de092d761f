//! Finding a BTF blob in kernel memory, for kernels whose symbols do not
//! give `__start_BTF`: [`search`] parses every candidate in a range and
//! keeps the largest, [`search_first`] returns the first one a caller
//! accepts, read lazily.

use super::lazy::{LazyBtf, MAX_SEARCH_BLOB};
use super::types::{rd32, Btf};
use kvm_core::{Endian, Error, Result};

/// Looks for a BTF blob (the kernel's `.BTF` section, `__start_BTF`) in
/// `[start, start + len)` of a kernel address space, for kernels whose
/// symbols do not give `__start_BTF` (arm64 without `KALLSYMS_ALL`).
///
/// Every 4-byte-aligned BTF header (magic, version 1, a header length of
/// 24 to 256 bytes, sections inside the range) is parsed and validated in
/// full; the blob with the most types wins. Reads the whole range (at most
/// [`crate::kallsyms::MAX_SEARCH_LEN`] bytes; unreadable pages count as
/// zeros). Returns the blob's address and the parsed blob. See
/// [`search_first`] to stop at the first acceptable blob.
pub fn search(
    mem: &dyn kvm_core::VirtRead,
    start: kvm_core::VirtAddr,
    len: u64,
) -> Result<(kvm_core::VirtAddr, Btf)> {
    let buf = crate::kallsyms::read_range(mem, start, len)?;
    let mut best: Option<(usize, Btf)> = None;
    for (here, size) in candidates(&buf, buf.len()) {
        let Some(blob) = buf.get(here..here + size) else {
            continue;
        };
        if let Ok(btf) = Btf::parse(blob) {
            if best.as_ref().is_none_or(|(_, b)| btf.len() > b.len()) {
                best = Some((here, btf));
            }
        }
    }
    best.map(|(at, btf)| (kvm_core::VirtAddr(start.0 + at as u64), btf))
        .ok_or(Error::Malformed(
            "BTF search: no valid BTF blob in the range",
        ))
}

/// Like [`search`], but scans forward in 1 MiB windows and returns the
/// first blob that `accept` takes (e.g. one that defines `task_struct`),
/// as a [`LazyBtf`]: pages are read only as far as the search goes, and of
/// the blob only what `accept` looks at. A blob may be at most
/// [`MAX_SEARCH_BLOB`] bytes.
pub fn search_first(
    mem: &dyn kvm_core::VirtRead,
    start: kvm_core::VirtAddr,
    len: u64,
    accept: &mut dyn FnMut(&mut LazyBtf) -> bool,
) -> Result<(kvm_core::VirtAddr, LazyBtf)> {
    const WINDOW: usize = 1 << 20;
    if len > crate::kallsyms::MAX_SEARCH_LEN {
        return Err(Error::Unsupported("search range above 256 MiB"));
    }
    let end = start.0.checked_add(len).ok_or(Error::Malformed(
        "search range wraps around the address space",
    ))?;
    let mut at = start.0;
    while at < end {
        // Overlap windows by one header so none is cut in two.
        let n = (end - at).min(WINDOW as u64 + 24);
        let buf = crate::kallsyms::read_range(mem, kvm_core::VirtAddr(at), n)?;
        for (here, size) in candidates(&buf, WINDOW) {
            let blob_at = kvm_core::VirtAddr(at + here as u64);
            let size = size as u64;
            if size > MAX_SEARCH_BLOB || blob_at.0.checked_add(size).is_none_or(|e| e > end) {
                continue;
            }
            if let Ok(mut btf) = LazyBtf::new(mem, blob_at, size) {
                if accept(&mut btf) {
                    return Ok((blob_at, btf));
                }
            }
        }
        at += WINDOW as u64;
    }
    Err(Error::Malformed(
        "BTF search: no acceptable BTF blob in the range",
    ))
}

/// BTF headers in `buf` starting before `limit`: (offset, blob size as
/// the header describes it).
fn candidates(buf: &[u8], limit: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..buf.len().saturating_sub(23).min(limit))
        .step_by(4)
        .filter_map(move |here| {
            let e = match buf.get(here..here + 3) {
                Some([0x9f, 0xeb, 1]) => Endian::Little,
                Some([0xeb, 0x9f, 1]) => Endian::Big,
                _ => return None,
            };
            let word = |k: usize| rd32(buf, here + 4 * k, e).ok().map(|v| v as usize);
            let (hdr, to, tl, so, sl) = (word(1)?, word(2)?, word(3)?, word(4)?, word(5)?);
            if !(24..=256).contains(&hdr) {
                return None;
            }
            let end = to
                .checked_add(tl)?
                .max(so.checked_add(sl)?)
                .checked_add(hdr)?;
            Some((here, end))
        })
}
