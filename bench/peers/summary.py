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
    return f"{r['mean'] * 1000:.0f} ± {r['stddev'] * 1000:.0f}" if r["mean"] >= 1 \
        else f"{r['mean'] * 1000:.1f} ± {r['stddev'] * 1000:.1f}"


def mib(kb):
    return f"{kb / 1024:.1f}" if kb is not None else "–"


def cpu(r):
    return r["user"] + r["system"]


print("Wall time: hyperfine mean ± σ. CPU: user + system means. "
      "Ratios: peer / kvm (kvm faster by N×). Peak RSS: /usr/bin/time -v.")
print()
print("| dump | command | kvm ms | drgn ms | crash ms | drgn / kvm wall | crash / kvm wall "
      "| drgn / kvm CPU | crash / kvm CPU | peak RSS MiB kvm | drgn | crash |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
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
            cells.append(f"{res[tool]['mean'] / k['mean']:.1f}×" if tool in res else "–")
        for tool in ("drgn", "crash"):
            cells.append(f"{cpu(res[tool]) / cpu(k):.1f}×" if tool in res else "–")
        for tool in ("kvm", "drgn", "crash"):
            cells.append(mib(rss.get((fmt, task, tool))))
        print("| " + " | ".join(cells) + " |")
