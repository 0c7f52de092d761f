//! The BTF type model: type ids, kinds, what the record of each kind
//! holds (members, enumerators, parameters …), and the types table
//! ([`Btf`]) with its raw access to records and strings.

use alloc::vec::Vec;
use hashbrown::{DefaultHashBuilder, HashTable};
use kvm_core::{Endian, Error, Result};

/// BTF magic number.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// Size of a type record's fixed part.
pub(super) const TYPE_LEN: usize = 12;
/// Hops through typedef/modifier/array references before a lookup gives up
/// (a loop, or absurd nesting).
pub const MAX_CHAIN: u32 = 64;
/// Longest name, in bytes: the kernel rejects BTF names that do not end
/// within `KSYM_NAME_LEN` (512) bytes (kernel/bpf/btf.c, `__btf_name_valid`).
pub const MAX_NAME: usize = 511;
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
    pub(super) fn has_size(self) -> bool {
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
    pub(super) fn has_ref(self) -> bool {
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
    pub(super) fn is_alias(self) -> bool {
        matches!(
            self,
            Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag
        )
    }

    /// Trailer bytes after the 12-byte record for `vlen`.
    pub(super) fn trailer_len(self, vlen: usize) -> Option<usize> {
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
///
/// A `Btf` from [`Btf::parse`] holds the whole blob, validated. The same
/// parser also runs inside a [`LazyBtf`] over a blob whose bytes are read
/// from memory only as lookups need them.
///
/// [`LazyBtf`]: super::LazyBtf
#[derive(Clone)]
pub struct Btf {
    pub(super) data: Vec<u8>,
    pub(super) e: Endian,
    /// Absolute offsets of the type section.
    pub(super) types: (usize, usize),
    /// Absolute offsets of the string section.
    pub(super) strs: (usize, usize),
    /// The type bytes present: `types.0..types_loaded`.
    pub(super) types_loaded: usize,
    /// Where the next record to parse starts (`types.1`: all parsed).
    pub(super) parsed: usize,
    /// Which [`STR_CHUNK`]s of the string section are present (`None`:
    /// all of them).
    pub(super) str_loaded: Option<Vec<bool>>,
    /// Record offset (absolute) of type id `i + 1`.
    pub(super) offsets: Vec<u32>,
    /// (first, last) id of every name.
    pub(super) by_name: HashTable<(u32, u32)>,
    /// Next id with the same name (0 = none), by id.
    pub(super) next_same: Vec<u32>,
    pub(super) hasher: DefaultHashBuilder,
    pub(super) ptr_size: u32,
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

pub(super) fn rd32(d: &[u8], at: usize, e: Endian) -> Result<u32> {
    let b = at
        .checked_add(4)
        .and_then(|end| d.get(at..end))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .ok_or(Error::Malformed("BTF: read past the end"))?;
    Ok(e.u32(b))
}

/// Why a lookup stopped: bad data, or (in a [`LazyBtf`]) bytes that are
/// not loaded yet.
///
/// [`LazyBtf`]: super::LazyBtf
#[derive(Clone, Copy, Debug)]
pub(super) enum Stop {
    /// The blob is corrupt or the request impossible.
    Bad(Error),
    /// More of the type section must be parsed.
    Types,
    /// The string chunk holding this offset of the string section must be
    /// loaded.
    Str(usize),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Bad(e)
    }
}

pub(super) type R<T> = core::result::Result<T, Stop>;

/// A lookup's result on a fully loaded blob, which never needs more bytes.
pub(super) fn done<T>(r: R<T>) -> Result<T> {
    r.map_err(|s| match s {
        Stop::Bad(e) => e,
        Stop::Types | Stop::Str(_) => Error::Malformed("BTF: lookup needs bytes not loaded"),
    })
}

/// Bytes of the string section a [`LazyBtf`] reads at a time.
///
/// [`LazyBtf`]: super::LazyBtf
pub(super) const STR_CHUNK: usize = 16 << 10;

/// A record's fixed part.
#[derive(Clone, Copy)]
pub(super) struct Rec {
    /// Absolute offset of the record.
    pub(super) at: usize,
    pub(super) name_off: u32,
    pub(super) kind: Kind,
    pub(super) vlen: u16,
    pub(super) kind_flag: bool,
    pub(super) size_or_type: u32,
}

impl Btf {
    /// Whether every record has been parsed.
    pub(super) fn complete(&self) -> bool {
        self.parsed >= self.types.1
    }

    /// "Not found": final once every record is parsed, else more types
    /// must be parsed first.
    pub(super) fn none<T>(&self) -> R<Option<T>> {
        if self.complete() {
            Ok(None)
        } else {
            Err(Stop::Types)
        }
    }

    pub(super) fn rec_at(&self, at: usize) -> Result<Rec> {
        let info = rd32(&self.data, at + 4, self.e)?;
        Ok(Rec {
            at,
            name_off: rd32(&self.data, at, self.e)?,
            kind: Kind::from_raw((info >> 24) & 0x1f)
                .ok_or(Error::Malformed("BTF: unknown type kind"))?,
            vlen: (info & 0xffff) as u16,
            kind_flag: info & (1 << 31) != 0,
            size_or_type: rd32(&self.data, at + 8, self.e)?,
        })
    }

    pub(super) fn rec(&self, id: TypeId) -> R<Rec> {
        let bad = Error::Malformed("BTF: type id out of range");
        let idx = (id.0 as usize).checked_sub(1).ok_or(bad)?;
        match self.offsets.get(idx) {
            Some(&at) => Ok(self.rec_at(at as usize)?),
            None if self.complete() => Err(bad.into()),
            None => Err(Stop::Types),
        }
    }

    /// The `i`-th u32 of a record's trailer.
    pub(super) fn tw(&self, r: &Rec, i: usize) -> Result<u32> {
        rd32(&self.data, r.at + TYPE_LEN + 4 * i, self.e)
    }

    /// The bytes of the string at `off` (up to its NUL), once every chunk
    /// it spans is loaded.
    pub(super) fn str_bytes(&self, off: u32) -> R<&[u8]> {
        let off = off as usize;
        let Some(loaded) = &self.str_loaded else {
            return Ok(bytes_in(&self.data, self.strs, off)?);
        };
        let s = bytes_in(&self.data, self.strs, off)?;
        // Chunks not loaded yet are zeros: the NUL found may be one of them.
        for c in off / STR_CHUNK..=(off + s.len()) / STR_CHUNK {
            if loaded.get(c) == Some(&false) {
                return Err(Stop::Str(c * STR_CHUNK));
            }
        }
        Ok(s)
    }

    /// The string at `off` in the string section.
    pub(super) fn str_at(&self, off: u32) -> R<&str> {
        core::str::from_utf8(self.str_bytes(off)?)
            .map_err(|_| Error::Malformed("BTF: string offset inside a character").into())
    }
}

/// The bytes of the string at `off` (up to its NUL), without the UTF-8
/// check: the hot paths (validation, the name index) compare and hash
/// bytes. A whole blob's string section is checked to be UTF-8 at parse
/// time; `Btf::str_at` checks each string it returns (a lazy blob's too).
pub(super) fn bytes_in(data: &[u8], strs: (usize, usize), off: usize) -> Result<&[u8]> {
    let bad = Error::Malformed("BTF: string offset outside the string section");
    let s = data.get(strs.0..strs.1).ok_or(bad)?;
    let rest = s.get(off..).filter(|r| !r.is_empty()).ok_or(bad)?;
    // In UTF-8 text a string starting on a non-continuation byte and ending
    // at a NUL is itself UTF-8: one byte decides what from_utf8 would.
    if rest[0] & 0xc0 == 0x80 {
        return Err(Error::Malformed("BTF: string offset inside a character"));
    }
    // Bounded, so that many records naming one huge string cost no more
    // than short names would.
    let window = rest.get(..MAX_NAME + 1).unwrap_or(rest);
    match window.iter().position(|&b| b == 0) {
        Some(len) => window.get(..len).ok_or(bad),
        None if window.len() > MAX_NAME => Err(Error::Malformed(
            "BTF: name longer than 511 bytes (the kernel's KSYM_NAME_LEN)",
        )),
        None => Err(bad),
    }
}
