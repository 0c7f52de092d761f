//! A fake Linux kernel for the walker: kernel objects in a `SparseMem`
//! behind real x86-64 page tables, a symbol map, and a table of BTF-like
//! member offsets, sizes and enumerator values, behind `kvm_proc::Kernel`.
//!
//! The struct layouts are made up ([`Layout::compact`] and
//! [`Layout::shuffled`], neither is any real kernel's): the builder writes
//! every field where its own table says, so a walker that lists the right
//! processes from both can only have taken its offsets from `offset_of`.
//!
//! Memory map (physical, all of it in the kernel direct map):
//!
//! | physical | what |
//! |---|---|
//! | `HEAP_PA..` | kernel objects (tasks, creds, signals, mms, pids, ttys), at `DIRECT_MAP + pa` |
//! | `IMAGE_PA..` | the "kernel image": `init_task`, `init_uts_ns`, `avenrun`…, also at `IMAGE_VA` (2 MiB pages) |
//! | `USER_PA..` | the frames of the processes' argument pages |
//! | `0x1_0000_0000..` | the kernel page tables (the builder's default) |
//! | `USER_TABLES_PA..` | each mm's page tables, 1 MiB apart |
//! | [`ABSENT_PA`] | never written: mapped, but not in memory |

use kvm_core::arch::x86_64::{Builder, X86_64};
use kvm_core::Arch;
use kvm_core::{
    PhysAddr, PhysRead, Prot, Result, Translate, Translated, VirtAddr, VirtRead, VirtReadExt,
};
use kvm_proc::Kernel;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

mod holed;
mod layouts;
mod pidns;

pub use layouts::Layout;

/// The kernel direct map: `DIRECT_MAP + pa` for the first 16 GiB.
pub const DIRECT_MAP: u64 = 0xffff_8880_0000_0000;
const DIRECT_MAP_GIB: u64 = 16;
const HEAP_PA: u64 = 0x0010_0000;
const IMAGE_PA: u64 = 0x4000_0000;
/// Where the image's `IMAGE_PA` is mapped (as `__START_KERNEL_map` maps
/// the kernel text and data).
pub const IMAGE_VA: u64 = 0xffff_ffff_8100_0000;
const IMAGE_SIZE: u64 = 8 << 20;
const USER_PA: u64 = 0x8000_0000;
const USER_TABLES_PA: u64 = 0x2_0000_0000;
/// A physical address inside the direct map that no page holds.
pub const ABSENT_PA: u64 = 0x3_0000_0000;
/// A kernel address with no translation (the vmalloc area, never mapped
/// here).
pub const UNMAPPED_VA: u64 = 0xffff_c900_0000_0000;
/// The first page of every process's argument pages.
pub const USER_ARGS: u64 = 0x7ffd_5000_0000;
/// Where argv starts in its first page: 8 bytes before the page ends, so
/// every argument area crosses at least one page boundary.
pub const ARGS_OFFSET: u64 = 0xff8;

/// `PF_KTHREAD`.
pub const PF_KTHREAD: u32 = 0x0020_0000;
/// `PF_EXITING`.
pub const PF_EXITING: u32 = 0x0000_0004;
/// `PF_RANDOMIZE`, the bit next to `PF_KTHREAD`: set on every user task so
/// that a wrong mask shows.
pub const PF_RANDOMIZE: u32 = 0x0040_0000;
/// `TASK_INTERRUPTIBLE`.
pub const TASK_INTERRUPTIBLE: u32 = 0x1;
/// `TASK_DEAD`.
pub const TASK_DEAD: u32 = 0x80;
/// `TASK_IDLE` (`TASK_UNINTERRUPTIBLE | TASK_NOLOAD`).
pub const TASK_IDLE: u32 = 0x402;
/// `EXIT_ZOMBIE`.
pub const EXIT_ZOMBIE: u32 = 0x20;

