//! BTF, the BPF Type Format (FORMATS.md §7.2): the kernel's own
//! description of its types, so that walkers take struct member offsets
//! from the kernel they look at.
//!
//! [`Btf::parse`] validates the whole blob once: header, section bounds,
//! every type record of every kind (INT … ENUM64) and its trailer, every
//! string offset and every type id a record refers to. Accessors then work
//! on the validated bytes, still without indexing that could panic.
//! Lookups that follow type references (typedef chains, anonymous members,
//! arrays of arrays) are bounded in depth and in work, so a blob with type
//! loops gives an error, not a hang.
//!
//! ```
//! # #[cfg(feature = "builder")] {
//! use kvm_elf::write::{BtfBuilder, Field};
//! use kvm_elf::Btf;
//! let mut b = BtfBuilder::new(kvm_core::Endian::Little);
//! let int = b.int("int", 4, kvm_elf::btf::INT_SIGNED, 32);
//! let pid_t = b.typedef("pid_t", int);
//! let inner = b.struct_("", 8, &[Field::new("exec_start", int, 0), Field::new("pid", pid_t, 32)]);
//! let task = b.struct_("task_struct", 16, &[Field::new("state", int, 0), Field::new("", inner, 64)]);
//! let btf = Btf::parse(&b.finish())?;
//! let m = btf.member("task_struct", "pid")?.unwrap(); // found inside the anonymous struct
//! assert_eq!((m.offset, btf.size_of(m.type_id)?), (12, 4));
//! assert_eq!(btf.size_of_name("task_struct")?, Some(16));
//! # let _ = task;
//! # }
//! # Ok::<(), kvm_core::Error>(())
//! ```

use alloc::vec;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use hashbrown::{DefaultHashBuilder, HashTable};
use kvm_core::{Endian, Error, Result};

/// BTF magic number.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// Size of a type record's fixed part.
const TYPE_LEN: usize = 12;
/// Hops through typedef/modifier/array references before a lookup gives up
/// (a loop, or absurd nesting).
pub const MAX_CHAIN: u32 = 64;
/// Members a single path lookup may visit (anonymous members are searched
/// recursively).
pub const MEMBER_BUDGET: u32 = 1 << 20;

/// INT encoding bit: signed.
pub const INT_SIGNED: u32 = 1;
/// INT encoding bit: char.
pub const INT_CHAR: u32 = 2;
/// INT encoding bit: bool.
pub const INT_BOOL: u32 = 4;

/// A type id: 0 is `void`, records are numbered from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeId(pub u32);

impl TypeId {
    /// `void`.
    pub const VOID: TypeId = TypeId(0);
}

/// The kind of a BTF type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `void` (type id 0 only).
    Void,
    /// An integer (`int`, `char`, `_Bool`, …).
    Int,
    /// A pointer.
    Ptr,
    /// An array.
    Array,
    /// A struct.
    Struct,
    /// A union.
    Union,
    /// An enum with 32-bit values.
    Enum,
    /// A forward declaration.
    Fwd,
    /// A typedef.
    Typedef,
    /// `volatile`.
    Volatile,
    /// `const`.
    Const,
    /// `restrict`.
    Restrict,
    /// A function.
    Func,
    /// A function prototype.
    FuncProto,
    /// A variable.
    Var,
    /// A data section.
    Datasec,
    /// A floating-point type.
    Float,
    /// A declaration tag.
    DeclTag,
    /// A type tag.
    TypeTag,
    /// An enum with 64-bit values.
    Enum64,
}

impl Kind {
    const ALL: [Kind; 20] = [
        Kind::Void,
        Kind::Int,
        Kind::Ptr,
        Kind::Array,
        Kind::Struct,
        Kind::Union,
        Kind::Enum,
        Kind::Fwd,
        Kind::Typedef,
        Kind::Volatile,
        Kind::Const,
        Kind::Restrict,
        Kind::Func,
        Kind::FuncProto,
        Kind::Var,
        Kind::Datasec,
        Kind::Float,
        Kind::DeclTag,
        Kind::TypeTag,
        Kind::Enum64,
    ];

    /// The kind with this number (`BTF_KIND_*`).
    pub fn from_raw(k: u32) -> Option<Kind> {
        Kind::ALL.get(k as usize).copied()
    }

    /// The `BTF_KIND_*` number.
    pub fn raw(self) -> u32 {
        Kind::ALL.iter().position(|&k| k == self).unwrap_or(0) as u32
    }

