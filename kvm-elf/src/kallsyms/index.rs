//! [`NameIndex`]: by-name lookups through `kallsyms_seqs_of_names`,
//! decoding about log2(N) names instead of the whole table.

use super::read::{
    candidates, name_len, read_count, read_markers, read_name, AddrTable, Tokens, Window,
    SMALL_WINDOW,
};
use super::types::{AddrEncoding, KallsymsOptions, KallsymsTables, NameLen, KSYM_NAME_LEN};
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Endian, Error, Result, VirtAddr, VirtRead};

/// Most symbols of one name a [`NameIndex`] lookup compares (a kernel has
/// a few hundred at most: static functions of the same name).
const MAX_SAME_NAME: u32 = 1 << 16;

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
    ///
    /// [`decode`]: fn@super::decode
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
    ///
    /// [`SymbolTable::lookup`]: crate::SymbolTable::lookup
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

    /// The symbol at or nearest below `addr` (among several at one
    /// address the first in the table, as the kernel's `kallsyms_lookup`
    /// names it): its name, address and type letter. A binary search of
    /// the address table (the build script sorts symbols by address),
    /// then one name decoded.
    pub fn nearest(&self, mem: &dyn VirtRead, addr: u64) -> Result<Option<(String, VirtAddr, u8)>> {
        let mut w = Window::sized(mem, SMALL_WINDOW);
        let o = self.opts();
        let at = |w: &mut Window<'_>, i: u32| -> Result<u64> {
            self.addrs.addr(w, u64::from(i), &o).map(|(a, _)| a)
        };
        let (mut lo, mut hi) = (0u32, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if at(&mut w, mid)? <= addr {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let Some(last) = lo.checked_sub(1) else {
            return Ok(None);
        };
        let base = at(&mut w, last)?;
        let (mut lo, mut hi) = (0u32, last);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if at(&mut w, mid)? < base {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut codes = [0u8; KSYM_NAME_LEN];
        let mut buf = Vec::with_capacity(KSYM_NAME_LEN);
        self.name(&mut w, lo, &mut codes, &mut buf)?;
        let Some((&kind, name)) = buf.split_first() else {
            return Err(Error::Malformed("kallsyms: a symbol with an empty name"));
        };
        Ok(Some((
            String::from_utf8_lossy(name).into_owned(),
            VirtAddr(base),
            kind,
        )))
    }
}