/// The release `init_uts_ns` holds.
pub const RELEASE: &str = "6.1.0-fake-amd64";
/// The host name `init_uts_ns` holds.
pub const HOSTNAME: &str = "fakehost";

/// Real and effective user and group ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cred {
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
}

/// A user address space: its argument and environment strings (mapped in
/// its own page tables at [`USER_ARGS`] + [`ARGS_OFFSET`], environment
/// right after the arguments as `execve` lays them out) and its
/// `rss_stat` counters.
#[derive(Clone, Debug, Default)]
pub struct Mm<'a> {
    /// The arguments, each written NUL-terminated.
    pub argv: &'a [&'a str],
    /// The environment, each written NUL-terminated.
    pub envv: &'a [&'a str],
    /// `MM_FILEPAGES`, `MM_ANONPAGES`, `MM_SWAPENTS`, `MM_SHMEMPAGES`.
    pub rss: [u64; 4],
}

/// The `mm_struct.total_vm` the fake gives an mm of these counters (any
/// value the tests can predict).
pub fn total_vm(rss: [u64; 4]) -> u64 {
    (rss[0].wrapping_add(rss[1]).wrapping_add(rss[3]))
        .wrapping_mul(4)
        .wrapping_add(10)
}

/// A controlling terminal.
#[derive(Clone, Copy, Debug)]
pub struct Tty<'a> {
    /// `tty_driver.major`.
    pub major: u32,
    /// `tty_driver.minor_start`.
    pub minor_start: u32,
    /// `tty_struct.index`.
    pub index: u32,
    /// `tty_struct.name`.
    pub name: &'a str,
}

/// A thread-group leader (a process) to add.
#[derive(Clone, Debug, Default)]
pub struct Task<'a> {
    /// pid and tgid.
    pub pid: u32,
    /// `comm` (at most 15 bytes).
    pub comm: &'a str,
    /// `__state` (or `state`).
    pub state: u32,
    /// Sets `PF_KTHREAD` (else `PF_RANDOMIZE`, as a distractor).
    pub kthread: bool,
    /// The real parent's `task_struct`; 0 means `init_task`.
    pub parent: u64,
    /// `real_cred`.
    pub cred: Cred,
    /// `signal->pids[PIDTYPE_PGID]`'s number (0: `init_struct_pid`).
    pub pgrp: u32,
    /// `signal->pids[PIDTYPE_SID]`'s number (0: `init_struct_pid`).
    pub session: u32,
    /// `task_struct.cpu`.
    pub cpu: u32,
    /// `task_struct.on_cpu`.
    pub on_cpu: bool,
    /// `task_struct.start_boottime`.
    pub start_time: u64,
    /// The address space; `None` leaves `mm` NULL.
    pub mm: Option<Mm<'a>>,
    /// `signal->tty`.
    pub tty: Option<Tty<'a>>,
}

/// A thread to add to a thread group.
#[derive(Clone, Copy, Debug, Default)]
pub struct Thread<'a> {
    /// Its pid (the thread id).
    pub tid: u32,
    /// `comm`.
    pub comm: &'a str,
    /// `__state` (or `state`).
    pub state: u32,
    /// `task_struct.cpu`.
    pub cpu: u32,
    /// `task_struct.on_cpu`.
    pub on_cpu: bool,
    /// Links it first on `signal->thread_head`, before the leader (as a
    /// thread that called `execve` and became the leader ends up).
    pub front: bool,
}

/// What one thread group shares.
#[derive(Clone, Copy, Debug)]
struct Group {
    tgid: u32,
    signal: u64,
    cred: u64,
    mm: u64,
    parent: u64,
    flags: u32,
}

