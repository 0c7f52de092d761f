//! Reading the compressed tables from memory: the pieces that decoding,
//! the name index and the search share (a read window, the token table,
//! one name, `kallsyms_markers`, `kallsyms_num_syms`, one symbol's
//! address, the address encodings to try).

use super::types::{AddrEncoding, KallsymsOptions, KallsymsTables, NameLen, KSYM_NAME_LEN};
use alloc::vec;
use alloc::vec::Vec;
use kvm_core::{Endian, Error, Result, VirtAddr, VirtRead, VirtReadExt};

/// Longest token string accepted.
pub(super) const MAX_TOKEN_LEN: usize = KSYM_NAME_LEN;

/// Sequential reads through a fixed window, so that the names stream is
/// read in large pieces without knowing its length in advance.
pub(super) struct Window<'m> {
    mem: &'m dyn VirtRead,
    buf: Vec<u8>,
    start: u64,
    len: usize,
    size: usize,
}

/// Window for reading whole tables.
const WINDOW: usize = 64 * 1024;
/// Window for the random reads of [`NameIndex`] lookups (a 256-symbol
/// block of names is about 3 KiB).
///
/// [`NameIndex`]: super::NameIndex
pub(super) const SMALL_WINDOW: usize = 4 * 1024;

impl<'m> Window<'m> {
    pub(super) fn new(mem: &'m dyn VirtRead) -> Self {
        Self::sized(mem, WINDOW)
    }

    pub(super) fn sized(mem: &'m dyn VirtRead, size: usize) -> Self {
        Window {
            mem,
            buf: Vec::new(),
            start: 0,
            len: 0,
            size,
        }
    }

    /// Fills `out` from `va`.
    pub(super) fn read(&mut self, va: u64, out: &mut [u8]) -> Result<()> {
        let end = va.checked_add(out.len() as u64).ok_or(Error::Malformed(
            "kallsyms: table wraps around the address space",
        ))?;
        let have_end = self.start + self.len as u64;
        if va < self.start || end > have_end {
            if self.buf.is_empty() {
                self.buf = vec![0; self.size.max(KSYM_NAME_LEN + 2)];
            }
            self.start = va;
            self.len = 0;
            self.len = self.mem.read_virt(VirtAddr(va), &mut self.buf)?;
            if (self.len as u64) < out.len() as u64 {
                return Err(Error::Unmapped {
                    va: va + self.len as u64,
                });
            }
        }
        let off = (va - self.start) as usize;
        let src = self
            .buf
            .get(off..off + out.len())
            .ok_or(Error::Malformed("kallsyms: read window"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn u8(&mut self, va: u64) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read(va, &mut b)?;
        Ok(b[0])
    }

    fn u32(&mut self, va: u64, e: Endian) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(va, &mut b)?;
        Ok(e.u32(b))
    }

    fn word(&mut self, va: u64, e: Endian, size: u8) -> Result<u64> {
        if size == 4 {
            return self.u32(va, e).map(u64::from);
        }
        let mut b = [0u8; 8];
        self.read(va, &mut b)?;
        Ok(e.u64(b))
    }
}

/// The 256 token strings.
#[derive(Clone)]
pub(super) struct Tokens {
    table: Vec<u8>,
    spans: [(u32, u32); 256],
}

impl Tokens {
    pub(super) fn read(mem: &dyn VirtRead, t: &KallsymsTables, e: Endian) -> Result<Tokens> {
        let mut raw = [0u8; 512];
        mem.read_virt_exact(t.token_index, &mut raw)?;
        let mut index = [0u16; 256];
        for (i, c) in index.iter_mut().zip(raw.chunks_exact(2)) {
            *i = e.u16([c[0], c[1]]);
        }
        let max = index.iter().copied().max().unwrap_or(0) as usize;
        let mut table = vec![0u8; max + MAX_TOKEN_LEN + 1];
        let n = mem.read_virt(t.token_table, &mut table)?;
        table.truncate(n);
        let mut spans = [(0u32, 0u32); 256];
        for (span, &start) in spans.iter_mut().zip(index.iter()) {
            let start = usize::from(start);
            let s = table.get(start..).ok_or(Error::Malformed(
                "kallsyms: token index outside the token table",
            ))?;
            let len = s
                .iter()
                .take(MAX_TOKEN_LEN + 1)
                .position(|&b| b == 0)
                .ok_or(Error::Malformed(
                    "kallsyms: token not NUL-terminated within 512 bytes",
                ))?;
            *span = (start as u32, len as u32);
        }
        Ok(Tokens { table, spans })
    }

