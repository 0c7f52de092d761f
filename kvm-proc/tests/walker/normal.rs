//! A healthy kernel: kernel threads, a shell on a terminal, a
//! multi-threaded process whose leader is not first on its thread list;
//! the same processes from two unrelated layouts.

use crate::fake::{
    Cred, FakeKernel, Layout, Mm, Task, Thread as T, Tty, HOSTNAME, RELEASE, TASK_IDLE,
    TASK_INTERRUPTIBLE,
};
use kvm_core::Error;
use kvm_proc::linux::Linux;
use kvm_proc::{Process, Strings, Thread};

/// `pts` (Unix98 pty slaves), `ttyS` (serial): the drivers' majors.
const PTS_MAJOR: u32 = 136;
const TTYS_MAJOR: u32 = 4;

/// The `task_struct`s of [`normal_kernel`].
#[derive(Clone, Copy, Debug)]
pub struct Tasks {
    pub systemd: u64,
    pub kthreadd: u64,
    pub kworker: u64,
    pub agetty: u64,
    pub bash: u64,
    pub firefox: u64,
    /// firefox's threads "Socket Thread" and "Renderer".
    pub socket: u64,
    pub renderer: u64,
    pub content: u64,
}

pub const SYSTEMD_ARGV: &[&str] = &["/sbin/init", "splash"];
pub const SYSTEMD_ENVV: &[&str] = &["HOME=/", "TERM=linux"];
pub const BASH_ARGV: &[&str] = &["-bash"];
pub const BASH_ENVV: &[&str] = &["USER=alice", "SHELL=/bin/bash", "LANG=C.UTF-8"];
pub const FIREFOX_ARGV: &[&str] = &["/usr/lib/firefox/firefox", "-P", "", "--new-window"];
pub const FIREFOX_ENVV: &[&str] = &["DISPLAY=:0"];
pub const CONTENT_ARGV: &[&str] = &["/usr/lib/firefox/firefox", "-contentproc", "1"];

/// Seven processes: systemd, kthreadd and a kworker (kernel threads),
/// agetty on ttyS1, bash on pts/3, firefox (three threads, the leader
/// second on its thread list, on pts/300 to exercise minors above 255)
/// and a child forked by one of firefox's threads.
pub fn normal_kernel(layout: Layout) -> (FakeKernel, Tasks) {
    let mut k = FakeKernel::with_layout(layout);
    k.set_avenrun([1229, 2550, 7168]); // 0.60, 1.25, 3.50
    let systemd = k.add_task(&Task {
        pid: 1,
        comm: "systemd",
        state: TASK_INTERRUPTIBLE,
        pgrp: 1,
        session: 1,
        cpu: 0,
        start_time: 10_000_000,
        mm: Some(Mm {
            argv: SYSTEMD_ARGV,
            envv: SYSTEMD_ENVV,
            rss: [1000, 500, 7, 20],
        }),
        ..Task::default()
    });
    let kthreadd = k.add_task(&Task {
        pid: 2,
        comm: "kthreadd",
        state: TASK_INTERRUPTIBLE,
        kthread: true,
        cpu: 1,
        start_time: 10_000_001,
        ..Task::default()
    });
    let kworker = k.add_task(&Task {
        pid: 3,
        comm: "kworker/0:1",
        state: TASK_IDLE,
        kthread: true,
        parent: kthreadd,
        cpu: 0,
        start_time: 10_000_002,
        ..Task::default()
    });
    let agetty = k.add_task(&Task {
        pid: 600,
        comm: "agetty",
        state: TASK_INTERRUPTIBLE,
        parent: systemd,
        pgrp: 600,
        session: 600,
        cpu: 2,
        start_time: 2_000_000_000,
        mm: Some(Mm {
            argv: &["/sbin/agetty", "-o", "-p -- \\u", "--keep-baud", "ttyS1"],
            envv: &[],
            rss: [100, 50, 0, 0],
        }),
        tty: Some(Tty {
            major: TTYS_MAJOR,
            minor_start: 64,
            index: 1,
            name: "ttyS1",
        }),
        ..Task::default()
    });
    let user = Cred {
        uid: 1000,
        gid: 1000,
        euid: 1000,
        egid: 1000,
    };
    let bash = k.add_task(&Task {
        pid: 1000,
        comm: "bash",
        state: TASK_INTERRUPTIBLE,
        parent: systemd,
        cred: user,
        pgrp: 1000,
        session: 1000,
        cpu: 3,
        start_time: 5_000_000_000,
        mm: Some(Mm {
            argv: BASH_ARGV,
            envv: BASH_ENVV,
            rss: [300, 200, 0, 1],
        }),
        tty: Some(Tty {
            major: PTS_MAJOR,
            minor_start: 0,
            index: 3,
            name: "pts3",
        }),
        ..Task::default()
    });
    let firefox = k.add_task(&Task {
        pid: 1234,
        comm: "firefox",
        state: 0,
        parent: bash,
        cred: Cred {
            uid: 1000,
            gid: 100,
            euid: 0,
            egid: 5,
        },
        pgrp: 1234,
        session: 1000,
        cpu: 3,
        on_cpu: true,
        start_time: 6_000_000_000,
        mm: Some(Mm {
            argv: FIREFOX_ARGV,
            envv: FIREFOX_ENVV,
            rss: [40_000, 60_000, 123, 5_000],
        }),
        tty: Some(Tty {
            major: PTS_MAJOR,
            minor_start: 0,
            index: 300,
            name: "pts300",
        }),
        ..Task::default()
    });
    let socket = k.add_thread(
        firefox,
        &T {
            tid: 1235,
            comm: "Socket Thread",
            state: TASK_INTERRUPTIBLE,
            cpu: 2,
            ..T::default()
        },
    );
    let renderer = k.add_thread(
        firefox,
        &T {
            tid: 1236,
            comm: "Renderer",
            state: 0,
            cpu: 1,
            on_cpu: true,
            front: true,
        },
    );
    // Forked by a thread: its real_parent is that thread, its ppid the
    // thread's tgid.
    let content = k.add_task(&Task {
        pid: 1300,
        comm: "Web Content",
        state: TASK_INTERRUPTIBLE,
        parent: socket,
        cred: user,
        pgrp: 1234,
        session: 1000,
        cpu: 0,
        start_time: 6_100_000_000,
        mm: Some(Mm {
            argv: CONTENT_ARGV,
            envv: FIREFOX_ENVV,
            rss: [1, 2, 3, 4],
        }),
        ..Task::default()
    });
    let tasks = Tasks {
        systemd,
        kthreadd,
        kworker,
        agetty,
        bash,
        firefox,
        socket,
        renderer,
        content,
    };
    (k, tasks)
}

