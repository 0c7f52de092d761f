//! The FreeBSD layer against a fake kernel: a full dump (physical memory,
//! page tables found through `KPML4phys`) holding `allproc`, processes,
//! threads, the exported offsets and saved registers, as FreeBSD 13 lays
//! them out — then the same kernel damaged.

use kvm_core::arch::x86_64::Builder;
use kvm_core::{
    Arch, Endian, Error, MapRange, OsHint, PhysAddr, PhysRead, Prot, Result, Source, SourceInfo,
    SparseMem, VirtAddr,
};
use kvm_elf::{AddrSpace, SymbolTable, SymbolTableBuilder};
use kvm_proc::freebsd::FreeBsdOs;
use kvm_proc::{KernelPaging, Machine, Os, Process, Strings, Thread};

/// KERNBASE: maps physical 0.
const K: u64 = 0xffff_ffff_8000_0000;

/// Offsets of the fake `struct proc` and `struct thread`.
const P_PID: u64 = 0x10;
const P_COMM: u64 = 0x20;
const P_LIST: u64 = 0x40;
const P_THREADS: u64 = 0x50;
const TD_TID: u64 = 0x08;
const TD_NAME: u64 = 0x10;
const TD_PLIST: u64 = 0x30;
const TD_ONCPU: u64 = 0x40;
const TD_PCB: u64 = 0x48;
const PCB_SIZE: u64 = 0x100;

/// Where the kernel's variables are (virtual; physical is `va - K`).
const OFFSETS: u64 = K + 0x3000;
const ALLPROC: u64 = K + 0x4000;
const DUMPTID: u64 = K + 0x4010;
const KPML4PHYS: u64 = K + 0x4020;
const AVERUNNABLE: u64 = K + 0x4040;
const OSRELEASE: u64 = K + 0x4080;
const DUMPPCB: u64 = K + 0x5000;
const STOPPCBS: u64 = K + 0x6000;
const SLEEPER_PCB: u64 = K + 0x7000;
/// Processes and threads.
const INIT: u64 = K + 0x10000;
const CRASHER: u64 = K + 0x11000;
const TD_INIT: u64 = K + 0x20000;
const TD_CRASH: u64 = K + 0x21000;
const TD_RUN: u64 = K + 0x22000;

/// A full dump over sparse memory.
#[derive(Debug)]
struct Dump {
    mem: SparseMem,
    info: SourceInfo,
}

impl PhysRead for Dump {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        self.mem.read_phys(pa, buf)
    }
}

impl Source for Dump {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn ranges(&self) -> &[MapRange] {
        &[]
    }
}