    fn get(&self, t: u8) -> &[u8] {
        let (s, l) = self.spans[usize::from(t)];
        self.table
            .get(s as usize..(s + l) as usize)
            .unwrap_or_default()
    }
}

/// The length of the name at `names + off` and the bytes of its length
/// field; whether the length's top bit was set (the encodings disagree).
pub(super) fn name_len(
    w: &mut Window<'_>,
    names: u64,
    off: u64,
    mode: NameLen,
) -> Result<(usize, u64, bool)> {
    let at = names.checked_add(off).ok_or(Error::Malformed(
        "kallsyms: names wrap around the address space",
    ))?;
    let b0 = w.u8(at)?;
    let (mut len, mut hdr) = (usize::from(b0), 1u64);
    if b0 & 0x80 != 0 && mode == NameLen::TwoByte {
        let b1 = w.u8(at + 1)?;
        len = usize::from(b0 & 0x7f) | (usize::from(b1) << 7);
        hdr = 2;
    }
    if len == 0 || len > KSYM_NAME_LEN {
        return Err(Error::Malformed(
            "kallsyms: symbol name length 0 or too long",
        ));
    }
    Ok((len, hdr, b0 & 0x80 != 0))
}

/// Decodes the name at `names + off` into `out` (type letter first):
/// returns the bytes it takes in the stream and whether its length was
/// ambiguous (see [`name_len`]).
pub(super) fn read_name(
    w: &mut Window<'_>,
    names: u64,
    off: u64,
    mode: NameLen,
    tokens: &Tokens,
    codes: &mut [u8; KSYM_NAME_LEN],
    out: &mut Vec<u8>,
) -> Result<(u64, bool)> {
    let (len, hdr, ambiguous) = name_len(w, names, off, mode)?;
    let codes = codes
        .get_mut(..len)
        .ok_or(Error::Malformed("kallsyms: symbol name too long"))?;
    let at = names.checked_add(off).and_then(|a| a.checked_add(hdr));
    w.read(
        at.ok_or(Error::Malformed(
            "kallsyms: names wrap around the address space",
        ))?,
        codes,
    )?;
    out.clear();
    for &c in codes.iter() {
        let t = tokens.get(c);
        if out.len() + t.len() > KSYM_NAME_LEN {
            return Err(Error::Malformed(
                "kallsyms: decoded name longer than 512 bytes",
            ));
        }
        out.extend_from_slice(t);
    }
    match out.split_first() {
        Some((kind, name)) if kind.is_ascii_graphic() && !name.is_empty() => {}
        _ => return Err(Error::Malformed("kallsyms: bad symbol type or empty name")),
    }
    Ok((hdr + len as u64, ambiguous))
}

/// Reads `kallsyms_markers` (u32 in current kernels, `unsigned long` in
/// old ones: detected by the second entry, which is never 0).
pub(super) fn read_markers(
    w: &mut Window<'_>,
    at: VirtAddr,
    n: u32,
    e: Endian,
    ptr: u8,
) -> Result<Vec<u64>> {
    let count = u64::from(n).div_ceil(256);
    let mut width = 4u8;
    let second =
        at.0.checked_add(4)
            .ok_or(Error::Malformed("kallsyms: markers wrap"))?;
    if count > 1 && ptr == 8 && w.u32(second, e)? == 0 {
        width = 8;
    }
    let mut m = Vec::new();
    for k in 0..count {
        let va =
            at.0.checked_add(k * u64::from(width))
                .ok_or(Error::Malformed("kallsyms: markers wrap"))?;
        m.push(w.word(va, e, width)?);
    }
    Ok(m)
}

/// Reads `kallsyms_num_syms` (u32, or `unsigned long` in old kernels).
pub(super) fn read_count(w: &mut Window<'_>, at: VirtAddr, o: &KallsymsOptions<'_>) -> Result<u32> {
    let mut n = u64::from(w.u32(at.0, o.endian)?);
    if n == 0 && o.ptr_size == 8 {
        // A big-endian `unsigned long` has its value in the second word.
        n = w.word(at.0, o.endian, 8)?;
    }
    if n == 0 {
        return Err(Error::Malformed("kallsyms: kallsyms_num_syms is 0"));
    }
    if n > u64::from(o.max_syms) {
        return Err(Error::Malformed(
            "kallsyms: kallsyms_num_syms above the cap (not a symbol count?)",
        ));
    }
    Ok(n as u32)
}

/// How to compute symbol `i`'s address for one encoding.
#[derive(Clone, Copy, Debug)]
pub(super) struct AddrTable {
    pub(super) enc: AddrEncoding,
    /// `kallsyms_addresses` or `kallsyms_offsets`.
    pub(super) table: u64,
    /// Bytes per entry.
    pub(super) width: u64,
    /// `kallsyms_relative_base`'s value (base-relative encodings).
    pub(super) rb: u64,
}

impl AddrTable {
    pub(super) fn new(
        w: &mut Window<'_>,
        t: &KallsymsTables,
        enc: AddrEncoding,
        o: &KallsymsOptions<'_>,
    ) -> Result<Self> {
        let missing = Error::Malformed("kallsyms: the address table for this encoding is missing");
        let rb = match enc {
            AddrEncoding::BaseRelative | AddrEncoding::AbsolutePercpu => {
                let at = t.relative_base.ok_or(missing)?;
                w.word(at.0, o.endian, o.ptr_size)?
            }
            _ => 0,
        };
        let (table, width) = match enc {
            AddrEncoding::Absolute => (t.addresses.ok_or(missing)?, u64::from(o.ptr_size)),
            _ => (t.offsets.ok_or(missing)?, 4),
        };
        Ok(AddrTable {
            enc,
            table: table.0,
            width,
            rb,
        })
    }

