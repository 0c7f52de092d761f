#!/usr/bin/env python3
"""List the processes of a Linux crash dump with drgn, in the shape of
`kvm ps --json`: one JSON object per process (thread-group leader on
init_task.tasks, the same list ps walks), keys sorted, sorted by pid.

Fields: pid, ppid, uid, gid (real ids, as /proc/PID/status shows them
first), euid, egid (effective ids, its second column),
state (the /proc state letter), comm, kthread (PF_KTHREAD), pgrp, session,
tty_nr and tty (signal->tty, encoded as /proc/PID/stat does; name), 
start_time_ns (task_struct.start_boottime, the clock /proc/PID/stat's
starttime counts, as kvm reports it), rss_pages (get_mm_rss: the file,
anon and shmem counters of mm->rss_stat; null without an mm), argv and envv
(read from the process's own pages; null when they cannot be read, e.g. user
pages filtered out of a makedumpfile -d 31 dump).

Usage: drgn_ps.py --vmlinux VMLINUX [--arch x86_64|aarch64] [--timings] CORE

--arch builds the Program with an explicit Platform before set_core_dump();
QEMU's own kdump files name no architecture in their header and need it.
--timings prints to stderr how long each phase took (imports, opening the
dump, loading vmlinux's debug info, walking the tasks).

Written for drgn 0.3.0 (PyPI wheel).
"""
import time

T0 = time.perf_counter()

import argparse
import json
import sys

import drgn
from drgn import Architecture, Platform, PlatformFlags, Program
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.mm import cmdline, environ
from drgn.helpers.linux.sched import task_state_to_char

PF_KTHREAD = 0x00200000
PIDTYPE_PGID = 2
PIDTYPE_SID = 3

ARCHES = {
    "x86_64": Architecture.X86_64,
    "aarch64": Architecture.AARCH64,
}


def make_program(core, arch):
    if arch:
        prog = Program(
            Platform(
                ARCHES[arch],
                PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN,
            )
        )
    else:
        prog = Program()
    prog.set_core_dump(core)
    return prog


def text(b):
    # kvm and truth.json write invalid UTF-8 with U+FFFD replacements.
    return b.decode("utf-8", errors="replace")


def strings(fn, task):
    try:
        v = fn(task)
    except drgn.FaultError:
        return None
    if v is None:  # no mm (kernel thread)
        return []
    return [text(s) for s in v]


def pid_nr(pid):
    # pid_vnr() in the initial namespace: numbers[0].nr; 0 for a NULL pid.
    if not pid:
        return 0
    return pid.numbers[0].nr.value_()


def tty_of(signal):
    tty = signal.tty
    if not tty:
        return 0, None
    index = tty.index.value_()
    driver = tty.driver
    major = driver.major.value_()
    minor = driver.minor_start.value_() + index
    nr = (minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & ~0xFF) << 12)
    return nr & 0xFFFFFFFF, text(tty.name.string_())


def rss_pages(task, prog):
    mm = task.mm
    if not mm:
        return None
    counters = mm.rss_stat
    if counters.type_.kind != drgn.TypeKind.ARRAY:  # struct mm_rss_stat (< 6.2)
        counters = counters.count
    total = 0
    for name in ("MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"):
        c = counters[prog.constant(name).value_()]
        # atomic_long_t before 6.2, struct percpu_counter (global count) since
        total += (c.counter if c.type_.has_member("counter") else c.count).value_()
    return total if total >= 0 else None


def task_record(task):
    flags = task.flags.value_()
    kthread = bool(flags & PF_KTHREAD)
    parent = task.real_parent
    cred = task.real_cred
    signal = task.signal
    tty_nr, tty = tty_of(signal)
    rec = {
        "pid": task.tgid.value_(),
        "ppid": parent.tgid.value_() if parent else 0,
        "uid": cred.uid.val.value_(),
        "gid": cred.gid.val.value_(),
        "euid": cred.euid.val.value_(),
        "egid": cred.egid.val.value_(),
        "state": task_state_to_char(task),
        "comm": text(task.comm.string_()),
        "kthread": kthread,
        "pgrp": pid_nr(signal.pids[PIDTYPE_PGID]),
        "session": pid_nr(signal.pids[PIDTYPE_SID]),
        "tty_nr": tty_nr,
        "tty": tty,
        "start_time_ns": task.start_boottime.value_(),
        "rss_pages": rss_pages(task, task.prog_),
    }
    if kthread:
        rec["argv"] = []
        rec["envv"] = []
    else:
        rec["argv"] = strings(cmdline, task)
        rec["envv"] = strings(environ, task)
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("core")
    ap.add_argument("--vmlinux", required=True)
    ap.add_argument("--arch", choices=sorted(ARCHES))
    ap.add_argument("--timings", action="store_true")
    args = ap.parse_args()
    marks = [("imports", time.perf_counter())]

    prog = make_program(args.core, args.arch)
    marks.append(("open dump", time.perf_counter()))
    # Only the main module (vmlinux): the guest has no kernel modules loaded,
    # and this keeps drgn from searching the system's debug directories.
    prog.load_debug_info([args.vmlinux], main=True)
    marks.append(("load vmlinux debug info", time.perf_counter()))

    init_task = prog["init_task"]
    procs = [
        task_record(t)
        for t in list_for_each_entry(
            "struct task_struct", init_task.tasks.address_of_(), "tasks"
        )
    ]
    procs.sort(key=lambda p: p["pid"])
    marks.append(("walk tasks", time.perf_counter()))
    json.dump(procs, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
    if args.timings:
        prev = T0
        for name, t in marks:
            print(f"{name}: {(t - prev) * 1000:.1f} ms", file=sys.stderr)
            prev = t


if __name__ == "__main__":
    main()