/// A kernel in memory, built up by [`FakeKernel::add_task`] and friends.
#[derive(Debug)]
pub struct FakeKernel {
    kernel: Translated<holed::Holed, X86_64>,
    layout: Layout,
    hidden: BTreeSet<String>,
    symbols: BTreeMap<String, u64>,
    heap: u64,
    image: u64,
    user: u64,
    user_tables: u64,
    init_task: u64,
    pids: BTreeMap<u32, u64>,
    groups: BTreeMap<u64, Group>,
    /// Each mm's page-table builder (its tables are copied into the
    /// kernel's memory after every change).
    users: BTreeMap<u64, Builder>,
    asked: RefCell<BTreeSet<String>>,
}

impl Default for FakeKernel {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeKernel {
    /// A kernel with [`Layout::compact`] and only `init_task`.
    pub fn new() -> FakeKernel {
        FakeKernel::with_layout(Layout::compact())
    }

    /// A kernel with `layout` and only `init_task` (pid 0, "swapper/0",
    /// its `tasks` list empty, in `init_signals`' thread group).
    pub fn with_layout(layout: Layout) -> FakeKernel {
        let rw = Prot::READ | Prot::WRITE;
        let mut b = Builder::new(4);
        for g in 0..DIRECT_MAP_GIB {
            b.map(
                VirtAddr(DIRECT_MAP + (g << 30)),
                PhysAddr(g << 30),
                1 << 30,
                rw,
            )
            .expect("direct map");
        }
        for m in (0..IMAGE_SIZE).step_by(2 << 20) {
            b.map(
                VirtAddr(IMAGE_VA + m),
                PhysAddr(IMAGE_PA + m),
                2 << 20,
                rw | Prot::EXEC,
            )
            .expect("image map");
        }
        let (mem, paging) = b.finish();
        let mut holed = holed::Holed::default();
        for (pa, page) in mem.pages() {
            holed.write(pa, page).expect("copy a page-table page");
        }
        let mut k = FakeKernel {
            kernel: Translated::new(holed, paging),
            layout,
            hidden: BTreeSet::new(),
            symbols: BTreeMap::new(),
            heap: HEAP_PA,
            image: IMAGE_PA,
            user: USER_PA,
            user_tables: USER_TABLES_PA,
            init_task: 0,
            pids: BTreeMap::new(),
            groups: BTreeMap::new(),
            users: BTreeMap::new(),
            asked: RefCell::new(BTreeSet::new()),
        };
        k.build_image();
        k
    }

    fn build_image(&mut self) {
        // A stray "swapper/0" in the image before init_task (a string
        // table): a search must validate what it finds.
        let decoy = self.alloc_image(64);
        self.poke(decoy + 0x20, b"swapper/0\0");

        let init_pid = self.alloc_image(self.layout.type_size("pid"));
        self.set(init_pid + self.off("pid.numbers"), "upid.nr", 0);
        self.pids.insert(0, init_pid);

        let cred = self.alloc_image(self.layout.type_size("cred"));
        let signal = self.alloc_image(self.layout.type_size("signal_struct"));
        let t = self.alloc_image(self.layout.type_size("task_struct"));
        self.init_task = t;
        self.write_signal(signal, 0, 0, 0, None);
        self.write_cred(cred, Cred::default());
        self.write_task(t, 0, 0, "swapper/0", 0, PF_KTHREAD);
        self.set(t, "task_struct.real_parent", t);
        self.set(t, "task_struct.real_cred", cred);
        self.set(t, "task_struct.signal", signal);
        self.set(t, "task_struct.mm", 0);
        self.list_init(t + self.off("task_struct.tasks"));
        self.list_add_tail(
            signal + self.off("signal_struct.thread_head"),
            t + self.off("task_struct.thread_node"),
        );
        self.groups.insert(
            t,
            Group {
                tgid: 0,
                signal,
                cred,
                mm: 0,
                parent: t,
                flags: PF_KTHREAD,
            },
        );

        let uts = self.alloc_image(self.layout.type_size("uts_namespace"));
        let name = uts + self.off("uts_namespace.name");
        for (field, value) in [
            ("new_utsname.sysname", "Linux"),
            ("new_utsname.nodename", HOSTNAME),
            ("new_utsname.release", RELEASE),
            ("new_utsname.version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.0"),
            ("new_utsname.machine", "x86_64"),
        ] {
            self.set_str(name, field, value);
        }

        let avenrun = self.alloc_image(24);
        for (name, at) in [
            ("init_task", t),
            ("init_uts_ns", uts),
            ("avenrun", avenrun),
            ("init_cred", cred),
            ("init_signals", signal),
            ("init_struct_pid", init_pid),
        ] {
            self.symbols.insert(name.to_owned(), at);
        }
    }