    /// Symbol `i`'s address, and whether its entry was a negative offset.
    pub(super) fn addr(
        &self,
        w: &mut Window<'_>,
        i: u64,
        o: &KallsymsOptions<'_>,
    ) -> Result<(u64, bool)> {
        let va = i
            .checked_mul(self.width)
            .and_then(|d| self.table.checked_add(d))
            .ok_or(Error::Malformed("kallsyms: address table wraps"))?;
        let (a, negative) = match self.enc {
            AddrEncoding::Absolute => (w.word(va, o.endian, o.ptr_size)?, false),
            enc => {
                let raw = w.u32(va, o.endian)?;
                let off = raw as i32;
                let a = match enc {
                    AddrEncoding::BaseRelative => self.rb.wrapping_add(u64::from(raw)),
                    AddrEncoding::AbsolutePercpu if off >= 0 => off as u64,
                    AddrEncoding::AbsolutePercpu => self
                        .rb
                        .wrapping_sub(1)
                        .wrapping_add((-i64::from(off)) as u64),
                    _ => va.wrapping_add(i64::from(off) as u64),
                };
                (a, off < 0)
            }
        };
        Ok((if o.ptr_size == 4 { a & 0xffff_ffff } else { a }, negative))
    }
}

/// The encodings to try, most likely first.
pub(super) fn candidates(t: &KallsymsTables, o: &KallsymsOptions<'_>) -> Result<Vec<AddrEncoding>> {
    if let Some(e) = o.encoding {
        return Ok(vec![e]);
    }
    let mut c = Vec::new();
    if t.offsets.is_some() {
        if t.relative_base.is_some() {
            c.push(AddrEncoding::AbsolutePercpu);
            c.push(AddrEncoding::BaseRelative);
        } else {
            c.push(AddrEncoding::PlaceRelative);
        }
    }
    if t.addresses.is_some() {
        c.push(AddrEncoding::Absolute);
    }
    if c.is_empty() {
        return Err(Error::Malformed(
            "kallsyms: neither kallsyms_offsets nor kallsyms_addresses given",
        ));
    }
    Ok(c)
}
