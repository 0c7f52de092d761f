//! Encoders for synthetic inputs (feature `builder`): kallsyms tables laid
//! out as the kernel's build script lays them out, and BTF blobs. Tests,
//! fuzz seeds and benchmarks use them; nothing reads through them.

use crate::btf::{Kind, TypeId, BTF_MAGIC};
use crate::kallsyms::{AddrEncoding, KallsymsTables, NameLen};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use hashbrown::HashMap;
use kvm_core::{Endian, Error, Result, VirtAddr};

fn put16(out: &mut Vec<u8>, e: Endian, v: u16) {
    out.extend_from_slice(&match e {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    });
}

fn put32(out: &mut Vec<u8>, e: Endian, v: u32) {
    out.extend_from_slice(&match e {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    });
}

fn put64(out: &mut Vec<u8>, e: Endian, v: u64) {
    out.extend_from_slice(&match e {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    });
}

fn put_word(out: &mut Vec<u8>, e: Endian, size: u8, v: u64) {
    if size == 4 {
        put32(out, e, v as u32);
    } else {
        put64(out, e, v);
    }
}

/// Order of the tables in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KallsymsLayout {
    /// Up to 6.1: addresses/offsets, relative_base, num_syms, names,
    /// markers, token_table, token_index.
    Old,
    /// 6.2, 6.3 and 6.1 stable kernels with the backport: as
    /// [`KallsymsLayout::Old`] with `kallsyms_seqs_of_names` (3 bytes per
    /// symbol) between markers and token_table.
    Seqs,
    /// 6.4+: num_syms, names, markers, token_table, token_index,
    /// addresses/offsets, relative_base (then seqs_of_names).
    New,
}

/// A synthetic kallsyms image: bytes to place at `base`, and where each
/// table is.
#[derive(Clone, Debug)]
pub struct KallsymsImage {
    /// Virtual address of the first byte.
    pub base: VirtAddr,
    /// The tables.
    pub bytes: Vec<u8>,
    /// Their addresses.
    pub tables: KallsymsTables,
}

/// Builds kallsyms tables from (type, name, address) triples, compressing
/// names with a token table the way `scripts/kallsyms` does (the most
/// frequent pair of tokens becomes a new token, until the 256 codes are
/// used).
#[derive(Clone, Debug)]
pub struct KallsymsBuilder {
    endian: Endian,
    ptr_size: u8,
    encoding: AddrEncoding,
    name_len: NameLen,
    layout: KallsymsLayout,
    wide: bool,
    lto: bool,
    syms: Vec<(Vec<u8>, u64)>,
}

impl KallsymsBuilder {
    /// A builder for a kernel of this byte order and pointer size
    /// (base-relative, two-byte lengths, new layout by default).
    pub fn new(endian: Endian, ptr_size: u8) -> Self {
        KallsymsBuilder {
            endian,
            ptr_size,
            encoding: AddrEncoding::BaseRelative,
            name_len: NameLen::TwoByte,
            layout: KallsymsLayout::New,
            wide: false,
            lto: false,
            syms: Vec::new(),
        }
    }

    /// Sets the address encoding.
    pub fn encoding(mut self, e: AddrEncoding) -> Self {
        self.encoding = e;
        self
    }

    /// Sets the name-length encoding ([`NameLen::OneByte`] or
    /// [`NameLen::TwoByte`]).
    pub fn name_len(mut self, n: NameLen) -> Self {
        self.name_len = n;
        self
    }

    /// Sets the table order.
    pub fn layout(mut self, l: KallsymsLayout) -> Self {
        self.layout = l;
        self
    }

    /// Writes `kallsyms_num_syms` and `kallsyms_markers` as `unsigned long`
    /// (old kernels).
    pub fn wide_counts(mut self, wide: bool) -> Self {
        self.wide = wide;
        self
    }

    /// Sorts `kallsyms_seqs_of_names` as clang-LTO kernels of 6.2 do: by
    /// the name cut at its first '.', then by address.
    pub fn lto_sort(mut self, lto: bool) -> Self {
        self.lto = lto;
        self
    }

