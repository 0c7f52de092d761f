//! Finding the kallsyms tables in memory by their shape, for kernels whose
//! VMCOREINFO does not name them ([`search`]), and reading a memory range
//! for a search ([`read_range`], which the BTF search uses too).

use super::decode::{decode, decode_names};
use super::read::{read_markers, Tokens, Window, MAX_TOKEN_LEN};
use super::types::{
    AddrEncoding, Kallsyms, KallsymsOptions, KallsymsTables, NameLen, KSYM_NAME_LEN,
};
use alloc::vec;
use alloc::vec::Vec;
use kvm_core::{Endian, Error, Result, VirtAddr, VirtRead};

/// Largest memory range [`search`] reads.
pub const MAX_SEARCH_LEN: u64 = 256 << 20;

/// A byte buffer seen as virtual memory at `base` (the search reads its
/// range once, then decodes candidates from the copy).
struct BufMem<'a> {
    base: u64,
    bytes: &'a [u8],
}

impl VirtRead for BufMem<'_> {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        let un = Error::Unmapped { va: va.0 };
        let off = va.0.checked_sub(self.base).ok_or(un)?;
        let off = usize::try_from(off).map_err(|_| un)?;
        let src = self.bytes.get(off..).unwrap_or_default();
        if src.is_empty() && !buf.is_empty() {
            return Err(un);
        }
        let k = src.len().min(buf.len());
        buf.get_mut(..k)
            .unwrap_or_default()
            .copy_from_slice(src.get(..k).unwrap_or_default());
        Ok(k)
    }
}

/// Reads `[start, start + len)` page by page into a buffer; unreadable
/// pages stay zero.
pub(crate) fn read_range(mem: &dyn VirtRead, start: VirtAddr, len: u64) -> Result<Vec<u8>> {
    if len > MAX_SEARCH_LEN {
        return Err(Error::Unsupported("search range above 256 MiB"));
    }
    start.0.checked_add(len).ok_or(Error::Malformed(
        "search range wraps around the address space",
    ))?;
    let mut buf = vec![0u8; len as usize];
    let mut off = 0usize;
    while off < buf.len() {
        let va = start.0 + off as u64;
        let page_end = ((va | 0xfff) - start.0 + 1).min(len) as usize;
        let chunk = buf.get_mut(off..page_end).unwrap_or_default();
        let mut got = 0;
        while got < chunk.len() {
            match mem.read_virt(
                VirtAddr(va + got as u64),
                chunk.get_mut(got..).unwrap_or_default(),
            ) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        off = page_end;
    }
    Ok(buf)
}

fn rd16(b: &[u8], at: usize, e: Endian) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(e.u16([s[0], s[1]]))
}

fn rdw(b: &[u8], at: usize, e: Endian, width: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(width)?)?;
    Some(match width {
        4 => u64::from(e.u32(s.try_into().ok()?)),
        _ => e.u64(s.try_into().ok()?),
    })
}

/// A `kallsyms_token_index` candidate at `p`: 256 increasing u16 values
/// from 0 whose token strings, just before `p`, are printable and
/// NUL-terminated exactly at the next index. Returns the token table's
/// offset.
fn token_table_before(b: &[u8], p: usize, e: Endian) -> Option<usize> {
    let mut idx = [0u16; 256];
    for (k, v) in idx.iter_mut().enumerate() {
        *v = rd16(b, p + 2 * k, e)?;
    }
    if idx[0] != 0 {
        return None;
    }
    for k in 1..256 {
        let d = idx[k].checked_sub(idx[k - 1])?;
        if !(2..=MAX_TOKEN_LEN as u16 + 1).contains(&d) {
            return None;
        }
    }
    // Zero padding, then the last token's NUL, then its characters.
    let mut q = p;
    while q > 0 && p - q < 8 && b.get(q - 1) == Some(&0) {
        q -= 1;
    }
    if q == p {
        return None;
    }
    let mut c = 0usize;
    while c < MAX_TOKEN_LEN && q > c && b.get(q - c - 1).is_some_and(|&x| x != 0) {
        c += 1;
    }
    let t = q.checked_sub(usize::from(idx[255]))?.checked_sub(c)?;
    for k in 0..256 {
        let s = t + usize::from(idx[k]);
        let end = if k == 255 {
            q
        } else {
            t + usize::from(idx[k + 1]) - 1
        };
        let tok = b.get(s..end)?;
        if tok.is_empty() || !tok.iter().all(|x| x.is_ascii_graphic()) || b.get(end) != Some(&0) {
            return None;
        }
    }
    Some(t)
}

