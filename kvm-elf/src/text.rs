//! `System.map` and `/proc/kallsyms`: one symbol a line,
//! `ADDRESS TYPE NAME`, with `\t[MODULE]` after module symbols in
//! `/proc/kallsyms`.

use crate::symtab::{AddrSpace, SymbolTable, SymbolTableBuilder};
use kvm_core::{Error, Result};

/// One parsed line: address, type letter, name, module.
type Line<'a> = (u64, u8, &'a str, Option<&'a str>);

/// Parses one line; `None` for a blank line.
fn parse_line(line: &[u8]) -> Result<Option<Line<'_>>> {
    let bad = Error::Malformed("symbol list: a line is not `ADDRESS TYPE NAME [[MODULE]]`");
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut fields = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|f| !f.is_empty());
    let Some(addr) = fields.next() else {
        return Ok(None);
    };
    let (Some(kind), Some(name)) = (fields.next(), fields.next()) else {
        return Err(bad);
    };
    let module = fields.next();
    if fields.next().is_some() {
        return Err(bad);
    }
    if addr.is_empty() || addr.len() > 16 {
        return Err(Error::Malformed(
            "symbol list: address is not 1 to 16 hex digits",
        ));
    }
    let addr = core::str::from_utf8(addr)
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .filter(|_| addr.iter().all(u8::is_ascii_hexdigit))
        .ok_or(Error::Malformed("symbol list: address is not hexadecimal"))?;
    let kind = match kind {
        [k] if k.is_ascii_graphic() => *k,
        _ => return Err(Error::Malformed("symbol list: type is not one letter")),
    };
    let name = core::str::from_utf8(name)
        .map_err(|_| Error::Malformed("symbol list: name is not UTF-8"))?;
    let module = match module {
        None => None,
        Some(m) => Some(
            m.strip_prefix(b"[")
                .and_then(|m| m.strip_suffix(b"]"))
                .filter(|m| !m.is_empty())
                .and_then(|m| core::str::from_utf8(m).ok())
                .ok_or(Error::Malformed("symbol list: module is not `[NAME]`"))?,
        ),
    };
    Ok(Some((addr, kind, name, module)))
}

fn parse(text: &[u8], space: AddrSpace, modules: bool) -> Result<SymbolTable> {
    let mut b = SymbolTableBuilder::new(space);
    for line in text.split(|b| *b == b'\n') {
        let Some((addr, kind, name, module)) = parse_line(line)? else {
            continue;
        };
        if module.is_some() && !modules {
            return Err(Error::Malformed("System.map: a line names a module"));
        }
        b.push_in(name, addr, kind, None, module)?;
    }
    Ok(b.finish())
}

impl SymbolTable {
    /// Parses a `System.map` (link-time addresses: call
    /// [`SymbolTable::relocate`] with the KASLR offset before using them
    /// with memory).
    ///
    /// Returns an error for a line that is not `ADDRESS TYPE NAME`.
    pub fn from_system_map(text: &[u8]) -> Result<SymbolTable> {
        parse(text, AddrSpace::LinkTime, false)
    }

    /// Parses the text of `/proc/kallsyms` (runtime addresses, module
    /// symbols with their `[module]`).
    ///
    /// Returns an error for a malformed line, and
    /// [`Error::Unsupported`] when every address is zero (the file was read
    /// without the right to see addresses: `kptr_restrict`).
    pub fn from_proc_kallsyms(text: &[u8]) -> Result<SymbolTable> {
        let t = parse(text, AddrSpace::Runtime, true)?;
        if !t.is_empty() && t.iter().all(|s| s.addr.0 == 0) {
            return Err(Error::Unsupported(
                "/proc/kallsyms shows no addresses (read it as root; kptr_restrict)",
            ));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_core::VirtAddr;

    #[test]
    fn system_map() {
        let t = SymbolTable::from_system_map(
            b"ffffffff81000000 T _text\r\n\n  ffffffff81000010 t x86_64_start\nffffffff82000000 D jiffies\n",
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.addr("jiffies"), Some(VirtAddr(0xffff_ffff_8200_0000)));
        assert_eq!(t.lookup("x86_64_start").unwrap().kind, b't');
    }

    #[test]
    fn proc_kallsyms_modules() {
        let t = SymbolTable::from_proc_kallsyms(
            b"ffffffff81000000 T _text\nffffffffc0001000 t foo_init\t[foo]\nffffffffc0002000 T foo_exit\t[foo]\n",
        )
        .unwrap();
        assert_eq!(t.lookup("foo_init").unwrap().module, Some("foo"));
        assert_eq!(t.lookup("_text").unwrap().module, None);
        assert!(SymbolTable::from_proc_kallsyms(b"0000000000000000 T _text\n").is_err());
        assert!(SymbolTable::from_system_map(b"ffffffffc0001000 t foo_init\t[foo]\n").is_err());
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"ffffffff81000000 T\n"[..],
            b"xyz T a\n",
            b"+1 T a\n",
            b"11111111111111111 T a\n",
            b"1 TT a\n",
            b"1 T a [m] extra\n",
            b"1 T a m\n",
            b"1 T a []\n",
            b"1 T \xff\n",
        ] {
            assert!(SymbolTable::from_proc_kallsyms(bad).is_err(), "{bad:?}");
        }
    }
}
