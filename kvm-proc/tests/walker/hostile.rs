//! Hostile kernels: lists that never close, pointers out of memory, out of
//! the address space, or to nothing. Every case ends with the exact
//! degraded answer (each process that can be read, and an entry saying
//! why for each that cannot, or where the list broke) and never panics.

use crate::fake::{FakeKernel, Layout, Mm, Task, Thread, ABSENT_PA, DIRECT_MAP, UNMAPPED_VA};
use crate::normal::{expected, normal_kernel};
use kvm_core::Error;
use kvm_proc::linux::Linux;
use kvm_proc::{Kernel, Process};
use std::time::Instant;

const NOT_CLOSED: Error = Error::Malformed("task list does not close (corrupt or cyclic)");

/// Each entry's pid and, for an unavailable one, why.
fn pids(procs: &[Process]) -> Vec<(u32, Option<Error>)> {
    procs.iter().map(|p| (p.pid, p.unavailable)).collect()
}

/// Three processes a, b, c on the task list.
fn three() -> (FakeKernel, [u64; 3]) {
    let mut k = FakeKernel::new();
    let t = [10, 11, 12].map(|pid| {
        k.add_task(&Task {
            pid,
            comm: "p",
            ..Task::default()
        })
    });
    (k, t)
}

/// c's `tasks.next` goes back to b: head → a → b → c → b → … never to the
/// head. The walker notices the repeat (Brent's cycle detection) long
/// before `MAX_TASKS` (4 Mi) entries.
#[test]
fn cyclic_task_list() {
    let (mut k, [_, b, c]) = three();
    k.poke_u64(
        k.member(c, "task_struct.tasks"),
        k.member(b, "task_struct.tasks"),
    );
    let linux = Linux::new(&k).unwrap();
    let start = Instant::now();
    // Each process once, then where the list looped (pid unknown: c's
    // link came back to a task already listed).
    let got = linux.processes().unwrap();
    assert_eq!(
        pids(&got),
        [(10, None), (11, None), (12, None), (0, Some(NOT_CLOSED))]
    );
    eprintln!("cyclic task list: {:?} to give up", start.elapsed());
}

/// A thread list that loops without its head (the second thread's
/// `thread_node.next` back to the first thread).
#[test]
fn cyclic_thread_list() {
    let mut k = FakeKernel::new();
    let leader = k.add_task(&Task {
        pid: 20,
        comm: "mt",
        ..Task::default()
    });
    let t1 = k.add_thread(
        leader,
        &Thread {
            tid: 21,
            comm: "mt",
            ..Thread::default()
        },
    );
    let t2 = k.add_thread(
        leader,
        &Thread {
            tid: 22,
            comm: "mt",
            ..Thread::default()
        },
    );
    k.poke_u64(
        k.member(t2, "task_struct.thread_node"),
        k.member(t1, "task_struct.thread_node"),
    );
    let linux = Linux::new(&k).unwrap();
    let start = Instant::now();
    assert_eq!(pids(&linux.processes().unwrap()), [(20, Some(NOT_CLOSED))]);
    eprintln!("cyclic thread list: {:?} to give up", start.elapsed());
}

/// b's `tasks.next` to an address no page table maps.
#[test]
fn task_list_to_unmapped_address() {
    let (mut k, [_, b, _]) = three();
    k.poke_u64(k.member(b, "task_struct.tasks"), UNMAPPED_VA);
    let linux = Linux::new(&k).unwrap();
    // c is reached backwards (`tasks.prev`); the dangling link is where
    // the list broke.
    let bad = Some(Error::Unmapped { va: UNMAPPED_VA });
    assert_eq!(
        pids(&linux.processes().unwrap()),
        [(10, None), (11, None), (0, bad), (12, None)]
    );
}

/// b's `tasks.next` into the direct map, at a page the dump lacks.
#[test]
fn task_list_to_memory_not_in_dump() {
    let (mut k, [_, b, _]) = three();
    k.poke_u64(k.member(b, "task_struct.tasks"), DIRECT_MAP + ABSENT_PA);
    let linux = Linux::new(&k).unwrap();
    let bad = Some(Error::NotInMemory { pa: ABSENT_PA });
    assert_eq!(
        pids(&linux.processes().unwrap()),
        [(10, None), (11, None), (0, bad), (12, None)]
    );
}

/// b's `tasks.next` outside the 48-bit address space.
#[test]
fn task_list_to_non_canonical_address() {
    let (mut k, [_, b, _]) = three();
    let bad = 0x8000_0000_0000_0010;
    k.poke_u64(k.member(b, "task_struct.tasks"), bad);
    let linux = Linux::new(&k).unwrap();
    let bad = Some(Error::NonCanonical { va: bad });
    assert_eq!(
        pids(&linux.processes().unwrap()),
        [(10, None), (11, None), (0, bad), (12, None)]
    );
}

/// A NULL `tasks.next`: the first page is never mapped.
#[test]
fn task_list_to_null() {
    let (mut k, [a, _, _]) = three();
    k.poke_u64(k.member(a, "task_struct.tasks"), 0);
    let linux = Linux::new(&k).unwrap();
    let bad = Some(Error::Unmapped { va: 0 });
    assert_eq!(
        pids(&linux.processes().unwrap()),
        [(10, None), (0, bad), (11, None), (12, None)]
    );
}