/// `kallsyms_markers` ending just before the token table at `t`: walking
/// back, strictly decreasing values down to the 0 of `markers[0]`.
fn markers_before(
    b: &[u8],
    t: usize,
    e: Endian,
    width: usize,
    pad: usize,
    max: usize,
) -> Option<(usize, Vec<u64>)> {
    let mut pos = t.checked_sub(pad)?;
    if b.get(pos..t)?.iter().any(|&x| x != 0) {
        return None;
    }
    let mut vals = Vec::new();
    loop {
        pos = pos.checked_sub(width)?;
        let v = rdw(b, pos, e, width)?;
        if v == 0 {
            break;
        }
        if vals.last().is_some_and(|&l| v >= l) || vals.len() >= max {
            return None;
        }
        vals.push(v);
    }
    vals.push(0);
    vals.reverse();
    Some((pos, vals))
}

/// Looks for the kallsyms tables in `[start, start + len)` (for instance
/// the kernel image's read-only data) and decodes them, for kernels whose
/// VMCOREINFO lacks the `kallsyms_*` symbols (before 6.0).
///
/// The search is structural and every candidate is checked by decoding
/// it: `kallsyms_token_index` (256 increasing u16 from 0) right after a
/// `kallsyms_token_table` of 256 printable NUL-terminated strings;
/// `kallsyms_markers` right before it; `kallsyms_num_syms` and
/// `kallsyms_names` before those, accepted only if all names decode and
/// agree with every marker and end where the markers begin; then the
/// address table where the kernel's build script puts it: before
/// `kallsyms_num_syms` (kernels up to 6.1: offsets or addresses, then
/// `kallsyms_relative_base`) or after `kallsyms_token_index` (6.4+), whose
/// addresses must be sorted, start at the relative base, and agree with
/// `o.known`.
///
/// Kernels with `kallsyms_seqs_of_names` between the markers and the
/// token table (6.2, 6.3, and 6.1 stable kernels with the backport, such
/// as Debian's 6.1.0-56) are handled too: the markers are then found by
/// their shape and by the 3 × N bytes left for the sequence table.
///
/// Limits: reads at most [`MAX_SEARCH_LEN`] bytes (unreadable pages count
/// as zeros); needs printable ASCII tokens; the range must hold the
/// tables from `kallsyms_offsets` (or `kallsyms_addresses`) to
/// `kallsyms_token_index`.
pub fn search(
    mem: &dyn VirtRead,
    start: VirtAddr,
    len: u64,
    o: &KallsymsOptions<'_>,
) -> Result<(KallsymsTables, Kallsyms)> {
    let buf = read_range(mem, start, len)?;
    search_buf(&buf, start.0, o)
}

fn search_buf(b: &[u8], base: u64, o: &KallsymsOptions<'_>) -> Result<(KallsymsTables, Kallsyms)> {
    let e = o.endian;
    let mem = BufMem { base, bytes: b };
    let max_markers = (o.max_syms as usize).div_ceil(256);
    let mut p = 0usize;
    while p + 512 <= b.len() {
        let here = p;
        p += 2;
        if rd16(b, here, e) != Some(0)
            || !rd16(b, here + 2, e).is_some_and(|v| (2..=64).contains(&v))
        {
            continue;
        }
        let Some(t) = token_table_before(b, here, e) else {
            continue;
        };
        for (width, pad) in [(4, 0), (4, 4), (8, 0)] {
            let Some((ms, mk)) = markers_before(b, t, e, width, pad, max_markers) else {
                continue;
            };
            let at = Layout { t, ms, x: here };
            if let Some(found) = names_before(b, &mem, base, at, &mk, o) {
                return Ok(found);
            }
        }
        if let Some(found) = markers_before_seqs(b, &mem, base, t, here, o) {
            return Ok(found);
        }
    }
    Err(Error::Malformed(
        "kallsyms search: no kallsyms tables found in the range",
    ))
}

