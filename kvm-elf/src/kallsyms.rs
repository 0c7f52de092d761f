//! The kernel's own compressed symbol table (kallsyms), decoded from
//! memory through any [`VirtRead`] (FORMATS.md §7.1).
//!
//! The tables are found by address: from VMCOREINFO `SYMBOL(kallsyms_*)`
//! lines on 6.x kernels ([`KallsymsTables::from_symbols`]), or, where those
//! are missing, by a checked search of a memory range ([`search`]).
//!
//! Every address encoding is handled ([`AddrEncoding`]): absolute,
//! base-relative, base-relative with absolute per-CPU symbols, and 7.0's
//! place-relative offsets; names with one-byte lengths (before 6.1) and
//! two-byte ULEB128 lengths (6.1+). The encoding is detected when not
//! given: the decoded addresses must be sorted (the kernel sorts them and
//! binary-searches them) and every symbol the caller knows (VMCOREINFO
//! `SYMBOL(_stext)` …) must decode to its known address.
//!
//! Bounds: the symbol count is capped ([`KallsymsOptions::max_syms`]),
//! every token index and token string is checked, decoded names are at
//! most [`KSYM_NAME_LEN`] bytes, reads go through a fixed-size window, and
//! memory is allocated only as symbols are actually decoded.
//!
//! The decoded table holds runtime addresses ([`crate::AddrSpace::Runtime`]):
//! the kernel's tables are relocated with the kernel, so the KASLR slide is
//! already in them. Per-CPU symbols of absolute-per-CPU kernels (x86-64
//! before 6.15) are offsets into each CPU's per-CPU area, type `A`.

use crate::symtab::{AddrSpace, SymbolTable, SymbolTableBuilder};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use kvm_core::{Endian, Error, Result, VirtAddr, VirtRead, VirtReadExt};

/// Longest decoded symbol (type letter and name), in bytes: the kernel's
/// `KSYM_NAME_LEN` since 6.1 (128 before).
pub const KSYM_NAME_LEN: usize = 512;

/// Default cap on `kallsyms_num_syms` (4 Mi symbols; a 6.x distro kernel
/// has about 200 000).
pub const DEFAULT_MAX_SYMS: u32 = 1 << 22;

/// Longest token string accepted.
const MAX_TOKEN_LEN: usize = KSYM_NAME_LEN;

/// Most symbols of one name a [`NameIndex`] lookup compares (a kernel has
/// a few hundred at most: static functions of the same name).
const MAX_SAME_NAME: u32 = 1 << 16;

/// Largest memory range [`search`] reads.
pub const MAX_SEARCH_LEN: u64 = 256 << 20;

/// Where the kallsyms tables are (runtime virtual addresses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KallsymsTables {
    /// `kallsyms_num_syms`.
    pub num_syms: VirtAddr,
    /// `kallsyms_names`.
    pub names: VirtAddr,
    /// `kallsyms_markers` (optional: used to check the name stream and to
    /// choose the name-length encoding; VMCOREINFO does not give it).
    pub markers: Option<VirtAddr>,
    /// `kallsyms_token_table`.
    pub token_table: VirtAddr,
    /// `kallsyms_token_index`.
    pub token_index: VirtAddr,
    /// `kallsyms_addresses` (absolute kernels).
    pub addresses: Option<VirtAddr>,
    /// `kallsyms_offsets` (relative kernels).
    pub offsets: Option<VirtAddr>,
    /// `kallsyms_relative_base` (relative kernels before 7.0).
    pub relative_base: Option<VirtAddr>,
}

