//! Writes ELF cores (the layout `/proc/vmcore` and QEMU use): ELF header,
//! program headers (one PT_NOTE, then one PT_LOAD per physical range),
//! section header 0 when more than 65534 segments need PN_XNUM, the notes,
//! then the memory.

use super::Sink;
use crate::{Error, Result};
use alloc::vec::Vec;
use kvm_core::{Endian, MapRange, PhysRead};

/// What kind of ELF core to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfOptions {
    /// ELFCLASS64 (else ELFCLASS32: addresses must fit in 32 bits).
    pub is64: bool,
    /// Byte order of the headers and notes.
    pub endian: Endian,
    /// `e_machine` (62 x86-64, 183 aarch64, 3 i386).
    pub machine: u16,
}

/// Writes an ELF core holding `ranges` of `mem` (each `start`/`len`;
/// `value` is ignored) and the note stream `notes`. Each range's `p_vaddr`
/// equals its `p_paddr`, as QEMU writes when it knows no virtual address.
/// `progress` is called with the bytes of memory written so far.
///
/// Fails if a range cannot be read completely (a hole in `mem`), or an
/// address does not fit the class.
pub fn write_elf(
    out: &mut dyn Sink,
    opts: ElfOptions,
    mem: &dyn PhysRead,
    ranges: &[MapRange],
    notes: &[u8],
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let (ehsize, phentsize, shentsize) = if opts.is64 {
        (64u64, 56u64, 64u64)
    } else {
        (52, 32, 40)
    };
    let phnum = ranges
        .len()
        .checked_add(1)
        .ok_or(Error::Malformed("too many ranges"))?;
    let xnum = phnum >= 0xffff;
    let phoff = ehsize;
    let shoff = phoff + phentsize * phnum as u64;
    let notes_off = shoff + if xnum { shentsize } else { 0 };
    let mut data_off = notes_off + notes.len() as u64;
    let fits = |v: u64| opts.is64 || u32::try_from(v).is_ok();

    let mut h = Vec::with_capacity(usize::try_from(notes_off).unwrap_or(0));
    let w = Writer {
        e: opts.endian,
        is64: opts.is64,
    };
    // e_ident
    h.extend_from_slice(b"\x7fELF");
    h.push(if opts.is64 { 2 } else { 1 });
    h.push(if opts.endian == Endian::Little { 1 } else { 2 });
    h.push(1); // EV_CURRENT
    h.resize(16, 0);
    w.half(&mut h, 4); // ET_CORE
    w.half(&mut h, opts.machine);
    w.word(&mut h, 1);
    w.addr(&mut h, 0); // e_entry
    w.addr(&mut h, phoff);
    w.addr(&mut h, if xnum { shoff } else { 0 });
    w.word(&mut h, 0); // e_flags
    w.half(&mut h, ehsize as u16);
    w.half(&mut h, phentsize as u16);
    w.half(&mut h, if xnum { 0xffff } else { phnum as u16 });
    w.half(&mut h, if xnum { shentsize as u16 } else { 0 });
    w.half(&mut h, u16::from(xnum)); // e_shnum
    w.half(&mut h, 0); // e_shstrndx
                       // PT_NOTE
    w.phdr(
        &mut h,
        4,
        notes_off,
        0,
        notes.len() as u64,
        notes.len() as u64,
        0,
    );
    for r in ranges {
        let end = r
            .start
            .checked_add(r.len)
            .ok_or(Error::Malformed("range wraps around"))?;
        if !fits(end) || !fits(data_off + r.len) {
            return Err(Error::Unsupported("address does not fit a 32-bit ELF core"));
        }
        w.phdr(&mut h, 1, data_off, r.start, r.len, r.len, 7);
        data_off += r.len;
    }
    if xnum {
        // Section header 0: sh_info holds the real program-header count.
        let sh_start = h.len();
        h.resize(sh_start + shentsize as usize, 0);
        let info_off = if opts.is64 { 44 } else { 28 };
        let v = match opts.endian {
            Endian::Little => (phnum as u32).to_le_bytes(),
            Endian::Big => (phnum as u32).to_be_bytes(),
        };
        h[sh_start + info_off..sh_start + info_off + 4].copy_from_slice(&v);
    }
    out.put(&h)?;
    out.put(notes)?;
    let mut written = 0u64;
    for r in ranges {
        super::copy_range(out, mem, r, &mut written, progress)?;
    }
    Ok(())
}

struct Writer {
    e: Endian,
    is64: bool,
}

impl Writer {
    fn half(&self, v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&match self.e {
            Endian::Little => x.to_le_bytes(),
            Endian::Big => x.to_be_bytes(),
        });
    }
    fn word(&self, v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&match self.e {
            Endian::Little => x.to_le_bytes(),
            Endian::Big => x.to_be_bytes(),
        });
    }
    fn xword(&self, v: &mut Vec<u8>, x: u64) {
        v.extend_from_slice(&match self.e {
            Endian::Little => x.to_le_bytes(),
            Endian::Big => x.to_be_bytes(),
        });
    }
    fn addr(&self, v: &mut Vec<u8>, x: u64) {
        if self.is64 {
            self.xword(v, x)
        } else {
            self.word(v, x as u32)
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn phdr(
        &self,
        v: &mut Vec<u8>,
        kind: u32,
        off: u64,
        addr: u64,
        filesz: u64,
        memsz: u64,
        flags: u32,
    ) {
        self.word(v, kind);
        if self.is64 {
            self.word(v, flags);
            for x in [off, addr, addr, filesz, memsz, 0] {
                self.xword(v, x);
            }
        } else {
            for x in [off, addr, addr, filesz, memsz] {
                self.word(v, x as u32);
            }
            self.word(v, flags);
            self.word(v, 0);
        }
    }
}