/// The fake kernel: memory and its symbol table.
struct Fake {
    mem: SparseMem,
    syms: Vec<(&'static str, u64)>,
}

impl Fake {
    fn new() -> Fake {
        let mut b = Builder::with_table_base(4, PhysAddr(0x40_0000));
        b.map(
            VirtAddr(K),
            PhysAddr(0),
            0x20_0000,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
        let (mem, paging) = b.finish();
        let mut f = Fake {
            mem,
            syms: vec![
                ("kernbase", K),
                ("KPML4phys", KPML4PHYS),
                ("allproc", ALLPROC),
                ("dumptid", DUMPTID),
                ("dumppcb", DUMPPCB),
                ("stoppcbs", STOPPCBS),
                ("averunnable", AVERUNNABLE),
                ("osrelease", OSRELEASE),
            ],
        };
        f.u64(KPML4PHYS, paging.root().0);
        for (i, (name, v)) in [
            ("proc_off_p_pid", P_PID),
            ("proc_off_p_comm", P_COMM),
            ("proc_off_p_list", P_LIST),
            ("proc_off_p_threads", P_THREADS),
            ("thread_off_td_tid", TD_TID),
            ("thread_off_td_name", TD_NAME),
            ("thread_off_td_plist", TD_PLIST),
            ("thread_off_td_oncpu", TD_ONCPU),
            ("thread_off_td_pcb", TD_PCB),
            ("pcb_size", PCB_SIZE),
        ]
        .into_iter()
        .enumerate()
        {
            let at = OFFSETS + 4 * i as u64;
            f.u32(at, v as u32);
            f.syms.push((name, at));
        }
        // allproc: crasher → init → NULL.
        f.u64(ALLPROC, CRASHER);
        f.process(CRASHER, 7, "crasher", INIT, TD_CRASH);
        f.process(INIT, 1, "init", 0, TD_INIT);
        // init's one thread sleeps; its registers are in its own pcb.
        f.thread(TD_INIT, 100_001, "init", -1, SLEEPER_PCB, 0);
        // The crasher's threads: the crashed one on CPU 1, another on CPU 0.
        f.thread(TD_CRASH, 100_002, "crasher", 1, 0, TD_RUN);
        f.thread(TD_RUN, 100_003, "worker", 0, 0, 0);
        f.u32(DUMPTID, 100_002);
        f.pcb(DUMPPCB, 0x1000);
        f.pcb(STOPPCBS, 0x2000);
        f.pcb(STOPPCBS + PCB_SIZE, 0x6666); // CPU 1's slot: the crash wins
        f.pcb(SLEEPER_PCB, 0x3000);
        // Load averages 0.50, 1.25, 2.00 with FSCALE 2048.
        for (i, v) in [1024u32, 2560, 4096].into_iter().enumerate() {
            f.u32(AVERUNNABLE + 4 * i as u64, v);
        }
        f.u64(AVERUNNABLE + 16, 2048);
        f.bytes(OSRELEASE, b"13.1-RELEASE\0");
        f
    }

    fn bytes(&mut self, va: u64, b: &[u8]) {
        self.mem.write(PhysAddr(va - K), b).unwrap();
    }
    fn u32(&mut self, va: u64, v: u32) {
        self.bytes(va, &v.to_le_bytes());
    }
    fn u64(&mut self, va: u64, v: u64) {
        self.bytes(va, &v.to_le_bytes());
    }

    fn process(&mut self, p: u64, pid: u32, comm: &str, next: u64, first_td: u64) {
        self.u32(p + P_PID, pid);
        self.bytes(p + P_COMM, format!("{comm}\0").as_bytes());
        self.u64(p + P_LIST, next);
        self.u64(p + P_THREADS, first_td);
    }

    fn thread(&mut self, td: u64, tid: u32, name: &str, oncpu: i32, pcb: u64, next: u64) {
        self.u32(td + TD_TID, tid);
        self.bytes(td + TD_NAME, format!("{name}\0").as_bytes());
        self.u64(td + TD_PLIST, next);
        self.u32(td + TD_ONCPU, oncpu as u32);
        self.u64(td + TD_PCB, pcb);
    }

    /// A pcb whose eight words are `seed`, `seed + 1`, …
    fn pcb(&mut self, at: u64, seed: u64) {
        for i in 0..8 {
            self.u64(at + 8 * i, seed + i);
        }
    }

    fn table(&self) -> SymbolTable {
        let mut t = SymbolTableBuilder::new(AddrSpace::LinkTime);
        for (n, a) in &self.syms {
            t.push(n, *a, b'D', None).unwrap();
        }
        t.finish()
    }

    fn dump(&self) -> Dump {
        Dump {
            mem: self.mem.clone(),
            info: SourceInfo {
                arch: Some(Arch::X86_64),
                os: Some(OsHint::FreeBsd),
                ..SourceInfo::new("elf", Endian::Little)
            },
        }
    }
}

/// Runs `f` on the FreeBSD layer over `fake`'s dump, with its symbols.
fn with_os<T>(fake: &Fake, f: impl FnOnce(&FreeBsdOs, &Machine<'_>) -> T) -> T {
    let dump = fake.dump();
    let mut os = FreeBsdOs::default();
    os.add_kernel_symbols(fake.table()).unwrap();
    let paging = os.kernel_paging(&dump).unwrap();
    assert_eq!(paging.source, "KPML4phys");
    let tables = paging.paging.unwrap();
    let m = Machine {
        source: &dump,
        kernel: &tables,
        paging: paging.paging,
    };
    f(&os, &m)
}

/// The registers of a pcb written by [`Fake::pcb`].
fn regs(seed: u64) -> Option<Vec<(&'static str, u64)>> {
    let names = ["r15", "r14", "r13", "r12", "rbp", "rsp", "rbx", "rip"];
    Some(names.iter().zip(seed..).map(|(n, v)| (*n, v)).collect())
}

fn thread(tid: u32, task: u64, name: &str, cpu: Option<u32>, crashed: bool, seed: u64) -> Thread {
    Thread {
        tid,
        task,
        name: name.into(),
        state: None,
        cpu,
        oncpu: cpu.is_some(),
        crashed: Some(crashed),
        registers: regs(seed),
    }
}

fn process(pid: u32, comm: &str, task: u64, threads: Vec<Thread>) -> Process {
    Process {
        unavailable: None,
        pid,
        ppid: None,
        pgrp: None,
        session: None,
        uid: None,
        gid: None,
        euid: None,
        egid: None,
        state: None,
        comm: comm.into(),
        kthread: None,
        tty_nr: None,
        tty: None,
        start_time_ns: None,
        rss_pages: None,
        vsize_pages: None,
        task,
        threads,
    }
}

#[test]
fn processes_threads_and_saved_registers() {
    let fake = Fake::new();
    with_os(&fake, |os, m| {
        assert_eq!(os.name(), "freebsd");
        let got = os.processes(m).unwrap();
        let want = vec![
            process(
                7,
                "crasher",
                CRASHER,
                vec![
                    thread(100_002, TD_CRASH, "crasher", Some(1), true, 0x1000),
                    thread(100_003, TD_RUN, "worker", Some(0), false, 0x2000),
                ],
            ),
            process(
                1,
                "init",
                INIT,
                vec![thread(100_001, TD_INIT, "init", None, false, 0x3000)],
            ),
        ];
        assert_eq!(got, want);
        // Unreachable fields say so instead of guessing.
        assert!(matches!(
            os.argv(m, &got[0]),
            Ok(Strings::Unavailable(Error::Unsupported(_)))
        ));
        assert_eq!(os.loadavg(m), Ok([0.5, 1.25, 2.0]));
        assert_eq!(os.release(m).as_deref(), Ok("13.1-RELEASE"));
        assert_eq!(
            os.symbol(m, "allproc").map(|s| s.map(|s| s.addr)),
            Ok(Some(ALLPROC))
        );
        assert_eq!(os.symbol(m, "nosuch"), Ok(None));
    });
}

#[test]
fn a_pcb_that_cannot_be_read_leaves_only_the_registers_out() {
    let mut fake = Fake::new();
    fake.u64(TD_INIT + TD_PCB, 0xffff_ffff_9000_0000); // unmapped
    with_os(&fake, |os, m| {
        let got = os.processes(m).unwrap();
        assert_eq!(got[1].threads[0].tid, 100_001);
        assert_eq!(got[1].threads[0].registers, None);
    });
}

#[test]
fn damaged_lists_and_offsets_are_errors() {
    // allproc loops: init → crasher → init.
    let mut fake = Fake::new();
    fake.u64(INIT + P_LIST, CRASHER);
    with_os(&fake, |os, m| {
        assert_eq!(
            os.processes(m),
            Err(Error::Malformed("allproc does not end (corrupt or cyclic)"))
        );
    });
    // A thread that links to itself.
    let mut fake = Fake::new();
    fake.u64(TD_RUN + TD_PLIST, TD_RUN);
    with_os(&fake, |os, m| {
        assert_eq!(
            os.processes(m),
            Err(Error::Malformed(
                "a thread list does not end (corrupt or cyclic)"
            ))
        );
    });
    // A process whose pid is negative.
    let mut fake = Fake::new();
    fake.u32(INIT + P_PID, u32::MAX);
    with_os(&fake, |os, m| {
        assert_eq!(
            os.processes(m),
            Err(Error::Malformed("a FreeBSD process has a negative pid"))
        );
    });
    // An exported offset out of all proportion.
    let mut fake = Fake::new();
    fake.u32(OFFSETS, 1 << 20);
    with_os(&fake, |os, m| {
        assert_eq!(
            os.processes(m),
            Err(Error::Malformed(
                "an exported FreeBSD structure offset is negative or implausibly large"
            ))
        );
    });
    // A link into memory the dump does not hold.
    let mut fake = Fake::new();
    fake.u64(INIT + P_LIST, 0xffff_ffff_9000_0000);
    with_os(&fake, |os, m| {
        assert_eq!(
            os.processes(m),
            Err(Error::Unmapped {
                va: 0xffff_ffff_9000_0000 + P_LIST
            })
        );
    });
}

#[test]
fn kernels_without_the_exported_offsets_are_named() {
    let mut fake = Fake::new();
    fake.syms.retain(|(n, _)| *n != "proc_off_p_pid");
    with_os(&fake, |os, m| {
        assert_eq!(
            os.processes(m),
            Err(Error::Unsupported(
                "the kernel file has no proc_off_p_pid (FreeBSD 13 and later export the offsets kvm reads)"
            ))
        );
    });
    let mut fake = Fake::new();
    fake.syms.retain(|(n, _)| *n != "averunnable");
    with_os(&fake, |os, m| {
        assert_eq!(
            os.loadavg(m),
            Err(Error::Unsupported(
                "the kernel file has no averunnable (the load average)"
            ))
        );
    });
}

#[test]
fn without_the_kernel_file_nothing_is_guessed() {
    let fake = Fake::new();
    let dump = fake.dump();
    let os = FreeBsdOs::default();
    assert_eq!(
        os.kernel_paging(&dump),
        Err(Error::Unsupported(
            "FreeBSD full dumps need the kernel file (-N) to find the page tables"
        ))
    );
    let paging = KernelPaging::new(
        kvm_core::Paging::X86_64(
            kvm_core::arch::x86_64::X86_64::new(PhysAddr(0x40_0000), 4).unwrap(),
        ),
        "test",
    );
    let tables = paging.paging.unwrap();
    let m = Machine {
        source: &dump,
        kernel: &tables,
        paging: paging.paging,
    };
    let no_file =
        Error::Unsupported("BSD dumps carry no symbol table: give the kernel file with -N");
    assert_eq!(os.processes(&m), Err(no_file));
    assert_eq!(os.symbol(&m, "allproc"), Err(no_file));
    assert_eq!(os.symbols(&m).err(), Some(no_file));
    // A second kernel file is refused.
    let mut os = FreeBsdOs::default();
    os.add_kernel_symbols(fake.table()).unwrap();
    assert_eq!(
        os.add_kernel_symbols(fake.table()),
        Err(Error::Unsupported("a kernel file was given already"))
    );
}

#[test]
fn a_root_that_is_not_a_page_is_refused() {
    let mut fake = Fake::new();
    fake.u64(KPML4PHYS, 0x1234);
    let mut os = FreeBsdOs::default();
    os.add_kernel_symbols(fake.table()).unwrap();
    assert_eq!(
        os.kernel_paging(&fake.dump()),
        Err(Error::Malformed("KPML4phys is not a page address"))
    );
}