    /// Whether `size_or_type` is a size for this kind.
    fn has_size(self) -> bool {
        matches!(
            self,
            Kind::Int
                | Kind::Enum
                | Kind::Enum64
                | Kind::Struct
                | Kind::Union
                | Kind::Datasec
                | Kind::Float
        )
    }

    /// Whether `size_or_type` is a type id for this kind.
    fn has_ref(self) -> bool {
        matches!(
            self,
            Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::Func
                | Kind::FuncProto
                | Kind::Var
                | Kind::DeclTag
                | Kind::TypeTag
        )
    }

    /// Kinds that only qualify or rename another type.
    fn is_alias(self) -> bool {
        matches!(
            self,
            Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag
        )
    }

    /// Trailer bytes after the 12-byte record for `vlen`.
    fn trailer_len(self, vlen: usize) -> Option<usize> {
        match self {
            Kind::Int | Kind::Var | Kind::DeclTag => Some(4),
            Kind::Array => Some(12),
            Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => vlen.checked_mul(12),
            Kind::Enum | Kind::FuncProto => vlen.checked_mul(8),
            _ => Some(0),
        }
    }
}

/// One type record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Type<'a> {
    /// Its id.
    pub id: TypeId,
    /// Its kind.
    pub kind: Kind,
    /// Its name (empty for anonymous types).
    pub name: &'a str,
    /// `vlen`: members, enumerators, parameters, variables (FUNC: linkage).
    pub vlen: u16,
    /// `kind_flag`: bitfield-style member offsets (STRUCT/UNION), a union
    /// (FWD), signed values (ENUM/ENUM64), an attribute (DECL_TAG/TYPE_TAG).
    pub kind_flag: bool,
    /// The raw `size`/`type` word.
    pub size_or_type: u32,
}

impl Type<'_> {
    /// The size in bytes, for kinds that have one (INT, ENUM, ENUM64,
    /// STRUCT, UNION, DATASEC, FLOAT).
    pub fn size(&self) -> Option<u32> {
        self.kind.has_size().then_some(self.size_or_type)
    }

    /// The referenced type, for kinds that refer to one (PTR, TYPEDEF,
    /// modifiers, FUNC, FUNC_PROTO's return, VAR, DECL_TAG, TYPE_TAG).
    pub fn ref_type(&self) -> Option<TypeId> {
        self.kind.has_ref().then_some(TypeId(self.size_or_type))
    }
}

/// An INT's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntInfo {
    /// [`INT_SIGNED`] | [`INT_CHAR`] | [`INT_BOOL`].
    pub encoding: u32,
    /// Bit offset of the value inside the storage.
    pub offset: u32,
    /// Number of value bits.
    pub bits: u32,
}

/// An ARRAY's trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    /// Element type.
    pub elem: TypeId,
    /// Index type.
    pub index: TypeId,
    /// Number of elements.
    pub nelems: u32,
}

/// A STRUCT/UNION member as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawMember<'a> {
    /// Member name (empty: an anonymous struct/union member).
    pub name: &'a str,
    /// Member type.
    pub type_id: TypeId,
    /// Bit offset from the start of the struct.
    pub bit_offset: u32,
    /// Bitfield size when the struct uses `kind_flag` encoding and the
    /// member is a bitfield.
    pub bitfield_size: Option<u8>,
}

/// A member found by path: where it is in the outer type and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Byte offset from the start of the outer type (of the byte holding
    /// the first bit, for bitfields).
    pub offset: u64,
    /// Bit offset from the start of the outer type.
    pub bit_offset: u64,
    /// Width in bits, for bitfields.
    pub bitfield_size: Option<u8>,
    /// The member's type.
    pub type_id: TypeId,
}

/// An enumerator's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnumValue {
    /// The 64 value bits (sign-extended for a signed 32-bit enum).
    pub bits: u64,
    /// Whether the enum is signed (`kind_flag`).
    pub signed: bool,
}

impl EnumValue {
    /// The value as signed.
    pub fn as_i64(self) -> i64 {
        self.bits as i64
    }
    /// The value as unsigned.
    pub fn as_u64(self) -> u64 {
        self.bits
    }
}

/// An ENUM/ENUM64 enumerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enumerator<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its value.
    pub value: EnumValue,
}

/// A FUNC_PROTO parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// Its name (often empty).
    pub name: &'a str,
    /// Its type (`void` for a trailing `...`).
    pub type_id: TypeId,
}

/// A DATASEC entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarSecInfo {
    /// The VAR (or FUNC) type.
    pub type_id: TypeId,
    /// Offset in the section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// Parsed BTF: the blob (owned) and its indexes.