impl KallsymsTables {
    /// The tables from a symbol lookup such as VMCOREINFO's `SYMBOL(name)`
    /// (`|n| info.symbol(n)`). `None` unless `kallsyms_num_syms`,
    /// `kallsyms_names`, `kallsyms_token_table`, `kallsyms_token_index`
    /// and one of `kallsyms_offsets` / `kallsyms_addresses` are present.
    pub fn from_symbols(mut sym: impl FnMut(&str) -> Option<u64>) -> Option<Self> {
        let mut get = |n: &str| sym(n).map(VirtAddr);
        let t = KallsymsTables {
            num_syms: get("kallsyms_num_syms")?,
            names: get("kallsyms_names")?,
            markers: get("kallsyms_markers"),
            token_table: get("kallsyms_token_table")?,
            token_index: get("kallsyms_token_index")?,
            addresses: get("kallsyms_addresses"),
            offsets: get("kallsyms_offsets"),
            relative_base: get("kallsyms_relative_base"),
        };
        (t.addresses.is_some() || t.offsets.is_some()).then_some(t)
    }
}

/// How `kallsyms_addresses` / `kallsyms_offsets` encode addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrEncoding {
    /// `kallsyms_addresses[i]`, pointer-sized (no `KALLSYMS_BASE_RELATIVE`;
    /// gone in 6.11).
    Absolute,
    /// `relative_base + (u32)offsets[i]` (4.6 … 6.x).
    BaseRelative,
    /// `offsets[i] >= 0`: the absolute value `offsets[i]` (per-CPU
    /// symbols); else `relative_base - 1 - offsets[i]` (x86-64 SMP, 4.6 …
    /// 6.14).
    AbsolutePercpu,
    /// `&offsets[i] + offsets[i]`: relative to the table slot (7.0+).
    PlaceRelative,
}

/// How each name's length is stored in `kallsyms_names`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameLen {
    /// Try [`NameLen::TwoByte`], checked against `kallsyms_markers` when
    /// known, then [`NameLen::OneByte`].
    Auto,
    /// One byte (before 6.1).
    OneByte,
    /// One byte, or two (ULEB128) when its top bit is set (6.1+).
    TwoByte,
}

/// What the decoder needs to know about the kernel, and what it checks.
#[derive(Clone, Copy, Debug)]
pub struct KallsymsOptions<'a> {
    /// Byte order of the kernel.
    pub endian: Endian,
    /// Pointer size: 4 or 8.
    pub ptr_size: u8,
    /// The address encoding, or `None` to detect it.
    pub encoding: Option<AddrEncoding>,
    /// The name-length encoding.
    pub name_len: NameLen,
    /// Symbols whose addresses are known (VMCOREINFO `SYMBOL(_stext)` …):
    /// each must decode to its address, or the decoding is rejected.
    pub known: &'a [(&'a str, u64)],
    /// Largest accepted `kallsyms_num_syms`.
    pub max_syms: u32,
}

impl KallsymsOptions<'_> {
    /// Options for a kernel of this byte order and pointer size, detecting
    /// everything else, checking nothing known.
    pub fn new(endian: Endian, ptr_size: u8) -> Self {
        KallsymsOptions {
            endian,
            ptr_size,
            encoding: None,
            name_len: NameLen::Auto,
            known: &[],
            max_syms: DEFAULT_MAX_SYMS,
        }
    }

    /// Little-endian 64-bit (x86-64, arm64).
    pub fn le64() -> Self {
        Self::new(Endian::Little, 8)
    }
}

/// A decoded kallsyms table and how it was encoded.
#[derive(Clone, Debug)]
pub struct Kallsyms {
    /// The symbols (runtime addresses, no sizes).
    pub table: SymbolTable,
    /// The address encoding used.
    pub encoding: AddrEncoding,
    /// The name-length encoding used ([`NameLen::OneByte`] or
    /// [`NameLen::TwoByte`]).
    pub name_len: NameLen,
    /// Whether `kallsyms_markers` was read and agreed with the names.
    pub markers_checked: bool,
}

/// Sequential reads through a fixed window, so that the names stream is
/// read in large pieces without knowing its length in advance.
struct Window<'m> {
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
const SMALL_WINDOW: usize = 4 * 1024;

impl<'m> Window<'m> {
    fn new(mem: &'m dyn VirtRead) -> Self {
        Self::sized(mem, WINDOW)
    }

