//! What the walker needs from the types and symbols: optional members that
//! may be missing (older or differently configured kernels), required
//! ones whose absence is an exact `Unsupported`, and finding `init_task`.

use crate::fake::{FakeKernel, Layout, Task};
use crate::normal::{expected, normal_kernel};
use kvm_core::Error;
use kvm_proc::linux::Linux;
use kvm_proc::Process;
use std::collections::BTreeSet;

/// The normal kernel with `hide` removed from its types, against the
/// expected processes changed by `change`.
fn without(layout: Layout, hide: &[&str], change: impl Fn(&mut Process)) {
    let (mut k, t) = normal_kernel(layout);
    for h in hide {
        k.hide(h);
    }
    let mut want = expected(&t);
    want.iter_mut().for_each(change);
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.processes().unwrap(), want, "without {hide:?}");
}

#[test]
fn without_on_cpu() {
    without(Layout::compact(), &["task_struct.on_cpu"], |p| {
        p.threads.iter_mut().for_each(|t| t.oncpu = false);
    });
}

/// Neither `task_struct.cpu` nor `thread_info.cpu` (the shuffled layout
/// has the latter only).
#[test]
fn without_cpu() {
    for (layout, hide) in [
        (Layout::compact(), "task_struct.cpu"),
        (Layout::shuffled(), "task_struct.thread_info.cpu"),
    ] {
        without(layout, &[hide], |p| {
            p.threads.iter_mut().for_each(|t| t.cpu = None);
        });
    }
}

#[test]
fn without_tty_layout() {
    for hide in [
        "signal_struct.tty",
        "tty_struct.index",
        "tty_struct.driver",
        "tty_driver.major",
        "tty_driver.minor_start",
    ] {
        without(Layout::compact(), &[hide], |p| {
            (p.tty_nr, p.tty) = (Some(0), None);
        });
    }
    // Without the name only, the number stays.
    without(Layout::compact(), &["tty_struct.name"], |p| p.tty = None);
}

#[test]
fn without_rss_layout() {
    let none = |p: &mut Process| p.rss_pages = None;
    without(Layout::compact(), &["mm_struct.rss_stat"], none);
    without(Layout::compact(), &["MM_SHMEMPAGES"], none);
    without(Layout::shuffled(), &["percpu_counter.count"], none);
    // NR_MM_COUNTERS defaults to 4, which both layouts have.
    without(Layout::compact(), &["NR_MM_COUNTERS"], |_| {});
    without(Layout::shuffled(), &["NR_MM_COUNTERS"], |_| {});
}

/// Every optional member at once: the bare listing remains.
#[test]
fn without_every_optional_member() {
    without(
        Layout::compact(),
        &[
            "task_struct.on_cpu",
            "task_struct.cpu",
            "task_struct.start_boottime",
            "signal_struct.tty",
            "mm_struct.rss_stat",
        ],
        |p| {
            p.threads.iter_mut().for_each(|t| {
                t.oncpu = false;
                t.cpu = None;
            });
            (p.tty_nr, p.tty, p.start_time_ns, p.rss_pages) = (Some(0), None, None, None);
        },
    );
}

/// Each required member, hidden alone, is named by the error.
#[test]
fn without_a_required_member() {
    for need in [
        "task_struct.tasks",
        "task_struct.pid",
        "task_struct.tgid",
        "task_struct.comm",
        "task_struct.real_parent",
        "task_struct.mm",
        "task_struct.real_cred",
        "task_struct.signal",
        "task_struct.exit_state",
        "task_struct.flags",
        "task_struct.thread_node",
        "signal_struct.thread_head",
        "signal_struct.pids",
        "pid.numbers",
        "upid.nr",
        "PIDTYPE_PGID",
        "PIDTYPE_SID",
        "cred.uid",
        "cred.gid",
        "cred.euid",
        "cred.egid",
        "mm_struct.pgd",
        "mm_struct.arg_start",
        "mm_struct.arg_end",
        "mm_struct.env_start",
        "mm_struct.env_end",
    ] {
        let mut k = FakeKernel::new();
        k.hide(need);
        assert_eq!(
            Linux::new(&k).err(),
            Some(Error::Unsupported(need)),
            "without {need}"
        );
    }
    // Without `__state`, the walker falls back to `state`, which this
    // layout does not have either.
    let mut k = FakeKernel::new();
    k.hide("task_struct.__state");
    assert_eq!(
        Linux::new(&k).err(),
        Some(Error::Unsupported("task_struct.state"))
    );
}

/// The walker asks only for what the layouts have, apart from the
/// fallbacks it tries when a newer name is missing.
#[test]
fn walker_asks_only_for_known_names() {
    let (k, _) = normal_kernel(Layout::compact());
    let linux = Linux::new(&k).unwrap();
    linux.processes().unwrap();
    linux.release().unwrap();
    assert_eq!(k.asked_unknown(), BTreeSet::new());

    let (k, _) = normal_kernel(Layout::shuffled());
    let linux = Linux::new(&k).unwrap();
    linux.processes().unwrap();
    let want: BTreeSet<String> = ["task_struct.__state", "task_struct.cpu"]
        .map(String::from)
        .into();
    assert_eq!(k.asked_unknown(), want);
}

/// Without an `init_task` symbol (arm64 kallsyms without data symbols;
/// here x86-64, so by the search near `init_uts_ns`), past a decoy
/// "swapper/0" string.
#[test]
fn init_task_found_without_its_symbol() {
    for layout in [Layout::compact(), Layout::shuffled()] {
        let (mut k, t) = normal_kernel(layout);
        k.remove_symbol("init_task");
        let linux = Linux::new(&k).unwrap();
        assert_eq!(linux.init_task(), k.init_task());
        assert_eq!(linux.processes().unwrap(), expected(&t));
    }
}

#[test]
fn init_task_not_found() {
    let mut k = FakeKernel::new();
    k.remove_symbol("init_task");
    k.remove_symbol("init_uts_ns");
    assert_eq!(
        Linux::new(&k).err(),
        Some(Error::Unsupported("no init_task and no init_uts_ns symbol"))
    );

    // No idle task near init_uts_ns: its comm is not "swapper".
    let mut k = FakeKernel::new();
    k.remove_symbol("init_task");
    let comm = k.member(k.init_task(), "task_struct.comm");
    k.poke(comm, b"idle\0\0\0\0\0\0");
    assert_eq!(
        Linux::new(&k).err(),
        Some(Error::Unsupported(
            "init_task not found (no symbol, and no idle task near init_uts_ns)"
        ))
    );
}

/// An `init_task` symbol that names another task is refused.
#[test]
fn init_task_symbol_not_the_idle_task() {
    let mut k = FakeKernel::new();
    let t = k.add_task(&Task {
        pid: 1,
        comm: "init",
        ..Task::default()
    });
    k.set_symbol("init_task", t);
    assert_eq!(
        Linux::new(&k).err(),
        Some(Error::Malformed(
            "init_task does not look like the idle task"
        ))
    );
}