#[derive(Clone)]
pub struct Btf {
    data: Vec<u8>,
    e: Endian,
    /// Absolute offsets of the string section.
    strs: (usize, usize),
    /// Record offset (absolute) of type id `i + 1`.
    offsets: Vec<u32>,
    /// (first, last) id of every name.
    by_name: HashTable<(u32, u32)>,
    /// Next id with the same name (0 = none), by id.
    next_same: Vec<u32>,
    hasher: DefaultHashBuilder,
    ptr_size: u32,
}

impl core::fmt::Debug for Btf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Btf")
            .field("bytes", &self.data.len())
            .field("endian", &self.e)
            .field("types", &self.offsets.len())
            .field("ptr_size", &self.ptr_size)
            .finish()
    }
}

fn rd32(d: &[u8], at: usize, e: Endian) -> Result<u32> {
    let b = at
        .checked_add(4)
        .and_then(|end| d.get(at..end))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .ok_or(Error::Malformed("BTF: read past the end"))?;
    Ok(e.u32(b))
}

/// A record's fixed part.
#[derive(Clone, Copy)]
struct Rec {
    /// Absolute offset of the record.
    at: usize,
    name_off: u32,
    kind: Kind,
    vlen: u16,
    kind_flag: bool,
    size_or_type: u32,
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
        let e = match data.get(..2) {
            Some([0x9f, 0xeb]) => Endian::Little,
            Some([0xeb, 0x9f]) => Endian::Big,
            _ => return Err(Error::Malformed("BTF: bad magic")),
        };
        if data.get(2) != Some(&1) {
            return Err(Error::Unsupported("BTF: version is not 1"));
        }
        let hdr_len = rd32(&data, 4, e)? as usize;
        if hdr_len < 24 || hdr_len > data.len() {
            return Err(Error::Malformed("BTF: bad header length"));
        }
        let sect = |off_at: usize| -> Result<(usize, usize)> {
            let off = rd32(&data, off_at, e)? as usize;
            let len = rd32(&data, off_at + 4, e)? as usize;
            let start = hdr_len
                .checked_add(off)
                .ok_or(Error::Malformed("BTF: section offset overflows"))?;
            let end = start
                .checked_add(len)
                .filter(|&end| end <= data.len())
                .ok_or(Error::Malformed("BTF: section outside the blob"))?;
            Ok((start, end))
        };
        let types = sect(8)?;
        let strs = sect(16)?;
        if types.0 < strs.1 && strs.0 < types.1 {
            return Err(Error::Malformed("BTF: type and string sections overlap"));
        }
        let s = data
            .get(strs.0..strs.1)
            .ok_or(Error::Malformed("BTF: string section"))?;
        if s.first() != Some(&0) || s.last() != Some(&0) {
            return Err(Error::Malformed(
                "BTF: string section must start and end with NUL",
            ));
        }
        core::str::from_utf8(s).map_err(|_| Error::Malformed("BTF: strings are not UTF-8"))?;

        let mut btf = Btf {
            data: Vec::new(),
            e,
            strs,
            offsets: Vec::new(),
            by_name: HashTable::new(),
            next_same: Vec::new(),
            hasher: DefaultHashBuilder::default(),
            ptr_size: 8,
        };
        // Pass 1: record boundaries.
        let mut at = types.0;
        while at < types.1 {
            if types.1 - at < TYPE_LEN {
                return Err(Error::Malformed("BTF: truncated type record"));
            }
            let info = rd32(&data, at + 4, e)?;
            let kind = Kind::from_raw((info >> 24) & 0x1f)
                .filter(|&k| k != Kind::Void)
                .ok_or(Error::Malformed("BTF: unknown type kind"))?;
            let vlen = (info & 0xffff) as usize;
            let len = kind
                .trailer_len(vlen)
                .and_then(|t| t.checked_add(TYPE_LEN))
                .ok_or(Error::Malformed("BTF: record too long"))?;
            if len > types.1 - at {
                return Err(Error::Malformed(
                    "BTF: type record runs past the type section",
                ));
            }
            btf.offsets
                .push(u32::try_from(at).map_err(|_| Error::Unsupported("BTF: blob above 4 GiB"))?);
            at += len;
        }
        btf.data = data;
        // Pass 2: references, names, kind-specific checks; the name index.
        let count = btf.offsets.len() as u32;
        btf.next_same = vec![0; btf.offsets.len() + 1];
        btf.by_name.reserve(btf.offsets.len(), |_| 0);
        for id in 1..=count {
            let r = btf.rec(TypeId(id))?;
            btf.validate(&r, count)?;
            if r.name_off != 0 && !bytes_in(&btf.data, btf.strs, r.name_off as usize)?.is_empty() {
                btf.index_name(r.name_off, id);
            }
        }
        btf.ptr_size = btf.detect_ptr_size();
        Ok(btf)
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

