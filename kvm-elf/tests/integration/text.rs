//! System.map and /proc/kallsyms text, and KASLR relocation.

use kvm_core::VirtAddr;
use kvm_elf::{AddrSpace, SymbolTable};

/// An x86-64 System.map excerpt in the shape of a 6.1 kernel's: per-CPU
/// symbols linked at 0, absolute symbols, text and data.
const MAP: &str = "\
0000000000000000 D __per_cpu_start
0000000000000000 D fixed_percpu_data
0000000000001000 D cpu_debug_store
000000000002c000 D runqueues
0000000000034000 D __per_cpu_end
0000000000000400 A __kvm_abs
ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff81001000 T _stext
ffffffff810a3b40 T do_exit
ffffffff82614940 D init_task
ffffffff8260e9c0 D jiffies
ffffffff83000000 B _end
";

#[test]
fn system_map_relocates_all_but_percpu_and_absolute() {
    let mut t = SymbolTable::from_system_map(MAP.as_bytes()).unwrap();
    assert_eq!(t.space(), AddrSpace::LinkTime);
    assert_eq!(t.len(), 13);
    assert_eq!(t.percpu_range(), Some((0, 0x34000)));
    let slide = 0x1c00_0000;
    t.relocate(slide).unwrap();
    assert_eq!(t.space(), AddrSpace::Runtime);
    assert_eq!(t.addr("_stext"), Some(VirtAddr(0xffff_ffff_9d00_1000)));
    assert_eq!(
        t.addr("init_task"),
        Some(VirtAddr(0xffff_ffff_8261_4940 + slide))
    );
    assert_eq!(t.addr("runqueues"), Some(VirtAddr(0x2c000)));
    assert_eq!(t.addr("__per_cpu_end"), Some(VirtAddr(0x34000)));
    assert_eq!(t.addr("__kvm_abs"), Some(VirtAddr(0x400)));
    // Reverse lookups see the new addresses.
    let n = t
        .nearest(VirtAddr(0xffff_ffff_810a_3b40 + slide + 0x10))
        .unwrap();
    assert_eq!((n.symbol.name, n.offset), ("do_exit", 0x10));
    // Two names at _text: the first global at the address wins.
    assert_eq!(
        t.nearest(VirtAddr(0xffff_ffff_9d00_0000)).unwrap().offset,
        0
    );
    // Never twice, and a failed second call changes nothing.
    assert!(t.relocate(slide).is_err());
    assert_eq!(t.addr("_stext"), Some(VirtAddr(0xffff_ffff_9d00_1000)));
}

#[test]
fn runtime_tables_refuse_relocation() {
    let text = MAP.replace("_end\n", "_end\nffffffffc0000000 t mod_fn\t[kvm_mod]\n");
    let mut t = SymbolTable::from_proc_kallsyms(text.as_bytes()).unwrap();
    assert_eq!(t.space(), AddrSpace::Runtime);
    assert!(t.relocate(0x1000).is_err());
    assert_eq!(t.lookup("mod_fn").unwrap().module, Some("kvm_mod"));
    // A kernel symbol and a module symbol of the same name: the kernel's.
    let dup = "ffffffff81000000 t dup\nffffffffc0000000 t dup\t[m]\n";
    let t = SymbolTable::from_proc_kallsyms(dup.as_bytes()).unwrap();
    assert_eq!(t.lookup("dup").unwrap().module, None);
    assert_eq!(t.lookup_all("dup").count(), 2);
}

#[test]
fn no_kaslr_is_relocate_zero() {
    let t = SymbolTable::from_system_map(MAP.as_bytes())
        .unwrap()
        .relocated(0)
        .unwrap();
    assert_eq!(t.addr("_text"), Some(VirtAddr(0xffff_ffff_8100_0000)));
    assert_eq!(t.space(), AddrSpace::Runtime);
}

#[test]
fn arm64_percpu_is_inside_the_image_and_moves() {
    // arm64 links the per-CPU section inside the kernel image: it moves
    // with the rest.
    let map = "ffff800008000000 T _text\nffff800008010000 T _stext\nffff80000a000000 D __per_cpu_start\nffff80000a010000 D __per_cpu_end\n";
    let mut t = SymbolTable::from_system_map(map.as_bytes()).unwrap();
    assert_eq!(t.percpu_range(), None);
    t.relocate(0x10_0000).unwrap();
    assert_eq!(
        t.addr("__per_cpu_start"),
        Some(VirtAddr(0xffff_8000_0a10_0000))
    );
}