    // --- memory -----------------------------------------------------------

    fn alloc_phys(next: &mut u64, size: u64, align: u64) -> u64 {
        let pa = next.next_multiple_of(align);
        *next = pa + size;
        pa
    }

    /// A zeroed kernel object in the direct map; returns its address.
    pub fn alloc(&mut self, size: u64) -> u64 {
        let pa = Self::alloc_phys(&mut self.heap, size, 64);
        assert!(self.heap < IMAGE_PA, "fake kernel heap full");
        let va = DIRECT_MAP + pa;
        self.poke(va, &vec![0; size as usize]);
        va
    }

    fn alloc_image(&mut self, size: u64) -> u64 {
        let pa = Self::alloc_phys(&mut self.image, size, 64);
        assert!(
            self.image <= IMAGE_PA + IMAGE_SIZE,
            "fake kernel image full"
        );
        let va = IMAGE_VA + (pa - IMAGE_PA);
        self.poke(va, &vec![0; size as usize]);
        va
    }

    /// Writes `bytes` at kernel address `va` (which must be mapped).
    pub fn poke(&mut self, va: u64, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            let t = self
                .kernel
                .translate(VirtAddr(va + done as u64))
                .unwrap_or_else(|e| panic!("poke at unmapped {va:#x}: {e}"));
            let n = (bytes.len() - done).min(t.len as usize);
            self.kernel
                .mem
                .write(t.pa, &bytes[done..done + n])
                .expect("write");
            done += n;
        }
    }

    /// Writes a little-endian `u64` (a raw pointer) at `va`.
    pub fn poke_u64(&mut self, va: u64, v: u64) {
        self.poke(va, &v.to_le_bytes());
    }

    /// Writes a little-endian `u32` at `va`.
    pub fn poke_u32(&mut self, va: u64, v: u32) {
        self.poke(va, &v.to_le_bytes());
    }

    /// Reads a `u64` at `va`.
    pub fn peek_u64(&self, va: u64) -> u64 {
        self.kernel
            .read_u64_le(VirtAddr(va))
            .expect("peek at readable memory")
    }

    fn off(&self, path: &str) -> u64 {
        self.layout.off(path)
    }

    /// The address of member `path` (`task_struct.tasks`) of the object at
    /// `obj`.
    pub fn member(&self, obj: u64, path: &str) -> u64 {
        obj + self.off(path)
    }

    /// Writes `v` into member `path` of `obj`, as wide as the layout says.
    fn set(&mut self, obj: u64, path: &str, v: u64) {
        let (off, size) = self.layout.member(path);
        match size {
            4 => self.poke_u32(obj + off, u32::try_from(v).expect("fits a u32")),
            8 => self.poke_u64(obj + off, v),
            _ => panic!("{path} is {size} bytes, not a scalar"),
        }
    }

    /// Writes `s` NUL-padded into the char array `path` of `obj`.
    fn set_str(&mut self, obj: u64, path: &str, s: &str) {
        let (off, size) = self.layout.member(path);
        assert!((s.len() as u64) < size, "{s:?} does not fit {path}");
        let mut b = vec![0u8; size as usize];
        b[..s.len()].copy_from_slice(s.as_bytes());
        self.poke(obj + off, &b);
    }

    fn list_init(&mut self, head: u64) {
        self.poke_u64(head, head);
        self.poke_u64(head + 8, head);
    }