    fn rec(&self, id: TypeId) -> Result<Rec> {
        let bad = Error::Malformed("BTF: type id out of range");
        let idx = (id.0 as usize).checked_sub(1).ok_or(bad)?;
        let at = *self.offsets.get(idx).ok_or(bad)? as usize;
        let info = rd32(&self.data, at + 4, self.e)?;
        Ok(Rec {
            at,
            name_off: rd32(&self.data, at, self.e)?,
            kind: Kind::from_raw((info >> 24) & 0x1f).ok_or(bad)?,
            vlen: (info & 0xffff) as u16,
            kind_flag: info & (1 << 31) != 0,
            size_or_type: rd32(&self.data, at + 8, self.e)?,
        })
    }

    /// The `i`-th u32 of a record's trailer.
    fn tw(&self, r: &Rec, i: usize) -> Result<u32> {
        rd32(&self.data, r.at + TYPE_LEN + 4 * i, self.e)
    }

    fn validate(&self, r: &Rec, count: u32) -> Result<()> {
        let ref_ok = |t: u32| {
            if t <= count {
                Ok(())
            } else {
                Err(Error::Malformed(
                    "BTF: reference to a type id beyond the last type",
                ))
            }
        };
        let name_ok = |off: u32| bytes_in(&self.data, self.strs, off as usize).map(|_| ());
        if r.kind.has_ref() {
            ref_ok(r.size_or_type)?;
        }
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
                    return Err(Error::Malformed("BTF: impossible INT"));
                }
            }
            Kind::Array => {
                ref_ok(self.tw(r, 0)?)?;
                ref_ok(self.tw(r, 1)?)?;
            }
            Kind::Struct | Kind::Union => {
                let bits = u64::from(r.size_or_type) * 8;
                for i in 0..vlen {
                    name_ok(self.tw(r, 3 * i)?)?;
                    ref_ok(self.tw(r, 3 * i + 1)?)?;
                    let mut off = self.tw(r, 3 * i + 2)?;
                    if r.kind_flag {
                        off &= 0x00ff_ffff;
                    }
                    if u64::from(off) > bits {
                        return Err(Error::Malformed("BTF: member offset beyond its struct"));
                    }
                }
            }
            Kind::Enum | Kind::Enum64 => {
                if r.size_or_type > 8 {
                    return Err(Error::Malformed("BTF: enum larger than 8 bytes"));
                }
                let step = if r.kind == Kind::Enum { 2 } else { 3 };
                for i in 0..vlen {
                    name_ok(self.tw(r, step * i)?)?;
                }
            }
            Kind::FuncProto => {
                for i in 0..vlen {
                    name_ok(self.tw(r, 2 * i)?)?;
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
        name_ok(r.name_off)
    }

    /// The string at `off` in the string section.
    fn str_at(&self, off: u32) -> Result<&str> {
        str_in(&self.data, self.strs, off as usize)
    }

    /// Pointer size: the size of `long`/`unsigned long`, else 8.
    fn detect_ptr_size(&self) -> u32 {
        for n in ["long unsigned int", "long int", "unsigned long", "long"] {
            if let Some(id) = self.find_kind(n, Kind::Int) {
                if let Ok(Some(s @ (4 | 8))) = self.type_by_id(id).map(|t| t.size()) {
                    return s;
                }
            }
        }
        8
    }

    /// Byte order of the blob.
    pub fn endian(&self) -> Endian {
        self.e
    }

    /// Number of types (the last valid id).
    pub fn len(&self) -> u32 {
        self.offsets.len() as u32
    }

    /// Whether the blob has no types.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Size of a pointer: `sizeof(long)` from the blob's INT types, 8 if
    /// it has none.
    pub fn pointer_size(&self) -> u32 {
        self.ptr_size
    }

    /// Overrides the pointer size (for blobs without a `long`).
    pub fn set_pointer_size(&mut self, size: u32) {
        self.ptr_size = size;
    }

    /// The type with id `id` (`void` for id 0).
    pub fn type_by_id(&self, id: TypeId) -> Result<Type<'_>> {
        if id == TypeId::VOID {
            return Ok(Type {
                id,
                kind: Kind::Void,
                name: "",
                vlen: 0,
                kind_flag: false,
                size_or_type: 0,
            });
        }
        let r = self.rec(id)?;
        Ok(Type {
            id,
            kind: r.kind,
            name: self.str_at(r.name_off)?,
            vlen: r.vlen,
            kind_flag: r.kind_flag,
            size_or_type: r.size_or_type,
        })
    }

    /// Every type, in id order.
    pub fn types(&self) -> impl Iterator<Item = Type<'_>> + '_ {
        (1..=self.len()).filter_map(move |i| self.type_by_id(TypeId(i)).ok())
    }

    /// Ids of every type called `name`, in id order.
    pub fn find(&self, name: &str) -> impl Iterator<Item = TypeId> + '_ {
        let h = self.hasher.hash_one(name.as_bytes());
        let first = self
            .by_name
            .find(h, |&(f, _)| {
                self.type_by_id(TypeId(f)).is_ok_and(|t| t.name == name)
            })
            .map_or(0, |&(f, _)| f);
        core::iter::successors((first != 0).then_some(first), move |&id| {
            self.next_same.get(id as usize).copied().filter(|&n| n > id)
        })
        .map(TypeId)
    }

    /// The first type called `name` of kind `kind`.
    pub fn find_kind(&self, name: &str, kind: Kind) -> Option<TypeId> {
        self.find(name)
            .find(|&id| self.type_by_id(id).is_ok_and(|t| t.kind == kind))
    }

    /// The struct or union called `name` (not a forward declaration), or
    /// else the struct/union a typedef of that name stands for.
    pub fn composite(&self, name: &str) -> Result<Option<TypeId>> {
        let direct = self.find(name).find(|&id| {
            self.type_by_id(id)
                .is_ok_and(|t| matches!(t.kind, Kind::Struct | Kind::Union))
        });
        if direct.is_some() {
            return Ok(direct);
        }
        if let Some(td) = self.find_kind(name, Kind::Typedef) {
            let r = self.resolve(td)?;
            if matches!(self.type_by_id(r)?.kind, Kind::Struct | Kind::Union) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Follows TYPEDEF, VOLATILE, CONST, RESTRICT and TYPE_TAG to the
    /// underlying type.
    ///
    /// Returns an error after [`MAX_CHAIN`] hops (a typedef loop).
    pub fn resolve(&self, mut id: TypeId) -> Result<TypeId> {
        for _ in 0..MAX_CHAIN {
            let t = self.type_by_id(id)?;
            if !t.kind.is_alias() {
                return Ok(id);
            }
            id = TypeId(t.size_or_type);
        }
        Err(Error::Malformed(
            "BTF: typedef/modifier chain too long (a loop?)",
        ))
    }

    /// An INT's encoding.
    pub fn int(&self, id: TypeId) -> Result<IntInfo> {
        let r = self.rec(id)?;
        if r.kind != Kind::Int {
            return Err(Error::Malformed("BTF: not an INT"));
        }
        let v = self.tw(&r, 0)?;
        Ok(IntInfo {
            encoding: (v >> 24) & 0xf,
            offset: (v >> 16) & 0xff,
            bits: v & 0xff,
        })
    }

    /// An ARRAY's element type, index type and length.
    pub fn array(&self, id: TypeId) -> Result<ArrayInfo> {
        let r = self.rec(id)?;
        if r.kind != Kind::Array {
            return Err(Error::Malformed("BTF: not an ARRAY"));
        }
        Ok(ArrayInfo {
            elem: TypeId(self.tw(&r, 0)?),
            index: TypeId(self.tw(&r, 1)?),
            nelems: self.tw(&r, 2)?,
        })
    }

    /// A VAR's linkage (0 static, 1 global, 2 extern).
    pub fn var_linkage(&self, id: TypeId) -> Result<u32> {
        let r = self.rec(id)?;
        if r.kind != Kind::Var {
            return Err(Error::Malformed("BTF: not a VAR"));
        }
        self.tw(&r, 0)
    }

    /// A DECL_TAG's component index (-1: the declaration itself).
    pub fn decl_tag_component(&self, id: TypeId) -> Result<i32> {
        let r = self.rec(id)?;
        if r.kind != Kind::DeclTag {
            return Err(Error::Malformed("BTF: not a DECL_TAG"));
        }
        Ok(self.tw(&r, 0)? as i32)
    }

    fn items(&self, id: TypeId, kinds: &[Kind]) -> Result<Rec> {
        let r = self.rec(id)?;
        if !kinds.contains(&r.kind) {
            return Err(Error::Malformed("BTF: type of the wrong kind"));
        }
        Ok(r)
    }

    /// A STRUCT's or UNION's members, as recorded.
    pub fn members(&self, id: TypeId) -> Result<impl Iterator<Item = RawMember<'_>> + '_> {
        let r = self.items(id, &[Kind::Struct, Kind::Union])?;
        Ok((0..usize::from(r.vlen)).filter_map(move |i| {
            let name = self.str_at(self.tw(&r, 3 * i).ok()?).ok()?;
            let type_id = TypeId(self.tw(&r, 3 * i + 1).ok()?);
            let off = self.tw(&r, 3 * i + 2).ok()?;
            let (bit_offset, bitfield_size) = if r.kind_flag {
                let size = (off >> 24) as u8;
                (off & 0x00ff_ffff, (size != 0).then_some(size))
            } else {
                (off, None)
            };
            Some(RawMember {
                name,
                type_id,
                bit_offset,
                bitfield_size,
            })
        }))
    }

    /// An ENUM's or ENUM64's enumerators.
    pub fn enumerators(&self, id: TypeId) -> Result<impl Iterator<Item = Enumerator<'_>> + '_> {
        let r = self.items(id, &[Kind::Enum, Kind::Enum64])?;
        Ok((0..usize::from(r.vlen)).filter_map(move |i| {
            let (name, bits) = if r.kind == Kind::Enum {
                let v = self.tw(&r, 2 * i + 1).ok()?;
                let bits = if r.kind_flag {
                    i64::from(v as i32) as u64
                } else {
                    u64::from(v)
                };
                (self.tw(&r, 2 * i).ok()?, bits)
            } else {
                let lo = self.tw(&r, 3 * i + 1).ok()?;
                let hi = self.tw(&r, 3 * i + 2).ok()?;
                (
                    self.tw(&r, 3 * i).ok()?,
                    u64::from(hi) << 32 | u64::from(lo),
                )
            };
            Some(Enumerator {
                name: self.str_at(name).ok()?,
                value: EnumValue {
                    bits,
                    signed: r.kind_flag,
                },
            })
        }))
    }

    /// A FUNC_PROTO's parameters.
    pub fn params(&self, id: TypeId) -> Result<impl Iterator<Item = Param<'_>> + '_> {
        let r = self.items(id, &[Kind::FuncProto])?;
        Ok((0..usize::from(r.vlen)).filter_map(move |i| {
            Some(Param {
                name: self.str_at(self.tw(&r, 2 * i).ok()?).ok()?,
                type_id: TypeId(self.tw(&r, 2 * i + 1).ok()?),
            })
        }))
    }

    /// A DATASEC's variables.
    pub fn datasec_vars(&self, id: TypeId) -> Result<impl Iterator<Item = VarSecInfo> + '_> {
        let r = self.items(id, &[Kind::Datasec])?;
        Ok((0..usize::from(r.vlen)).filter_map(move |i| {
            Some(VarSecInfo {
                type_id: TypeId(self.tw(&r, 3 * i).ok()?),
                offset: self.tw(&r, 3 * i + 1).ok()?,
                size: self.tw(&r, 3 * i + 2).ok()?,
            })
        }))
    }

    /// The size in bytes of a type: typedefs and modifiers followed,
    /// pointers [`Btf::pointer_size`], arrays element size × length.
    ///
    /// Returns an error for types without a size (void, FWD, FUNC,
    /// FUNC_PROTO, DECL_TAG), a reference loop, or an overflowing array.
    pub fn size_of(&self, id: TypeId) -> Result<u64> {
        let mut id = id;
        let mut mult = 1u64;
        for _ in 0..MAX_CHAIN {
            let t = self.type_by_id(id)?;
            let base = match t.kind {
                Kind::Ptr => u64::from(self.ptr_size),
                k if k.has_size() => u64::from(t.size_or_type),
                k if k.is_alias() || k == Kind::Var => {
                    id = TypeId(t.size_or_type);
                    continue;
                }
                Kind::Array => {
                    let a = self.array(id)?;
                    mult = mult
                        .checked_mul(u64::from(a.nelems))
                        .ok_or(Error::Malformed("BTF: array size overflows"))?;
                    id = a.elem;
                    continue;
                }
                _ => return Err(Error::Malformed("BTF: type has no size")),
            };
            return base
                .checked_mul(mult)
                .ok_or(Error::Malformed("BTF: array size overflows"));
        }
        Err(Error::Malformed("BTF: type chain too long (a loop?)"))
    }

    /// The size of the type called `name` (struct/union first, then any
    /// other named type); `None` when there is none.
    pub fn size_of_name(&self, name: &str) -> Result<Option<u64>> {
        let id = match self.composite(name)? {
            Some(id) => Some(id),
            None => self.find(name).find(|&id| {
                self.type_by_id(id)
                    .is_ok_and(|t| !matches!(t.kind, Kind::Fwd | Kind::Func | Kind::DeclTag))
            }),
        };
        id.map(|id| self.size_of(id)).transpose()
    }

    /// Finds member `name` directly in the struct/union `sid` or inside
    /// its anonymous struct/union members; returns its bit offset, bitfield
    /// size and type.
    fn find_member(
        &self,
        sid: TypeId,
        name: &str,
        depth: u32,
        budget: &mut u32,
    ) -> Result<Option<(u64, Option<u8>, TypeId)>> {
        if depth > MAX_CHAIN {
            return Err(Error::Malformed(
                "BTF: anonymous members nest too deep (a loop?)",
            ));
        }
        for m in self.members(sid)? {
            *budget = budget
                .checked_sub(1)
                .ok_or(Error::Malformed("BTF: member search too long"))?;
            if m.name == name {
                return Ok(Some((u64::from(m.bit_offset), m.bitfield_size, m.type_id)));
            }
            if m.name.is_empty() {
                let inner = self.resolve(m.type_id)?;
                if matches!(self.type_by_id(inner)?.kind, Kind::Struct | Kind::Union) {
                    if let Some((b, bf, ty)) = self.find_member(inner, name, depth + 1, budget)? {
                        return Ok(Some((u64::from(m.bit_offset) + b, bf, ty)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Finds `path` in the struct/union called `type_name` (a typedef name
    /// works too): `"mm"`, `"se.exec_start"`, `"pid_links[1]"`. Members of
    /// anonymous structs and unions are found by their own names; a path
    /// never goes through a pointer.
    ///
    /// `Ok(None)` when the type or a member does not exist (or a path
    /// component is not a struct/union/array); errors for corrupt data.
    pub fn member(&self, type_name: &str, path: &str) -> Result<Option<Member>> {
        match self.composite(type_name)? {
            Some(id) => self.member_of(id, path),
            None => Ok(None),
        }
    }

    /// [`Btf::member`] with the type and the path in one string:
    /// `"task_struct.se.exec_start"`.
    pub fn member_path(&self, path: &str) -> Result<Option<Member>> {
        match path.split_once('.') {
            Some((ty, rest)) => self.member(ty, rest),
            None => Ok(None),
        }
    }

    /// [`Btf::member`] starting from a type id.
    pub fn member_of(&self, id: TypeId, path: &str) -> Result<Option<Member>> {
        let mut cur = id;
        let mut bits = 0u64;
        let mut bitfield = None;
        let mut budget = MEMBER_BUDGET;
        if path.is_empty() {
            return Ok(None);
        }
        for comp in path.split('.') {
            let (name, mut indexes) = match comp.find('[') {
                Some(i) => (comp.get(..i).unwrap_or(comp), comp.get(i..).unwrap_or("")),
                None => (comp, ""),
            };
            if bitfield.is_some() {
                return Ok(None);
            }
            let sid = self.resolve(cur)?;
            if !matches!(self.type_by_id(sid)?.kind, Kind::Struct | Kind::Union) {
                return Ok(None);
            }
            let Some((b, bf, ty)) = self.find_member(sid, name, 0, &mut budget)? else {
                return Ok(None);
            };
            bits = bits
                .checked_add(b)
                .ok_or(Error::Malformed("BTF: member offset overflows"))?;
            bitfield = bf;
            cur = ty;
            if bitfield.is_none() {
                // Old-style bitfields: an INT narrower than its storage.
                if let Ok(t) = self.type_by_id(ty) {
                    if t.kind == Kind::Int {
                        let i = self.int(ty)?;
                        if i.offset != 0 || u64::from(i.bits) != u64::from(t.size_or_type) * 8 {
                            bits += u64::from(i.offset);
                            bitfield = Some(i.bits as u8);
                        }
                    }
                }
            }
            while !indexes.is_empty() {
                let Some(rest) = indexes.strip_prefix('[') else {
                    return Ok(None);
                };
                let Some((num, after)) = rest.split_once(']') else {
                    return Ok(None);
                };
                let Ok(n) = num.trim().parse::<u64>() else {
                    return Ok(None);
                };
                let aid = self.resolve(cur)?;
                if self.type_by_id(aid)?.kind != Kind::Array {
                    return Ok(None);
                }
                let a = self.array(aid)?;
                if a.nelems != 0 && n >= u64::from(a.nelems) {
                    return Ok(None);
                }
                let step = self
                    .size_of(a.elem)?
                    .checked_mul(n)
                    .and_then(|x| x.checked_mul(8))
                    .ok_or(Error::Malformed("BTF: member offset overflows"))?;
                bits = bits
                    .checked_add(step)
                    .ok_or(Error::Malformed("BTF: member offset overflows"))?;
                cur = a.elem;
                indexes = after;
            }
        }
        Ok(Some(Member {
            offset: bits / 8,
            bit_offset: bits,
            bitfield_size: bitfield,
            type_id: cur,
        }))
    }

    /// The value of `enumerator` in the enum called `enum_name`.
    pub fn enum_value(&self, enum_name: &str, enumerator: &str) -> Result<Option<EnumValue>> {
        for id in self.find(enum_name) {
            if matches!(self.type_by_id(id)?.kind, Kind::Enum | Kind::Enum64) {
                if let Some(e) = self.enumerators(id)?.find(|e| e.name == enumerator) {
                    return Ok(Some(e.value));
                }
            }
        }
        Ok(None)
    }

    /// The value of the enumerator called `name` in any enum (a scan of
    /// every enum: enumerators are not indexed).
    pub fn enumerator(&self, name: &str) -> Result<Option<EnumValue>> {
        for t in self.types() {
            if matches!(t.kind, Kind::Enum | Kind::Enum64) {
                if let Some(e) = self.enumerators(t.id)?.find(|e| e.name == name) {
                    return Ok(Some(e.value));
                }
            }
        }
        Ok(None)
    }
}

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
/// first valid blob that `accept` takes (e.g. one that defines
/// `task_struct`): pages are read only as far as the search goes, so a
/// blob near `start` is found cheaply. A blob may be at most
/// [`MAX_SEARCH_BLOB`] bytes.
pub fn search_first(
    mem: &dyn kvm_core::VirtRead,
    start: kvm_core::VirtAddr,
    len: u64,
    accept: &dyn Fn(&Btf) -> bool,
) -> Result<(kvm_core::VirtAddr, Btf)> {
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
            let blob_at = at + here as u64;
            let size = size as u64;
            if size > MAX_SEARCH_BLOB || blob_at.checked_add(size).is_none_or(|e| e > end) {
                continue;
            }
            // The window already holds the blob's start: read only the rest.
            let have = buf.get(here..).unwrap_or_default();
            let mut blob = have.get(..size as usize).unwrap_or(have).to_vec();
            let got = blob.len() as u64;
            if got < size {
                let rest = crate::kallsyms::read_range(
                    mem,
                    kvm_core::VirtAddr(blob_at + got),
                    size - got,
                )?;
                blob.extend_from_slice(&rest);
            }
            if let Ok(btf) = Btf::from_vec(blob) {
                if accept(&btf) {
                    return Ok((kvm_core::VirtAddr(blob_at), btf));
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

/// Largest BTF blob [`search_first`] reads, and the bound readers of a
/// blob whose extent they know should use too (vmlinux BTF is a few MiB).
pub const MAX_SEARCH_BLOB: u64 = 64 << 20;

fn str_in(data: &[u8], strs: (usize, usize), off: usize) -> Result<&str> {
    core::str::from_utf8(bytes_in(data, strs, off)?)
        .map_err(|_| Error::Malformed("BTF: string offset inside a character"))
}

/// The bytes of the string at `off` (up to its NUL), without the UTF-8
/// check: the hot paths (validation, the name index) compare and hash
/// bytes; the section as a whole was checked to be UTF-8 at parse time.
fn bytes_in(data: &[u8], strs: (usize, usize), off: usize) -> Result<&[u8]> {
    let bad = Error::Malformed("BTF: string offset outside the string section");
    let s = data.get(strs.0..strs.1).ok_or(bad)?;
    let rest = s.get(off..).filter(|r| !r.is_empty()).ok_or(bad)?;
    // In UTF-8 text a string starting on a non-continuation byte and ending
    // at a NUL is itself UTF-8: one byte decides what from_utf8 would.
    if rest[0] & 0xc0 == 0x80 {
        return Err(Error::Malformed("BTF: string offset inside a character"));
    }
    let len = rest.iter().position(|&b| b == 0).ok_or(bad)?;
    rest.get(..len).ok_or(bad)
}
