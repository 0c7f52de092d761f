//! argv and the environment through each process's own page tables:
//! pages missing from memory or from the tables, unreadable tables,
//! implausible bounds, and where the walker parts from /proc.

use crate::fake::{
    FakeKernel, Mm, Task, ABSENT_PA, ARGS_OFFSET, DIRECT_MAP, TASK_INTERRUPTIBLE, UNMAPPED_VA,
    USER_ARGS,
};
use kvm_core::Error;
use kvm_proc::linux::{Linux, MAX_ARGS};
use kvm_proc::Strings;

const LONG: usize = 6000;

fn long_arg() -> String {
    "x".repeat(LONG)
}

/// One process whose argv covers three pages (the middle one wholly) and
/// whose environment lies in the third; returns the kernel and the task.
fn kernel_with_long_argv(arg: &str) -> (FakeKernel, u64) {
    let mut k = FakeKernel::new();
    let argv: [&str; 2] = ["/opt/app/bin/app", arg];
    let t = k.add_task(&Task {
        pid: 100,
        comm: "app",
        state: TASK_INTERRUPTIBLE,
        mm: Some(Mm {
            argv: &argv,
            envv: &["A=1", "B=2"],
            rss: [1, 2, 3, 4],
        }),
        ..Task::default()
    });
    (k, t)
}

fn envv() -> Strings {
    Strings::Read(vec!["A=1".into(), "B=2".into()])
}

/// The page wholly inside argv.
const MIDDLE: u64 = USER_ARGS + 0x1000;

#[test]
fn argv_across_pages_reads() {
    let arg = long_arg();
    let (k, t) = kernel_with_long_argv(&arg);
    let linux = Linux::new(&k).unwrap();
    assert_eq!(
        linux.argv(t),
        Strings::Read(vec!["/opt/app/bin/app".into(), arg.clone().into()])
    );
    assert_eq!(linux.envv(t), envv());
}

/// The middle page's entry names a frame the dump does not hold.
#[test]
fn argv_page_not_in_memory() {
    let arg = long_arg();
    let (mut k, t) = kernel_with_long_argv(&arg);
    let before = Linux::new(&k).unwrap().processes().unwrap();
    k.set_user_pte(k.mm_of(t), MIDDLE, FakeKernel::user_pte(ABSENT_PA));
    let linux = Linux::new(&k).unwrap();
    assert_eq!(
        linux.argv(t),
        Strings::Unavailable(Error::NotInMemory { pa: ABSENT_PA })
    );
    assert_eq!(linux.envv(t), envv());
    assert_eq!(linux.processes().unwrap(), before);
    assert_eq!(before[0].rss_pages, Some(1 + 2 + 4));
}

/// The middle page is not mapped (swapped out, never touched).
#[test]
fn argv_page_not_mapped() {
    let arg = long_arg();
    let (mut k, t) = kernel_with_long_argv(&arg);
    let before = Linux::new(&k).unwrap().processes().unwrap();
    k.set_user_pte(k.mm_of(t), MIDDLE, 0);
    let linux = Linux::new(&k).unwrap();
    assert_eq!(
        linux.argv(t),
        Strings::Unavailable(Error::Unmapped { va: MIDDLE })
    );
    assert_eq!(linux.envv(t), envv());
    assert_eq!(linux.processes().unwrap(), before);
}

/// The process's top-level table is not in the dump.
#[test]
fn user_page_table_not_in_memory() {
    let (mut k, t) = kernel_with_long_argv("y");
    let mm = k.mm_of(t);
    let pgd = k.member(mm, "mm_struct.pgd");
    k.poke_u64(pgd, DIRECT_MAP + ABSENT_PA);
    let linux = Linux::new(&k).unwrap();
    let arg_start = USER_ARGS + ARGS_OFFSET;
    let env_start = arg_start + "/opt/app/bin/app\0y\0".len() as u64;
    let pml4e = |va: u64| ABSENT_PA + 8 * ((va >> 39) & 511);
    assert_eq!(
        linux.argv(t),
        Strings::Unavailable(Error::TableNotReadable {
            va: arg_start,
            pa: pml4e(arg_start)
        })
    );
    assert_eq!(
        linux.envv(t),
        Strings::Unavailable(Error::TableNotReadable {
            va: env_start,
            pa: pml4e(env_start)
        })
    );
    assert_eq!(linux.processes().unwrap().len(), 1);
}

/// `task->mm` points nowhere: no strings, no RSS, the process still listed.
#[test]
fn mm_pointer_unmapped() {
    let (mut k, t) = kernel_with_long_argv("y");
    k.poke_u64(k.member(t, "task_struct.mm"), UNMAPPED_VA);
    let linux = Linux::new(&k).unwrap();
    let va = k.member(UNMAPPED_VA, "mm_struct.arg_start");
    assert_eq!(linux.argv(t), Strings::Unavailable(Error::Unmapped { va }));
    let p = linux.processes().unwrap();
    assert_eq!((p[0].pid, p[0].rss_pages), (100, None));
}