    /// Adds a symbol. With [`AddrEncoding::AbsolutePercpu`], type `A`
    /// symbols are the absolute (per-CPU) ones.
    pub fn push(&mut self, kind: u8, name: &str, addr: u64) {
        let mut s = vec![kind];
        s.extend_from_slice(name.as_bytes());
        self.syms.push((s, addr));
    }

    /// Lays the tables out at `base`.
    ///
    /// Returns an error when an address does not fit the encoding or a
    /// name is too long for the length encoding.
    pub fn build(&self, base: VirtAddr) -> Result<KallsymsImage> {
        let e = self.endian;
        let ptr = self.ptr_size;
        let mut syms = self.syms.clone();
        syms.sort_by_key(|s| s.1);
        let n = syms.len();
        let (tokens, names) = compress(syms.iter().map(|s| s.0.as_slice()));

        // Names stream and markers.
        let mut stream = Vec::new();
        let mut markers = Vec::new();
        for (i, codes) in names.iter().enumerate() {
            if i % 256 == 0 {
                markers.push(stream.len() as u64);
            }
            let len = codes.len();
            match self.name_len {
                NameLen::OneByte => {
                    stream
                        .push(u8::try_from(len).map_err(|_| Error::Unsupported("name too long"))?);
                }
                _ if len < 0x80 => stream.push(len as u8),
                _ if len < 0x4000 => {
                    stream.push((len & 0x7f) as u8 | 0x80);
                    stream.push((len >> 7) as u8);
                }
                _ => return Err(Error::Unsupported("name too long")),
            }
            stream.extend_from_slice(codes);
        }
        let mut token_table = Vec::new();
        let mut token_index = Vec::new();
        for t in &tokens {
            put16(&mut token_index, e, token_table.len() as u16);
            token_table.extend_from_slice(t);
            token_table.push(0);
        }

        let align = usize::from(ptr);
        let mut out: Vec<u8> = Vec::new();
        let mut t = KallsymsTables::default();
        let va = |off: usize| VirtAddr(base.0 + off as u64);
        let label = |out: &mut Vec<u8>| {
            let l = out.len().next_multiple_of(align);
            out.resize(l, 0);
            va(l)
        };
        let rb = match self.encoding {
            AddrEncoding::AbsolutePercpu => syms
                .iter()
                .find(|s| s.0.first() != Some(&b'A'))
                .map_or(0, |s| s.1),
            _ => syms.first().map_or(0, |s| s.1),
        };
        let addr_tables = |out: &mut Vec<u8>, t: &mut KallsymsTables| -> Result<()> {
            let start = label(out);
            let range = Error::Unsupported("address does not fit the encoding");
            for (i, (s, a)) in syms.iter().enumerate() {
                match self.encoding {
                    AddrEncoding::Absolute => put_word(out, e, ptr, *a),
                    AddrEncoding::BaseRelative => {
                        let off = a.checked_sub(rb).ok_or(range)?;
                        put32(out, e, u32::try_from(off).map_err(|_| range)?);
                    }
                    AddrEncoding::AbsolutePercpu => {
                        let v = if s.first() == Some(&b'A') {
                            i32::try_from(*a).map_err(|_| range)?
                        } else {
                            let d = a.checked_sub(rb).ok_or(range)?;
                            // relative_base - addr - 1, negative.
                            let d = i64::try_from(d).map_err(|_| range)?;
                            i32::try_from(-d - 1).map_err(|_| range)?
                        };
                        put32(out, e, v as u32);
                    }
                    AddrEncoding::PlaceRelative => {
                        let slot = start.0 + 4 * i as u64;
                        let d = a.wrapping_sub(slot) as i64;
                        put32(out, e, i32::try_from(d).map_err(|_| range)? as u32);
                    }
                }
            }
            if self.encoding == AddrEncoding::Absolute {
                t.addresses = Some(start);
            } else {
                t.offsets = Some(start);
            }
            if matches!(
                self.encoding,
                AddrEncoding::BaseRelative | AddrEncoding::AbsolutePercpu
            ) {
                t.relative_base = Some(label(out));
                put_word(out, e, ptr, rb);
            }
            Ok(())
        };
        let count_width = if self.wide { ptr } else { 4 };
        if self.layout != KallsymsLayout::New {
            addr_tables(&mut out, &mut t)?;
        }
        t.num_syms = label(&mut out);
        put_word(&mut out, e, count_width, n as u64);
        t.names = label(&mut out);
        out.extend_from_slice(&stream);
        t.markers = Some(label(&mut out));
        for m in &markers {
            put_word(&mut out, e, count_width, *m);
        }
        // Symbol indexes sorted by name, 24-bit big-endian.
        let mut seqs: Vec<usize> = (0..n).collect();
        let key = |i: usize| {
            let name = syms[i].0.get(1..).unwrap_or_default();
            let cut = match self.lto {
                true => name.split(|&c| c == b'.').next().unwrap_or(name),
                false => name,
            };
            (cut, syms[i].1)
        };
        seqs.sort_by(|&a, &b| key(a).cmp(&key(b)));
        let mut seqs_bytes = Vec::new();
        for i in seqs {
            seqs_bytes.extend_from_slice(&(i as u32).to_be_bytes()[1..]);
        }
        if self.layout == KallsymsLayout::Seqs {
            label(&mut out);
            out.extend_from_slice(&seqs_bytes);
        }
        t.token_table = label(&mut out);
        out.extend_from_slice(&token_table);
        t.token_index = label(&mut out);
        out.extend_from_slice(&token_index);
        if self.layout == KallsymsLayout::New {
            addr_tables(&mut out, &mut t)?;
            label(&mut out);
            out.extend_from_slice(&seqs_bytes);
        }
        Ok(KallsymsImage {
            base,
            bytes: out,
            tables: t,
        })
    }
}