/// `init_task.tasks.next` unreadable: the symbol still passes as the
/// idle task (its `tasks.prev` links back), and the list is read
/// backwards from it.
#[test]
fn init_task_list_unmapped() {
    let (mut k, _) = three();
    k.poke_u64(k.member(k.init_task(), "task_struct.tasks"), UNMAPPED_VA);
    let linux = Linux::new(&k).unwrap();
    let bad = Some(Error::Unmapped { va: UNMAPPED_VA });
    assert_eq!(
        pids(&linux.processes().unwrap()),
        [(0, bad), (10, None), (11, None), (12, None)]
    );
}

/// Both of `init_task`'s links unreadable: the symbol no longer passes
/// as the idle task, and the walker refuses it rather than walk from it.
#[test]
fn init_task_links_both_unmapped() {
    let (mut k, _) = three();
    let tasks = k.member(k.init_task(), "task_struct.tasks");
    k.poke_u64(tasks, UNMAPPED_VA);
    k.poke_u64(tasks + 8, UNMAPPED_VA);
    assert_eq!(
        Linux::new(&k).err(),
        Some(Error::Malformed(
            "init_task does not look like the idle task"
        ))
    );
}

#[test]
fn cred_pointer_unmapped() {
    let (mut k, [_, b, _]) = three();
    k.poke_u64(k.member(b, "task_struct.real_cred"), UNMAPPED_VA);
    let linux = Linux::new(&k).unwrap();
    let bad = Some(Error::Unmapped {
        va: k.member(UNMAPPED_VA, "cred.uid"),
    });
    assert_eq!(
        pids(&linux.processes().unwrap()),
        [(10, None), (11, bad), (12, None)]
    );
}

/// A thread list whose head points into a hole.
#[test]
fn thread_list_unmapped() {
    let (mut k, [_, b, _]) = three();
    let signal = k.peek_u64(k.member(b, "task_struct.signal"));
    k.poke_u64(k.member(signal, "signal_struct.thread_head"), UNMAPPED_VA);
    let linux = Linux::new(&k).unwrap();
    let bad = Some(Error::Unmapped { va: UNMAPPED_VA });
    assert_eq!(
        pids(&linux.processes().unwrap()),
        [(10, None), (11, bad), (12, None)]
    );
}

/// What degrades instead of failing: a NULL `signal->pids[PIDTYPE_PGID]`
/// (pgrp 0, as `pid_nr(NULL)`), a `signal->tty` into a hole (no
/// terminal), a `real_parent` of NULL (ppid 0).
#[test]
fn degraded_fields() {
    let (mut k, t) = normal_kernel(Layout::compact());
    let mut want = expected(&t);
    let signal = k.peek_u64(k.member(t.bash, "task_struct.signal"));
    let pids = k.member(signal, "signal_struct.pids");
    let pgid = k.enum_value("PIDTYPE_PGID").unwrap() as u64;
    k.poke_u64(pids + 8 * pgid, 0);
    want[4].pgrp = Some(0);
    let signal = k.peek_u64(k.member(t.firefox, "task_struct.signal"));
    k.poke_u64(k.member(signal, "signal_struct.tty"), UNMAPPED_VA);
    (want[5].tty_nr, want[5].tty) = (Some(0), None);
    k.poke_u64(k.member(t.agetty, "task_struct.real_parent"), 0);
    want[3].ppid = Some(0);
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.processes().unwrap(), want);
}

/// A `signal` pointer at the top of the address space: `signal +
/// offset` overflows. The core's contract is "bad input never panics" (an
/// unchecked `+` panics in debug builds and wraps in release).
#[test]
fn pointer_near_top_of_address_space_does_not_panic() {
    let (mut k, [_, b, _]) = three();
    k.poke_u64(k.member(b, "task_struct.signal"), u64::MAX - 4);
    let linux = Linux::new(&k).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| linux.processes()));
    let r = r.expect("processes() panicked");
    let bad = Some(Error::Malformed(
        "a kernel pointer plus a member offset overflows",
    ));
    assert_eq!(pids(&r.unwrap()), [(10, None), (11, bad), (12, None)]);
}

/// The same hostile mm pointer, through `rss` and `strings`: no panic
/// there either.
#[test]
fn mm_pointer_near_top_of_address_space_does_not_panic() {
    let mut k = FakeKernel::new();
    let t = k.add_task(&Task {
        pid: 30,
        comm: "p",
        mm: Some(Mm::default()),
        ..Task::default()
    });
    k.poke_u64(k.member(t, "task_struct.mm"), u64::MAX - 4);
    let linux = Linux::new(&k).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (linux.processes(), linux.argv(t))
    }));
    let (procs, argv) = r.expect("walker panicked");
    assert_eq!(procs.map(|p| p[0].rss_pages), Ok(None));
    assert_eq!(
        argv,
        kvm_proc::Strings::Unavailable(Error::Malformed(
            "a kernel pointer plus a member offset overflows"
        ))
    );
}

/// `rss_stat` counters that overflow when summed (a hostile or corrupt
/// mm): unknown, not a number and not a panic.
#[test]
fn huge_rss_counters_do_not_panic() {
    let mut k = FakeKernel::new();
    k.add_task(&Task {
        pid: 31,
        comm: "p",
        mm: Some(Mm {
            argv: &["p"],
            envv: &[],
            rss: [i64::MAX as u64, i64::MAX as u64, 0, 0],
        }),
        ..Task::default()
    });
    let linux = Linux::new(&k).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| linux.processes()));
    let procs = r.expect("processes() panicked").unwrap();
    assert_eq!(procs[0].rss_pages, None);
}
