//! Symbols of an ELF kernel file (`.symtab`, else `.dynsym`), through
//! goblin: 32- and 64-bit, either byte order.
//!
//! goblin parses the file header, the section headers and the symbol
//! records; the string lookups and every bound are checked here, because
//! some goblin helpers index without checking.

use crate::symtab::{AddrSpace, SymbolTable, SymbolTableBuilder, MAX_NAME_LEN};
use goblin::container::Ctx;
use goblin::elf::section_header::{
    SectionHeader, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHN_ABS, SHN_COMMON, SHN_LORESERVE,
    SHN_UNDEF, SHN_XINDEX, SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB, SHT_SYMTAB_SHNDX,
};
use goblin::elf::sym::{
    Sym, Symtab, STB_GLOBAL, STB_GNU_UNIQUE, STB_WEAK, STT_FILE, STT_GNU_IFUNC, STT_OBJECT,
    STT_SECTION,
};
use goblin::elf::Elf;
use kvm_core::{Error, Result};

/// The NUL-terminated string at `off` in a string table.
fn string_at(strtab: &[u8], off: usize) -> Result<&str> {
    let bad = Error::Malformed("ELF: symbol name outside the string table");
    let rest = strtab.get(off..).ok_or(bad)?;
    let len = rest
        .iter()
        .take(MAX_NAME_LEN + 1)
        .position(|&b| b == 0)
        .ok_or(Error::Malformed(
            "ELF: symbol name not terminated or too long",
        ))?;
    core::str::from_utf8(rest.get(..len).ok_or(bad)?)
        .map_err(|_| Error::Malformed("ELF: symbol name is not UTF-8"))
}

/// The `nm` type letter of a defined symbol.
fn type_letter(sym: &Sym, shndx: usize, sections: &[SectionHeader]) -> u8 {
    let bind = sym.st_bind();
    let ty = sym.st_type();
    let letter = if shndx == SHN_COMMON as usize {
        b'C'
    } else if bind == STB_GNU_UNIQUE {
        return b'u';
    } else if ty == STT_GNU_IFUNC {
        return b'i';
    } else if bind == STB_WEAK {
        return if ty == STT_OBJECT { b'V' } else { b'W' };
    } else if shndx == SHN_ABS as usize {
        b'A'
    } else {
        match sections.get(shndx) {
            Some(sh) if sh.sh_type == SHT_NOBITS => b'B',
            Some(sh) if sh.sh_flags & u64::from(SHF_EXECINSTR) != 0 => b'T',
            Some(sh) if sh.sh_flags & u64::from(SHF_WRITE) != 0 && sh.is_alloc() => b'D',
            Some(sh) if sh.sh_flags & u64::from(SHF_ALLOC) != 0 => b'R',
            Some(_) => b'N',
            None => b'?',
        }
    };
    if bind == STB_GLOBAL || letter == b'?' {
        letter
    } else {
        letter.to_ascii_lowercase()
    }
}

impl SymbolTable {
    /// Reads the symbols of an ELF kernel file: `.symtab`, or `.dynsym`
    /// when there is no `.symtab`. Undefined, section and file symbols are
    /// left out; type letters follow `nm`; sizes come from `st_size` (0 =
    /// unknown). Addresses are link-time addresses
    /// ([`crate::AddrSpace::LinkTime`]).
    ///
    /// Returns an error for a file that is not ELF, has no symbol table, or
    /// whose tables point outside the file.
    pub fn from_elf(bytes: &[u8]) -> Result<SymbolTable> {
        SymbolTable::from_elf_read(&mut |off, len| {
            let bad = Error::Malformed("ELF: section outside the file");
            let start = usize::try_from(off).map_err(|_| bad)?;
            let len = usize::try_from(len).map_err(|_| bad)?;
            let end = start.checked_add(len).ok_or(bad)?;
            Ok(bytes.get(start..end).ok_or(bad)?.to_vec())
        })
    }

