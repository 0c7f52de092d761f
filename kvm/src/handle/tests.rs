//! The handle over sources of the test's own: the seams a live door or an
//! embedding program uses (`Kvm::from_source`, writes, direct virtual
//! reads, a source no OS layer takes).

use super::*;
use kvm_core::arch::x86_64::Builder;
use kvm_core::{CpuState, Endian, MapRange, OsHint, PhysRead, Prot, SourceInfo, SparseMem};

/// Where the fake kernel maps its one page run, and what it holds.
const VA: u64 = 0xffff_8880_0000_0000;
const PA: u64 = 0x20_0000;

/// A source over a sparse memory: physical writes when `writable`, direct
/// virtual reads when `virt` (VA maps to PA one to one from `VA`).
#[derive(Debug)]
struct Fake {
    mem: Mutex<SparseMem>,
    info: SourceInfo,
    writable: bool,
    virt: bool,
    /// A translator of the format's own: `VA + x` at `OWN + x`.
    own: Option<Own>,
}

/// Where [`Own`] maps `VA`, and what it holds there.
const OWN: u64 = 0x40_0000;

/// A format's own translator (as a FreeBSD minidump's page-table array).
#[derive(Debug)]
struct Own;

impl Translate for Own {
    fn translate(&self, _: &dyn PhysRead, va: VirtAddr) -> kvm_core::Result<Translation> {
        let off = va.0.checked_sub(VA).filter(|&o| o < 0x1000);
        let off = off.ok_or(kvm_core::Error::Unmapped { va: va.0 })?;
        Ok(Translation {
            pa: PhysAddr(OWN + off),
            len: 0x1000 - off,
            page_size: 0x1000,
            prot: Prot::READ,
        })
    }
}

impl PhysRead for Fake {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> kvm_core::Result<usize> {
        self.mem.lock().unwrap().read_phys(pa, buf)
    }
}

impl PhysWrite for Fake {
    fn write_phys(&self, pa: PhysAddr, buf: &[u8]) -> kvm_core::Result<usize> {
        self.mem.lock().unwrap().write(pa, buf)?;
        Ok(buf.len())
    }
}

impl VirtRead for Fake {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> kvm_core::Result<usize> {
        let pa =
            va.0.checked_sub(VA)
                .ok_or(kvm_core::Error::Unmapped { va: va.0 })?;
        self.read_phys(PhysAddr(PA + pa), buf)
    }
}

impl Source for Fake {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &[]
    }
    fn phys_write(&self) -> Option<&dyn PhysWrite> {
        self.writable.then_some(self as &dyn PhysWrite)
    }
    fn kernel_virt(&self) -> Option<&dyn VirtRead> {
        self.virt.then_some(self as &dyn VirtRead)
    }
    fn translator(&self) -> Option<&dyn Translate> {
        self.own.as_ref().map(|t| t as &dyn Translate)
    }
}