    fn list_add_tail(&mut self, head: u64, node: u64) {
        let prev = self.peek_u64(head + 8);
        self.poke_u64(node, head);
        self.poke_u64(node + 8, prev);
        self.poke_u64(prev, node);
        self.poke_u64(head + 8, node);
    }

    fn list_add_front(&mut self, head: u64, node: u64) {
        let next = self.peek_u64(head);
        self.poke_u64(node, next);
        self.poke_u64(node + 8, head);
        self.poke_u64(next + 8, node);
        self.poke_u64(head, node);
    }

    // --- kernel objects ---------------------------------------------------

    /// The `struct pid` numbered `nr` (one per number; 0 is
    /// `init_struct_pid`).
    pub fn pid_struct(&mut self, nr: u32) -> u64 {
        if let Some(&p) = self.pids.get(&nr) {
            return p;
        }
        let p = self.alloc(self.layout.type_size("pid"));
        let numbers = p + self.off("pid.numbers");
        self.set(numbers, "upid.nr", u64::from(nr));
        self.set(numbers, "upid.ns", DIRECT_MAP + HEAP_PA); // any pointer
        self.pids.insert(nr, p);
        p
    }

    fn write_task(&mut self, t: u64, pid: u32, tgid: u32, comm: &str, state: u32, flags: u32) {
        self.set_str(t, "task_struct.comm", comm);
        self.set(t, "task_struct.pid", u64::from(pid));
        self.set(t, "task_struct.tgid", u64::from(tgid));
        self.set_state(t, state, 0);
        self.set(t, "task_struct.flags", u64::from(flags));
    }

    /// Sets `__state` (or `state`) and `exit_state` of task `t`.
    pub fn set_state(&mut self, t: u64, state: u32, exit_state: u32) {
        if self.layout.has("task_struct.__state") {
            self.set(t, "task_struct.__state", u64::from(state));
        } else {
            self.set(t, "task_struct.state", u64::from(state));
        }
        self.set(t, "task_struct.exit_state", u64::from(exit_state));
    }

    fn set_cpu(&mut self, t: u64, cpu: u32, on_cpu: bool) {
        let path = if self.layout.has("task_struct.cpu") {
            "task_struct.cpu"
        } else {
            "task_struct.thread_info.cpu"
        };
        self.set(t, path, u64::from(cpu));
        self.set(t, "task_struct.on_cpu", u64::from(on_cpu));
    }

    fn write_cred(&mut self, c: u64, cred: Cred) {
        self.set(c, "cred.uid", u64::from(cred.uid));
        self.set(c, "cred.gid", u64::from(cred.gid));
        self.set(c, "cred.euid", u64::from(cred.euid));
        self.set(c, "cred.egid", u64::from(cred.egid));
        // Saved and fs ids unlike any of the four: reading one of them
        // instead shows.
        self.set(c, "cred.suid", 0xdead);
        self.set(c, "cred.sgid", 0xbeef);
        self.set(c, "cred.fsuid", 0xfeed);
    }

    fn write_signal(&mut self, s: u64, tgid: u32, pgrp: u32, session: u32, tty: Option<u64>) {
        self.list_init(s + self.off("signal_struct.thread_head"));
        let pids = s + self.off("signal_struct.pids");
        for (kind, nr) in [
            ("PIDTYPE_TGID", tgid),
            ("PIDTYPE_PGID", pgrp),
            ("PIDTYPE_SID", session),
        ] {
            let p = self.pid_struct(nr);
            self.poke_u64(pids + 8 * self.layout.enumerator(kind), p);
        }
        self.set(s, "signal_struct.tty", tty.unwrap_or(0));
    }

    fn write_tty(&mut self, tty: Tty<'_>) -> u64 {
        let driver = self.alloc(self.layout.type_size("tty_driver"));
        self.set(driver, "tty_driver.major", u64::from(tty.major));
        self.set(driver, "tty_driver.minor_start", u64::from(tty.minor_start));
        let t = self.alloc(self.layout.type_size("tty_struct"));
        self.set(t, "tty_struct.driver", driver);
        self.set(t, "tty_struct.index", u64::from(tty.index));
        self.set_str(t, "tty_struct.name", tty.name);
        t
    }

