//! Parsing a BTF blob: its header, then the records of its type section,
//! each checked as it is parsed and its name indexed; [`Btf::from_vec`]
//! then checks every type reference at once.

use super::types::{bytes_in, done, rd32, Btf, Kind, Rec, Stop, TypeId, R, TYPE_LEN};
use alloc::vec;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use hashbrown::{DefaultHashBuilder, HashTable};
use kvm_core::{Endian, Error, Result};

/// What a blob's header says.
pub(super) struct Header {
    pub(super) e: Endian,
    /// Header length.
    pub(super) len: usize,
    /// Type section (absolute offsets).
    pub(super) types: (usize, usize),
    /// String section (absolute offsets).
    pub(super) strs: (usize, usize),
}

/// The header of a blob of `len` bytes whose first bytes are `head`.
pub(super) fn header(head: &[u8], len: usize) -> Result<Header> {
    let e = match head.get(..2) {
        Some([0x9f, 0xeb]) => Endian::Little,
        Some([0xeb, 0x9f]) => Endian::Big,
        _ => return Err(Error::Malformed("BTF: bad magic")),
    };
    if head.get(2) != Some(&1) {
        return Err(Error::Unsupported("BTF: version is not 1"));
    }
    let hdr_len = rd32(head, 4, e)? as usize;
    if hdr_len < 24 || hdr_len > len {
        return Err(Error::Malformed("BTF: bad header length"));
    }
    let sect = |off_at: usize| -> Result<(usize, usize)> {
        let off = rd32(head, off_at, e)? as usize;
        let n = rd32(head, off_at + 4, e)? as usize;
        let start = hdr_len
            .checked_add(off)
            .ok_or(Error::Malformed("BTF: section offset overflows"))?;
        let end = start
            .checked_add(n)
            .filter(|&end| end <= len)
            .ok_or(Error::Malformed("BTF: section outside the blob"))?;
        Ok((start, end))
    };
    let types = sect(8)?;
    let strs = sect(16)?;
    if types.0 < strs.1 && strs.0 < types.1 {
        return Err(Error::Malformed("BTF: type and string sections overlap"));
    }
    if strs.0 == strs.1 {
        return Err(Error::Malformed(
            "BTF: string section must start and end with NUL",
        ));
    }
    if u32::try_from(len).is_err() {
        return Err(Error::Unsupported("BTF: blob above 4 GiB"));
    }
    Ok(Header {
        e,
        len: hdr_len,
        types,
        strs,
    })
}

impl Btf {
    /// Parses and validates a BTF blob (copied).
    pub fn parse(bytes: &[u8]) -> Result<Btf> {
        Btf::from_vec(bytes.to_vec())
    }

    /// Parses and validates a BTF blob, taking ownership of it.
    ///
    /// Returns an error for a bad magic or version, a header or section
    /// outside the blob, overlapping sections, a string section that is not
    /// NUL-delimited UTF-8, an unknown kind, a record running past the type
    /// section, a string offset outside the string section, a type id
    /// beyond the last type, or an INT/ENUM whose size is impossible.
    pub fn from_vec(data: Vec<u8>) -> Result<Btf> {
        let Header { e, types, strs, .. } = header(&data, data.len())?;
        let s = data
            .get(strs.0..strs.1)
            .ok_or(Error::Malformed("BTF: string section"))?;
        if s.first() != Some(&0) || s.last() != Some(&0) {
            return Err(Error::Malformed(
                "BTF: string section must start and end with NUL",
            ));
        }
        core::str::from_utf8(s).map_err(|_| Error::Malformed("BTF: strings are not UTF-8"))?;
        let mut btf = Btf::unparsed(data, e, types, strs, None);
        btf.types_loaded = types.1;
        done(btf.parse_more())?;
        let count = btf.len();
        for id in 1..=count {
            let r = done(btf.rec(TypeId(id)))?;
            btf.check_refs(&r, count)?;
        }
        btf.ptr_size = done(btf.detect_ptr_size())?;
        Ok(btf)
    }

    /// A blob with no record parsed yet.
    pub(super) fn unparsed(
        data: Vec<u8>,
        e: Endian,
        types: (usize, usize),
        strs: (usize, usize),
        str_loaded: Option<Vec<bool>>,
    ) -> Btf {
        Btf {
            data,
            e,
            types,
            strs,
            types_loaded: types.0,
            parsed: types.0,
            str_loaded,
            offsets: Vec::new(),
            by_name: HashTable::new(),
            next_same: vec![0],
            hasher: DefaultHashBuilder::default(),
            ptr_size: 8,
        }
    }