/// Kernels with `kallsyms_seqs_of_names` (6.2, 6.3, and 6.1 stable
/// kernels that took the backport) put its 3 × N bytes between the
/// markers and the token table. Looks for a markers array (0, then
/// increasing values 256 names apart) whose count agrees with the gap left
/// for the sequence table, then checks it like the other layouts.
fn markers_before_seqs(
    b: &[u8],
    mem: &BufMem<'_>,
    base: u64,
    t: usize,
    x: usize,
    o: &KallsymsOptions<'_>,
) -> Option<(KallsymsTables, Kallsyms)> {
    let e = o.endian;
    let align = usize::from(o.ptr_size);
    let max_markers = (o.max_syms as usize).div_ceil(256);
    // 256 names take 2 to 514 bytes each.
    let step = 512u64..=256 * (2 + KSYM_NAME_LEN as u64);
    let lo = t.saturating_sub(3 * o.max_syms as usize + 4 * max_markers + 2 * align);
    let mut p = lo;
    while p + 8 <= t {
        let here = p;
        p += 4;
        if !(base + here as u64).is_multiple_of(align as u64)
            || rdw(b, here, e, 4) != Some(0)
            || !rdw(b, here + 4, e, 4).is_some_and(|v| step.contains(&v))
        {
            continue;
        }
        let mut vals = vec![0u64];
        let mut q = here + 4;
        while vals.len() < max_markers && q + 4 <= t {
            let Some(v) = rdw(b, q, e, 4) else { break };
            let last = *vals.last()?;
            if v <= last || !step.contains(&(v - last)) {
                break;
            }
            vals.push(v);
            q += 4;
        }
        for m in (2..=vals.len()).rev() {
            let seqs = (here + 4 * m).next_multiple_of(align);
            let Some(span) = t.checked_sub(seqs) else {
                continue;
            };
            let n_hi = (span / 3) as u64;
            let n_lo = (span.saturating_sub(align - 1)).div_ceil(3) as u64;
            let lo_n = 256 * (m as u64 - 1) + 1;
            let hi_n = 256 * m as u64;
            if n_hi < lo_n || n_lo > hi_n {
                continue;
            }
            let at = Layout { t, ms: here, x };
            let mk = vals.get(..m)?;
            if let Some(found) = names_before(b, mem, base, at, mk, o) {
                return Some(found);
            }
        }
    }
    None
}

/// Offsets (in the search buffer) of the tables found so far.
#[derive(Clone, Copy)]
struct Layout {
    /// `kallsyms_token_table`.
    t: usize,
    /// `kallsyms_markers`.
    ms: usize,
    /// `kallsyms_token_index`.
    x: usize,
}

/// Given the markers and token tables, finds `kallsyms_num_syms` and
/// `kallsyms_names` before the markers, then the address table, and
/// decodes.
fn names_before(
    b: &[u8],
    mem: &BufMem<'_>,
    base: u64,
    at: Layout,
    mk: &[u64],
    o: &KallsymsOptions<'_>,
) -> Option<(KallsymsTables, Kallsyms)> {
    let e = o.endian;
    let ms = at.ms;
    let last = usize::try_from(*mk.last()?).ok()?;
    let lo_n = 256 * (mk.len() as u64 - 1);
    let hi_n = 256 * mk.len() as u64;
    // Names of the last (up to 256) symbols follow the last marker.
    let top = ms.checked_sub(last)?.checked_sub(4)?;
    let bottom = top.saturating_sub(256 * (2 + KSYM_NAME_LEN) + 16);
    let mut pos = top & !3;
    let va = |off: usize| VirtAddr(base + off as u64);
    while pos >= bottom {
        let v = rdw(b, pos, e, 4).unwrap_or(0);
        let v = if v == 0 && o.ptr_size == 8 {
            rdw(b, pos, e, 8).unwrap_or(0)
        } else {
            v
        };
        if v > lo_n && v <= hi_n && v <= u64::from(o.max_syms) {
            // The label is pointer-aligned: a count found 4 bytes past
            // that, after a zero word, is a big-endian `unsigned long`.
            let num_at = if e == Endian::Big
                && o.ptr_size == 8
                && (base + pos as u64) % 8 == 4
                && pos >= 4
                && rdw(b, pos - 4, e, 4) == Some(0)
            {
                pos - 4
            } else {
                pos
            };
            for s in [pos + 4, pos + 8] {
                let tables = KallsymsTables {
                    num_syms: va(num_at),
                    names: va(s),
                    markers: Some(va(ms)),
                    token_table: va(at.t),
                    token_index: va(at.x),
                    addresses: None,
                    offsets: None,
                    relative_base: None,
                };
                if let Some(found) = try_names(b, mem, base, tables, v as u32, at, o) {
                    return Some(found);
                }
            }
        }
        if pos < 4 {
            break;
        }
        pos -= 4;
    }
    None
}