    /// The address of `rss_stat` counter `i` (by `MM_*` value) of `mm`.
    fn rss_counter(&self, mm: u64, i: u64) -> u64 {
        let (base, total) = self.layout.member("mm_struct.rss_stat");
        let n = self.layout.enumerator("NR_MM_COUNTERS");
        if total == 8 * n {
            mm + base + 8 * i
        } else {
            mm + base + i * (total / n) + self.off("percpu_counter.count")
        }
    }

    fn write_mm(&mut self, spec: &Mm<'_>) -> u64 {
        let mm = self.alloc(self.layout.type_size("mm_struct"));
        self.set(mm, "mm_struct.total_vm", total_vm(spec.rss));
        for (name, v) in [
            ("MM_FILEPAGES", spec.rss[0]),
            ("MM_ANONPAGES", spec.rss[1]),
            ("MM_SWAPENTS", spec.rss[2]),
            ("MM_SHMEMPAGES", spec.rss[3]),
        ] {
            let at = self.rss_counter(mm, self.layout.enumerator(name));
            self.poke_u64(at, v);
        }

        // The argument pages: garbage around the strings (so a walker
        // reading past the bounds shows), frames allocated in reverse so
        // that consecutive pages are not physically contiguous.
        let mut block = Vec::new();
        for s in spec.argv {
            block.extend_from_slice(s.as_bytes());
            block.push(0);
        }
        let env_off = block.len() as u64;
        for s in spec.envv {
            block.extend_from_slice(s.as_bytes());
            block.push(0);
        }
        let pages = (ARGS_OFFSET + block.len() as u64 + 16).div_ceil(4096);
        let mut image = vec![b'#'; (pages * 4096) as usize];
        let at = ARGS_OFFSET as usize;
        image[at..at + block.len()].copy_from_slice(&block);
        let frames: Vec<u64> = (0..pages)
            .map(|_| Self::alloc_phys(&mut self.user, 4096, 4096))
            .rev()
            .collect();
        let root = Self::alloc_phys(&mut self.user_tables, 1 << 20, 1 << 20);
        let mut b = Builder::with_table_base(4, PhysAddr(root));
        for (i, &frame) in frames.iter().enumerate() {
            let va = USER_ARGS + 4096 * i as u64;
            b.map(
                VirtAddr(va),
                PhysAddr(frame),
                4096,
                Prot::READ | Prot::WRITE | Prot::USER,
            )
            .expect("user map");
            let page = &image[4096 * i..4096 * (i + 1)];
            self.kernel.mem.write(PhysAddr(frame), page).expect("write");
        }
        self.users.insert(mm, b);
        self.sync_user(mm);

        let start = USER_ARGS + ARGS_OFFSET;
        self.set(mm, "mm_struct.pgd", DIRECT_MAP + root);
        self.set(mm, "mm_struct.arg_start", start);
        self.set(mm, "mm_struct.arg_end", start + env_off);
        self.set(mm, "mm_struct.env_start", start + env_off);
        self.set(mm, "mm_struct.env_end", start + block.len() as u64);
        mm
    }

    /// Copies `mm`'s page tables into the kernel's memory.
    fn sync_user(&mut self, mm: u64) {
        let b = self.users.get_mut(&mm).expect("an mm of this kernel");
        let pages: Vec<(PhysAddr, Vec<u8>)> = b
            .mem_mut()
            .pages()
            .map(|(pa, p)| (pa, p.to_vec()))
            .collect();
        for (pa, p) in pages {
            self.kernel.mem.write(pa, &p).expect("write");
        }
    }

