#!/usr/bin/python3
"""libkdumpfile's side of the read benchmark (benches/read.rs), and the
comparison table.

    libkdumpfile_read.py [--lab DIR] [--json OUT] [--clock cpu|wall]
                                                       measure libkdumpfile
    libkdumpfile_read.py --compare CRITERION_DIR [--load IN | options above]
                                                       measure (or load the
                                                       results saved in IN)
                                                       and print the tables
                                                       with criterion's numbers

Same files as the Rust bench (`$KVM_LAB_DIR`, default ~/.cache/kvm-lab:
sets/amd64-kaslr/vmcore.* and bench/kdump-*.{kdump,flat}), same pages:
every page of libkdumpfile's "file.pagemap" (the pages the file holds), and
the same 20,000-read random sequence drawn from them with the same
xorshift64 and seed as read.rs. With --compare the page counts and PFN
sums are checked against the Rust bench's target/criterion/read-meta.json.

Clock: wall time (time.perf_counter), or with --clock cpu the CPU time of
this thread (time.thread_time: user + system, CLOCK_THREAD_CPUTIME_ID, as
read.rs with KVM_BENCH_CLOCK=cpu), which other processes competing for the
cores barely disturb.

Measurements (each the median of several repetitions, one kdumpfile
object per file, so libkdumpfile's page cache (1024 pages) is warm as ours
is):
  open        kdumpfile.kdumpfile(path), median of 20;
  random      k.read(KDUMP_MACHPHYSADDR, pfn * 4096, 4096) over the random
              sequence; the same loop calling a no-op builtin with the same
              arguments is timed too and subtracted (Python's loop and call
              overhead), which flatters libkdumpfile slightly (its binding's
              own argument parsing and result allocation remain counted);
  seq-page    the same, every page in address order, overhead subtracted;
  seq-chunk   every run of the page map read with the largest reads the
              binding takes in one call (1 MiB), so the Python overhead is
              256 times smaller than per page; the sequential figure used
              in the comparison is the faster of seq-page and seq-chunk.

Needs the Debian package python3-libkdumpfile (run with /usr/bin/python3).
libkdumpfile 0.5.1 does not open flattened files (makedumpfile -F): they are
listed as unsupported.
"""

import json
import os
import statistics
import sys
import time

PAGE = 4096
RANDOM_READS = 20_000
SEED = 0x2545F4914F6CDD1D
MASK = (1 << 64) - 1
CHUNK = 1 << 20
clock = time.perf_counter


def lab_files(lab):
    sets = os.path.join(lab, "sets/amd64-kaslr")
    names = [
        "vmcore.elf",
        "vmcore.kdump-zlib",
        "vmcore.kdump-zlib.flat",
        "vmcore.makedumpfile-lzo",
        "vmcore.makedumpfile-zlib-d31",
    ]
    paths = [os.path.join(sets, n) for n in names]
    for c in ["raw", "zlib", "lzo", "snappy", "zstd"]:
        for ext in ["kdump", "flat"]:
            paths.append(os.path.join(lab, "bench", f"kdump-{c}.{ext}"))
    return [(os.path.basename(p), p) for p in paths if os.path.isfile(p)]


def random_sequence(pages):
    x = SEED
    out = []
    for _ in range(RANDOM_READS):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        out.append(pages[x % len(pages)])
    return out


def page_runs(k):
    """(first pfn, count) of each run of libkdumpfile's page map."""
    pm = k.attr["file.pagemap"]
    runs = []
    pfn = 0
    while True:
        try:
            pfn = pm.find_set(pfn)
        except Exception:  # no set bit left
            break
        end = pm.find_clear(pfn)
        runs.append((pfn, end - pfn))
        pfn = end
    return runs


def median_time(fn, reps):
    ts = []
    for _ in range(reps):
        t = clock()
        fn()
        ts.append(clock() - t)
    return statistics.median(ts)


def measure(name, path):
    import kdumpfile

    M = kdumpfile.KDUMP_MACHPHYSADDR
    with open(path, "rb") as f:  # into the OS page cache, as read.rs does
        while f.read(1 << 24):
            pass
    try:
        k = kdumpfile.kdumpfile(path)
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        return {"name": name, "unsupported": str(e)}
    t_open = median_time(lambda: kdumpfile.kdumpfile(path), 20)
    runs = page_runs(k)
    pages = [p for first, n in runs for p in range(first, first + n)]
    rnd = random_sequence(pages)
    rd = k.read
    noop = max  # a C builtin taking the same three arguments

    def loop(f, addrs):
        def run():
            for a in addrs:
                f(M, a, PAGE)
        return run

    raddr = [p * PAGE for p in rnd]
    saddr = [p * PAGE for p in pages]
    chunks = []
    for first, n in runs:
        a, end = first * PAGE, (first + n) * PAGE
        while a < end:
            size = min(CHUNK, end - a)
            chunks.append((a, size))
            a += size

    def seq_chunks():
        for a, size in chunks:
            rd(M, a, size)

    loop(rd, raddr[:2000])()  # warm up
    r = {
        "name": name,
        "format": k.attr["file.format"],
        "pages": len(pages),
        "pages_pfn_sum": sum(pages) & MASK,
        "random_pfn_sum": sum(rnd) & MASK,
        "open_s": t_open,
        "random_s": median_time(loop(rd, raddr), 5),
        "random_overhead_s": median_time(loop(noop, raddr), 5),
        "seq_page_s": median_time(loop(rd, saddr), 3),
        "seq_page_overhead_s": median_time(loop(noop, saddr), 3),
        "seq_chunk_s": median_time(seq_chunks, 3),
        "seq_chunk_calls": len(chunks),
    }
    return r


def mbs(nbytes, secs):
    return nbytes / secs / 1e6