pub fn thread(tid: u32, task: u64, name: &str, state: char, cpu: u32, oncpu: bool) -> Thread {
    Thread {
        tid,
        task,
        name: name.to_owned(),
        state: Some(state),
        cpu: Some(cpu),
        oncpu,
        crashed: None,
        registers: None,
    }
}

/// What `processes()` must return for [`normal_kernel`].
pub fn expected(t: &Tasks) -> Vec<Process> {
    let root = Process {
        unavailable: None,
        pid: 0,
        ppid: Some(0),
        pgrp: Some(0),
        session: Some(0),
        uid: Some(0),
        gid: Some(0),
        euid: Some(0),
        egid: Some(0),
        state: Some('S'),
        comm: String::new(),
        kthread: Some(false),
        tty_nr: Some(0),
        tty: None,
        start_time_ns: None,
        rss_pages: None,
        vsize_pages: None,
        task: 0,
        threads: vec![],
    };
    let mut v = vec![
        Process {
            unavailable: None,
            pid: 1,
            pgrp: Some(1),
            session: Some(1),
            comm: "systemd".into(),
            start_time_ns: Some(10_000_000),
            rss_pages: Some(1520),
            task: t.systemd,
            threads: vec![thread(1, t.systemd, "systemd", 'S', 0, false)],
            ..root.clone()
        },
        Process {
            unavailable: None,
            pid: 2,
            comm: "kthreadd".into(),
            kthread: Some(true),
            start_time_ns: Some(10_000_001),
            task: t.kthreadd,
            threads: vec![thread(2, t.kthreadd, "kthreadd", 'S', 1, false)],
            ..root.clone()
        },
        Process {
            unavailable: None,
            pid: 3,
            ppid: Some(2),
            state: Some('I'),
            comm: "kworker/0:1".into(),
            kthread: Some(true),
            start_time_ns: Some(10_000_002),
            task: t.kworker,
            threads: vec![thread(3, t.kworker, "kworker/0:1", 'I', 0, false)],
            ..root.clone()
        },
        Process {
            unavailable: None,
            pid: 600,
            ppid: Some(1),
            pgrp: Some(600),
            session: Some(600),
            comm: "agetty".into(),
            tty_nr: Some((TTYS_MAJOR << 8) | 65),
            tty: Some("ttyS1".into()),
            start_time_ns: Some(2_000_000_000),
            rss_pages: Some(150),
            task: t.agetty,
            threads: vec![thread(600, t.agetty, "agetty", 'S', 2, false)],
            ..root.clone()
        },
        Process {
            unavailable: None,
            pid: 1000,
            ppid: Some(1),
            pgrp: Some(1000),
            session: Some(1000),
            uid: Some(1000),
            gid: Some(1000),
            euid: Some(1000),
            egid: Some(1000),
            comm: "bash".into(),
            tty_nr: Some(34819), // new_encode_dev(MKDEV(136, 3))
            tty: Some("pts3".into()),
            start_time_ns: Some(5_000_000_000),
            rss_pages: Some(501),
            task: t.bash,
            threads: vec![thread(1000, t.bash, "bash", 'S', 3, false)],
            ..root.clone()
        },
        Process {
            unavailable: None,
            pid: 1234,
            ppid: Some(1000),
            pgrp: Some(1234),
            session: Some(1000),
            uid: Some(1000),
            gid: Some(100),
            euid: Some(0),
            egid: Some(5),
            state: Some('R'),
            comm: "firefox".into(),
            // new_encode_dev(MKDEV(136, 300)): minor bits 8+ go to 20+.
            tty_nr: Some(44 | (136 << 8) | (1 << 20)),
            tty: Some("pts300".into()),
            start_time_ns: Some(6_000_000_000),
            rss_pages: Some(105_000),
            task: t.firefox,
            threads: vec![
                thread(1234, t.firefox, "firefox", 'R', 3, true),
                thread(1236, t.renderer, "Renderer", 'R', 1, true),
                thread(1235, t.socket, "Socket Thread", 'S', 2, false),
            ],
            ..root.clone()
        },
        Process {
            unavailable: None,
            pid: 1300,
            ppid: Some(1234),
            pgrp: Some(1234),
            session: Some(1000),
            uid: Some(1000),
            gid: Some(1000),
            euid: Some(1000),
            egid: Some(1000),
            comm: "Web Content".into(),
            start_time_ns: Some(6_100_000_000),
            rss_pages: Some(7),
            task: t.content,
            threads: vec![thread(1300, t.content, "Web Content", 'S', 0, false)],
            ..root
        },
    ];
    // total_vm as the fake writes it for each mm; 0 without one.
    for p in &mut v {
        p.vsize_pages = Some(match p.rss_pages {
            Some(r) => 4 * r + 10,
            None => 0,
        });
    }
    v
}