    /// Adds a thread-group leader with its own signal, cred and mm, last
    /// on the `tasks` list; returns its `task_struct` address.
    pub fn add_task(&mut self, spec: &Task<'_>) -> u64 {
        let flags = if spec.kthread {
            PF_KTHREAD
        } else {
            PF_RANDOMIZE
        };
        let parent = if spec.parent == 0 {
            self.init_task
        } else {
            spec.parent
        };
        let tty = spec.tty.map(|t| self.write_tty(t));
        let signal = self.alloc(self.layout.type_size("signal_struct"));
        self.write_signal(signal, spec.pid, spec.pgrp, spec.session, tty);
        let cred = self.alloc(self.layout.type_size("cred"));
        self.write_cred(cred, spec.cred);
        let mm = spec.mm.as_ref().map_or(0, |m| self.write_mm(m));

        let t = self.alloc(self.layout.type_size("task_struct"));
        self.write_task(t, spec.pid, spec.pid, spec.comm, spec.state, flags);
        self.set(t, "task_struct.real_parent", parent);
        self.set(t, "task_struct.real_cred", cred);
        self.set(t, "task_struct.signal", signal);
        self.set(t, "task_struct.mm", mm);
        self.set(t, "task_struct.start_boottime", spec.start_time);
        self.set_cpu(t, spec.cpu, spec.on_cpu);
        self.list_add_tail(
            self.init_task + self.off("task_struct.tasks"),
            t + self.off("task_struct.tasks"),
        );
        self.list_add_tail(
            signal + self.off("signal_struct.thread_head"),
            t + self.off("task_struct.thread_node"),
        );
        self.groups.insert(
            t,
            Group {
                tgid: spec.pid,
                signal,
                cred,
                mm,
                parent,
                flags,
            },
        );
        t
    }

    /// Adds a thread to `leader`'s group (sharing its signal, cred and
    /// mm; not on the `tasks` list, whose links it keeps as copied from
    /// the leader, as `dup_task_struct` leaves them); returns its address.
    pub fn add_thread(&mut self, leader: u64, spec: &Thread<'_>) -> u64 {
        let g = *self.groups.get(&leader).expect("a leader of this kernel");
        let t = self.alloc(self.layout.type_size("task_struct"));
        self.write_task(t, spec.tid, g.tgid, spec.comm, spec.state, g.flags);
        self.set(t, "task_struct.real_parent", g.parent);
        self.set(t, "task_struct.real_cred", g.cred);
        self.set(t, "task_struct.signal", g.signal);
        self.set(t, "task_struct.mm", g.mm);
        self.set(t, "task_struct.start_boottime", 0);
        self.set_cpu(t, spec.cpu, spec.on_cpu);
        let tasks = self.off("task_struct.tasks");
        let (next, prev) = (
            self.peek_u64(leader + tasks),
            self.peek_u64(leader + tasks + 8),
        );
        self.poke_u64(t + tasks, next);
        self.poke_u64(t + tasks + 8, prev);
        let head = g.signal + self.off("signal_struct.thread_head");
        let node = t + self.off("task_struct.thread_node");
        if spec.front {
            self.list_add_front(head, node);
        } else {
            self.list_add_tail(head, node);
        }
        t
    }

    /// Makes `leader` a zombie whose threads live on, as `do_exit` leaves
    /// a group leader that exits first: `mm` NULL, `PF_EXITING`,
    /// `exit_state` `EXIT_ZOMBIE`, `__state` `TASK_DEAD`; still on the
    /// `tasks` list and its group's thread list.
    pub fn exit_leader(&mut self, leader: u64) {
        self.set(leader, "task_struct.mm", 0);
        let g = self.groups[&leader];
        self.set(leader, "task_struct.flags", u64::from(g.flags | PF_EXITING));
        self.set_state(leader, TASK_DEAD, EXIT_ZOMBIE);
    }

    /// The mm of `leader`'s thread group (even after the leader exited).
    pub fn mm_of(&self, leader: u64) -> u64 {
        self.groups[&leader].mm
    }

