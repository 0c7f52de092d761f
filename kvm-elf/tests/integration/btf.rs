//! BTF: a real blob (the task_struct closure of a 6.18 kernel, made by
//! pahole; tests/data/README.md), this machine's own
//! /sys/kernel/btf/vmlinux when present, every kind through the builder,
//! and corrupt blobs.

use crate::{gunzip, within};
use kvm_core::Endian;
use kvm_elf::btf::{Kind, TypeId, INT_CHAR, INT_SIGNED, MAX_CHAIN};
use kvm_elf::write::{BtfBuilder, Field};
use kvm_elf::Btf;

/// (type, member path, byte offset, bit offset in the byte, bitfield
/// size) as pahole 1.24 prints them from the kernel's own BTF
/// (`pahole -F btf -C task_struct /sys/kernel/btf/vmlinux`, kernel
/// 6.18.44-fc-v669).
const MEMBERS_6_18: &[(&str, &str, u64, u64, Option<u8>)] = &[
    ("task_struct", "__state", 24, 0, None),
    ("task_struct", "flags", 44, 0, None),
    ("task_struct", "se", 128, 0, None),
    ("task_struct", "se.exec_start", 224, 0, None),
    ("task_struct", "tasks", 1056, 0, None),
    ("task_struct", "tasks.next", 1056, 0, None),
    ("task_struct", "tasks.prev", 1064, 0, None),
    ("task_struct", "mm", 1136, 0, None),
    ("task_struct", "exit_signal", 1168, 0, None),
    ("task_struct", "sched_reset_on_fork", 1188, 0, Some(1)),
    ("task_struct", "sched_task_hot", 1188, 3, Some(1)),
    ("task_struct", "in_execve", 1192, 3, Some(1)),
    ("task_struct", "in_iowait", 1193, 0, Some(1)),
    ("task_struct", "pid", 1264, 0, None),
    ("task_struct", "tgid", 1268, 0, None),
    ("task_struct", "real_parent", 1280, 0, None),
    ("task_struct", "pid_links", 1376, 0, None),
    ("task_struct", "pid_links[1]", 1392, 0, None),
    ("task_struct", "pid_links[3].next", 1424, 0, None),
    ("task_struct", "cred", 1736, 0, None),
    ("task_struct", "comm", 1752, 0, None),
    ("task_struct", "signal", 1848, 0, None),
    ("sched_entity", "exec_start", 96, 0, None),
    ("mm_struct", "mm_mt", 64, 0, None),
    ("mm_struct", "pgd", 120, 0, None),
    ("mm_struct", "arg_start", 480, 0, None),
    ("mm_struct", "arg_end", 488, 0, None),
    ("mm_struct", "env_start", 496, 0, None),
    ("mm_struct", "env_end", 504, 0, None),
    ("list_head", "prev", 8, 0, None),
    ("cred", "uid", 8, 0, None),
    ("cred", "gid", 12, 0, None),
    ("cred", "euid", 24, 0, None),
    ("upid", "ns", 8, 0, None),
    ("pid", "level", 4, 0, None),
    ("pid", "numbers", 144, 0, None),
    ("signal_struct", "nr_threads", 8, 0, None),
    ("signal_struct", "thread_head", 16, 0, None),
    ("signal_struct", "pids[2]", 376, 0, None),
];

const SIZES_6_18: &[(&str, u64)] = &[
    ("task_struct", 3264),
    ("mm_struct", 1472),
    ("sched_entity", 256),
    ("list_head", 16),
    ("upid", 16),
    ("pid", 144),
    ("signal_struct", 1144),
    ("pid_t", 4),
    ("kuid_t", 4),
];