#[test]
fn implausible_bounds() {
    let (mut k, t) = kernel_with_long_argv("y");
    let mm = k.mm_of(t);
    let start = USER_ARGS + ARGS_OFFSET;
    let bad = Strings::Unavailable(Error::Malformed("argument area bounds are implausible"));
    // End before start.
    k.poke_u64(k.member(mm, "mm_struct.arg_end"), start - 1);
    assert_eq!(Linux::new(&k).unwrap().argv(t), bad);
    // Longer than MAX_ARGS (one byte is fine).
    k.poke_u64(k.member(mm, "mm_struct.env_end"), start + MAX_ARGS + 1);
    k.poke_u64(k.member(mm, "mm_struct.env_start"), start);
    assert_eq!(Linux::new(&k).unwrap().envv(t), bad);
    k.poke_u64(k.member(mm, "mm_struct.env_end"), start + 1);
    assert_eq!(
        Linux::new(&k).unwrap().envv(t),
        Strings::Read(vec!["/".into()])
    );
}

/// A process started with an empty environment (`env -i prog`):
/// `env_start == env_end`, and /proc/PID/environ is empty.
#[test]
fn empty_environment_reads_as_no_strings() {
    let mut k = FakeKernel::new();
    let t = k.add_task(&Task {
        pid: 100,
        comm: "prog",
        mm: Some(Mm {
            argv: &["prog"],
            envv: &[],
            rss: [0; 4],
        }),
        ..Task::default()
    });
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.argv(t), Strings::Read(vec!["prog".into()]));
    assert_eq!(linux.envv(t), Strings::Read(vec![]));
}

/// A kernel thread that borrowed a process's mm (`kthread_use_mm`, as
/// vhost and USB gadget workers do): `get_task_mm` returns NULL for
/// `PF_KTHREAD`, so /proc/PID/cmdline is empty and statm zero, and the
/// walker gives no strings and no `rss_pages`.
#[test]
fn kthread_with_borrowed_mm_has_no_args() {
    let mut k = FakeKernel::new();
    let t = k.add_task(&Task {
        pid: 300,
        comm: "vhost-299",
        kthread: true,
        mm: Some(Mm {
            argv: &["qemu-system-x86_64", "-enable-kvm"],
            envv: &["HOME=/root"],
            rss: [5, 5, 0, 0],
        }),
        ..Task::default()
    });
    let linux = Linux::new(&k).unwrap();
    let p = linux.processes().unwrap();
    assert_eq!(p[0].kthread, Some(true));
    assert_eq!(p[0].rss_pages, None);
    assert_eq!(linux.argv(t), Strings::Read(vec![]));
    assert_eq!(linux.envv(t), Strings::Read(vec![]));
}

/// setproctitle(3) as nginx does it: the title overwrites argv and runs on
/// into the (moved away) environment area, so the last byte of argv is
/// not NUL. /proc/PID/cmdline then returns the title up to its NUL
/// (`get_mm_proctitle` in fs/proc/base.c), and so does the walker.
#[test]
fn setproctitle_title_past_arg_end() {
    let title = "nginx: master process /usr/sbin/nginx -g daemon off;";
    let mut k = FakeKernel::new();
    let t = k.add_task(&Task {
        pid: 500,
        comm: "nginx",
        mm: Some(Mm {
            argv: &[title],
            envv: &[],
            rss: [0; 4],
        }),
        ..Task::default()
    });
    // The original argv ("/usr/sbin/nginx\0-g\0daemon off;\0") was 34
    // bytes; the environment followed it.
    let mm = k.mm_of(t);
    let start = USER_ARGS + ARGS_OFFSET;
    k.poke_u64(k.member(mm, "mm_struct.arg_end"), start + 34);
    k.poke_u64(k.member(mm, "mm_struct.env_start"), start + 34);
    let linux = Linux::new(&k).unwrap();
    assert_eq!(linux.argv(t), Strings::Read(vec![title.into()]));
}

/// Arguments that are not UTF-8 (a Latin-1 file name) come back as the
/// bytes the process holds, as /proc/PID/cmdline gives them (issue 11:
/// the C interface returns them unchanged).
#[test]
fn arguments_that_are_not_utf8_keep_their_bytes() {
    let mut k = FakeKernel::new();
    let t = k.add_task(&Task {
        pid: 501,
        comm: "ls",
        mm: Some(Mm {
            argv: &["ls"],
            envv: &[],
            rss: [0; 4],
        }),
        ..Task::default()
    });
    let mm = k.mm_of(t);
    // A frame of its own, holding "ls\0café\0" in Latin-1, as the first
    // argument page.
    let obj = k.alloc(2 * 4096);
    let frame = (obj - DIRECT_MAP).next_multiple_of(4096);
    let bytes = b"ls\0caf\xe9\0";
    k.poke(DIRECT_MAP + frame, bytes);
    k.set_user_pte(mm, USER_ARGS, FakeKernel::user_pte(frame));
    k.poke_u64(k.member(mm, "mm_struct.arg_start"), USER_ARGS);
    k.poke_u64(
        k.member(mm, "mm_struct.arg_end"),
        USER_ARGS + bytes.len() as u64,
    );
    let linux = Linux::new(&k).unwrap();
    assert_eq!(
        linux.argv(t),
        Strings::Read(vec![b"ls".to_vec(), b"caf\xe9".to_vec()])
    );
}