fn strings(v: &[&str]) -> Strings {
    Strings::Read(v.iter().map(|s| s.as_bytes().to_vec()).collect())
}

fn check_normal_kernel(layout: Layout) {
    let (k, t) = normal_kernel(layout);
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.init_task(), k.init_task());
    assert_eq!(linux.processes().unwrap(), expected(&t));

    assert_eq!(linux.argv(t.systemd), strings(SYSTEMD_ARGV));
    assert_eq!(linux.envv(t.systemd), strings(SYSTEMD_ENVV));
    assert_eq!(linux.argv(t.bash), strings(BASH_ARGV));
    assert_eq!(linux.envv(t.bash), strings(BASH_ENVV));
    // An empty argument stays an empty string between its NULs.
    assert_eq!(linux.argv(t.firefox), strings(FIREFOX_ARGV));
    assert_eq!(linux.envv(t.firefox), strings(FIREFOX_ENVV));
    assert_eq!(linux.argv(t.content), strings(CONTENT_ARGV));
    assert_eq!(
        linux.argv(t.agetty),
        strings(&["/sbin/agetty", "-o", "-p -- \\u", "--keep-baud", "ttyS1"])
    );
    // Kernel threads have no mm: nothing, as /proc/PID/cmdline shows.
    for kt in [t.kthreadd, t.kworker] {
        assert_eq!(linux.argv(kt), Strings::Read(vec![]));
        assert_eq!(linux.envv(kt), Strings::Read(vec![]));
    }

    assert_eq!(linux.loadavg(), Ok([0.60, 1.25, 3.50]));
    assert_eq!(linux.release().as_deref(), Ok(RELEASE));
    assert_eq!(linux.hostname().as_deref(), Ok(HOSTNAME));

    // A walker made from the parts of this one sees the same.
    let (l, init) = linux.parts();
    let again = Linux::from_parts(&k, l, init);
    assert_eq!(again.processes().unwrap(), expected(&t));
}

#[test]
fn normal_kernel_compact_layout() {
    check_normal_kernel(Layout::compact());
}

/// The same kernel with every offset, size and enumerator value moved:
/// the walker follows the table, it hard-codes nothing.
#[test]
fn normal_kernel_shuffled_layout() {
    check_normal_kernel(Layout::shuffled());
}

#[test]
fn only_init_task_lists_no_process() {
    let k = FakeKernel::new();
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.processes(), Ok(vec![]));
    assert_eq!(linux.loadavg(), Ok([0.0, 0.0, 0.0]));
}

/// x86-64 kernels have `avenrun` in kallsyms; without it the walker does
/// not guess (the code search is for arm64).
#[test]
fn loadavg_without_avenrun_is_unsupported() {
    let (mut k, _) = normal_kernel(Layout::compact());
    k.remove_symbol("avenrun");
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.loadavg(), Err(Error::Unsupported("get_avenrun")));
    k.remove_symbol("init_uts_ns");
    let linux = Linux::new(&k).unwrap();
    assert_eq!(
        linux.release(),
        Err(Error::Unsupported("no init_uts_ns symbol"))
    );
}