/// Checks one (num_syms, names) candidate and then the address tables.
fn try_names(
    b: &[u8],
    mem: &BufMem<'_>,
    base: u64,
    t: KallsymsTables,
    n: u32,
    at: Layout,
    o: &KallsymsOptions<'_>,
) -> Option<(KallsymsTables, Kallsyms)> {
    let e = o.endian;
    let ptr = usize::from(o.ptr_size);
    let (ms, x) = (at.ms, at.x);
    let mut w = Window::new(mem);
    let tokens = Tokens::read(mem, &t, e).ok()?;
    let mk = read_markers(&mut w, t.markers?, n, e, o.ptr_size).ok()?;
    let mut names = None;
    for mode in [NameLen::TwoByte, NameLen::OneByte] {
        if let Ok(nm) = decode_names(&mut w, t.names, n, mode, &tokens, Some(&mk)) {
            let end = (t.names.0 - base + nm.stream_len) as usize;
            if end <= ms && ms - end < 8 && b.get(end..ms)?.iter().all(|&z| z == 0) {
                names = Some(nm);
                break;
            }
        }
    }
    let names = names?;
    let num = (t.num_syms.0 - base) as usize;
    let n64 = u64::from(n) * 4;
    let va = |off: usize| VirtAddr(base + off as u64);
    let mut cands: Vec<KallsymsTables> = Vec::new();
    // Up to 6.1: offsets (or addresses), relative_base, num_syms.
    for rb in [num.checked_sub(ptr), num.checked_sub(2 * ptr)]
        .into_iter()
        .flatten()
    {
        for gap in [0usize, 4] {
            if let Some(off) = rb
                .checked_sub(gap)
                .and_then(|r| r.checked_sub(n64 as usize))
            {
                cands.push(KallsymsTables {
                    offsets: Some(va(off)),
                    relative_base: Some(va(rb)),
                    ..t
                });
            }
        }
    }
    for gap in [0usize, 4] {
        if let Some(a) = num
            .checked_sub(gap)
            .and_then(|r| r.checked_sub(u64::from(n) as usize * ptr))
        {
            cands.push(KallsymsTables {
                addresses: Some(va(a)),
                ..t
            });
        }
    }
    // 6.4+: the address table right after token_index (then
    // relative_base).
    cands.push(KallsymsTables {
        addresses: Some(va((x + 512).next_multiple_of(ptr))),
        ..t
    });
    for align in [4usize, 8] {
        let off = (x + 512).next_multiple_of(align);
        let rb = (off + n64 as usize).next_multiple_of(ptr);
        cands.push(KallsymsTables {
            offsets: Some(va(off)),
            relative_base: Some(va(rb)),
            ..t
        });
    }
    for c in cands {
        let Ok(k) = decode(
            mem,
            &c,
            &KallsymsOptions {
                name_len: NameLen::Auto,
                ..*o
            },
        ) else {
            continue;
        };
        let mut distinct = 0usize;
        let mut last = None;
        for s in k.table.iter_by_addr() {
            if last != Some(s.addr) {
                distinct += 1;
                last = Some(s.addr);
            }
        }
        if plausible_base(b, base, &c, &k, o)
            && k.table.len() == names.recs.len()
            && distinct * 2 >= k.table.len()
        {
            return Some((c, k));
        }
    }
    None
}

/// The relative base is the lowest address of a non-absolute symbol: the
/// first offset after the per-CPU ones is 0 (base-relative) or -1
/// (absolute per-CPU).
///
/// And the highest address is a kernel address (upper half of a 64-bit
/// space; above 1 GiB on 32-bit): offsets misread as absolute addresses
/// are small.
fn plausible_base(
    b: &[u8],
    base: u64,
    c: &KallsymsTables,
    k: &Kallsyms,
    o: &KallsymsOptions<'_>,
) -> bool {
    let high = k.table.iter_by_addr().last().map_or(0, |s| s.addr.0);
    let kernel = if o.ptr_size == 8 {
        1 << 63
    } else {
        0x4000_0000
    };
    if high < kernel {
        return false;
    }
    let Some(offs) = c.offsets else {
        return true;
    };
    let at = (offs.0 - base) as usize;
    let n = k.table.len();
    let vals = (0..n).map(|i| rdw(b, at + 4 * i, o.endian, 4).map(|v| v as u32 as i32));
    match k.encoding {
        AddrEncoding::BaseRelative => vals.take(1).all(|v| v == Some(0)),
        AddrEncoding::AbsolutePercpu => vals.flatten().find(|&v| v < 0).is_some_and(|v| v == -1),
        _ => true,
    }
}