/// Token compression: returns the 256 token strings and every name as
/// token codes.
fn compress<'a>(names: impl Iterator<Item = &'a [u8]>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut names: Vec<Vec<u8>> = names.map(<[u8]>::to_vec).collect();
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; 256];
    for n in &names {
        for &c in n {
            tokens[usize::from(c)] = Some(vec![c]);
        }
    }
    let mut counts = vec![0u32; 65536];
    let mut touched: Vec<usize> = Vec::new();
    while let Some(free) = tokens.iter().position(Option::is_none) {
        for &k in &touched {
            counts[k] = 0;
        }
        touched.clear();
        for n in &names {
            for w in n.windows(2) {
                let k = usize::from(w[0]) << 8 | usize::from(w[1]);
                if counts[k] == 0 {
                    touched.push(k);
                }
                counts[k] += 1;
            }
        }
        // Most frequent pair; the lowest code among equals, so the output
        // does not depend on iteration order.
        let Some(best) = touched
            .iter()
            .copied()
            .max_by_key(|&k| (counts[k], core::cmp::Reverse(k)))
        else {
            break;
        };
        if counts[best] < 2 {
            break;
        }
        let (a, b) = ((best >> 8) as u8, (best & 0xff) as u8);
        let mut s = tokens[usize::from(a)].clone().unwrap_or_default();
        s.extend_from_slice(tokens[usize::from(b)].as_deref().unwrap_or_default());
        tokens[free] = Some(s);
        for n in &mut names {
            let mut o = Vec::with_capacity(n.len());
            let mut i = 0;
            while i < n.len() {
                if i + 1 < n.len() && n[i] == a && n[i + 1] == b {
                    o.push(free as u8);
                    i += 2;
                } else {
                    o.push(n[i]);
                    i += 1;
                }
            }
            *n = o;
        }
    }
    // Unused codes get a placeholder token that no name refers to.
    let tokens = tokens
        .into_iter()
        .map(|t| t.unwrap_or_else(|| b"~".to_vec()))
        .collect();
    (tokens, names)
}

/// A STRUCT/UNION member for [`BtfBuilder`].
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// Name ("" for anonymous).
    pub name: &'a str,
    /// Type.
    pub type_id: TypeId,
    /// Bit offset.
    pub bit_offset: u32,
    /// Bitfield size (kind_flag encoding) or 0.
    pub bitfield_size: u8,
}

impl<'a> Field<'a> {
    /// A plain member at `bit_offset`.
    pub fn new(name: &'a str, type_id: TypeId, bit_offset: u32) -> Self {
        Field {
            name,
            type_id,
            bit_offset,
            bitfield_size: 0,
        }
    }