    /// Parses the records that lie in the loaded type bytes: each is
    /// checked (kind, length, names, kind-specific rules; references are
    /// checked when followed, or all at once by [`Btf::from_vec`]) and its
    /// name indexed. Stops with [`Stop::Types`] at the end of the loaded
    /// bytes and [`Stop::Str`] for a name not loaded yet.
    pub(super) fn parse_more(&mut self) -> R<()> {
        while self.parsed < self.types.1 {
            let at = self.parsed;
            if self.types.1 - at < TYPE_LEN {
                return Err(Error::Malformed("BTF: truncated type record").into());
            }
            if at + TYPE_LEN > self.types_loaded {
                return Err(Stop::Types);
            }
            let info = rd32(&self.data, at + 4, self.e)?;
            let kind = Kind::from_raw((info >> 24) & 0x1f)
                .filter(|&k| k != Kind::Void)
                .ok_or(Error::Malformed("BTF: unknown type kind"))?;
            let len = kind
                .trailer_len((info & 0xffff) as usize)
                .and_then(|t| t.checked_add(TYPE_LEN))
                .ok_or(Error::Malformed("BTF: record too long"))?;
            if len > self.types.1 - at {
                return Err(Error::Malformed("BTF: type record runs past the type section").into());
            }
            if at + len > self.types_loaded {
                return Err(Stop::Types);
            }
            let r = self.rec_at(at)?;
            self.validate(&r)?;
            let named = r.name_off != 0 && !self.str_bytes(r.name_off)?.is_empty();
            let id = self.offsets.len() as u32 + 1;
            self.offsets.push(at as u32); // blobs are below 4 GiB (header)
            self.next_same.push(0);
            if named {
                self.index_name(r.name_off, id);
            }
            self.parsed = at + len;
        }
        Ok(())
    }

    fn index_name(&mut self, name_off: u32, id: u32) {
        let Btf {
            by_name,
            next_same,
            hasher,
            offsets,
            data,
            e,
            strs,
            ..
        } = self;
        // Names of parsed records are loaded: they were checked.
        let name_of = |id: u32| -> &[u8] {
            let at = offsets.get(id as usize - 1).copied().unwrap_or(0) as usize;
            let off = rd32(data, at, *e).unwrap_or(0) as usize;
            bytes_in(data, *strs, off).unwrap_or_default()
        };
        let name = bytes_in(data, *strs, name_off as usize).unwrap_or_default();
        let h = hasher.hash_one(name);
        match by_name.find_mut(h, |&(first, _)| name_of(first) == name) {
            Some(entry) => {
                if let Some(n) = next_same.get_mut(entry.1 as usize) {
                    *n = id;
                }
                entry.1 = id;
            }
            None => {
                by_name.insert_unique(h, (id, id), |&(first, _)| hasher.hash_one(name_of(first)));
            }
        }
    }

    /// A record's own rules: names inside the string section, INT
    /// encodings, member offsets inside their struct, enum sizes.
    fn validate(&self, r: &Rec) -> R<()> {
        let name_ok = |off: u32| self.str_bytes(off).map(|_| ());
        let vlen = usize::from(r.vlen);
        match r.kind {
            Kind::Int => {
                let v = self.tw(r, 0)?;
                let (bits, off) = (v & 0xff, (v >> 16) & 0xff);
                if v & 0xff00 != 0
                    || bits > 128
                    || r.size_or_type > 16
                    || u64::from(bits + off) > u64::from(r.size_or_type) * 8
                {
                    return Err(Error::Malformed("BTF: impossible INT").into());
                }
            }
            Kind::Struct | Kind::Union => {
                let bits = u64::from(r.size_or_type) * 8;
                for i in 0..vlen {
                    name_ok(self.tw(r, 3 * i)?)?;
                    let mut off = self.tw(r, 3 * i + 2)?;
                    if r.kind_flag {
                        off &= 0x00ff_ffff;
                    }
                    if u64::from(off) > bits {
                        return Err(Error::Malformed("BTF: member offset beyond its struct").into());
                    }
                }
            }
            Kind::Enum | Kind::Enum64 => {
                if r.size_or_type > 8 {
                    return Err(Error::Malformed("BTF: enum larger than 8 bytes").into());
                }
                let step = if r.kind == Kind::Enum { 2 } else { 3 };
                for i in 0..vlen {
                    name_ok(self.tw(r, step * i)?)?;
                }
            }
            Kind::FuncProto => {
                for i in 0..vlen {
                    name_ok(self.tw(r, 2 * i)?)?;
                }
            }
            _ => {}
        }
        name_ok(r.name_off)
    }

    /// Every type id a record refers to is at most `count`.
    fn check_refs(&self, r: &Rec, count: u32) -> Result<()> {
        let ref_ok = |t: u32| {
            if t <= count {
                Ok(())
            } else {
                Err(Error::Malformed(
                    "BTF: reference to a type id beyond the last type",
                ))
            }
        };
        if r.kind.has_ref() {
            ref_ok(r.size_or_type)?;
        }
        let vlen = usize::from(r.vlen);
        match r.kind {
            Kind::Array => {
                ref_ok(self.tw(r, 0)?)?;
                ref_ok(self.tw(r, 1)?)?;
            }
            Kind::Struct | Kind::Union => {
                for i in 0..vlen {
                    ref_ok(self.tw(r, 3 * i + 1)?)?;
                }
            }
            Kind::FuncProto => {
                for i in 0..vlen {
                    ref_ok(self.tw(r, 2 * i + 1)?)?;
                }
            }
            Kind::Datasec => {
                for i in 0..vlen {
                    ref_ok(self.tw(r, 3 * i)?)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Pointer size: the size of `long`/`unsigned long`, else 8.
    pub(super) fn detect_ptr_size(&self) -> R<u32> {
        for n in ["long unsigned int", "long int", "unsigned long", "long"] {
            match self.find_kind(n, Kind::Int) {
                Some(id) => {
                    if let Some(s @ (4 | 8)) = self.ty(id)?.size() {
                        return Ok(s);
                    }
                }
                // A later record may be the first of that name.
                None if !self.complete() => return Err(Stop::Types),
                None => {}
            }
        }
        Ok(8)
    }
}
