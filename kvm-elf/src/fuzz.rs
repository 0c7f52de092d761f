//! Entry points for the fuzz targets in `fuzz/` (one per parser), kept in
//! the library so that regressions replay as ordinary tests. Each must
//! never panic, hang or allocate without bound, whatever the input.

use crate::btf::{Btf, Kind, LazyBtf, TypeId};
use crate::kallsyms::{self, AddrEncoding, KallsymsOptions, KallsymsTables, NameLen};
use crate::SymbolTable;
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{
    Endian, PhysAddr, PhysRead, Prot, Result, SparseMem, Translate, Translated, Translation,
    VirtAddr,
};

/// Virtual addresses equal physical ones (4 KiB pages): fuzz inputs are
/// laid out in a [`SparseMem`] and read as a kernel address space.
#[derive(Clone, Copy, Debug)]
pub struct Identity;

impl Translate for Identity {
    fn translate(&self, _mem: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
        Ok(Translation {
            pa: PhysAddr(va.0),
            len: 4096 - va.offset_in(4096),
            page_size: 4096,
            prot: Prot::READ,
        })
    }
}

/// Where fuzzed memory starts.
pub const BASE: u64 = 0x10_0000;

fn u16_at(d: &[u8], i: usize) -> u64 {
    d.get(i..i + 2)
        .map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])))
}

/// kallsyms decoding over memory made from the input. Layout: byte 0
/// selects byte order, pointer size, name-length mode and encoding; bytes
/// 1..17 are eight u16 offsets (from the start of the memory) of the
/// tables: num_syms, names, markers, token_table, token_index,
/// addresses, offsets, relative_base (offset 0xffff = absent); the whole
/// input is the memory, at [`BASE`]. Also runs the table search over the
/// same memory.
pub fn kallsyms(data: &[u8]) {
    let Some(&sel) = data.first() else { return };
    let mut mem = SparseMem::new();
    if mem.write(PhysAddr(BASE), data).is_err() {
        return;
    }
    let space = Translated::new(mem, Identity);
    let at = |k: usize| {
        let o = u16_at(data, 1 + 2 * k);
        VirtAddr(BASE + o)
    };
    let opt = |k: usize| (u16_at(data, 1 + 2 * k) != 0xffff).then(|| at(k));
    let tables = KallsymsTables {
        num_syms: at(0),
        names: at(1),
        markers: opt(2),
        token_table: at(3),
        token_index: at(4),
        addresses: opt(5),
        offsets: opt(6),
        relative_base: opt(7),
    };
    let mut o = KallsymsOptions::new(
        if sel & 1 == 0 {
            Endian::Little
        } else {
            Endian::Big
        },
        if sel & 2 == 0 { 8 } else { 4 },
    );
    o.name_len = [
        NameLen::Auto,
        NameLen::OneByte,
        NameLen::TwoByte,
        NameLen::Auto,
    ][usize::from(sel >> 2) & 3];
    o.encoding = [
        None,
        Some(AddrEncoding::Absolute),
        Some(AddrEncoding::BaseRelative),
        Some(AddrEncoding::AbsolutePercpu),
        Some(AddrEncoding::PlaceRelative),
        None,
        None,
        None,
    ][usize::from(sel >> 4) & 7];
    // Keep the work per input small: a few thousand symbols at most.
    o.max_syms = 1 << 14;
    let decoded = kallsyms::decode(&space, &tables, &o).ok();
    if let Some(k) = &decoded {
        exercise_table(&k.table);
    }
    // The sequence index over the same tables, checked against the first
    // decoded symbol (or a made-up one).
    let first = decoded
        .as_ref()
        .and_then(|k| k.table.iter().next().map(|s| (s.name, s.addr.0)));
    let known = [first.unwrap_or(("_stext", BASE))];
    let mut io = o;
    io.known = &known;
    if let Ok(idx) = kallsyms::NameIndex::new(&space, &tables, &io) {
        let names: Vec<&str> = decoded
            .as_ref()
            .map(|k| k.table.iter().take(16).map(|s| s.name).collect())
            .unwrap_or_default();
        for name in names.iter().copied().chain(["", "a", "~"]) {
            let _ = idx.lookup(&space, name);
        }
    }
    if sel & 0x80 != 0 {
        if let Ok((_, k)) = kallsyms::search(&space, VirtAddr(BASE), data.len() as u64, &o) {
            exercise_table(&k.table);
        }
    }
}

fn exercise_table(t: &SymbolTable) {
    for s in t.iter().take(64) {
        assert!(t.lookup(s.name).is_some(), "a listed name must resolve");
        let n = t
            .nearest(s.addr)
            .expect("an address with a symbol has a nearest symbol");
        assert_eq!(
            n.symbol.addr, s.addr,
            "nearest at a symbol's address is at that address"
        );
    }
    let _ = t.nearest(VirtAddr(u64::MAX));
    let _ = t.nearest(VirtAddr(0));
}

/// `System.map` and `/proc/kallsyms` text parsing, lookups and relocation.
pub fn system_map(data: &[u8]) {
    if let Ok(mut t) = SymbolTable::from_system_map(data) {
        exercise_table(&t);
        let off = data.first().map_or(0, |&b| u64::from(b) << 21);
        t.relocate(off).expect("a link-time table relocates once");
        assert!(t.relocate(off).is_err(), "never twice");
        exercise_table(&t);
    }
    if let Ok(mut t) = SymbolTable::from_proc_kallsyms(data) {
        exercise_table(&t);
        assert!(t.relocate(1).is_err(), "runtime tables never relocate");
    }
}

/// ELF symbol tables (through goblin).
pub fn elf_symbols(data: &[u8]) {
    if let Ok(t) = SymbolTable::from_elf(data) {
        exercise_table(&t);
    }
}

