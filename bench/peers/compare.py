#!/usr/bin/env python3
"""Check `ps --json`-shaped outputs against the lab's truth.json and each other.

Usage: compare.py TRUTH.json NAME=OUT.json [NAME=OUT.json ...]

Against truth (per process, matched by pid): pid, ppid, uid, gid, comm
(/proc's longer kernel-thread names accepted, see comm_matches),
kthread, pgrp (truth's pgid), session (truth's sid), argv, envv, and state
for user processes (kernel threads' states may change between the guest's
capture and the stop, so those are only counted; likewise up to two kernel
threads may appear or vanish, as in kvm's own lab tests). argv/envv that a tool
reports as null (unreadable, e.g. user pages filtered out by makedumpfile
-d 31) are counted as "unavailable", not as mismatches.

Between outputs (the first is the reference): every field the two have in
common, of every process, kernel-thread states included, since both read the
same dump; a field only one of them has is a difference too (reported once).

Prints one line per output and exits 1 if any real mismatch was found.
"""
import json
import sys

FIELDS = [("ppid", "ppid"), ("uid", "uid"), ("gid", "gid"),
          ("kthread", "kthread"), ("pgrp", "pgid"), ("session", "sid")]


def comm_matches(proc, kernel):
    """The tool reports task_struct.comm (15 bytes); the guest's /proc shows
    kernel threads by their full name (rcu_tasks_kthread for the stored
    rcu_tasks_kthre) and workqueue workers with their current work appended
    (kworker/0:1-events for kworker/0:1). Same rule as kvm's own lab tests."""
    if proc == kernel:
        return True
    cut = proc.encode()[:15].decode(errors="replace")
    return (len(kernel.encode()) == 15 and cut == kernel) or (
        kernel.startswith("kworker/") and proc.startswith(kernel + "-"))


def load(path):
    with open(path) as f:
        return {p["pid"]: p for p in json.load(f)}


def vs_truth(out, truth):
    bad, unavailable, kstate, kcame = [], 0, 0, []
    for pid, t in truth.items():
        o = out.get(pid)
        if o is None:
            if t["kthread"]:
                kcame.append(f"-{pid} {t['comm']}")
            else:
                bad.append(f"pid {pid} ({t['comm']}) missing")
            continue
        if not comm_matches(t["comm"], o["comm"]):
            bad.append(f"pid {pid} comm: {o['comm']!r} != truth {t['comm']!r}")
        for ok, tk in FIELDS:
            if o.get(ok) != t.get(tk):
                bad.append(f"pid {pid} {ok}: {o.get(ok)!r} != truth {t.get(tk)!r}")
        if o["state"] != t["state"]:
            if t["kthread"]:
                kstate += 1
            else:
                bad.append(f"pid {pid} state: {o['state']!r} != truth {t['state']!r}")
        for k in ("argv", "envv"):
            if o.get(k) is None:
                unavailable += 1
            elif o[k] != t[k]:
                bad.append(f"pid {pid} {k}: {o[k]!r} != truth {t[k]!r}")
    extra = sorted(set(out) - set(truth))
    for pid in extra:
        if out[pid]["kthread"]:
            kcame.append(f"+{pid} {out[pid]['comm']}")
        else:
            bad.append(f"pid {pid} ({out[pid]['comm']}) not in truth")
    # Kernel threads come and go between the capture and the stop (kvm's
    # own lab tests allow two); more than that is a mismatch.
    if len(kcame) > 2:
        bad.append(f"too many kernel threads differ: {kcame}")
    return bad, unavailable, kstate, kcame


def vs_ref(out, ref):
    """Differences on the fields both outputs have; fields only one of them
    has (kvm's JSON grows) are reported once, not per process."""
    bad = []
    keys_a = set().union(*(p.keys() for p in out.values())) if out else set()
    keys_b = set().union(*(p.keys() for p in ref.values())) if ref else set()
    if keys_a != keys_b:
        bad.append(f"fields only in this: {sorted(keys_a - keys_b)}, "
                   f"only in reference: {sorted(keys_b - keys_a)}")
    common = sorted(keys_a & keys_b)
    for pid in sorted(set(out) | set(ref)):
        a, b = out.get(pid), ref.get(pid)
        if a is None or b is None:
            bad.append(f"pid {pid} only in {'reference' if a is None else 'this'}")
            continue
        for k in common:
            if a.get(k) != b.get(k):
                bad.append(f"pid {pid} {k}: {a.get(k)!r} != ref {b.get(k)!r}")
    return bad


def main():
    truth = {p["pid"]: p for p in json.load(open(sys.argv[1]))["processes"]}
    outs = [a.split("=", 1) for a in sys.argv[2:]]
    ref_name, ref = None, None
    failed = False
    for name, path in outs:
        out = load(path)
        bad, unavailable, kstate, kcame = vs_truth(out, truth)
        line = (f"{name}: {len(out)} processes; vs truth: {len(bad)} mismatches, "
                f"{unavailable} argv/envv unavailable, {kstate} kthread state drifts, "
                f"kthreads came/went: {' '.join(kcame) or 'none'}")
        if ref is None:
            ref_name, ref = name, out
        else:
            rb = vs_ref(out, ref)
            line += f"; vs {ref_name}: {len(rb)} differences"
            bad += [f"vs {ref_name}: {b}" for b in rb]
        print(line)
        for b in bad[:20]:
            print("   ", b)
        if len(bad) > 20:
            print(f"    ... {len(bad) - 20} more")
        failed |= bool(bad)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