fn check_6_18(btf: &Btf) {
    for &(ty, path, byte, bit, bf) in MEMBERS_6_18 {
        let m = btf
            .member(ty, path)
            .unwrap()
            .unwrap_or_else(|| panic!("{ty}.{path} missing"));
        assert_eq!(
            (m.offset, m.bit_offset, m.bitfield_size),
            (byte, byte * 8 + bit, bf),
            "{ty}.{path}"
        );
        let joined = format!("{ty}.{path}");
        assert_eq!(btf.member_path(&joined).unwrap(), Some(m));
    }
    for &(ty, size) in SIZES_6_18 {
        assert_eq!(btf.size_of_name(ty).unwrap(), Some(size), "sizeof {ty}");
    }
    // Member types.
    let mm = btf.member("task_struct", "mm").unwrap().unwrap();
    let t = btf.type_by_id(mm.type_id).unwrap();
    assert_eq!(t.kind, Kind::Ptr);
    let target = btf.resolve(t.ref_type().unwrap()).unwrap();
    assert_eq!(btf.type_by_id(target).unwrap().name, "mm_struct");
    let comm = btf.member("task_struct", "comm").unwrap().unwrap();
    assert_eq!(btf.size_of(comm.type_id).unwrap(), 16);
    let a = btf.array(btf.resolve(comm.type_id).unwrap()).unwrap();
    assert_eq!(a.nelems, 16);
    let ch = btf.resolve(a.elem).unwrap();
    assert_eq!(btf.int(ch).unwrap().bits, 8);
    let pid = btf.member("task_struct", "pid").unwrap().unwrap();
    assert_eq!(btf.type_by_id(pid.type_id).unwrap().name, "pid_t");
    assert_eq!(btf.size_of(pid.type_id).unwrap(), 4);
    assert_eq!(btf.pointer_size(), 8);
    // Enums.
    for (name, v) in [
        ("PIDTYPE_PID", 0),
        ("PIDTYPE_TGID", 1),
        ("PIDTYPE_PGID", 2),
        ("PIDTYPE_SID", 3),
        ("PIDTYPE_MAX", 4),
    ] {
        assert_eq!(
            btf.enum_value("pid_type", name)
                .unwrap()
                .map(|v| v.as_i64()),
            Some(v)
        );
        assert_eq!(
            btf.enumerator(name).unwrap().map(|v| v.as_u64()),
            Some(v as u64)
        );
    }
    // Misses are `None`, not errors.
    assert_eq!(btf.member("task_struct", "no_such_member").unwrap(), None);
    assert_eq!(btf.member("no_such_struct", "mm").unwrap(), None);
    assert_eq!(btf.member("task_struct", "mm.start_code").unwrap(), None); // through a pointer
    assert_eq!(btf.member("task_struct", "comm[16]").unwrap(), None);
    assert_eq!(btf.member("task_struct", "comm[x]").unwrap(), None);
    assert_eq!(btf.member("task_struct", "").unwrap(), None);
    assert_eq!(btf.member_path("task_struct").unwrap(), None);
    assert_eq!(btf.enum_value("pid_type", "PIDTYPE_NONE").unwrap(), None);
    assert_eq!(btf.size_of_name("no_such_type").unwrap(), None);
}

#[test]
fn real_task_struct_closure() {
    let btf = Btf::parse(&gunzip("task-closure-6.18.btf.gz")).unwrap();
    assert_eq!(btf.endian(), Endian::Little);
    assert!(btf.len() > 1000);
    check_6_18(&btf);
    // Every type's accessors work on a real blob.
    let mut kinds = std::collections::BTreeSet::new();
    for t in btf.types() {
        kinds.insert(format!("{:?}", t.kind));
        match t.kind {
            Kind::Struct | Kind::Union => {
                for m in btf.members(t.id).unwrap() {
                    assert!(m.type_id.0 <= btf.len());
                }
                assert_eq!(btf.size_of(t.id).unwrap(), u64::from(t.size().unwrap()));
            }
            Kind::Enum | Kind::Enum64 => {
                assert_eq!(btf.enumerators(t.id).unwrap().count(), usize::from(t.vlen))
            }
            Kind::FuncProto => assert_eq!(btf.params(t.id).unwrap().count(), usize::from(t.vlen)),
            _ => {}
        }
    }
    for k in [
        "Int",
        "Ptr",
        "Array",
        "Struct",
        "Union",
        "Enum",
        "Typedef",
        "Const",
        "Volatile",
        "FuncProto",
        "Fwd",
    ] {
        assert!(kinds.contains(k), "{k} missing from {kinds:?}");
    }
}