/// Two mapped pages at `VA` holding "hello" at their start; the CPU note
/// holds the root when `cr3`.
fn fake(cr3: bool, writable: bool, virt: bool) -> Fake {
    let mut b = Builder::new(4);
    for page in [0, 0x1000] {
        b.map(
            VirtAddr(VA + page),
            PhysAddr(PA + page),
            0x1000,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
    }
    b.mem_mut().write(PhysAddr(PA), b"hello").unwrap();
    b.mem_mut().write(PhysAddr(OWN), b"owned").unwrap();
    b.mem_mut().touch(PhysAddr(PA + 0x1000));
    let (mem, paging) = b.finish();
    let mut info = SourceInfo::new("fake", Endian::Little);
    info.arch = Some(kvm_core::Arch::X86_64);
    if cr3 {
        info.cpus.push(CpuState {
            cr3: Some(paging.root().0),
            ..CpuState::default()
        });
    }
    Fake {
        mem: Mutex::new(mem),
        info,
        writable,
        virt,
        own: None,
    }
}

fn open(f: Fake, flags: OpenFlags) -> Kvm {
    Kvm::from_source("fake", Box::new(f), flags)
}

#[test]
fn a_source_no_os_takes_reads_through_its_cpu_note() {
    let kd = open(fake(true, false, false), OpenFlags::ReadOnly);
    let mut b = [0u8; 5];
    assert_eq!(kd.read(VA, &mut b).unwrap(), 5);
    assert_eq!(&b, b"hello");
    let i = kd.info();
    assert_eq!((i.format, i.os, i.arch), ("fake", None, Some("x86_64")));
    assert_eq!(i.paging, "CR3 of QEMU's CPU note");
    assert!(i.root.is_some());
    // Everything the OS layer answers says why there is none.
    let e = kd.nlist(&["init_task"]).unwrap_err();
    assert_eq!(
        e.core_error(),
        Some(kvm_core::Error::Unsupported("the dump has no VMCOREINFO"))
    );
    assert_eq!(kd.geterr(), "fake: unsupported: the dump has no VMCOREINFO");
    let e = kd.getprocs(ProcOp::All).unwrap_err();
    assert_eq!(
        e.core_error(),
        Some(kvm_core::Error::Unsupported("the dump has no VMCOREINFO"))
    );
}

#[test]
fn a_source_naming_another_os_is_taken_by_that_os() {
    let mut f = fake(true, false, false);
    f.info.os = Some(OsHint::FreeBsd);
    f.info.vmcoreinfo = Some(kvm_core::VmCoreInfo::parse(b"OSRELEASE=6.1.0\n").unwrap());
    let kd = open(f, OpenFlags::ReadOnly);
    // FreeBSD, not Linux, although VMCOREINFO is there; without its
    // kernel file the FreeBSD layer says what it needs.
    assert_eq!(kd.info().os, Some("freebsd"));
    let e = kd.getprocs(ProcOp::All).unwrap_err();
    assert_eq!(
        e.core_error(),
        Some(kvm_core::Error::Unsupported(
            "FreeBSD full dumps need the kernel file (-N) to find the page tables"
        ))
    );
    let e = kd.type_info("task_struct").unwrap_err();
    assert_eq!(
        e.core_error(),
        Some(kvm_core::Error::Unsupported(
            "FreeBSD full dumps need the kernel file (-N) to find the page tables"
        ))
    );
}

#[test]
fn writes_need_read_write_and_a_source_that_takes_them() {
    let ro = kvm_core::Error::ReadOnly;
    // Read-only handle on a writable source.
    let kd = open(fake(true, true, false), OpenFlags::ReadOnly);
    assert_eq!(kd.write(VA, b"HELLO").unwrap_err().core_error(), Some(ro));
    assert_eq!(
        kd.write_phys(PA, b"HELLO").unwrap_err().core_error(),
        Some(ro)
    );
    // Read-write handle on a read-only source (a dump).
    let kd = open(fake(true, false, false), OpenFlags::ReadWrite);
    assert_eq!(kd.write(VA, b"HELLO").unwrap_err().core_error(), Some(ro));
    // Read-write handle on a live door that takes no writes (/proc/kcore).
    let mut live = fake(true, false, false);
    live.info.live = true;
    let kd = open(live, OpenFlags::ReadWrite);
    assert_eq!(
        kd.write(VA, b"HELLO").unwrap_err().core_error(),
        Some(kvm_core::Error::Unsupported(LIVE_NO_WRITES))
    );
    // Read-write on a writable source: through the page tables.
    let kd = open(fake(true, true, false), OpenFlags::ReadWrite);
    assert_eq!(kd.flags(), OpenFlags::ReadWrite);
    assert_eq!(kd.write(VA, b"HELLO").unwrap(), 5);
    let mut b = [0u8; 5];
    kd.read(VA, &mut b).unwrap();
    assert_eq!(&b, b"HELLO");
    // A write running past the mapping stops there.
    assert_eq!(kd.write(VA + 0x1ffe, b"abcd").unwrap(), 2);
    let e = kd.write(VA + 0x2000, b"x").unwrap_err();
    assert_eq!(
        e.core_error(),
        Some(kvm_core::Error::Unmapped { va: VA + 0x2000 })
    );
    assert_eq!(kd.write_phys(PA + 1, b"e").unwrap(), 1);
    kd.read_phys(PA, &mut b).unwrap();
    assert_eq!(&b, b"HeLLO");
}

#[test]
fn direct_virtual_reads_serve_a_source_without_paging() {
    let kd = open(fake(false, false, true), OpenFlags::ReadOnly);
    let mut b = [0u8; 5];
    assert_eq!(kd.read(VA, &mut b).unwrap(), 5);
    assert_eq!(&b, b"hello");
    // Outside what the source maps itself, the reason is the paging.
    assert_eq!(
        kd.read(VA + 0x10_0000, &mut b).unwrap_err().core_error(),
        Some(kvm_core::Error::Unsupported(
            "x86-64 dump without VMCOREINFO init_top_pgt/phys_base or a CR3 note"
        ))
    );
    assert_eq!(
        kd.info().paging,
        "no kernel paging: unsupported: x86-64 dump without VMCOREINFO init_top_pgt/phys_base or a CR3 note"
    );
    // Without them, the paging error is the read's.
    let kd = open(fake(false, false, false), OpenFlags::ReadOnly);
    let e = kd.read(VA, &mut b).unwrap_err();
    assert_eq!(
        e.core_error(),
        Some(kvm_core::Error::Unsupported(
            "x86-64 dump without VMCOREINFO init_top_pgt/phys_base or a CR3 note"
        ))
    );
}

#[test]
fn a_translator_of_the_source_is_used_over_the_page_tables() {
    let mut f = fake(true, false, false);
    f.own = Some(Own);
    let kd = open(f, OpenFlags::ReadOnly);
    let mut b = [0u8; 5];
    kd.read(VA, &mut b).unwrap();
    assert_eq!(&b, b"owned");
    assert_eq!(kd.translate(VA).unwrap().pa, PhysAddr(OWN));
    // The page tables map VA + 0x1000; the source's translator does not.
    assert_eq!(
        kd.read(VA + 0x1000, &mut b).unwrap_err().core_error(),
        Some(kvm_core::Error::Unmapped { va: VA + 0x1000 })
    );
}

#[test]
fn the_kernel_file_comes_before_the_first_read() {
    let map = std::env::temp_dir().join(format!("kvm-handle-test-{}.map", std::process::id()));
    std::fs::write(
        &map,
        "ffffffff81000000 T _stext\nffffffff82000000 D init_task\n",
    )
    .unwrap();
    // No OS layer takes the source: the file is read, then unused.
    let kd = open(fake(true, false, false), OpenFlags::ReadOnly);
    kd.set_kernel_file(&map).unwrap();
    // Linux takes it (VMCOREINFO): before any read the file is taken ...
    let linux = || {
        let mut f = fake(true, false, false);
        f.info.vmcoreinfo = Some(kvm_core::VmCoreInfo::parse(b"OSRELEASE=6.1.0\n").unwrap());
        open(f, OpenFlags::ReadOnly)
    };
    let kd = linux();
    assert_eq!(kd.info().os, Some("linux"));
    let kd = linux();
    kd.set_kernel_file(&map).unwrap();
    // ... after one it is refused: the paging may have needed it.
    let kd = linux();
    let mut b = [0u8; 5];
    kd.read(VA, &mut b).unwrap();
    let e = kd.set_kernel_file(&map).unwrap_err();
    assert_eq!(e.path(), Some(map.as_path()));
    assert_eq!(
        e.core_error(),
        Some(kvm_core::Error::Unsupported(
            "the kernel's paging was found already: give the kernel file before the first read"
        ))
    );
    // A file that is no symbol table is refused whatever the source.
    std::fs::write(&map, b"\x7fELF garbage").unwrap();
    assert!(matches!(
        kd.set_kernel_file(&map).unwrap_err().core_error(),
        Some(kvm_core::Error::Malformed(_))
    ));
    let _ = std::fs::remove_file(&map);
}