    fn sized(mem: &'m dyn VirtRead, size: usize) -> Self {
        Window {
            mem,
            buf: Vec::new(),
            start: 0,
            len: 0,
            size,
        }
    }

    /// Fills `out` from `va`.
    fn read(&mut self, va: u64, out: &mut [u8]) -> Result<()> {
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
struct Tokens {
    table: Vec<u8>,
    spans: [(u32, u32); 256],
}

impl Tokens {
    fn read(mem: &dyn VirtRead, t: &KallsymsTables, e: Endian) -> Result<Tokens> {
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

/// Decoded names: (offset into `text`, length, type letter) per symbol.
struct Names {
    text: String,
    recs: Vec<(u32, u16, u8)>,
    /// Whether some length byte had its top bit set (the two length
    /// encodings disagree).
    ambiguous: bool,
    /// Bytes of the names stream.
    stream_len: u64,
}

impl Names {
    fn name(&self, i: usize) -> &str {
        self.recs
            .get(i)
            .and_then(|&(o, l, _)| self.text.get(o as usize..o as usize + usize::from(l)))
            .unwrap_or_default()
    }
}

/// The length of the name at `names + off` and the bytes of its length
/// field; whether the length's top bit was set (the encodings disagree).
fn name_len(w: &mut Window<'_>, names: u64, off: u64, mode: NameLen) -> Result<(usize, u64, bool)> {
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
fn read_name(
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

/// Decodes `n` names; checks `markers` (stream offsets of every 256th
/// symbol) as it goes when given.
fn decode_names(
    w: &mut Window<'_>,
    names: VirtAddr,
    n: u32,
    mode: NameLen,
    tokens: &Tokens,
    markers: Option<&[u64]>,
) -> Result<Names> {
    let mut out = Names {
        text: String::new(),
        recs: Vec::new(),
        ambiguous: false,
        stream_len: 0,
    };
    let mut off = 0u64;
    let mut buf: Vec<u8> = Vec::with_capacity(KSYM_NAME_LEN);
    let mut codes = [0u8; KSYM_NAME_LEN];
    for i in 0..n {
        if i % 256 == 0 {
            if let Some(m) = markers {
                if m.get((i / 256) as usize) != Some(&off) {
                    return Err(Error::Malformed(
                        "kallsyms: names do not agree with kallsyms_markers",
                    ));
                }
            }
        }
        let (used, ambiguous) = read_name(w, names.0, off, mode, tokens, &mut codes, &mut buf)?;
        out.ambiguous |= ambiguous;
        let (&kind, name) = buf
            .split_first()
            .ok_or(Error::Malformed("kallsyms: empty symbol"))?;
        let name = core::str::from_utf8(name)
            .map_err(|_| Error::Malformed("kallsyms: symbol name is not UTF-8"))?;
        let o = u32::try_from(out.text.len())
            .map_err(|_| Error::Unsupported("kallsyms: names exceed 4 GiB"))?;
        out.text.push_str(name);
        out.recs.push((o, name.len() as u16, kind));
        off += used;
    }
    if let Some(m) = markers {
        // Markers beyond the last symbol would mean a different count.
        if m.len() as u64 != u64::from(n).div_ceil(256) {
            return Err(Error::Malformed(
                "kallsyms: kallsyms_markers does not match kallsyms_num_syms",
            ));
        }
    }
    out.stream_len = off;
    Ok(out)
}

/// Reads `kallsyms_markers` (u32 in current kernels, `unsigned long` in
/// old ones: detected by the second entry, which is never 0).
fn read_markers(w: &mut Window<'_>, at: VirtAddr, n: u32, e: Endian, ptr: u8) -> Result<Vec<u64>> {
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
fn read_count(w: &mut Window<'_>, at: VirtAddr, o: &KallsymsOptions<'_>) -> Result<u32> {
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
struct AddrTable {
    enc: AddrEncoding,
    /// `kallsyms_addresses` or `kallsyms_offsets`.
    table: u64,
    /// Bytes per entry.
    width: u64,
    /// `kallsyms_relative_base`'s value (base-relative encodings).
    rb: u64,
}

impl AddrTable {
    fn new(
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
    fn addr(&self, w: &mut Window<'_>, i: u64, o: &KallsymsOptions<'_>) -> Result<(u64, bool)> {
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

/// Decodes addresses with one encoding.
fn decode_addrs(
    w: &mut Window<'_>,
    t: &KallsymsTables,
    n: u32,
    enc: AddrEncoding,
    o: &KallsymsOptions<'_>,
) -> Result<Vec<u64>> {
    let table = AddrTable::new(w, t, enc, o)?;
    let mut out = Vec::new();
    let mut negative = false;
    for i in 0..u64::from(n) {
        let (a, neg) = table.addr(w, i, o)?;
        negative |= neg;
        out.push(a);
    }
    if enc == AddrEncoding::AbsolutePercpu && !negative {
        // Every kernel has relative (negative) entries; all-positive
        // offsets are base-relative ones.
        return Err(Error::Malformed(
            "kallsyms: no relative entries for the absolute per-CPU encoding",
        ));
    }
    Ok(out)
}

/// The encodings to try, most likely first.
fn candidates(t: &KallsymsTables, o: &KallsymsOptions<'_>) -> Result<Vec<AddrEncoding>> {
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

fn sorted(a: &[u64]) -> bool {
    a.windows(2).all(|w| w[0] <= w[1])
}

/// Whether every known symbol decodes to its address.
fn knows(names: &Names, addrs: &[u64], known: &[(&str, u64)]) -> bool {
    known.iter().all(|&(kn, ka)| {
        (0..names.recs.len()).any(|i| names.name(i) == kn && addrs.get(i) == Some(&ka))
    })
}

/// Decodes the kernel's kallsyms tables at `t` through `mem`.
///
/// Returns an error when a table cannot be read, the data break a bound
/// (count above the cap, a token without its NUL, a name over 512 bytes, a
/// name stream that disagrees with `kallsyms_markers`), or no address
/// encoding gives sorted addresses that agree with `o.known`.
pub fn decode(mem: &dyn VirtRead, t: &KallsymsTables, o: &KallsymsOptions<'_>) -> Result<Kallsyms> {
    if o.ptr_size != 4 && o.ptr_size != 8 {
        return Err(Error::Unsupported("kallsyms: pointer size must be 4 or 8"));
    }
    let mut w = Window::new(mem);
    let n = read_count(&mut w, t.num_syms, o)?;
    let tokens = Tokens::read(mem, t, o.endian)?;
    let markers = match t.markers {
        Some(m) => Some(read_markers(&mut w, m, n, o.endian, o.ptr_size)?),
        None => None,
    };
    let markers = markers.as_deref();
    let mut attempt = |mode: NameLen| -> Result<Names> {
        let names = decode_names(&mut w, t.names, n, mode, &tokens, markers)?;
        if let Some(m) = t.markers {
            // kallsyms_markers follows the names stream (aligned): a count
            // that leaves names undecoded, or reads past them, shows here.
            let end = t.names.0.saturating_add(names.stream_len);
            if m.0 < end || m.0 - end >= u64::from(o.ptr_size) {
                return Err(Error::Malformed(
                    "kallsyms: names stream does not end at kallsyms_markers",
                ));
            }
        }
        Ok(names)
    };
    let (names, name_len) = match o.name_len {
        NameLen::Auto => match attempt(NameLen::TwoByte) {
            Ok(names) => (names, NameLen::TwoByte),
            Err(first) => match attempt(NameLen::OneByte) {
                // Only a length byte with its top bit set makes the two
                // encodings differ.
                Ok(names) if names.ambiguous => (names, NameLen::OneByte),
                _ => return Err(first),
            },
        },
        mode => (attempt(mode)?, mode),
    };
    let mut err = Error::Malformed("kallsyms: decoded addresses are not sorted (wrong encoding?)");
    for enc in candidates(t, o)? {
        let addrs = match decode_addrs(&mut w, t, n, enc, o) {
            Ok(a) => a,
            Err(e) => {
                err = e;
                continue;
            }
        };
        if !sorted(&addrs) || (addrs.len() >= 16 && addrs.first() == addrs.last()) {
            // Unsorted, or all at one address (zeros read as offsets).
            continue;
        }
        if !knows(&names, &addrs, o.known) {
            err = Error::Malformed("kallsyms: a known symbol decodes to another address");
            continue;
        }
        let mut b = SymbolTableBuilder::new(AddrSpace::Runtime);
        for (i, &a) in addrs.iter().enumerate() {
            let kind = names.recs.get(i).map_or(b'?', |r| r.2);
            b.push(names.name(i), a, kind, None)?;
        }
        return Ok(Kallsyms {
            table: b.finish(),
            encoding: enc,
            name_len,
            markers_checked: markers.is_some(),
        });
    }
    Err(err)
}

/// By-name lookups in the kernel's kallsyms without decoding the whole
/// table: a binary search of `kallsyms_seqs_of_names` (symbol indexes
/// sorted by name, three big-endian bytes each), which is how the
/// kernel's own `kallsyms_lookup_name` works since 6.2 (and in 6.1 stable
/// kernels that took the backport, such as Debian's 6.1.0-56). A lookup
/// decodes about log2(N) names (17 for 87 000 symbols), each found from
/// its 256-symbol block's `kallsyms_markers` entry, instead of all N.
///
/// VMCOREINFO gives neither `kallsyms_markers` nor
/// `kallsyms_seqs_of_names`; their place follows from the build script's
/// layout (scripts/kallsyms.c; every table aligned to the pointer size as
/// the names are). In 6.1 with the backport, 6.2 and 6.3 the sequence
/// table's 3 × N bytes end in the padding before `kallsyms_token_table`
/// and the markers' 4 × ⌈N/256⌉ bytes end just before it; from 6.4 on the
/// markers end just before the token table and the sequence table follows
/// the address tables (after `kallsyms_relative_base`). Both places are
/// tried and checked: the markers start at 0 and increase, the last block
/// of names ends where the markers begin, every sequence entry read is
/// below N, and every symbol the caller knows (VMCOREINFO `_stext`) must
/// be found at its address, which also picks the address encoding.
///
/// Names compare as bytes, as the build script sorts them; on clang-LTO
/// kernels, which sort by the name without its `.suffix`, the symbols
/// called `name` are still found (the scan passes over `name.*`), but a
/// name with a '.' of its own may be missed.
#[derive(Clone)]
pub struct NameIndex {
    n: u32,
    names: u64,
    markers: Vec<u64>,
    seqs: u64,
    tokens: Tokens,
    addrs: AddrTable,
    endian: Endian,
    ptr_size: u8,
}

impl core::fmt::Debug for NameIndex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NameIndex")
            .field("symbols", &self.n)
            .field("seqs_of_names", &format_args!("{:#x}", self.seqs))
            .field("encoding", &self.addrs.enc)
            .finish_non_exhaustive()
    }
}

impl NameIndex {
    /// Finds and checks the tables (see the type's documentation). An
    /// error means the kernel has no usable `kallsyms_seqs_of_names`
    /// (before 6.2) or `o.known` is empty: [`decode`] the table instead.
    pub fn new(mem: &dyn VirtRead, t: &KallsymsTables, o: &KallsymsOptions<'_>) -> Result<Self> {
        if o.known.is_empty() {
            return Err(Error::Unsupported(
                "kallsyms: no known symbol to check a name index with",
            ));
        }
        if o.ptr_size != 4 && o.ptr_size != 8 {
            return Err(Error::Unsupported("kallsyms: pointer size must be 4 or 8"));
        }
        let mut w = Window::sized(mem, SMALL_WINDOW);
        let n = read_count(&mut w, t.num_syms, o)?;
        let tokens = Tokens::read(mem, t, o.endian)?;
        let (align, ptr) = (u64::from(o.ptr_size), u64::from(o.ptr_size));
        let (n64, blocks) = (u64::from(n), u64::from(n).div_ceil(256));
        // Aligned as the tables are (the names are one of them).
        let names = t.names.0;
        let down = |x: u64| x.checked_sub(names).map(|d| names + d / align * align);
        let up = |x: u64| down(x.checked_add(align - 1)?);
        let before = |x: Option<u64>, len: u64| x?.checked_sub(len).and_then(down);
        // 6.1 stable with the backport, 6.2 and 6.3: markers, seqs, token
        // table. 6.4 on (scripts/kallsyms.c's new output order): markers,
        // token table, token index, addresses or offsets, relative base,
        // seqs.
        let between = before(before(Some(t.token_table.0), 3 * n64), 4 * blocks)
            .map(|m| (m, up(m + 4 * blocks)));
        let last_table = match (t.relative_base, t.offsets, t.addresses) {
            (Some(rb), _, _) => rb.0.checked_add(ptr),
            (None, Some(off), _) => off.0.checked_add(4 * n64),
            (None, None, Some(a)) => a.0.checked_add(ptr * n64),
            _ => None,
        };
        let after = before(Some(t.token_table.0), 4 * blocks).map(|m| (m, last_table.and_then(up)));
        let mut err = Error::Unsupported(
            "kallsyms: no kallsyms_seqs_of_names where the layout puts it (a kernel before 6.2?)",
        );
        for (markers_at, seqs) in [between, after].into_iter().flatten() {
            let Some(seqs) = seqs else { continue };
            if t.markers.is_some_and(|m| m.0 != markers_at) || markers_at <= names {
                continue;
            }
            let Some(markers) = Self::markers(&mut w, names, markers_at, n, o)? else {
                continue;
            };
            let mut idx = NameIndex {
                n,
                names,
                markers,
                seqs,
                tokens: tokens.clone(),
                addrs: AddrTable {
                    enc: AddrEncoding::Absolute,
                    table: 0,
                    width: 0,
                    rb: 0,
                },
                endian: o.endian,
                ptr_size: o.ptr_size,
            };
            for enc in candidates(t, o)? {
                idx.addrs = match AddrTable::new(&mut w, t, enc, o) {
                    Ok(a) => a,
                    Err(e) => {
                        err = e;
                        continue;
                    }
                };
                let mut found = true;
                for &(name, addr) in o.known {
                    // A misplaced sequence table shows here as an error
                    // (entries beyond N) or a wrong answer.
                    found &= idx.lookup(mem, name).ok().flatten().map(|s| s.0 .0) == Some(addr);
                }
                if found {
                    return Ok(idx);
                }
                err = Error::Malformed("kallsyms: a known symbol is not at its address");
            }
        }
        Err(err)
    }

    /// `kallsyms_markers` at `at`, if they look like this kernel's: stream
    /// offsets of every 256th name, from 0, increasing, inside the names
    /// stream, whose last block of names ends in the padding before the
    /// markers.
    fn markers(
        w: &mut Window<'_>,
        names: u64,
        at: u64,
        n: u32,
        o: &KallsymsOptions<'_>,
    ) -> Result<Option<Vec<u64>>> {
        let blocks = u64::from(n).div_ceil(256);
        // Unreadable: not where this kernel keeps them.
        let Ok(markers) = read_markers(w, VirtAddr(at), n, o.endian, o.ptr_size) else {
            return Ok(None);
        };
        let stream = at - names;
        let increasing = markers.windows(2).all(|p| p[0] < p[1]);
        let Some(&last) = markers.last() else {
            return Ok(None);
        };
        if markers.first() != Some(&0) || !increasing || last >= stream {
            return Ok(None);
        }
        let mut end = last;
        for _ in (blocks - 1) as u32 * 256..n {
            match name_len(w, names, end, NameLen::TwoByte) {
                Ok((len, hdr, _)) => end += hdr + len as u64,
                Err(_) => return Ok(None),
            }
        }
        let ends_there = end <= stream && stream - end < u64::from(o.ptr_size);
        Ok(ends_there.then_some(markers))
    }

    /// Number of symbols.
    pub fn len(&self) -> u32 {
        self.n
    }

    /// Whether the table is empty (never, for a table [`NameIndex::new`]
    /// accepted).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The address encoding found.
    pub fn encoding(&self) -> AddrEncoding {
        self.addrs.enc
    }

    fn opts(&self) -> KallsymsOptions<'static> {
        KallsymsOptions::new(self.endian, self.ptr_size)
    }

    /// Entry `i` of `kallsyms_seqs_of_names`: a symbol index.
    fn seq(&self, w: &mut Window<'_>, i: u32) -> Result<u32> {
        let mut b = [0u8; 3];
        let at = self
            .seqs
            .checked_add(3 * u64::from(i))
            .ok_or(Error::Malformed(
                "kallsyms: kallsyms_seqs_of_names wraps around the address space",
            ))?;
        w.read(at, &mut b)?;
        let s = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        if s >= self.n {
            return Err(Error::Malformed(
                "kallsyms: kallsyms_seqs_of_names entry beyond the symbol count",
            ));
        }
        Ok(s)
    }

    /// Decodes symbol `s`'s name (type letter first) into `out`.
    fn name(
        &self,
        w: &mut Window<'_>,
        s: u32,
        codes: &mut [u8; KSYM_NAME_LEN],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let block = self.markers.get((s / 256) as usize).copied().unwrap_or(0);
        let mut off = block;
        for _ in 0..s % 256 {
            let (len, hdr, _) = name_len(w, self.names, off, NameLen::TwoByte)?;
            off += hdr + len as u64;
        }
        read_name(
            w,
            self.names,
            off,
            NameLen::TwoByte,
            &self.tokens,
            codes,
            out,
        )?;
        Ok(())
    }

    /// The address and type letter of the symbol called `name`: among
    /// several of that name, the one [`SymbolTable::lookup`] prefers
    /// (global before local, not absolute, then the first).
    pub fn lookup(&self, mem: &dyn VirtRead, name: &str) -> Result<Option<(VirtAddr, u8)>> {
        let mut w = Window::sized(mem, SMALL_WINDOW);
        let key = name.as_bytes();
        let mut codes = [0u8; KSYM_NAME_LEN];
        let mut buf = Vec::with_capacity(KSYM_NAME_LEN);
        let (mut lo, mut hi) = (0u32, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let s = self.seq(&mut w, mid)?;
            self.name(&mut w, s, &mut codes, &mut buf)?;
            if buf.get(1..).unwrap_or_default() < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        // The symbols called `name` follow, and among them, on clang-LTO
        // kernels (sorted by the name cut at its first '.' or ".llvm."),
        // suffixed ones such as `name.constprop.0`: the scan goes on over
        // `name.*`.
        let mut best: Option<(u8, u32, u8)> = None;
        for i in lo..self.n {
            if i - lo > MAX_SAME_NAME {
                return Err(Error::Malformed(
                    "kallsyms: more than 65536 symbols share a name",
                ));
            }
            let s = self.seq(&mut w, i)?;
            self.name(&mut w, s, &mut codes, &mut buf)?;
            let got = buf.get(1..).unwrap_or_default();
            if got != key {
                if got
                    .strip_prefix(key)
                    .is_some_and(|r| r.first() == Some(&b'.'))
                {
                    continue;
                }
                break;
            }
            let kind = buf[0];
            let cand = (crate::symtab::kind_rank(kind), s, kind);
            if best.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                best = Some(cand);
            }
        }
        let Some((_, s, kind)) = best else {
            return Ok(None);
        };
        let (a, _) = self.addrs.addr(&mut w, u64::from(s), &self.opts())?;
        Ok(Some((VirtAddr(a), kind)))
    }
}

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
