//! ELF symbol tables: the real FreeBSD kernels (LLDB test data) and small
//! ELF files written here for every class and byte order.

use crate::gunzip;
use kvm_core::{Error, VirtAddr};
use kvm_elf::{AddrSpace, SymbolTable};

/// (name, value, size, type letter) from the LLDB yaml next to each kernel
/// (tests/data/README.md).
const AMD64: &[(&str, u64, Option<u64>, u8)] = &[
    ("kernbase", 0xFFFFFFFF80000000, None, b'A'),
    ("KPML4phys", 0xFFFFFFFF81D47EB8, Some(8), b'B'),
    ("dumppcb", 0xFFFFFFFF81CA6868, Some(0x140), b'b'),
    ("hz", 0xFFFFFFFF81CD4C0C, Some(4), b'B'),
    ("proc_off_p_comm", 0xFFFFFFFF815CA624, Some(4), b'R'),
    ("proc_off_p_hash", 0xFFFFFFFF815CA62C, Some(4), b'R'),
    ("proc_off_p_list", 0xFFFFFFFF815CA628, Some(4), b'R'),
    ("proc_off_p_pid", 0xFFFFFFFF815CA620, Some(4), b'R'),
    ("proc_off_p_threads", 0xFFFFFFFF815CA630, Some(4), b'R'),
    ("thread_off_td_name", 0xFFFFFFFF815CA638, Some(4), b'R'),
    ("thread_off_td_oncpu", 0xFFFFFFFF815CA63C, Some(4), b'R'),
    ("thread_off_td_pcb", 0xFFFFFFFF815CA640, Some(4), b'R'),
    ("thread_off_td_plist", 0xFFFFFFFF815CA644, Some(4), b'R'),
    ("thread_off_td_tid", 0xFFFFFFFF815CA634, Some(4), b'R'),
    ("dumptid", 0xFFFFFFFF81CA69A8, Some(4), b'B'),
    ("pcb_size", 0xFFFFFFFF815CA590, Some(4), b'R'),
    ("stoppcbs", 0xFFFFFFFF81D23E20, Some(0x14000), b'B'),
    ("allproc", 0xFFFFFFFF81C9A2F0, Some(8), b'B'),
];

const ARM64: &[(&str, u64, Option<u64>, u8)] = &[
    ("kernbase", 0xFFFF000000000000, None, b'A'),
    ("dumppcb", 0xFFFF000000DF3790, Some(0x560), b'b'),
    ("hz", 0xFFFF000000E2651C, Some(4), b'B'),
    ("proc_off_p_comm", 0xFFFF00000096BC30, Some(4), b'R'),
    ("proc_off_p_hash", 0xFFFF00000096BC38, Some(4), b'R'),
    ("proc_off_p_list", 0xFFFF00000096BC34, Some(4), b'R'),
    ("proc_off_p_pid", 0xFFFF00000096BC2C, Some(4), b'R'),
    ("proc_off_p_threads", 0xFFFF00000096BC3C, Some(4), b'R'),
    ("thread_off_td_name", 0xFFFF00000096BC44, Some(4), b'R'),
    ("thread_off_td_oncpu", 0xFFFF00000096BC48, Some(4), b'R'),
    ("thread_off_td_pcb", 0xFFFF00000096BC4C, Some(4), b'R'),
    ("thread_off_td_plist", 0xFFFF00000096BC50, Some(4), b'R'),
    ("thread_off_td_tid", 0xFFFF00000096BC40, Some(4), b'R'),
    ("dumptid", 0xFFFF000000DF3CF0, Some(4), b'B'),
    ("pcb_size", 0xFFFF00000096BC0C, Some(4), b'R'),
    ("stoppcbs", 0xFFFF000000E8F640, Some(0x56000), b'B'),
    ("allproc", 0xFFFF000000DE7230, Some(8), b'B'),
];

