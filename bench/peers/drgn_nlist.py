#!/usr/bin/env python3
"""Look up kernel symbols in a crash dump with drgn and no vmlinux, in the
shape of `kvm nlist --json`: {"name": "0x...", "missing": null}.

drgn 0.3.0 builds the core kernel's kallsyms table from the dump itself
(drgn.helpers.linux.kallsyms.load_vmlinux_kallsyms, which finds the
compressed kallsyms tables through VMCOREINFO; Linux >= 6.0) and registers it
as a symbol finder.

Usage: drgn_nlist.py [--arch x86_64|aarch64] [--check KALLSYMS.txt] CORE NAME...

--check compares the whole table drgn built with the guest's /proc/kallsyms
(vmlinux symbols only: module symbols, tagged [mod], are left out) and prints
a summary to stderr; not part of the timed command.
"""
import argparse
import json
import sys

from drgn import Architecture, Platform, PlatformFlags, Program
from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms

ARCHES = {"x86_64": Architecture.X86_64, "aarch64": Architecture.AARCH64}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("core")
    ap.add_argument("names", nargs="+")
    ap.add_argument("--arch", choices=sorted(ARCHES))
    ap.add_argument("--check")
    args = ap.parse_args()

    if args.arch:
        prog = Program(Platform(ARCHES[args.arch],
                                PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN))
    else:
        prog = Program()
    prog.set_core_dump(args.core)
    index = load_vmlinux_kallsyms(prog)
    prog.register_symbol_finder("vmlinux_kallsyms", index, enable_index=0)

    out = {}
    for name in args.names:
        try:
            out[name] = hex(prog.symbol(name).address)
        except LookupError:
            out[name] = None
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")

    if args.check:
        want = set()
        with open(args.check) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:  # "addr type name"; module lines have 4
                    want.add((int(parts[0], 16), parts[2]))
        got = {(s.address, s.name) for s in prog.symbols()}
        print(f"drgn kallsyms: {len(got)} symbols; /proc/kallsyms (vmlinux): "
              f"{len(want)}; only in drgn: {len(got - want)}; "
              f"only in /proc: {len(want - got)}", file=sys.stderr)
        for a, n in sorted(want - got)[:5]:
            print(f"  missing {a:#x} {n}", file=sys.stderr)
        for a, n in sorted(got - want)[:5]:
            print(f"  extra   {a:#x} {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
