//! Lookups in a [`Btf`]: types by id and by name, typedef chains, member
//! paths, sizes and enum values. A lookup that [`LazyBtf`](super::LazyBtf)
//! offers too is a `q_*` query behind the public method: the query stops
//! when it needs bytes not loaded yet, and the lazy reader loads them and
//! runs it again.

use super::types::{
    done, ArrayInfo, Btf, EnumValue, Enumerator, IntInfo, Kind, Member, Param, RawMember, Rec,
    Stop, Type, TypeId, VarSecInfo, MAX_CHAIN, MEMBER_BUDGET, R,
};
use core::hash::BuildHasher;
use kvm_core::{Endian, Error, Result};

impl Btf {
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

    pub(super) fn ty(&self, id: TypeId) -> R<Type<'_>> {
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

    pub(super) fn q_composite(&self, name: &str) -> R<Option<TypeId>> {
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

    pub(super) fn q_size_of(&self, id: TypeId) -> R<u64> {
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

    pub(super) fn q_size_of_name(&self, name: &str) -> R<Option<u64>> {
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

    pub(super) fn q_member_path(&self, path: &str) -> R<Option<Member>> {
        match path.split_once('.') {
            Some((ty, rest)) => self.q_member(ty, rest),
            None => Ok(None),
        }
    }

    /// [`Btf::member`] starting from a type id.
    pub fn member_of(&self, id: TypeId, path: &str) -> Result<Option<Member>> {
        done(self.q_member_of(id, path))
    }

    pub(super) fn q_member_of(&self, id: TypeId, path: &str) -> R<Option<Member>> {
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

    pub(super) fn q_enum_value(&self, enum_name: &str, enumerator: &str) -> R<Option<EnumValue>> {
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

    pub(super) fn q_enumerator(&self, name: &str) -> R<Option<EnumValue>> {
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
