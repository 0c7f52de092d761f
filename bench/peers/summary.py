#!/usr/bin/env python3
"""Summarise run.sh's results (hyperfine JSON exports and rss.tsv) as a
Markdown table. Usage: summary.py OUT FORMAT..."""
import json
import os
import sys

out, formats = sys.argv[1], sys.argv[2:]
rss = {}
with open(os.path.join(out, "rss.tsv")) as f:
    for line in f:
        fmt, task, tool, kb = line.split()
        rss[(fmt, task, tool)] = int(kb)


def ms(r):
    f = "{:.0f}" if r["mean"] >= 1 else "{:.1f}"
    return (f"{f.format(r['mean'] * 1000)} ± {f.format(r['stddev'] * 1000)} "
            f"({f.format(r['min'] * 1000)})")


def mib(kb):
    return f"{kb / 1024:.1f}" if kb is not None else "–"


def cpu(r):
    return r["user"] + r["system"]


print("Wall time: hyperfine mean ± σ (min), ms. Ratios peer / kvm (kvm faster "
      "by N×): of wall means, of wall minimums, and of CPU (user + system means). "
      "Peak RSS: /usr/bin/time -v, MiB.")
print()
print("| dump | command | kvm | drgn | crash | drgn / kvm mean | min | CPU "
      "| crash / kvm mean | min | CPU | RSS kvm | RSS drgn | RSS crash |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for task in ("ps", "nlist"):
    for fmt in formats:
        path = os.path.join(out, f"time-{task}-{fmt}.json")
        if not os.path.exists(path):
            continue
        res = {r["command"]: r for r in json.load(open(path))["results"]}
        k = res["kvm"]
        cells = [fmt, task, ms(k)]
        for tool in ("drgn", "crash"):
            cells.append(ms(res[tool]) if tool in res else "–")
        for tool in ("drgn", "crash"):
            if tool in res:
                r = res[tool]
                cells += [f"{r['mean'] / k['mean']:.1f}×", f"{r['min'] / k['min']:.1f}×",
                          f"{cpu(r) / cpu(k):.1f}×"]
            else:
                cells += ["–"] * 3
        for tool in ("kvm", "drgn", "crash"):
            cells.append(mib(rss.get((fmt, task, tool))))
        print("| " + " | ".join(cells) + " |")
