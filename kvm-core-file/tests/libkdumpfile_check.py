#!/usr/bin/python3
"""Cross-check of kdump files against libkdumpfile, an independent reader.

    libkdumpfile_check.py KDUMP                print "pfn sha256" per page present
    libkdumpfile_check.py KDUMP REFERENCE.elf  compare every page with an ELF core

Pages are enumerated from libkdumpfile's page map ("file.pagemap": the
pages the file holds) and read with libkdumpfile at their machine physical
address. With a reference ELF core (parsed here: ELF64, little-endian,
PT_LOAD by p_paddr), each page must equal the ELF's bytes (zeros past the
end of a segment), and every page of the ELF must be present in the kdump
unless --excluded-ok is given (filtered dumps). Prints a summary line and
exits non-zero on any difference.

Needs the Debian package python3-libkdumpfile (run with /usr/bin/python3).
"""

import hashlib
import struct
import sys

import kdumpfile


def elf_segments(path):
    """(paddr, offset, filesz) of every PT_LOAD of an ELF64 LE core."""
    with open(path, "rb") as f:
        eh = f.read(64)
        if eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
            raise SystemExit(f"{path}: not an ELF64 little-endian file")
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        if phnum == 0xFFFF:
            shoff, = struct.unpack_from("<Q", eh, 40)
            f.seek(shoff)
            phnum, = struct.unpack_from("<I", f.read(64), 44)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    segs = []
    for i in range(phnum):
        p_type, _flags, off, _va, pa, filesz, _memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", table, i * phentsize
        )
        if p_type == 1 and filesz:
            segs.append((pa, off, filesz))
    return segs


def elf_pages(path, page):
    """pfn -> page bytes, for every page an ELF PT_LOAD touches."""
    pages = {}
    with open(path, "rb") as f:
        for pa, off, size in elf_segments(path):
            first, last = pa // page, (pa + size - 1) // page
            for pfn in range(first, last + 1):
                lo, hi = max(pa, pfn * page), min(pa + size, (pfn + 1) * page)
                buf = pages.setdefault(pfn, bytearray(page))
                f.seek(off + lo - pa)
                buf[lo - pfn * page:hi - pfn * page] = f.read(hi - lo)
    return pages


def main(argv):
    excluded_ok = "--excluded-ok" in argv
    args = [a for a in argv if not a.startswith("--")]
    if not args:
        raise SystemExit(__doc__)
    k = kdumpfile.kdumpfile(args[0])
    page = k.attr["arch.page_size"]
    fmt = k.attr["file.format"] if "file.format" in k.attr else "?"
    pagemap = k.attr["file.pagemap"]
    ref = elf_pages(args[1], page) if len(args) > 1 else None
    checked = differ = 0
    seen = set()
    pfn = 0
    while True:
        try:
            pfn = pagemap.find_set(pfn)
        except Exception:  # no set bit left
            break
        if ref is not None and pfn > max(ref, default=0) + (1 << 20):
            break
        data = k.read(kdumpfile.KDUMP_MACHPHYSADDR, pfn * page, page)
        if ref is None:
            print(f"{pfn:#x} {hashlib.sha256(data).hexdigest()}")
        else:
            want = ref.get(pfn)
            if want is None or bytes(want) != bytes(data):
                if differ < 5:
                    print(f"page {pfn:#x} differs (in reference: {want is not None})")
                differ += 1
            seen.add(pfn)
        checked += 1
        pfn += 1
    missing = 0 if ref is None else len(set(ref) - seen)
    try:
        release = k.attr["linux.vmcoreinfo.lines.OSRELEASE"]
    except Exception:  # no VMCOREINFO
        release = None
    print(
        f"libkdumpfile: {args[0]}: format {fmt}, page size {page}, VMCOREINFO OSRELEASE {release}: "
        f"{checked} pages read, {differ} different, {missing} reference pages missing"
    )
    bad = differ or (missing and not excluded_ok)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