def criterion_estimate(cdir, group, name):
    """Criterion's typical time per iteration in seconds (slope, else
    mean), or None."""
    p = os.path.join(cdir, group, name, "new", "estimates.json")
    if not os.path.isfile(p):
        return None
    with open(p) as f:
        e = json.load(f)
    est = e.get("slope") or e["mean"]
    return est["point_estimate"] / 1e9


def plain_of(name):
    """The plain file holding the same stored pages as `name`."""
    if name.endswith(".flat"):
        base = name[: -len(".flat")]
        return base if base.startswith("vmcore.") else base + ".kdump"
    return name


def fmt_rate(nbytes, secs):
    if not secs:
        return "–"
    return f"{mbs(nbytes, secs):,.0f} MB/s ({nbytes / PAGE / secs / 1e3:,.0f} k pages/s)"


def compare(cdir, results):
    with open(os.path.join(cdir, "read-meta.json")) as f:
        meta = json.load(f)
    lk = {r["name"]: r for r in results}
    problems = []
    for name, m in meta.items():
        r = lk.get(name)
        if r and "pages" in r:
            if (r["pages"], r["pages_pfn_sum"], r["random_pfn_sum"]) != (
                m["pages"], m["pages_pfn_sum"], m["random_pfn_sum"]
            ):
                problems.append(f"{name}: page lists differ from read.rs's")
    print("### Open\n")
    print("| file | format | ours | libkdumpfile |")
    print("|---|---|---:|---:|")
    for name, m in meta.items():
        o = criterion_estimate(cdir, "open", name)
        r = lk.get(name, {})
        theirs = f"{r['open_s'] * 1e3:.3f} ms" if "open_s" in r else "unsupported"
        ours = f"{o * 1e3:.3f} ms" if o else "–"
        print(f"| {name} | {m['format']} | {ours} | {theirs} |")
    print("\n### Random 4 KiB reads "
          f"({RANDOM_READS:,} reads of present pages, fixed sequence)\n")
    print("| file | ours | libkdumpfile (loop overhead subtracted) | ours / libkdumpfile |")
    print("|---|---:|---:|---:|")
    for name, m in meta.items():
        nbytes = m["random_reads"] * PAGE
        o = criterion_estimate(cdir, "random", name)
        r = lk.get(name, {})
        if "random_s" in r:
            t = r["random_s"] - r["random_overhead_s"]
            theirs, ratio = fmt_rate(nbytes, t), f"{t / o:.2f}×" if o else "–"
        else:
            theirs, ratio = "unsupported", "–"
        print(f"| {name} | {fmt_rate(nbytes, o)} | {theirs} | {ratio} |")
    print("\n### Sequential reads (every present page, 4 KiB at a time) "
          "and codec speed\n")
    print("| file | pages | ours | libkdumpfile (best of per-page, 1 MiB reads) "
          "| ours / libkdumpfile | codec, decoded MB/s | codec-bound read "
          "| ours / codec-bound |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, m in meta.items():
        nbytes = m["pages"] * PAGE
        o = criterion_estimate(cdir, "seq", name)
        r = lk.get(name, {})
        if "seq_page_s" in r:
            t = min(r["seq_page_s"] - r["seq_page_overhead_s"], r["seq_chunk_s"])
            theirs, ratio = fmt_rate(nbytes, t), f"{t / o:.2f}×" if o else "–"
        else:
            theirs, ratio = "unsupported", "–"
        pm = meta.get(plain_of(name), {})
        ct = criterion_estimate(cdir, "codec", plain_of(name))
        if ct and pm.get("distinct_stored"):
            codec = f"{mbs(pm['distinct_stored'] * PAGE, ct):,.0f}"
            bound = fmt_rate(nbytes, ct)
            cratio = f"{ct / o * 100:.0f} %" if o else "–"
        else:
            codec = bound = cratio = "–"
        print(f"| {name} | {m['pages']:,} | {fmt_rate(nbytes, o)} | {theirs} | "
              f"{ratio} | {codec} | {bound} | {cratio} |")
    print("\nlibkdumpfile details (seconds per pass):\n")
    for r in results:
        if "random_s" in r:
            print(f"- {r['name']}: random {r['random_s']:.4f} (overhead "
                  f"{r['random_overhead_s']:.4f}), seq per page {r['seq_page_s']:.4f} "
                  f"(overhead {r['seq_page_overhead_s']:.4f}), seq in "
                  f"{r['seq_chunk_calls']} reads {r['seq_chunk_s']:.4f}")
        else:
            print(f"- {r['name']}: {r.get('unsupported')}")
    for p in problems:
        print(f"\nWARNING: {p}")
    return 1 if problems else 0


def main(argv):
    global clock
    args = {
        "--lab": None,
        "--json": None,
        "--load": None,
        "--compare": None,
        "--clock": "wall",
    }
    it = iter(argv)
    for a in it:
        if a not in args:
            raise SystemExit(__doc__)
        args[a] = next(it, None)
    if args["--clock"] not in ("cpu", "wall"):
        raise SystemExit(__doc__)
    if args["--clock"] == "cpu":
        clock = time.thread_time
    lab = args["--lab"] or os.environ.get("KVM_LAB_DIR") or os.path.expanduser(
        "~/.cache/kvm-lab"
    )
    if args["--load"]:
        with open(args["--load"]) as f:
            results = json.load(f)
    else:
        files = lab_files(lab)
        if not files:
            raise SystemExit(f"no lab dumps under {lab}")
        results = []
        for name, path in files:
            r = measure(name, path)
            print(f"{name}: {r}", file=sys.stderr)
            results.append(r)
        if args["--json"]:
            with open(args["--json"], "w") as f:
                json.dump(results, f, indent=1)
    if args["--compare"]:
        return compare(args["--compare"], results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
