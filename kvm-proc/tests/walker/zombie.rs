//! A thread group whose leader exited first: the leader stays a zombie
//! (`EXIT_ZOMBIE`, mm NULL) on the task list until its last thread exits.

use crate::fake::{FakeKernel, Mm, Task, Thread as T, TASK_INTERRUPTIBLE};
use crate::normal::thread;
use kvm_proc::linux::Linux;
use kvm_proc::{Process, Strings};

/// What Linux shows for such a process (`fs/proc/array.c`, `base.c`):
/// `ps` lists it (state `Z`, with `l` for multi-threaded: `Zl`) with all
/// its threads, the leader first and `Z`; `/proc/PID/cmdline` and
/// `environ` read nothing (`get_task_mm` of the leader is NULL);
/// `/proc/PID/statm` is zeros. The walker does the same: state 'Z', the
/// threads listed, argv and envv empty, no RSS.
#[test]
fn zombie_leader_with_live_threads() {
    let mut k = FakeKernel::new();
    let leader = k.add_task(&Task {
        pid: 4000,
        comm: "server",
        state: TASK_INTERRUPTIBLE,
        pgrp: 4000,
        session: 4000,
        cpu: 1,
        start_time: 77,
        mm: Some(Mm {
            argv: &["./server", "--port", "80"],
            envv: &["PATH=/bin"],
            rss: [10, 20, 0, 0],
        }),
        ..Task::default()
    });
    let live = k.add_thread(
        leader,
        &T {
            tid: 4001,
            comm: "worker",
            state: 0,
            cpu: 2,
            on_cpu: true,
            front: false,
        },
    );
    let sleeper = k.add_thread(
        leader,
        &T {
            tid: 4002,
            comm: "worker",
            state: TASK_INTERRUPTIBLE,
            cpu: 3,
            ..T::default()
        },
    );
    k.exit_leader(leader);

    let linux = Linux::new(&k).unwrap();
    assert_eq!(
        linux.processes().unwrap(),
        vec![Process {
            unavailable: None,
            pid: 4000,
            ppid: Some(0),
            pgrp: Some(4000),
            session: Some(4000),
            uid: Some(0),
            gid: Some(0),
            euid: Some(0),
            egid: Some(0),
            state: Some('Z'),
            comm: "server".into(),
            kthread: Some(false),
            tty_nr: Some(0),
            tty: None,
            start_time_ns: Some(77),
            rss_pages: None,
            // The mm is gone: 0, as /proc prints.
            vsize_pages: Some(0),
            task: leader,
            threads: vec![
                thread(4000, leader, "server", 'Z', 1, false),
                thread(4001, live, "worker", 'R', 2, true),
                thread(4002, sleeper, "worker", 'S', 3, false),
            ],
        }]
    );
    assert_eq!(linux.argv(leader), Strings::Read(vec![]));
    assert_eq!(linux.envv(leader), Strings::Read(vec![]));
    // The group's mm lives on in its threads: through one of them the
    // arguments read, as /proc/4000/task/4001/cmdline shows them.
    assert_eq!(
        linux.argv(live),
        Strings::Read(vec!["./server".into(), "--port".into(), "80".into()])
    );
    assert_eq!(linux.envv(live), Strings::Read(vec!["PATH=/bin".into()]));
}