fn check(t: &SymbolTable, want: &[(&str, u64, Option<u64>, u8)]) {
    assert_eq!(t.space(), AddrSpace::LinkTime);
    assert_eq!(t.len(), want.len());
    for &(name, addr, size, kind) in want {
        let s = t.lookup(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!((s.addr.0, s.size, s.kind), (addr, size, kind), "{name}");
        // The reverse lookup lands on the symbol itself, and inside it.
        let n = t.nearest(VirtAddr(addr)).unwrap();
        assert_eq!(n.symbol.addr.0, addr);
        if let Some(sz) = size {
            let inner = t.containing(VirtAddr(addr + sz - 1)).unwrap();
            assert_eq!(inner.symbol.name, name);
            assert_eq!(inner.offset, sz - 1);
        }
    }
}

#[test]
fn freebsd_amd64_kernel() {
    let t = SymbolTable::from_elf(&gunzip("kernel-amd64.elf.gz")).unwrap();
    check(&t, AMD64);
    assert_eq!(t.addr("allproc"), Some(VirtAddr(0xffff_ffff_81c9_a2f0)));
    // Between proc_off_p_pid (…620, 4 bytes) and p_comm (…624).
    let n = t.nearest(VirtAddr(0xffff_ffff_815c_a622)).unwrap();
    assert_eq!((n.symbol.name, n.offset), ("proc_off_p_pid", 2));
    // Past the end of pcb_size (…590, 4 bytes): nearest, but not inside.
    let n = t.nearest(VirtAddr(0xffff_ffff_815c_a5a0)).unwrap();
    assert_eq!((n.symbol.name, n.inside()), ("pcb_size", Some(false)));
    assert!(t.containing(VirtAddr(0xffff_ffff_815c_a5a0)).is_none());
}

#[test]
fn freebsd_arm64_kernel() {
    let t = SymbolTable::from_elf(&gunzip("kernel-arm64.elf.gz")).unwrap();
    check(&t, ARM64);
    // FreeBSD has no KASLR slide here, but the API is the same.
    let t = t.relocated(0).unwrap();
    assert_eq!(t.addr("hz"), Some(VirtAddr(0xffff_0000_00e2_651c)));
}

#[test]
fn open_elf_from_a_file() {
    let dir = std::env::temp_dir().join(format!("kvm-elf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("kernel-arm64.elf");
    std::fs::write(&p, gunzip("kernel-arm64.elf.gz")).unwrap();
    let t = SymbolTable::open(&p).unwrap();
    assert_eq!(t.addr("allproc"), Some(VirtAddr(0xffff_0000_00de_7230)));
    // Read where its tables are, the same table as from the whole file.
    let whole = SymbolTable::from_elf(&gunzip("kernel-arm64.elf.gz")).unwrap();
    let read = SymbolTable::open_kernel_file(&p).unwrap();
    assert_eq!(read.len(), whole.len());
    assert!(whole.iter().all(|s| read.addr(s.name).is_some()));
    // Cut short (its section headers are at the end): an error, not a
    // shorter table.
    let bytes = gunzip("kernel-arm64.elf.gz");
    std::fs::write(&p, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let cut = SymbolTable::open_kernel_file(&p);
    assert!(
        matches!(
            cut,
            Err(Error::Malformed("ELF: section headers outside the file"))
        ),
        "{cut:?}"
    );
    // A large file that is not ELF is no System.map: refused, not read.
    let big = dir.join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    assert!(matches!(
        SymbolTable::open_kernel_file(&big),
        Err(Error::Malformed(m)) if m.contains("larger than 256 MiB")
    ));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(
        SymbolTable::open_elf(dir.join("missing")),
        Err(Error::Io { errno: 2 })
    ));
}

/// A minimal ELF writer: header, .text/.data/.bss/.rodata, .symtab,
/// .strtab, .shstrtab; any class and byte order.
struct Writer {
    is64: bool,
    be: bool,
    out: Vec<u8>,
}

impl Writer {
    fn n(&mut self, v: u64, size: usize) {
        let b = v.to_be_bytes();
        let b = &b[8 - size..];
        if self.be {
            self.out.extend_from_slice(b);
        } else {
            self.out.extend(b.iter().rev());
        }
    }
    fn addr(&mut self, v: u64) {
        self.n(v, if self.is64 { 8 } else { 4 });
    }
}

const SYMS: &[(&str, u64, u64, u8, u16)] = &[
    // name, value, size, info (bind << 4 | type), shndx
    ("kern.c", 0, 0, 0x04, 0xfff1), // FILE: skipped
    ("", 0x1000, 0, 0x03, 1),       // SECTION: skipped
    ("local_fn", 0x1000, 16, 0x02, 1),
    ("global_data", 0x2000, 8, 0x11, 2),
    ("zeroed", 0x3000, 64, 0x11, 3),
    ("weak_fn", 0x1008, 8, 0x22, 1),
    ("weak_obj", 0x2008, 8, 0x21, 2),
    ("abs_value", 0x40, 0, 0x10, 0xfff1),
    ("common_sym", 0x10, 4, 0x11, 0xfff2),
    ("undefined", 0, 0, 0x10, 0), // UNDEF: skipped
    ("const_tab", 0x4000, 16, 0x11, 4),
    ("ifunc", 0x1004, 4, 0x1a, 1),
];

fn write_elf(is64: bool, be: bool) -> Vec<u8> {
    let mut w = Writer {
        is64,
        be,
        out: Vec::new(),
    };
    let ehsize = if is64 { 64 } else { 52 };
    let shentsize = if is64 { 64 } else { 40 };
    let symsize = if is64 { 24 } else { 16 };
    // Strings.
    let mut strtab = vec![0u8];
    let mut name_offs = Vec::new();
    for s in SYMS {
        if s.0.is_empty() {
            name_offs.push(0);
        } else {
            name_offs.push(strtab.len() as u64);
            strtab.extend_from_slice(s.0.as_bytes());
            strtab.push(0);
        }
    }
    let sh_names = [
        "",
        ".text",
        ".data",
        ".bss",
        ".rodata",
        ".symtab",
        ".strtab",
        ".shstrtab",
    ];
    let mut shstr = vec![0u8];
    let mut sh_name_offs = Vec::new();
    for n in sh_names {
        if n.is_empty() {
            sh_name_offs.push(0);
        } else {
            sh_name_offs.push(shstr.len() as u64);
            shstr.extend_from_slice(n.as_bytes());
            shstr.push(0);
        }
    }
    // Symbol records.
    let mut sw = Writer {
        is64,
        be,
        out: Vec::new(),
    };
    sw.out.resize(symsize, 0); // the null symbol
    for (s, &no) in SYMS.iter().zip(&name_offs) {
        sw.n(no, 4);
        if is64 {
            sw.out.push(s.3);
            sw.out.push(0);
            sw.n(u64::from(s.4), 2);
            sw.n(s.1, 8);
            sw.n(s.2, 8);
        } else {
            sw.n(s.1, 4);
            sw.n(s.2, 4);
            sw.out.push(s.3);
            sw.out.push(0);
            sw.n(u64::from(s.4), 2);
        }
    }
    let symtab = sw.out;
    // Layout: header, section bytes, section headers.
    let text_off = ehsize as u64;
    let data_off = text_off + 16;
    let rodata_off = data_off + 16;
    let symtab_off = (rodata_off + 16).next_multiple_of(8);
    let strtab_off = symtab_off + symtab.len() as u64;
    let shstr_off = strtab_off + strtab.len() as u64;
    let shoff = (shstr_off + shstr.len() as u64).next_multiple_of(8);
    // ELF header.
    w.out.extend_from_slice(b"\x7fELF");
    w.out.push(if is64 { 2 } else { 1 });
    w.out.push(if be { 2 } else { 1 });
    w.out.push(1);
    w.out.resize(16, 0);
    w.n(2, 2); // ET_EXEC
    w.n(if is64 { 62 } else { 3 }, 2);
    w.n(1, 4);
    w.addr(0x1000); // entry
    w.addr(0); // phoff
    w.addr(shoff);
    w.n(0, 4); // flags
    w.n(ehsize as u64, 2);
    w.n(0, 2); // phentsize
    w.n(0, 2); // phnum
    w.n(shentsize as u64, 2);
    w.n(sh_names.len() as u64, 2);
    w.n(7, 2); // shstrndx
    assert_eq!(w.out.len(), ehsize);
    w.out.resize(symtab_off as usize, 0xcc);
    w.out.extend_from_slice(&symtab);
    w.out.extend_from_slice(&strtab);
    w.out.extend_from_slice(&shstr);
    w.out.resize(shoff as usize, 0);
    // Section headers: (type, flags, addr, offset, size, link, info, entsize)
    let first_global = 1 + SYMS.iter().position(|s| s.3 >> 4 != 0).unwrap() as u64;
    type Shdr = (u32, u64, u64, u64, u64, u32, u32, u64);
    let shdrs: [Shdr; 8] = [
        (0, 0, 0, 0, 0, 0, 0, 0),
        (1, 0x6, 0x1000, text_off, 16, 0, 0, 0),
        (1, 0x3, 0x2000, data_off, 16, 0, 0, 0),
        (8, 0x3, 0x3000, 0, 64, 0, 0, 0),
        (1, 0x2, 0x4000, rodata_off, 16, 0, 0, 0),
        (
            2,
            0,
            0,
            symtab_off,
            symtab.len() as u64,
            6,
            first_global as u32,
            symsize as u64,
        ),
        (3, 0, 0, strtab_off, strtab.len() as u64, 0, 0, 0),
        (3, 0, 0, shstr_off, shstr.len() as u64, 0, 0, 0),
    ];
    for (i, s) in shdrs.iter().enumerate() {
        w.n(sh_name_offs[i], 4);
        w.n(u64::from(s.0), 4);
        w.addr(s.1);
        w.addr(s.2);
        w.addr(s.3);
        w.addr(s.4);
        w.n(u64::from(s.5), 4);
        w.n(u64::from(s.6), 4);
        w.addr(if is64 { 8 } else { 4 });
        w.addr(s.7);
    }
    w.out
}

#[test]
fn every_class_and_byte_order() {
    for is64 in [false, true] {
        for be in [false, true] {
            let bytes = write_elf(is64, be);
            let t = SymbolTable::from_elf(&bytes)
                .unwrap_or_else(|e| panic!("is64={is64} be={be}: {e}"));
            let got: Vec<(&str, u64, u8)> = t.iter().map(|s| (s.name, s.addr.0, s.kind)).collect();
            assert_eq!(
                got,
                [
                    ("local_fn", 0x1000, b't'),
                    ("global_data", 0x2000, b'D'),
                    ("zeroed", 0x3000, b'B'),
                    ("weak_fn", 0x1008, b'W'),
                    ("weak_obj", 0x2008, b'V'),
                    ("abs_value", 0x40, b'A'),
                    ("common_sym", 0x10, b'C'),
                    ("const_tab", 0x4000, b'R'),
                    ("ifunc", 0x1004, b'i'),
                ],
                "is64={is64} be={be}"
            );
            assert_eq!(t.lookup("zeroed").unwrap().size, Some(64));
            assert_eq!(t.lookup("abs_value").unwrap().size, None);
            let n = t.nearest(VirtAddr(0x1006)).unwrap();
            assert_eq!((n.symbol.name, n.offset), ("ifunc", 2));
        }
    }
}

#[test]
fn truncated_and_corrupt_elf_files_are_errors() {
    let good = write_elf(true, false);
    assert!(SymbolTable::from_elf(&good).is_ok());
    // Every truncation fails cleanly (the section headers are at the end).
    for len in (0..good.len()).step_by(7) {
        assert!(SymbolTable::from_elf(&good[..len]).is_err(), "len {len}");
    }
    // Flip every byte of the headers and tables: never a panic.
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0xff;
        let _ = SymbolTable::from_elf(&b);
    }
    assert!(SymbolTable::from_elf(b"not an elf file at all, just text").is_err());
}