    /// A bitfield of `size` bits at `bit_offset` (the struct is then
    /// written with `kind_flag`).
    pub fn bits(name: &'a str, type_id: TypeId, bit_offset: u32, size: u8) -> Self {
        Field {
            name,
            type_id,
            bit_offset,
            bitfield_size: size,
        }
    }
}

/// Builds BTF blobs, one record per call; ids are handed out in order
/// from 1 ([`BtfBuilder::next_id`] gives the next one, for forward
/// references and loops).
#[derive(Clone, Debug)]
pub struct BtfBuilder {
    e: Endian,
    types: Vec<u8>,
    strings: Vec<u8>,
    string_ids: HashMap<String, u32>,
    next: u32,
}

impl BtfBuilder {
    /// An empty blob of this byte order.
    pub fn new(e: Endian) -> Self {
        BtfBuilder {
            e,
            types: Vec::new(),
            strings: vec![0],
            string_ids: HashMap::new(),
            next: 1,
        }
    }

    /// The id the next record will get.
    pub fn next_id(&self) -> TypeId {
        TypeId(self.next)
    }

    /// Offset of `s` in the string section (added once).
    pub fn string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(&o) = self.string_ids.get(s) {
            return o;
        }
        let o = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        self.string_ids.insert(String::from(s), o);
        o
    }

    /// Appends a raw record: name offset, kind, vlen, kind_flag,
    /// size/type word and trailer words (for hostile blobs).
    pub fn raw(
        &mut self,
        name_off: u32,
        kind: u32,
        vlen: u16,
        kind_flag: bool,
        size_or_type: u32,
        trailer: &[u32],
    ) -> TypeId {
        let e = self.e;
        put32(&mut self.types, e, name_off);
        let info = u32::from(vlen) | (kind & 0x1f) << 24 | u32::from(kind_flag) << 31;
        put32(&mut self.types, e, info);
        put32(&mut self.types, e, size_or_type);
        for &w in trailer {
            put32(&mut self.types, e, w);
        }
        let id = TypeId(self.next);
        self.next += 1;
        id
    }

    fn rec(&mut self, name: &str, kind: Kind, vlen: u16, kf: bool, st: u32, tr: &[u32]) -> TypeId {
        let n = self.string(name);
        self.raw(n, kind.raw(), vlen, kf, st, tr)
    }

    /// An INT of `size` bytes and `bits` bits (`encoding`: INT_SIGNED …).
    pub fn int(&mut self, name: &str, size: u32, encoding: u32, bits: u32) -> TypeId {
        self.rec(name, Kind::Int, 0, false, size, &[encoding << 24 | bits])
    }

    /// An INT bitfield in the old encoding: `bits` bits at bit `offset`.
    pub fn int_bits(&mut self, name: &str, size: u32, offset: u32, bits: u32) -> TypeId {
        self.rec(name, Kind::Int, 0, false, size, &[offset << 16 | bits])
    }

    /// A pointer.
    pub fn ptr(&mut self, to: TypeId) -> TypeId {
        self.rec("", Kind::Ptr, 0, false, to.0, &[])
    }

    /// An array.
    pub fn array(&mut self, elem: TypeId, index: TypeId, nelems: u32) -> TypeId {
        self.rec("", Kind::Array, 0, false, 0, &[elem.0, index.0, nelems])
    }

    fn composite(&mut self, kind: Kind, name: &str, size: u32, fields: &[Field<'_>]) -> TypeId {
        let kf = fields.iter().any(|f| f.bitfield_size != 0);
        let mut tr = Vec::new();
        for f in fields {
            let off = if kf {
                u32::from(f.bitfield_size) << 24 | f.bit_offset
            } else {
                f.bit_offset
            };
            tr.extend_from_slice(&[self.string(f.name), f.type_id.0, off]);
        }
        self.rec(name, kind, fields.len() as u16, kf, size, &tr)
    }

    /// A struct.
    pub fn struct_(&mut self, name: &str, size: u32, fields: &[Field<'_>]) -> TypeId {
        self.composite(Kind::Struct, name, size, fields)
    }

    /// A union.
    pub fn union_(&mut self, name: &str, size: u32, fields: &[Field<'_>]) -> TypeId {
        self.composite(Kind::Union, name, size, fields)
    }

    /// An enum with 32-bit values.
    pub fn enum_(&mut self, name: &str, size: u32, signed: bool, values: &[(&str, i64)]) -> TypeId {
        let mut tr = Vec::new();
        for &(n, v) in values {
            tr.extend_from_slice(&[self.string(n), v as u32]);
        }
        self.rec(name, Kind::Enum, values.len() as u16, signed, size, &tr)
    }

    /// An enum with 64-bit values.
    pub fn enum64(
        &mut self,
        name: &str,
        size: u32,
        signed: bool,
        values: &[(&str, u64)],
    ) -> TypeId {
        let mut tr = Vec::new();
        for &(n, v) in values {
            tr.extend_from_slice(&[self.string(n), v as u32, (v >> 32) as u32]);
        }
        self.rec(name, Kind::Enum64, values.len() as u16, signed, size, &tr)
    }

    /// A forward declaration.
    pub fn fwd(&mut self, name: &str, union: bool) -> TypeId {
        self.rec(name, Kind::Fwd, 0, union, 0, &[])
    }

    /// A typedef.
    pub fn typedef(&mut self, name: &str, to: TypeId) -> TypeId {
        self.rec(name, Kind::Typedef, 0, false, to.0, &[])
    }

    /// `volatile`.
    pub fn volatile(&mut self, to: TypeId) -> TypeId {
        self.rec("", Kind::Volatile, 0, false, to.0, &[])
    }

    /// `const`.
    pub fn const_(&mut self, to: TypeId) -> TypeId {
        self.rec("", Kind::Const, 0, false, to.0, &[])
    }

    /// `restrict`.
    pub fn restrict(&mut self, to: TypeId) -> TypeId {
        self.rec("", Kind::Restrict, 0, false, to.0, &[])
    }

    /// A function of prototype `proto` with `linkage`.
    pub fn func(&mut self, name: &str, proto: TypeId, linkage: u16) -> TypeId {
        self.rec(name, Kind::Func, linkage, false, proto.0, &[])
    }

    /// A function prototype.
    pub fn func_proto(&mut self, ret: TypeId, params: &[(&str, TypeId)]) -> TypeId {
        let mut tr = Vec::new();
        for &(n, t) in params {
            tr.extend_from_slice(&[self.string(n), t.0]);
        }
        self.rec("", Kind::FuncProto, params.len() as u16, false, ret.0, &tr)
    }

    /// A variable.
    pub fn var(&mut self, name: &str, ty: TypeId, linkage: u32) -> TypeId {
        self.rec(name, Kind::Var, 0, false, ty.0, &[linkage])
    }

    /// A data section of (var, offset, size) entries.
    pub fn datasec(&mut self, name: &str, size: u32, vars: &[(TypeId, u32, u32)]) -> TypeId {
        let tr: Vec<u32> = vars.iter().flat_map(|&(t, o, s)| [t.0, o, s]).collect();
        self.rec(name, Kind::Datasec, vars.len() as u16, false, size, &tr)
    }

    /// A float.
    pub fn float(&mut self, name: &str, size: u32) -> TypeId {
        self.rec(name, Kind::Float, 0, false, size, &[])
    }

    /// A declaration tag on `to` (component `idx`, -1 for the whole).
    pub fn decl_tag(&mut self, name: &str, to: TypeId, idx: i32) -> TypeId {
        self.rec(name, Kind::DeclTag, 0, false, to.0, &[idx as u32])
    }

    /// A type tag.
    pub fn type_tag(&mut self, name: &str, to: TypeId) -> TypeId {
        self.rec(name, Kind::TypeTag, 0, false, to.0, &[])
    }

    /// The blob: header, types, strings.
    pub fn finish(&self) -> Vec<u8> {
        let e = self.e;
        let mut out = Vec::new();
        put16(&mut out, e, BTF_MAGIC);
        out.push(1);
        out.push(0);
        put32(&mut out, e, 24);
        put32(&mut out, e, 0);
        put32(&mut out, e, self.types.len() as u32);
        put32(&mut out, e, self.types.len() as u32);
        put32(&mut out, e, self.strings.len() as u32);
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}