    /// [`SymbolTable::from_elf`] through `read(offset, len)`, which
    /// returns those bytes of the file (or the error of a range outside
    /// it: the reader checks before it allocates). Only the file header,
    /// the section headers and the symbol, string and extended-index
    /// tables are read: about 10 MB of a 600 MB debug vmlinux.
    pub fn from_elf_read(
        read: &mut dyn FnMut(u64, u64) -> Result<alloc::vec::Vec<u8>>,
    ) -> Result<SymbolTable> {
        // 64 bytes for ELF64, 52 for ELF32; less is no ELF file.
        let head = read(0, 64)
            .or_else(|_| read(0, 52))
            .map_err(|_| Error::Malformed("not an ELF file"))?;
        let header = Elf::parse_header(&head).map_err(|_| Error::Malformed("not an ELF file"))?;
        let container = header
            .container()
            .map_err(|_| Error::Malformed("ELF: bad class"))?;
        let endian = header
            .endianness()
            .map_err(|_| Error::Malformed("ELF: bad byte order"))?;
        let ctx = Ctx::new(container, endian);
        if header.e_shoff == 0 {
            return Err(Error::Malformed("ELF: no section headers"));
        }
        let outside = Error::Malformed("ELF: section headers outside the file");
        let size = SectionHeader::size(ctx) as u64;
        let mut count = u64::from(header.e_shnum);
        if count == 0 {
            // More sections than e_shnum holds: the null header's sh_size
            // has the count.
            let null = read(header.e_shoff, size).map_err(|_| outside)?;
            count = SectionHeader::parse_from(&null, 0, 1, ctx)
                .map_err(|_| outside)?
                .first()
                .map_or(0, |h| h.sh_size);
        }
        if count == 0 || count > 1 << 24 {
            return Err(Error::Malformed("ELF: no section headers, or too many"));
        }
        let table = read(header.e_shoff, count * size).map_err(|_| outside)?;
        let sections =
            SectionHeader::parse_from(&table, 0, count as usize, ctx).map_err(|_| outside)?;
        let mut section = |sh: &SectionHeader| read(sh.sh_offset, sh.sh_size);
        let symtab_index = sections
            .iter()
            .position(|s| s.sh_type == SHT_SYMTAB)
            .or_else(|| sections.iter().position(|s| s.sh_type == SHT_DYNSYM))
            .ok_or(Error::Malformed("ELF: no symbol table"))?;
        let symtab_sh = &sections[symtab_index];
        let syms_bytes = section(symtab_sh)?;
        let strtab_sh = usize::try_from(symtab_sh.sh_link)
            .ok()
            .and_then(|i| sections.get(i))
            .ok_or(Error::Malformed(
                "ELF: symbol table links to no string table",
            ))?;
        let strtab = section(strtab_sh)?;
        // Extended section indexes, for symbols whose st_shndx is SHN_XINDEX.
        let xindex = sections
            .iter()
            .find(|s| {
                s.sh_type == SHT_SYMTAB_SHNDX
                    && usize::try_from(s.sh_link).ok() == Some(symtab_index)
            })
            .map(&mut section)
            .transpose()?;
        let (strtab, xindex) = (&strtab[..], xindex.as_deref());

        let entsize = Sym::size(ctx.container);
        let count = syms_bytes.len() / entsize;
        if count > crate::symtab::MAX_SYMBOLS {
            return Err(Error::Unsupported("ELF: more than 16 Mi symbols"));
        }
        let syms = Symtab::parse(&syms_bytes, 0, count, ctx)
            .map_err(|_| Error::Malformed("ELF: bad symbol table"))?;

        let mut b = SymbolTableBuilder::new(AddrSpace::LinkTime);
        for (i, sym) in syms.iter().enumerate() {
            let ty = sym.st_type();
            if ty == STT_SECTION || ty == STT_FILE || sym.st_name == 0 {
                continue;
            }
            let mut shndx = sym.st_shndx;
            if shndx == SHN_UNDEF as usize {
                continue;
            }
            if shndx == SHN_XINDEX as usize {
                shndx = xindex
                    .and_then(|x| x.get(i.checked_mul(4)?..i.checked_mul(4)?.checked_add(4)?))
                    .and_then(|w| <[u8; 4]>::try_from(w).ok())
                    .map_or(usize::MAX, |w| {
                        let v = if ctx.is_little_endian() {
                            u32::from_le_bytes(w)
                        } else {
                            u32::from_be_bytes(w)
                        };
                        v as usize
                    });
            } else if shndx >= SHN_LORESERVE as usize
                && shndx != SHN_ABS as usize
                && shndx != SHN_COMMON as usize
            {
                shndx = usize::MAX;
            }
            let name = string_at(strtab, sym.st_name)?;
            if name.is_empty() {
                continue;
            }
            let kind = type_letter(&sym, shndx, &sections);
            let size = (sym.st_size != 0).then_some(sym.st_size);
            b.push(name, sym.st_value, kind, size)?;
        }
        if b.is_empty() {
            return Err(Error::Malformed("ELF: symbol table has no defined symbols"));
        }
        Ok(b.finish())
    }
}
