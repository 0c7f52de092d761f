//! Walks that survive holes: `task_struct`s lost from the dump (as
//! makedumpfile's `-d 31` can lose slab pages) break the task list, and
//! every other process is still listed, exactly; the lost ones keep
//! their pid (from the pid namespace's idr) and say why.

use crate::fake::{FakeKernel, Layout, DIRECT_MAP};
use crate::normal::{expected, normal_kernel, Tasks};
use kvm_core::Error;
use kvm_proc::linux::Linux;
use kvm_proc::{Kernel, Process};

/// The normal kernel with its pid idr, and its `task_struct` size.
fn with_idr() -> (FakeKernel, Tasks, u64) {
    let (mut k, t) = normal_kernel(Layout::compact_with_pid_idr());
    k.build_pid_idr();
    let size = k.size_of("task_struct").unwrap();
    (k, t, size)
}

/// What a lost task reads as: the first read of `process()` is its
/// `real_parent`.
fn lost(k: &FakeKernel, pid: u32, task: u64) -> Process {
    let pa = k.member(task, "task_struct.real_parent") - DIRECT_MAP;
    Process::unavailable(pid, task, Error::Excluded { pa })
}

/// agetty's and bash's `task_struct`s are lost: the list breaks going
/// forward at agetty and backward at bash; the idr names both, and the
/// five others are exactly as in the whole kernel.
#[test]
fn lost_task_structs_keep_their_pids_and_the_rest_are_listed_exactly() {
    let (mut k, t, size) = with_idr();
    let mut want = expected(&t);
    k.lose(t.agetty, size);
    k.lose(t.bash, size);
    want[3] = lost(&k, 600, t.agetty);
    want[4] = lost(&k, 1000, t.bash);
    // firefox's parent is bash: its ppid is unknown now.
    want[5].ppid = None;
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.processes().unwrap(), want);
}

/// Without an idr (a kernel whose BTF lacks it) the list is read from
/// both ends: everything but bash, and bash's entry where the list
/// breaks (its pid unknown: the task itself is lost).
#[test]
fn without_an_idr_the_list_is_read_from_both_ends() {
    let (mut k, t) = normal_kernel(Layout::compact());
    let mut want = expected(&t);
    let size = k.size_of("task_struct").unwrap();
    k.lose(t.bash, size);
    let pa = k.member(t.bash, "task_struct.tasks") - DIRECT_MAP;
    want[4] = Process::unavailable(0, t.bash, Error::Excluded { pa });
    want[5].ppid = None;
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.processes().unwrap(), want);
}

/// Part of the idr lost too (the node of pids 0–63: systemd, kthreadd,
/// the kworker): the idr gives the rest in pid order, the task list,
/// read from both ends, gives those three after them, and a last entry
/// says that part of the idr could not be read.
#[test]
fn a_lost_idr_node_is_made_up_for_by_the_task_list() {
    let (mut k, t, size) = with_idr();
    let mut want = expected(&t);
    want[5].ppid = None;
    k.lose(t.bash, size);
    let node = k.peek_u64(k.idr_root_slot(0)) - 2;
    k.lose(node, 0x228);
    let got = Linux::new(&k).unwrap().processes().unwrap();
    let pids: Vec<u32> = got.iter().map(|p| p.pid).collect();
    let mut want_pids: Vec<u32> = want[3..].iter().map(|p| p.pid).collect();
    // Then an entry saying part of the idr could not be read.
    want_pids.extend([1, 2, 3, 0]);
    assert_eq!(pids, want_pids);
    assert_eq!(got[1], lost(&k, 1000, t.bash));
    let slots = k.member(node, "xa_node.slots") - DIRECT_MAP;
    let shift = node - DIRECT_MAP;
    assert!(
        matches!(got[7].unavailable, Some(Error::Excluded { pa }) if pa == shift || pa == slots),
        "{:?}",
        got[7]
    );
    for p in got.iter().filter(|p| p.pid != 1000 && p.pid != 0) {
        let w = want.iter().find(|w| w.pid == p.pid).unwrap();
        assert_eq!(p, w);
    }
}

/// A corrupt idr (its root's first slot pointing back at the root, whose
/// shift then does not step down) is not followed: the task list, read
/// from both ends, is the answer.
#[test]
fn a_looping_idr_is_not_followed() {
    let (mut k, t, size) = with_idr();
    let mut want = expected(&t);
    k.lose(t.bash, size);
    let slot = k.idr_root_slot(0);
    let root = slot - k.member(0, "xa_node.slots");
    k.poke_u64(slot, root | 2);
    let pa = k.member(t.bash, "task_struct.tasks") - DIRECT_MAP;
    want[4] = Process::unavailable(0, t.bash, Error::Excluded { pa });
    want[5].ppid = None;
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.processes().unwrap(), want);
}
