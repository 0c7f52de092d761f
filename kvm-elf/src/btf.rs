//! BTF, the BPF Type Format (FORMATS.md §7.2): the kernel's own
//! description of its types, so that walkers take struct member offsets
//! from the kernel they look at.
//!
//! [`LazyBtf`] runs the same parser over a blob in kernel memory, reading
//! only the part its lookups need (a few percent of a kernel's BTF for the
//! process walkers), with the same answers.
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
use kvm_core::{Endian, Error, Result, VirtReadExt};

/// BTF magic number.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// Size of a type record's fixed part.
const TYPE_LEN: usize = 12;
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
///
/// A `Btf` from [`Btf::parse`] holds the whole blob, validated. The same
/// parser also runs inside a [`LazyBtf`] over a blob whose bytes are read
/// from memory only as lookups need them.
#[derive(Clone)]
pub struct Btf {
    data: Vec<u8>,
    e: Endian,
    /// Absolute offsets of the type section.
    types: (usize, usize),
    /// Absolute offsets of the string section.
    strs: (usize, usize),
    /// The type bytes present: `types.0..types_loaded`.
    types_loaded: usize,
    /// Where the next record to parse starts (`types.1`: all parsed).
    parsed: usize,
    /// Which [`STR_CHUNK`]s of the string section are present (`None`:
    /// all of them).
    str_loaded: Option<Vec<bool>>,
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

/// Why a lookup stopped: bad data, or (in a [`LazyBtf`]) bytes that are
/// not loaded yet.
#[derive(Clone, Copy, Debug)]
enum Stop {
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

type R<T> = core::result::Result<T, Stop>;

/// A lookup's result on a fully loaded blob, which never needs more bytes.
fn done<T>(r: R<T>) -> Result<T> {
    r.map_err(|s| match s {
        Stop::Bad(e) => e,
        Stop::Types | Stop::Str(_) => Error::Malformed("BTF: lookup needs bytes not loaded"),
    })
}

/// Bytes of the string section a [`LazyBtf`] reads at a time.
const STR_CHUNK: usize = 16 << 10;
/// Bytes of the type section a [`LazyBtf`] reads first (then twice as
/// much as it has each time).
const TYPES_STEP: usize = 64 << 10;

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

/// What a blob's header says.
struct Header {
    e: Endian,
    /// Header length.
    len: usize,
    /// Type section (absolute offsets).
    types: (usize, usize),
    /// String section (absolute offsets).
    strs: (usize, usize),
}

/// The header of a blob of `len` bytes whose first bytes are `head`.
fn header(head: &[u8], len: usize) -> Result<Header> {
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
    fn unparsed(
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

    /// Whether every record has been parsed.
    fn complete(&self) -> bool {
        self.parsed >= self.types.1
    }

    /// "Not found": final once every record is parsed, else more types
    /// must be parsed first.
    fn none<T>(&self) -> R<Option<T>> {
        if self.complete() {
            Ok(None)
        } else {
            Err(Stop::Types)
        }
    }

    /// Parses the records that lie in the loaded type bytes: each is
    /// checked (kind, length, names, kind-specific rules; references are
    /// checked when followed, or all at once by [`Btf::from_vec`]) and its
    /// name indexed. Stops with [`Stop::Types`] at the end of the loaded
    /// bytes and [`Stop::Str`] for a name not loaded yet.
    fn parse_more(&mut self) -> R<()> {
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

    fn rec_at(&self, at: usize) -> Result<Rec> {
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

    fn rec(&self, id: TypeId) -> R<Rec> {
        let bad = Error::Malformed("BTF: type id out of range");
        let idx = (id.0 as usize).checked_sub(1).ok_or(bad)?;
        match self.offsets.get(idx) {
            Some(&at) => Ok(self.rec_at(at as usize)?),
            None if self.complete() => Err(bad.into()),
            None => Err(Stop::Types),
        }
    }

    /// The `i`-th u32 of a record's trailer.
    fn tw(&self, r: &Rec, i: usize) -> Result<u32> {
        rd32(&self.data, r.at + TYPE_LEN + 4 * i, self.e)
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

    /// The bytes of the string at `off` (up to its NUL), once every chunk
    /// it spans is loaded.
    fn str_bytes(&self, off: u32) -> R<&[u8]> {
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
    fn str_at(&self, off: u32) -> R<&str> {
        core::str::from_utf8(self.str_bytes(off)?)
            .map_err(|_| Error::Malformed("BTF: string offset inside a character").into())
    }

    /// Pointer size: the size of `long`/`unsigned long`, else 8.
    fn detect_ptr_size(&self) -> R<u32> {
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
        done(self.ty(id))
    }

    fn ty(&self, id: TypeId) -> R<Type<'_>> {
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
                self.ty(TypeId(f)).is_ok_and(|t| t.name == name)
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
            .find(|&id| self.ty(id).is_ok_and(|t| t.kind == kind))
    }

    /// The struct or union called `name` (not a forward declaration), or
    /// else the struct/union a typedef of that name stands for.
    pub fn composite(&self, name: &str) -> Result<Option<TypeId>> {
        done(self.q_composite(name))
    }

    fn q_composite(&self, name: &str) -> R<Option<TypeId>> {
        let direct = self.find(name).find(|&id| {
            self.ty(id)
                .is_ok_and(|t| matches!(t.kind, Kind::Struct | Kind::Union))
        });
        if direct.is_some() {
            return Ok(direct);
        }
        // A later record may still be a struct of that name, which wins
        // over a typedef.
        if !self.complete() {
            return Err(Stop::Types);
        }
        if let Some(td) = self.find_kind(name, Kind::Typedef) {
            let r = self.q_resolve(td)?;
            if matches!(self.ty(r)?.kind, Kind::Struct | Kind::Union) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Follows TYPEDEF, VOLATILE, CONST, RESTRICT and TYPE_TAG to the
    /// underlying type.
    ///
    /// Returns an error after [`MAX_CHAIN`] hops (a typedef loop).
    pub fn resolve(&self, id: TypeId) -> Result<TypeId> {
        done(self.q_resolve(id))
    }

    fn q_resolve(&self, mut id: TypeId) -> R<TypeId> {
        for _ in 0..MAX_CHAIN {
            let t = self.ty(id)?;
            if !t.kind.is_alias() {
                return Ok(id);
            }
            id = TypeId(t.size_or_type);
        }
        Err(Error::Malformed("BTF: typedef/modifier chain too long (a loop?)").into())
    }

    /// An INT's encoding.
    pub fn int(&self, id: TypeId) -> Result<IntInfo> {
        done(self.q_int(id))
    }

    fn q_int(&self, id: TypeId) -> R<IntInfo> {
        let r = self.items(id, &[Kind::Int])?;
        let v = self.tw(&r, 0)?;
        Ok(IntInfo {
            encoding: (v >> 24) & 0xf,
            offset: (v >> 16) & 0xff,
            bits: v & 0xff,
        })
    }

    /// An ARRAY's element type, index type and length.
    pub fn array(&self, id: TypeId) -> Result<ArrayInfo> {
        done(self.q_array(id))
    }

    fn q_array(&self, id: TypeId) -> R<ArrayInfo> {
        let r = self.items(id, &[Kind::Array])?;
        Ok(ArrayInfo {
            elem: TypeId(self.tw(&r, 0)?),
            index: TypeId(self.tw(&r, 1)?),
            nelems: self.tw(&r, 2)?,
        })
    }

    /// A VAR's linkage (0 static, 1 global, 2 extern).
    pub fn var_linkage(&self, id: TypeId) -> Result<u32> {
        let r = done(self.items(id, &[Kind::Var]))?;
        self.tw(&r, 0)
    }

    /// A DECL_TAG's component index (-1: the declaration itself).
    pub fn decl_tag_component(&self, id: TypeId) -> Result<i32> {
        let r = done(self.items(id, &[Kind::DeclTag]))?;
        Ok(self.tw(&r, 0)? as i32)
    }

    /// The record of `id`, which must be of one of `kinds`.
    fn items(&self, id: TypeId, kinds: &[Kind]) -> R<Rec> {
        let r = self.rec(id)?;
        if !kinds.contains(&r.kind) {
            return Err(Error::Malformed("BTF: type of the wrong kind").into());
        }
        Ok(r)
    }

    /// A STRUCT's or UNION's members, as recorded.
    pub fn members(&self, id: TypeId) -> Result<impl Iterator<Item = RawMember<'_>> + '_> {
        let r = done(self.items(id, &[Kind::Struct, Kind::Union]))?;
        Ok((0..usize::from(r.vlen)).filter_map(move |i| self.member_at(&r, i).ok()))
    }

    fn member_at(&self, r: &Rec, i: usize) -> R<RawMember<'_>> {
        let name = self.str_at(self.tw(r, 3 * i)?)?;
        let type_id = TypeId(self.tw(r, 3 * i + 1)?);
        let off = self.tw(r, 3 * i + 2)?;
        let (bit_offset, bitfield_size) = if r.kind_flag {
            let size = (off >> 24) as u8;
            (off & 0x00ff_ffff, (size != 0).then_some(size))
        } else {
            (off, None)
        };
        Ok(RawMember {
            name,
            type_id,
            bit_offset,
            bitfield_size,
        })
    }

    /// An ENUM's or ENUM64's enumerators.
    pub fn enumerators(&self, id: TypeId) -> Result<impl Iterator<Item = Enumerator<'_>> + '_> {
        let r = done(self.items(id, &[Kind::Enum, Kind::Enum64]))?;
        Ok((0..usize::from(r.vlen)).filter_map(move |i| self.enumerator_at(&r, i).ok()))
    }

    fn enumerator_at(&self, r: &Rec, i: usize) -> R<Enumerator<'_>> {
        let (name, bits) = if r.kind == Kind::Enum {
            let v = self.tw(r, 2 * i + 1)?;
            let bits = if r.kind_flag {
                i64::from(v as i32) as u64
            } else {
                u64::from(v)
            };
            (self.tw(r, 2 * i)?, bits)
        } else {
            let lo = self.tw(r, 3 * i + 1)?;
            let hi = self.tw(r, 3 * i + 2)?;
            (self.tw(r, 3 * i)?, u64::from(hi) << 32 | u64::from(lo))
        };
        Ok(Enumerator {
            name: self.str_at(name)?,
            value: EnumValue {
                bits,
                signed: r.kind_flag,
            },
        })
    }

    /// A FUNC_PROTO's parameters.
    pub fn params(&self, id: TypeId) -> Result<impl Iterator<Item = Param<'_>> + '_> {
        let r = done(self.items(id, &[Kind::FuncProto]))?;
        Ok((0..usize::from(r.vlen)).filter_map(move |i| {
            Some(Param {
                name: self.str_at(self.tw(&r, 2 * i).ok()?).ok()?,
                type_id: TypeId(self.tw(&r, 2 * i + 1).ok()?),
            })
        }))
    }

    /// A DATASEC's variables.
    pub fn datasec_vars(&self, id: TypeId) -> Result<impl Iterator<Item = VarSecInfo> + '_> {
        let r = done(self.items(id, &[Kind::Datasec]))?;
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
        done(self.q_size_of(id))
    }

    fn q_size_of(&self, id: TypeId) -> R<u64> {
        let mut id = id;
        let mut mult = 1u64;
        let overflow = Error::Malformed("BTF: array size overflows");
        for _ in 0..MAX_CHAIN {
            let t = self.ty(id)?;
            let base = match t.kind {
                Kind::Ptr => u64::from(self.ptr_size),
                k if k.has_size() => u64::from(t.size_or_type),
                k if k.is_alias() || k == Kind::Var => {
                    id = TypeId(t.size_or_type);
                    continue;
                }
                Kind::Array => {
                    let a = self.q_array(id)?;
                    mult = mult.checked_mul(u64::from(a.nelems)).ok_or(overflow)?;
                    id = a.elem;
                    continue;
                }
                _ => return Err(Error::Malformed("BTF: type has no size").into()),
            };
            return Ok(base.checked_mul(mult).ok_or(overflow)?);
        }
        Err(Error::Malformed("BTF: type chain too long (a loop?)").into())
    }

    /// The size of the type called `name` (struct/union first, then any
    /// other named type); `None` when there is none.
    pub fn size_of_name(&self, name: &str) -> Result<Option<u64>> {
        done(self.q_size_of_name(name))
    }

    fn q_size_of_name(&self, name: &str) -> R<Option<u64>> {
        let id = match self.q_composite(name)? {
            Some(id) => Some(id),
            None => self.find(name).find(|&id| {
                self.ty(id)
                    .is_ok_and(|t| !matches!(t.kind, Kind::Fwd | Kind::Func | Kind::DeclTag))
            }),
        };
        id.map(|id| self.q_size_of(id)).transpose()
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
    ) -> R<Option<(u64, Option<u8>, TypeId)>> {
        if depth > MAX_CHAIN {
            return Err(Error::Malformed("BTF: anonymous members nest too deep (a loop?)").into());
        }
        let r = self.items(sid, &[Kind::Struct, Kind::Union])?;
        for i in 0..usize::from(r.vlen) {
            *budget = budget
                .checked_sub(1)
                .ok_or(Error::Malformed("BTF: member search too long"))?;
            let m = self.member_at(&r, i)?;
            if m.name == name {
                return Ok(Some((u64::from(m.bit_offset), m.bitfield_size, m.type_id)));
            }
            if m.name.is_empty() {
                let inner = self.q_resolve(m.type_id)?;
                if matches!(self.ty(inner)?.kind, Kind::Struct | Kind::Union) {
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
        done(self.q_member(type_name, path))
    }

    fn q_member(&self, type_name: &str, path: &str) -> R<Option<Member>> {
        match self.q_composite(type_name)? {
            Some(id) => self.q_member_of(id, path),
            None => Ok(None),
        }
    }

    /// [`Btf::member`] with the type and the path in one string:
    /// `"task_struct.se.exec_start"`.
    pub fn member_path(&self, path: &str) -> Result<Option<Member>> {
        done(self.q_member_path(path))
    }

    fn q_member_path(&self, path: &str) -> R<Option<Member>> {
        match path.split_once('.') {
            Some((ty, rest)) => self.q_member(ty, rest),
            None => Ok(None),
        }
    }

    /// [`Btf::member`] starting from a type id.
    pub fn member_of(&self, id: TypeId, path: &str) -> Result<Option<Member>> {
        done(self.q_member_of(id, path))
    }

    fn q_member_of(&self, id: TypeId, path: &str) -> R<Option<Member>> {
        let overflow = Error::Malformed("BTF: member offset overflows");
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
            let sid = self.q_resolve(cur)?;
            if !matches!(self.ty(sid)?.kind, Kind::Struct | Kind::Union) {
                return Ok(None);
            }
            let Some((b, bf, ty)) = self.find_member(sid, name, 0, &mut budget)? else {
                return Ok(None);
            };
            bits = bits.checked_add(b).ok_or(overflow)?;
            bitfield = bf;
            cur = ty;
            if bitfield.is_none() {
                // Old-style bitfields: an INT narrower than its storage.
                let t = self.ty(ty)?;
                if t.kind == Kind::Int {
                    let i = self.q_int(ty)?;
                    if i.offset != 0 || u64::from(i.bits) != u64::from(t.size_or_type) * 8 {
                        bits = bits.checked_add(u64::from(i.offset)).ok_or(overflow)?;
                        bitfield = Some(i.bits as u8);
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
                let aid = self.q_resolve(cur)?;
                if self.ty(aid)?.kind != Kind::Array {
                    return Ok(None);
                }
                let a = self.q_array(aid)?;
                if a.nelems != 0 && n >= u64::from(a.nelems) {
                    return Ok(None);
                }
                let step = self
                    .q_size_of(a.elem)?
                    .checked_mul(n)
                    .and_then(|x| x.checked_mul(8))
                    .ok_or(overflow)?;
                bits = bits.checked_add(step).ok_or(overflow)?;
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
        done(self.q_enum_value(enum_name, enumerator))
    }

    fn q_enum_value(&self, enum_name: &str, enumerator: &str) -> R<Option<EnumValue>> {
        for id in self.find(enum_name) {
            if let Ok(r) = self.items(id, &[Kind::Enum, Kind::Enum64]) {
                for i in 0..usize::from(r.vlen) {
                    let e = self.enumerator_at(&r, i)?;
                    if e.name == enumerator {
                        return Ok(Some(e.value));
                    }
                }
            }
        }
        self.none()
    }

    /// The value of the enumerator called `name` in any enum (a scan of
    /// every enum: enumerators are not indexed).
    pub fn enumerator(&self, name: &str) -> Result<Option<EnumValue>> {
        done(self.q_enumerator(name))
    }

    fn q_enumerator(&self, name: &str) -> R<Option<EnumValue>> {
        for id in 1..=self.len() {
            if let Ok(r) = self.items(TypeId(id), &[Kind::Enum, Kind::Enum64]) {
                for i in 0..usize::from(r.vlen) {
                    let e = self.enumerator_at(&r, i)?;
                    if e.name == name {
                        return Ok(Some(e.value));
                    }
                }
            }
        }
        self.none()
    }
}

/// A kernel's BTF read from memory only as lookups need it: the type
/// section from its start, as far as the lookups go, and the string
/// section in 16 KiB chunks. A kernel's `.BTF` is several MiB, yet the
/// structs a process walker needs are among its first few thousand types:
/// the loaded part stays a few percent of the blob.
///
/// Lookups give the same answers as on the whole blob ([`Btf`]): a search
/// by name that fails on the parsed records parses more before saying
/// "none", and every record is checked as it is parsed. References to type
/// ids are checked when followed rather than up front.
#[derive(Debug)]
pub struct LazyBtf {
    btf: Btf,
    base: kvm_core::VirtAddr,
}

impl LazyBtf {
    /// The blob of `len` bytes at `at` (`__start_BTF`, `__stop_BTF -
    /// __start_BTF`): reads and checks its header and finds the pointer
    /// size. At most [`MAX_SEARCH_BLOB`] bytes.
    pub fn new(mem: &dyn kvm_core::VirtRead, at: kvm_core::VirtAddr, len: u64) -> Result<LazyBtf> {
        if len > MAX_SEARCH_BLOB {
            return Err(Error::Malformed("BTF blob larger than 64 MiB"));
        }
        let len = len as usize;
        at.0.checked_add(len as u64)
            .ok_or(Error::Malformed("BTF blob wraps around the address space"))?;
        let mut head = [0u8; 24];
        if len < head.len() {
            return Err(Error::Malformed("BTF: blob shorter than its header"));
        }
        mem.read_virt_exact(at, &mut head)?;
        let Header {
            e,
            len: hdr_len,
            types,
            strs,
        } = header(&head, len)?;
        let mut data = vec![0u8; len];
        let hdr = data
            .get_mut(..hdr_len)
            .ok_or(Error::Malformed("BTF: bad header length"))?;
        mem.read_virt_exact(at, hdr)?;
        let chunks = (strs.1 - strs.0).div_ceil(STR_CHUNK);
        let mut lazy = LazyBtf {
            btf: Btf::unparsed(data, e, types, strs, Some(vec![false; chunks])),
            base: at,
        };
        lazy.btf.ptr_size = lazy.run(mem, |b| b.detect_ptr_size())?;
        Ok(lazy)
    }

    /// Runs a lookup, loading what it asks for until it can answer. Ends:
    /// each round loads bytes not loaded before, or fails.
    fn run<T>(&mut self, mem: &dyn kvm_core::VirtRead, f: impl Fn(&Btf) -> R<T>) -> Result<T> {
        loop {
            match f(&self.btf) {
                Ok(v) => return Ok(v),
                Err(Stop::Bad(e)) => return Err(e),
                Err(Stop::Types) => self.parse_more(mem)?,
                Err(Stop::Str(off)) => self.load_str(mem, off)?,
            }
        }
    }

    /// Parses more records, loading more of the type section (twice what
    /// is loaded, at least [`TYPES_STEP`]) when the loaded part is parsed.
    fn parse_more(&mut self, mem: &dyn kvm_core::VirtRead) -> Result<()> {
        let before = self.btf.len();
        loop {
            match self.btf.parse_more() {
                Ok(()) => return Ok(()),
                Err(Stop::Bad(e)) => return Err(e),
                Err(Stop::Str(off)) => self.load_str(mem, off)?,
                Err(Stop::Types) if self.btf.len() > before => return Ok(()),
                Err(Stop::Types) => {
                    let b = &mut self.btf;
                    let from = b.types_loaded;
                    if from >= b.types.1 {
                        return Err(Error::Malformed("BTF: type section ends inside a record"));
                    }
                    let step = (from - b.types.0).max(TYPES_STEP);
                    let to = from.saturating_add(step).min(b.types.1);
                    self.read(mem, from, to)?;
                    self.btf.types_loaded = to;
                }
            }
        }
    }

    /// Loads the string chunk holding `off` (an offset in the string
    /// section) and checks the section's first and last bytes are NUL.
    fn load_str(&mut self, mem: &dyn kvm_core::VirtRead, off: usize) -> Result<()> {
        let c = off / STR_CHUNK;
        let strs = self.btf.strs;
        let from = strs.0 + c * STR_CHUNK;
        let to = from.saturating_add(STR_CHUNK).min(strs.1);
        match self.btf.str_loaded.as_ref().and_then(|l| l.get(c)) {
            Some(false) => {}
            _ => {
                return Err(Error::Malformed(
                    "BTF: string offset outside the string section",
                ))
            }
        }
        self.read(mem, from, to)?;
        let d = &self.btf.data;
        if (from == strs.0 && d.get(from) != Some(&0))
            || (to == strs.1 && d.get(to - 1) != Some(&0))
        {
            return Err(Error::Malformed(
                "BTF: string section must start and end with NUL",
            ));
        }
        if let Some(slot) = self.btf.str_loaded.as_mut().and_then(|l| l.get_mut(c)) {
            *slot = true;
        }
        Ok(())
    }

    /// Reads blob bytes `from..to` from memory.
    fn read(&mut self, mem: &dyn kvm_core::VirtRead, from: usize, to: usize) -> Result<()> {
        let buf = self
            .btf
            .data
            .get_mut(from..to)
            .ok_or(Error::Malformed("BTF: read outside the blob"))?;
        mem.read_virt_exact(kvm_core::VirtAddr(self.base.0 + from as u64), buf)
    }

    /// Bytes of the blob read from memory so far.
    pub fn loaded(&self) -> usize {
        let b = &self.btf;
        let strs = b.str_loaded.as_ref().map_or(0, |l| {
            (0..l.len())
                .filter(|&c| l[c])
                .map(|c| STR_CHUNK.min(b.strs.1 - b.strs.0 - c * STR_CHUNK))
                .sum()
        });
        b.types_loaded - b.types.0 + strs
    }

    /// The blob's size.
    pub fn blob_len(&self) -> usize {
        self.btf.data.len()
    }

    /// [`Btf::composite`].
    pub fn composite(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        name: &str,
    ) -> Result<Option<TypeId>> {
        self.run(mem, |b| b.q_composite(name))
    }

    /// [`Btf::member_path`].
    pub fn member_path(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        path: &str,
    ) -> Result<Option<Member>> {
        self.run(mem, |b| b.q_member_path(path))
    }

    /// [`Btf::member_of`].
    pub fn member_of(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        id: TypeId,
        path: &str,
    ) -> Result<Option<Member>> {
        self.run(mem, |b| b.q_member_of(id, path))
    }

    /// [`Btf::size_of`].
    pub fn size_of(&mut self, mem: &dyn kvm_core::VirtRead, id: TypeId) -> Result<u64> {
        self.run(mem, |b| b.q_size_of(id))
    }

    /// [`Btf::size_of_name`].
    pub fn size_of_name(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        name: &str,
    ) -> Result<Option<u64>> {
        self.run(mem, |b| b.q_size_of_name(name))
    }

    /// [`Btf::enum_value`].
    pub fn enum_value(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        enum_name: &str,
        enumerator: &str,
    ) -> Result<Option<EnumValue>> {
        self.run(mem, |b| b.q_enum_value(enum_name, enumerator))
    }

    /// [`Btf::enumerator`].
    pub fn enumerator(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        name: &str,
    ) -> Result<Option<EnumValue>> {
        self.run(mem, |b| b.q_enumerator(name))
    }

    /// [`Btf::pointer_size`].
    pub fn pointer_size(&self) -> u32 {
        self.btf.ptr_size
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

/// Largest BTF blob [`search_first`] reads, and the bound readers of a
/// blob whose extent they know should use too (vmlinux BTF is a few MiB).
pub const MAX_SEARCH_BLOB: u64 = 64 << 20;

/// The bytes of the string at `off` (up to its NUL), without the UTF-8
/// check: the hot paths (validation, the name index) compare and hash
/// bytes. A whole blob's string section is checked to be UTF-8 at parse
/// time; `Btf::str_at` checks each string it returns (a lazy blob's too).
fn bytes_in(data: &[u8], strs: (usize, usize), off: usize) -> Result<&[u8]> {
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