/// BTF parsing and every accessor on every type, plus member-path, size
/// and enum lookups by the names the blob contains; then the same lookups
/// through a [`LazyBtf`] reading the input as memory, which must answer as
/// the parsed blob does whenever that parses.
pub fn btf(data: &[u8]) {
    let Ok(btf) = Btf::parse(data) else {
        lazy_btf(data, None, &["task_struct", "int", "long unsigned int"]);
        return;
    };
    let mut names: Vec<&str> = Vec::new();
    for t in btf.types().take(4096) {
        let id = t.id;
        let _ = btf.resolve(id);
        let _ = btf.size_of(id);
        let _ = t.size();
        let _ = t.ref_type();
        match t.kind {
            Kind::Int => {
                let _ = btf.int(id);
            }
            Kind::Array => {
                let _ = btf.array(id);
            }
            Kind::Struct | Kind::Union => {
                if let Ok(ms) = btf.members(id) {
                    for m in ms.take(64) {
                        if !m.name.is_empty() && names.len() < 64 {
                            names.push(m.name);
                        }
                    }
                }
                if !t.name.is_empty() && names.len() < 64 {
                    names.push(t.name);
                }
            }
            Kind::Enum | Kind::Enum64 => {
                if let Ok(es) = btf.enumerators(id) {
                    for e in es.take(64) {
                        let _ = btf.enumerator(e.name);
                    }
                }
            }
            Kind::FuncProto => {
                if let Ok(ps) = btf.params(id) {
                    ps.take(64).for_each(drop);
                }
            }
            Kind::Datasec => {
                if let Ok(vs) = btf.datasec_vars(id) {
                    vs.take(64).for_each(drop);
                }
            }
            Kind::Var => {
                let _ = btf.var_linkage(id);
            }
            Kind::DeclTag => {
                let _ = btf.decl_tag_component(id);
            }
            _ => {}
        }
    }
    let _ = btf.type_by_id(TypeId(btf.len() + 1));
    for (i, a) in names.iter().enumerate().take(16) {
        let _ = btf.size_of_name(a);
        let _ = btf.composite(a);
        let _ = btf.enum_value(a, a);
        for b in names.iter().skip(i).take(16) {
            let _ = btf.member(a, b);
            let mut path = String::from(*b);
            path.push('.');
            path.push_str(b);
            let _ = btf.member(a, &path);
            path.push_str("[1]");
            let _ = btf.member(a, &path);
        }
    }
    lazy_btf(data, Some(&btf), &names);
}

/// Lookups through a [`LazyBtf`] over `data` laid out in memory, checked
/// against `eager` (the same blob parsed whole) when it parsed.
fn lazy_btf(data: &[u8], eager: Option<&Btf>, names: &[&str]) {
    let mut mem = SparseMem::new();
    if mem.write(PhysAddr(BASE), data).is_err() {
        return;
    }
    let space = Translated::new(mem, Identity);
    let lazy = LazyBtf::new(&space, VirtAddr(BASE), data.len() as u64);
    let mut lazy = match (lazy, eager) {
        (Ok(l), _) => l,
        (Err(e), Some(_)) => panic!("a blob that parses whole fails lazily: {e:?}"),
        (Err(_), None) => return,
    };
    let same = |what: &str, a: Option<String>, b: Option<String>| {
        if let Some(b) = b.filter(|_| eager.is_some()) {
            assert_eq!(a.as_ref(), Some(&b), "{what}");
        }
    };
    let dbg = |r: &dyn core::fmt::Debug| alloc::format!("{r:?}");
    if let Some(e) = eager {
        assert_eq!(lazy.pointer_size(), e.pointer_size());
    }
    for (i, a) in names.iter().enumerate().take(16) {
        let l = lazy.composite(&space, a).ok().map(|r| dbg(&r));
        same(
            a,
            l,
            eager.and_then(|e| e.composite(a).ok()).map(|r| dbg(&r)),
        );
        let l = lazy.size_of_name(&space, a).ok().map(|r| dbg(&r));
        same(
            a,
            l,
            eager.and_then(|e| e.size_of_name(a).ok()).map(|r| dbg(&r)),
        );
        let l = lazy.enumerator(&space, a).ok().map(|r| dbg(&r));
        same(
            a,
            l,
            eager.and_then(|e| e.enumerator(a).ok()).map(|r| dbg(&r)),
        );
        for b in names.iter().skip(i).take(8) {
            let path = alloc::format!("{a}.{b}");
            let l = lazy.member_path(&space, &path).ok().map(|r| dbg(&r));
            same(
                &path,
                l,
                eager
                    .and_then(|e| e.member_path(&path).ok())
                    .map(|r| dbg(&r)),
            );
        }
    }
    assert!(lazy.loaded() <= data.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn smoke() {
        // Each entry over a few shapes of input: empty, zeros, ones, text,
        // and headers that point tables at themselves.
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0; 64],
            vec![0xff; 4096],
            b"ffffffff81000000 T _text\nffffffffc0000000 t m\t[mod]\n".to_vec(),
            b"\x7fELF\x02\x01\x01".to_vec(),
        ];
        let mut blob = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
        blob.extend_from_slice(&[0; 16]);
        blob.push(0);
        inputs.push(blob);
        for sel in 0..=255u8 {
            let mut d = vec![sel];
            for k in 0..8u16 {
                d.extend_from_slice(&(17 + 4 * k).to_le_bytes());
            }
            d.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 0, 0x80, 1, 65, 66, 0, 0, 0, 0]);
            d.resize(600, 0x11);
            inputs.push(d);
        }
        for d in &inputs {
            kallsyms(d);
            btf(d);
            system_map(d);
            elf_symbols(d);
        }
    }
}