/// This machine's kernel BTF, when there is one (not required: the
/// committed blob above is the fixture). On the kernel the expectations
/// were taken from, every value must match.
#[test]
fn this_machines_vmlinux_btf_if_present() {
    let Ok(btf) = Btf::open("/sys/kernel/btf/vmlinux") else {
        return;
    };
    let task = btf.composite("task_struct").unwrap().expect("task_struct");
    assert!(btf.size_of(task).unwrap() > 1000);
    for p in [
        "mm",
        "pid",
        "tgid",
        "comm",
        "tasks",
        "real_parent",
        "se.exec_start",
    ] {
        assert!(btf.member("task_struct", p).unwrap().is_some(), "{p}");
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if release.trim() == "6.18.44-fc-v669" {
        check_6_18(&btf);
    }
    // Every kind the kernel uses parses, DECL_TAG and TYPE_TAG included.
    for t in btf.types() {
        match t.kind {
            Kind::DeclTag => assert!(btf.decl_tag_component(t.id).unwrap() >= -1),
            Kind::Var => assert!(btf.var_linkage(t.id).unwrap() <= 2),
            Kind::Datasec => {
                btf.datasec_vars(t.id).unwrap().for_each(drop);
            }
            _ => {}
        }
    }
}

fn every_kind(e: Endian) -> (Vec<u8>, Vec<TypeId>) {
    let mut b = BtfBuilder::new(e);
    let int = b.int("int", 4, INT_SIGNED, 32); // 1
    let ch = b.int("char", 1, INT_CHAR | INT_SIGNED, 8); // 2
    let ulong = b.int("long unsigned int", 8, 0, 64); // 3
    let p = b.ptr(int); // 4
    let arr = b.array(ch, int, 16); // 5
    let fwd = b.fwd("later", true); // 6
    let td = b.typedef("pid_t", int); // 7
    let vol = b.volatile(td); // 8
    let cst = b.const_(vol); // 9
    let rst = b.restrict(p); // 10
    let tt = b.type_tag("user", p); // 11
    let fl = b.float("double", 8); // 12
    let en = b.enum_(
        "pid_type",
        4,
        false,
        &[("PIDTYPE_PID", 0), ("PIDTYPE_TGID", 1)],
    ); // 13
    let sen = b.enum_("signed_e", 4, true, &[("NEG", -5)]); // 14
    let e64 = b.enum64("big_e", 8, false, &[("BIG", 0x1_0000_0002)]); // 15
    let bits = b.int_bits("", 4, 3, 5); // 16: old-style bitfield type
    let inner = b.union_(
        "",
        8,
        &[Field::new("u_a", int, 0), Field::new("u_b", ulong, 0)],
    ); // 17
    let s = b.struct_(
        "task",
        48,
        &[
            Field::new("state", cst, 0),
            Field::new("name", arr, 32),
            Field::new("", inner, 192),
            Field::new("old_bits", bits, 256),
            Field::new("ptr", rst, 320),
        ],
    ); // 18
    let bf = b.struct_(
        "flags",
        4,
        &[
            Field::bits("a", int, 0, 1),
            Field::bits("b", int, 1, 3),
            Field::new("c", ch, 8),
        ],
    ); // 19
    let proto = b.func_proto(int, &[("t", p), ("", TypeId::VOID)]); // 20
    let func = b.func("do_exit", proto, 1); // 21
    let var = b.var("jiffies", ulong, 1); // 22
    let sec = b.datasec(".data", 64, &[(var, 8, 8)]); // 23
    let tag = b.decl_tag("kvm_tag", s, 2); // 24
    let ids = vec![
        int, ch, ulong, p, arr, fwd, td, vol, cst, rst, tt, fl, en, sen, e64, bits, inner, s, bf,
        proto, func, var, sec, tag,
    ];
    (b.finish(), ids)
}

#[test]
fn every_kind_both_byte_orders() {
    for e in [Endian::Little, Endian::Big] {
        let (blob, ids) = every_kind(e);
        let btf = Btf::parse(&blob).unwrap();
        assert_eq!(btf.endian(), e);
        assert_eq!(btf.len(), ids.len() as u32);
        let kinds: Vec<Kind> = btf.types().map(|t| t.kind).collect();
        use Kind::*;
        assert_eq!(
            kinds,
            [
                Int, Int, Int, Ptr, Array, Fwd, Typedef, Volatile, Const, Restrict, TypeTag, Float,
                Enum, Enum, Enum64, Int, Union, Struct, Struct, FuncProto, Func, Var, Datasec,
                DeclTag
            ]
        );
        assert_eq!(btf.pointer_size(), 8);
        assert_eq!(btf.int(TypeId(1)).unwrap().encoding, INT_SIGNED);
        assert_eq!(btf.array(TypeId(5)).unwrap().nelems, 16);
        assert!(btf.type_by_id(TypeId(6)).unwrap().kind_flag);
        assert_eq!(btf.size_of(TypeId(9)).unwrap(), 4); // const volatile pid_t
        assert_eq!(btf.size_of(TypeId(11)).unwrap(), 8); // tagged pointer
        assert_eq!(btf.size_of(TypeId(5)).unwrap(), 16);
        assert_eq!(btf.size_of(TypeId(12)).unwrap(), 8);
        assert!(btf.size_of(TypeId(6)).is_err()); // FWD
        assert!(btf.size_of(TypeId(20)).is_err()); // FUNC_PROTO
        assert!(btf.size_of(TypeId::VOID).is_err());
        assert_eq!(btf.size_of(TypeId(22)).unwrap(), 8); // VAR: its type
        assert_eq!(btf.resolve(TypeId(9)).unwrap(), TypeId(1));
        assert_eq!(
            btf.enum_value("pid_type", "PIDTYPE_TGID")
                .unwrap()
                .unwrap()
                .as_u64(),
            1
        );
        assert_eq!(btf.enumerator("NEG").unwrap().unwrap().as_i64(), -5);
        assert_eq!(
            btf.enumerator("BIG").unwrap().unwrap().as_u64(),
            0x1_0000_0002
        );
        // Members: direct, inside the anonymous union, old- and new-style bitfields.
        let m = btf.member("task", "u_b").unwrap().unwrap();
        assert_eq!((m.offset, m.type_id), (24, TypeId(3)));
        let m = btf.member("task", "name[3]").unwrap().unwrap();
        assert_eq!((m.offset, m.type_id), (7, TypeId(2)));
        let m = btf.member("task", "old_bits").unwrap().unwrap();
        assert_eq!((m.bit_offset, m.bitfield_size), (259, Some(5)));
        let m = btf.member("flags", "b").unwrap().unwrap();
        assert_eq!((m.bit_offset, m.bitfield_size), (1, Some(3)));
        let m = btf.member("flags", "c").unwrap().unwrap();
        assert_eq!((m.offset, m.bitfield_size), (1, None));
        assert_eq!(btf.member("flags", "b.x").unwrap(), None);
        let params: Vec<_> = btf.params(TypeId(20)).unwrap().collect();
        assert_eq!((params[0].name, params[1].type_id), ("t", TypeId::VOID));
        assert_eq!(btf.type_by_id(TypeId(21)).unwrap().vlen, 1);
        assert_eq!(btf.var_linkage(TypeId(22)).unwrap(), 1);
        let v: Vec<_> = btf.datasec_vars(TypeId(23)).unwrap().collect();
        assert_eq!((v[0].type_id, v[0].offset, v[0].size), (TypeId(22), 8, 8));
        assert_eq!(btf.decl_tag_component(TypeId(24)).unwrap(), 2);
        assert_eq!(btf.find("pid_t").collect::<Vec<_>>(), [TypeId(7)]);
        // Wrong-kind accessors are errors.
        assert!(btf.members(TypeId(1)).is_err());
        assert!(btf.int(TypeId(4)).is_err());
        assert!(btf.array(TypeId(1)).is_err());
        assert!(btf.enumerators(TypeId(18)).is_err());
        assert!(btf.type_by_id(TypeId(25)).is_err());
    }
}

#[test]
fn names_shared_by_several_types() {
    let mut b = BtfBuilder::new(Endian::Little);
    let int = b.int("int", 4, INT_SIGNED, 32);
    b.fwd("dup", false);
    let s = b.struct_("dup", 4, &[Field::new("x", int, 0)]);
    b.typedef("dup", s);
    let btf = Btf::parse(&b.finish()).unwrap();
    assert_eq!(btf.find("dup").count(), 3);
    assert_eq!(btf.composite("dup").unwrap(), Some(s));
    assert_eq!(btf.find_kind("dup", Kind::Typedef), Some(TypeId(4)));
    assert_eq!(btf.size_of_name("dup").unwrap(), Some(4));
}

fn header(
    e: Endian,
    hdr_len: u32,
    type_off: u32,
    type_len: u32,
    str_off: u32,
    str_len: u32,
) -> Vec<u8> {
    let mut v = match e {
        Endian::Little => vec![0x9f, 0xeb, 1, 0],
        Endian::Big => vec![0xeb, 0x9f, 1, 0],
    };
    for x in [hdr_len, type_off, type_len, str_off, str_len] {
        v.extend_from_slice(&match e {
            Endian::Little => x.to_le_bytes(),
            Endian::Big => x.to_be_bytes(),
        });
    }
    v
}

#[test]
fn corrupt_headers_and_sections() {
    let (good, _) = every_kind(Endian::Little);
    let tl = u32::from_le_bytes(good[12..16].try_into().unwrap());
    let sl = u32::from_le_bytes(good[20..24].try_into().unwrap());
    let body = &good[24..];
    let with = |h: Vec<u8>| {
        let mut v = h;
        v.extend_from_slice(body);
        Btf::parse(&v)
    };
    assert!(with(header(Endian::Little, 24, 0, tl, tl, sl)).is_ok());
    let bad = [
        header(Endian::Little, 23, 0, tl, tl, sl), // header too short
        header(Endian::Little, 1 << 30, 0, tl, tl, sl), // header past the end
        header(Endian::Little, 24, 0, tl + 4, tl, sl), // types overlap strings
        header(Endian::Little, 24, 0, tl, tl, sl + 1), // strings past the end
        header(Endian::Little, 24, u32::MAX, tl, tl, sl), // offset overflow
        header(Endian::Little, 24, 0, tl, tl + 1, sl - 1), // strings start mid-string
        header(Endian::Little, 24, 0, tl, tl, sl - 1), // strings not NUL-ended
        header(Endian::Little, 24, 0, tl - 4, tl, sl), // last record cut
        header(Endian::Big, 24, 0, tl, tl, sl),    // wrong byte order
    ];
    for h in bad {
        assert!(with(h.clone()).is_err(), "{h:?}");
    }
    let mut v = good.clone();
    v[2] = 2; // version
    assert!(Btf::parse(&v).is_err());
    v = good.clone();
    v[0] = 0;
    assert!(Btf::parse(&v).is_err());
    assert!(Btf::parse(&[]).is_err());
    // Every truncation is an error.
    for len in 0..good.len() {
        assert!(Btf::parse(&good[..len]).is_err(), "len {len}");
    }
}

#[test]
fn corrupt_records() {
    type Build = fn(&mut BtfBuilder);
    let cases: &[(&str, Build)] = &[
        ("unknown kind", |b| {
            b.raw(0, 20, 0, false, 0, &[]);
        }),
        ("kind 0", |b| {
            b.raw(0, 0, 0, false, 0, &[]);
        }),
        ("name offset out of range", |b| {
            b.raw(10_000, Kind::Int.raw(), 0, false, 4, &[32]);
        }),
        ("name offset inside a character", |b| {
            let o = b.string("é_name");
            b.raw(o + 1, Kind::Int.raw(), 0, false, 4, &[32]);
        }),
        ("type id out of range", |b| {
            b.raw(0, Kind::Ptr.raw(), 0, false, 99, &[]);
        }),
        ("member type out of range", |b| {
            b.raw(0, Kind::Struct.raw(), 1, false, 4, &[0, 99, 0]);
        }),
        ("member name out of range", |b| {
            b.raw(0, Kind::Struct.raw(), 1, false, 4, &[5000, 0, 0]);
        }),
        ("member beyond its struct", |b| {
            b.raw(0, Kind::Struct.raw(), 1, false, 4, &[0, 0, 64]);
        }),
        ("vlen beyond the section", |b| {
            b.raw(0, Kind::Struct.raw(), 0xffff, false, 4, &[0, 0, 0]);
        }),
        ("int with 200 bits", |b| {
            b.raw(0, Kind::Int.raw(), 0, false, 4, &[200]);
        }),
        ("int wider than its size", |b| {
            b.raw(0, Kind::Int.raw(), 0, false, 1, &[16]);
        }),
        ("enum of 16 bytes", |b| {
            b.raw(0, Kind::Enum.raw(), 0, false, 16, &[]);
        }),
        ("array element out of range", |b| {
            b.raw(0, Kind::Array.raw(), 0, false, 0, &[77, 0, 1]);
        }),
        ("proto param out of range", |b| {
            b.raw(0, Kind::FuncProto.raw(), 1, false, 0, &[0, 77]);
        }),
        ("datasec var out of range", |b| {
            b.raw(0, Kind::Datasec.raw(), 1, false, 8, &[77, 0, 8]);
        }),
    ];
    for (what, f) in cases {
        for e in [Endian::Little, Endian::Big] {
            let mut b = BtfBuilder::new(e);
            f(&mut b);
            assert!(Btf::parse(&b.finish()).is_err(), "{what} {e:?}");
        }
    }
}

#[test]
fn type_loops_are_errors_not_hangs() {
    let mut b = BtfBuilder::new(Endian::Little);
    // 1 -> 2 -> 1: a typedef cycle.
    let t1 = b.typedef("a", TypeId(2));
    let t2 = b.typedef("b", t1);
    // A const pointing at itself.
    let c = b.next_id();
    b.const_(c);
    // An array of itself.
    let a = b.next_id();
    b.array(a, TypeId(0), 2);
    // A struct whose anonymous member is itself.
    let s = b.next_id();
    b.struct_("selfish", 8, &[Field::new("", s, 0)]);
    // A struct through a typedef loop as its member type.
    let s2 = b.struct_("loopy", 8, &[Field::new("x", t2, 0)]);
    let btf = Btf::parse(&b.finish()).unwrap();
    within(5, || {
        assert!(btf.resolve(t1).is_err());
        assert!(btf.size_of(t2).is_err());
        assert!(btf.resolve(c).is_err());
        assert!(btf.size_of(a).is_err());
        assert!(btf.member("selfish", "nope").is_err());
        assert!(btf.member("loopy", "x.y").is_err());
        assert!(btf.size_of_name("a").is_err());
        assert_eq!(btf.size_of(s2).unwrap(), 8);
    });
}

#[test]
fn exponential_anonymous_members_hit_the_budget() {
    // Level k: a struct with 64 anonymous members of level k-1's type;
    // a search for a missing name would visit 64^levels members.
    let mut b = BtfBuilder::new(Endian::Little);
    let int = b.int("int", 4, INT_SIGNED, 32);
    let mut prev = b.struct_("", 4, &[Field::new("leaf", int, 0)]);
    for level in 0..6 {
        let fields: Vec<Field<'_>> = (0..64).map(|_| Field::new("", prev, 0)).collect();
        let name = if level == 5 { "top" } else { "" };
        prev = b.struct_(name, 4, &fields);
    }
    let btf = Btf::parse(&b.finish()).unwrap();
    within(10, || {
        assert!(btf.member("top", "missing").is_err());
        // A name found early still resolves.
        assert_eq!(btf.member("top", "leaf").unwrap().unwrap().offset, 0);
    });
    const { assert!(MAX_CHAIN >= 16) };
}

#[test]
fn bit_flips_in_a_real_blob_never_panic() {
    let blob = gunzip("task-closure-6.18.btf.gz");
    within(120, || {
        // The header and the first records, every byte; then a stride.
        let idx = (0..600).chain((600..blob.len()).step_by(4099));
        for i in idx {
            let mut b = blob.clone();
            b[i] ^= 0x55;
            if let Ok(btf) = Btf::parse(&b) {
                let _ = btf.member("task_struct", "se.exec_start");
                let _ = btf.size_of_name("task_struct");
            }
        }
    });
}

#[test]
fn search_finds_the_blob_in_memory() {
    use kvm_core::{PhysAddr, SparseMem, Translated, VirtAddr};
    use kvm_elf::fuzz::Identity;
    let blob = gunzip("task-closure-6.18.btf.gz");
    let (small, _) = every_kind(Endian::Little);
    let base = 0xffff_ffff_8240_0000u64;
    let mut mem = SparseMem::new();
    // Junk, a header whose sections point nowhere, a small valid blob,
    // then the real one.
    let junk: Vec<u8> = (0..0x3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    mem.write(PhysAddr(base), &junk).unwrap();
    mem.write(
        PhysAddr(base + 0x100),
        &header(Endian::Little, 24, 0, 1 << 20, 1 << 20, 8),
    )
    .unwrap();
    mem.write(PhysAddr(base + 0x1000), &small).unwrap();
    let at = base + 0x3000;
    mem.write(PhysAddr(at), &blob).unwrap();
    let space = Translated::new(mem, Identity);
    let len = 0x3000 + blob.len() as u64 + 0x100;
    let (found, btf) = within(20, || kvm_elf::btf::search(&space, VirtAddr(base), len)).unwrap();
    assert_eq!(found, VirtAddr(at));
    check_6_18(&btf);
    // The first blob that defines task_struct, lazily: the small one does
    // not, the real one does.
    let mut defines =
        |b: &mut kvm_elf::LazyBtf| b.composite(&space, "task_struct").ok().flatten().is_some();
    let (found, mut lazy) =
        kvm_elf::btf::search_first(&space, VirtAddr(base), len, &mut defines).unwrap();
    assert_eq!(found, VirtAddr(at));
    assert_eq!(
        lazy.member_path(&space, "task_struct.pid").unwrap(),
        btf.member_path("task_struct.pid").unwrap()
    );
    assert!(kvm_elf::btf::search_first(&space, VirtAddr(base), 0x3000, &mut defines).is_err());
    // Only the small one in range.
    let (found, btf) = kvm_elf::btf::search(&space, VirtAddr(base), 0x3000).unwrap();
    assert_eq!((found, btf.len()), (VirtAddr(base + 0x1000), 24));
    // None at all.
    assert!(kvm_elf::btf::search(&space, VirtAddr(base), 0x1000).is_err());
    assert!(kvm_elf::btf::search(&space, VirtAddr(0), 1 << 40).is_err());
}

/// `blob` at `base` of an identity-mapped address space.
fn in_memory(blob: &[u8], base: u64) -> impl kvm_core::VirtRead {
    use kvm_core::{PhysAddr, SparseMem, Translated};
    let mut mem = SparseMem::new();
    mem.write(PhysAddr(base), blob).unwrap();
    Translated::new(mem, kvm_elf::fuzz::Identity)
}

#[test]
fn lazy_answers_as_the_whole_blob_does() {
    use kvm_core::VirtAddr;
    use kvm_elf::LazyBtf;
    let blob = gunzip("task-closure-6.18.btf.gz");
    let eager = Btf::parse(&blob).unwrap();
    let base = 0xffff_ffff_8240_0000u64;
    let space = in_memory(&blob, base);
    let open = || LazyBtf::new(&space, VirtAddr(base), blob.len() as u64).unwrap();

    // One early struct: a small part of the blob is read.
    let first = eager
        .types()
        .find(|t| t.kind == Kind::Struct && !t.name.is_empty())
        .unwrap();
    let mut lazy = open();
    assert_eq!(
        lazy.composite(&space, first.name).unwrap(),
        eager.composite(first.name).unwrap()
    );
    assert!(
        lazy.loaded() * 3 < blob.len(),
        "{} of {} bytes read",
        lazy.loaded(),
        blob.len()
    );
    assert_eq!(lazy.pointer_size(), eager.pointer_size());

    // Every member of every named struct/union, every type size, every
    // enumerator, and names that do not exist (a scan to the end), from a
    // fresh lazy blob each time a search must go past what is loaded.
    let mut lazy = open();
    let mut checked = 0;
    for t in eager.types() {
        if t.name.is_empty() {
            continue;
        }
        // Errors too (a typedef of a function has no size) must agree.
        assert_eq!(
            lazy.size_of_name(&space, t.name),
            eager.size_of_name(t.name),
            "{}",
            t.name
        );
        match t.kind {
            Kind::Struct | Kind::Union => {
                for m in eager.members(t.id).unwrap().filter(|m| !m.name.is_empty()) {
                    let path = format!("{}.{}", t.name, m.name);
                    assert_eq!(
                        lazy.member_path(&space, &path).unwrap(),
                        eager.member_path(&path).unwrap(),
                        "{path}"
                    );
                    checked += 1;
                }
            }
            Kind::Enum | Kind::Enum64 => {
                for e in eager.enumerators(t.id).unwrap() {
                    assert_eq!(
                        lazy.enumerator(&space, e.name).unwrap(),
                        eager.enumerator(e.name).unwrap()
                    );
                    assert_eq!(
                        lazy.enum_value(&space, t.name, e.name).unwrap(),
                        eager.enum_value(t.name, e.name).unwrap()
                    );
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    assert!(checked > 1000, "{checked}");
    let mut lazy = open();
    assert_eq!(lazy.composite(&space, "no_such_struct").unwrap(), None);
    assert_eq!(lazy.enumerator(&space, "NO_SUCH_ENUMERATOR").unwrap(), None);
    assert_eq!(
        lazy.member_path(&space, "task_struct.no_such").unwrap(),
        None
    );
    assert_eq!(
        lazy.loaded(),
        blob.len() - 24,
        "a failed search reads every type and name"
    );
    check_6_18(&eager);
}

#[test]
fn lazy_blob_damage_is_an_error() {
    use kvm_core::VirtAddr;
    use kvm_elf::LazyBtf;
    let good = gunzip("task-closure-6.18.btf.gz");
    let base = 0x10_0000u64;
    // Truncated: the blob's extent cuts its sections.
    let space = in_memory(&good, base);
    assert!(LazyBtf::new(&space, VirtAddr(base), 23).is_err());
    assert!(LazyBtf::new(&space, VirtAddr(base), good.len() as u64 - 1).is_err());
    assert!(LazyBtf::new(&space, VirtAddr(base), 1 << 40).is_err());
    // Unreadable: memory ends before the blob does.
    let half = in_memory(&good[..good.len() / 2], base);
    let failed = LazyBtf::new(&half, VirtAddr(base), good.len() as u64)
        .and_then(|mut lazy| lazy.composite(&half, "no_such_struct"));
    assert!(
        matches!(failed, Err(kvm_core::Error::NotInMemory { .. })),
        "{failed:?}"
    );
    // Flipped bytes across the records and strings: lookups end, with an
    // answer or an error.
    for i in (24..good.len()).step_by(4099) {
        let mut bad = good.clone();
        bad[i] ^= 0xa5;
        let space = in_memory(&bad, base);
        if let Ok(mut lazy) = LazyBtf::new(&space, VirtAddr(base), bad.len() as u64) {
            within(5, || {
                let _ = lazy.member_path(&space, "task_struct.pid");
                let _ = lazy.enumerator(&space, "NO_SUCH_ENUMERATOR");
            });
        }
    }
}

#[test]
fn names_are_bounded_as_the_kernel_bounds_them() {
    use kvm_core::VirtAddr;
    use kvm_elf::btf::MAX_NAME;
    // 511 bytes is the longest name the kernel accepts; 512 is not.
    for (len, ok) in [(MAX_NAME, true), (MAX_NAME + 1, false)] {
        let mut b = BtfBuilder::new(Endian::Little);
        b.int(&"n".repeat(len), 4, INT_SIGNED, 32);
        assert_eq!(Btf::parse(&b.finish()).is_ok(), ok, "{len}");
    }
    // Many records naming one huge string: rejected at once, not after
    // scanning the string once per record (a quadratic parse).
    let mut b = BtfBuilder::new(Endian::Little);
    b.int("int", 4, INT_SIGNED, 32);
    let huge = b.string(&"x".repeat(4 << 20));
    for _ in 0..20_000 {
        b.raw(huge, Kind::Int.raw(), 0, false, 4, &[INT_SIGNED << 24 | 32]);
    }
    let blob = b.finish();
    let space = in_memory(&blob, 0x10_0000);
    within(5, || {
        assert!(Btf::parse(&blob).is_err());
        let lazy = kvm_elf::LazyBtf::new(&space, VirtAddr(0x10_0000), blob.len() as u64);
        assert!(lazy.and_then(|mut l| l.composite(&space, "none")).is_err());
    });
}

#[test]
fn huge_array_indexes_into_old_style_bitfields_are_not_overflows() {
    // S { E arr[] } with E { int x:1 at bit 7 as an old-style INT with
    // offset 1 }: an index near 2^61 overflows the bit offset.
    let mut b = BtfBuilder::new(Endian::Little);
    let u8_ = b.int("unsigned char", 1, 0, 8);
    let bit = b.int_bits("x_t", 1, 1, 1);
    let e = b.struct_("E", 1, &[Field::new("x", bit, 7)]);
    let arr = b.array(e, u8_, 0);
    b.struct_("S", 8, &[Field::new("arr", arr, 0)]);
    let btf = Btf::parse(&b.finish()).unwrap();
    assert_eq!(
        btf.member_path("S.arr[1].x").unwrap().unwrap().bit_offset,
        16
    );
    assert!(btf.member_path("S.arr[2305843009213693951].x").is_err());
}