    /// Writes a raw last-level entry for `va` into `mm`'s page tables.
    pub fn set_user_pte(&mut self, mm: u64, va: u64, entry: u64) {
        self.users
            .get_mut(&mm)
            .expect("an mm of this kernel")
            .set_raw(VirtAddr(va), 1, entry)
            .expect("user pte");
        self.sync_user(mm);
    }

    /// A present, writable user entry for the frame at `pa` (x86-64: P,
    /// R/W, U/S, NX).
    pub fn user_pte(pa: u64) -> u64 {
        pa | 0b111 | (1 << 63)
    }

    /// Writes the three `avenrun` values.
    pub fn set_avenrun(&mut self, v: [u64; 3]) {
        let at = self.symbols["avenrun"];
        for (i, v) in v.into_iter().enumerate() {
            self.poke_u64(at + 8 * i as u64, v);
        }
    }

    /// The address of `init_task`.
    pub fn init_task(&self) -> u64 {
        self.init_task
    }

    /// The kernel objects allocated so far: `[start, end)` of the heap in
    /// the direct map.
    pub fn heap_range(&self) -> (u64, u64) {
        (DIRECT_MAP + HEAP_PA, DIRECT_MAP + self.heap)
    }

    /// Hides a member path, type or enumerator from `offset_of`,
    /// `size_of` and `enum_value`, as a kernel without it would.
    pub fn hide(&mut self, name: &str) {
        assert!(
            self.layout.members.contains_key(name)
                || self.layout.types.contains_key(name)
                || self.layout.enums.contains_key(name),
            "nothing called {name} to hide"
        );
        self.hidden.insert(name.to_owned());
    }

    /// Removes a symbol.
    pub fn remove_symbol(&mut self, name: &str) {
        assert!(self.symbols.remove(name).is_some(), "no symbol {name}");
    }

    /// Points symbol `name` at `addr`.
    pub fn set_symbol(&mut self, name: &str, addr: u64) {
        self.symbols.insert(name.to_owned(), addr);
    }

    /// The names the walker asked `offset_of`, `size_of` and `enum_value`
    /// about that the layout does not have (hidden ones included).
    pub fn asked_unknown(&self) -> BTreeSet<String> {
        self.asked
            .borrow()
            .iter()
            .filter(|n| !self.knows(n))
            .cloned()
            .collect()
    }

    fn knows(&self, name: &str) -> bool {
        !self.hidden.contains(name)
            && (self.layout.members.contains_key(name)
                || self.layout.types.contains_key(name)
                || self.layout.enums.contains_key(name))
    }

    fn ask(&self, name: &str) -> bool {
        self.asked.borrow_mut().insert(name.to_owned());
        !self.hidden.contains(name)
    }
}

impl Kernel for FakeKernel {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }
    fn kernel(&self) -> &dyn VirtRead {
        &self.kernel
    }
    fn phys(&self) -> &dyn PhysRead {
        &self.kernel.mem
    }
    fn kernel_to_phys(&self, va: VirtAddr) -> Result<PhysAddr> {
        self.kernel.translate(va).map(|t| t.pa)
    }
    fn user_paging(&self, pgd: PhysAddr) -> Result<Box<dyn Translate + '_>> {
        Ok(Box::new(self.kernel.vtop.with_root(pgd)))
    }
    fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).copied()
    }
    fn offset_of(&self, path: &str) -> Option<u64> {
        if !self.ask(path) {
            return None;
        }
        self.layout.members.get(path).map(|m| m.0)
    }
    fn size_of(&self, name: &str) -> Option<u64> {
        if !self.ask(name) {
            return None;
        }
        match self.layout.members.get(name) {
            Some(m) => Some(m.1),
            None => self.layout.types.get(name).copied(),
        }
    }
    fn enum_value(&self, name: &str) -> Option<i64> {
        if !self.ask(name) {
            return None;
        }
        self.layout.enums.get(name).copied()
    }
}
