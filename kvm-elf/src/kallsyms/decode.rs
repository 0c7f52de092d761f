//! Decoding the whole compressed table: every name and every address,
//! the name-length and address encodings detected and checked
//! ([`decode`]).

use super::read::{candidates, read_count, read_markers, read_name, AddrTable, Tokens, Window};
use super::types::{
    AddrEncoding, Kallsyms, KallsymsOptions, KallsymsTables, NameLen, KSYM_NAME_LEN,
};
use crate::symtab::{AddrSpace, SymbolTableBuilder};
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Error, Result, VirtAddr, VirtRead};

/// Decoded names: (offset into `text`, length, type letter) per symbol.
pub(super) struct Names {
    pub(super) text: String,
    pub(super) recs: Vec<(u32, u16, u8)>,
    /// Whether some length byte had its top bit set (the two length
    /// encodings disagree).
    pub(super) ambiguous: bool,
    /// Bytes of the names stream.
    pub(super) stream_len: u64,
}

impl Names {
    fn name(&self, i: usize) -> &str {
        self.recs
            .get(i)
            .and_then(|&(o, l, _)| self.text.get(o as usize..o as usize + usize::from(l)))
            .unwrap_or_default()
    }
}

/// Decodes `n` names; checks `markers` (stream offsets of every 256th
/// symbol) as it goes when given.
pub(super) fn decode_names(
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
