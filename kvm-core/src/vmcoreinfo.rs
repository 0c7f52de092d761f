//! VMCOREINFO: the `KEY=VALUE` text the Linux kernel leaves for dump tools
//! (an ELF note, a kdump sub-header block, or kernel memory).
//!
//! Value encodings follow the kernel's `vmcoreinfo_append_str` users
//! (FORMATS.md §2.4): `SYMBOL(...)`, `KERNELOFFSET` and `KERNELOFFPHYS` are
//! bare hex; `NUMBER(...)` is decimal except the values some architectures
//! print with `0x`; `OFFSET`/`SIZE`/`LENGTH`/`PAGESIZE` are decimal.

use crate::{Error, Result};
use alloc::string::String;
use alloc::vec::Vec;

/// Largest VMCOREINFO text accepted (the kernel's buffer is one page).
pub const MAX_LEN: usize = 1 << 20;

/// Parsed VMCOREINFO: the raw entries plus typed accessors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmCoreInfo {
    entries: Vec<(String, String)>,
}

impl VmCoreInfo {
    /// Parses the text. Lines without `=` and a last line without `\n`
    /// (truncation) are ignored; later duplicates win on lookup.
    pub fn parse(text: &[u8]) -> Result<Self> {
        if text.len() > MAX_LEN {
            return Err(Error::Malformed("VMCOREINFO larger than 1 MiB"));
        }
        // Some producers NUL-pad the note.
        let text = match text.iter().position(|&b| b == 0) {
            Some(n) => &text[..n],
            None => text,
        };
        let mut entries = Vec::new();
        let mut lines = text.split(|&b| b == b'\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() {
                break; // no trailing newline: possibly cut short
            }
            let Some(eq) = line.iter().position(|&b| b == b'=') else {
                continue;
            };
            let key = String::from_utf8_lossy(&line[..eq]).into_owned();
            let val = String::from_utf8_lossy(&line[eq + 1..]).into_owned();
            entries.push((key, val));
        }
        if entries.is_empty() {
            return Err(Error::Malformed("VMCOREINFO holds no KEY=VALUE line"));
        }
        Ok(VmCoreInfo { entries })
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The raw value of `key` (the last one if repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn keyed(&self, kind: &str, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| {
                k.len() == kind.len() + name.len() + 2
                    && k.starts_with(kind)
                    && k.as_bytes()[kind.len()] == b'('
                    && k[kind.len() + 1..].starts_with(name)
                    && k.ends_with(')')
            })
            .map(|(_, v)| v.as_str())
    }

    /// `OSRELEASE`: the kernel release (`uname -r`).
    pub fn osrelease(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    /// `PAGESIZE`, when it is a power of two.
    pub fn page_size(&self) -> Option<u64> {
        self.get("PAGESIZE")
            .and_then(parse_dec)
            .filter(|p| p.is_power_of_two())
    }

    /// `KERNELOFFSET`: the KASLR slide of the kernel image (0 without KASLR).
    pub fn kernel_offset(&self) -> Option<u64> {
        self.get("KERNELOFFSET").and_then(parse_hex)
    }

    /// `SYMBOL(name)`: a runtime (already relocated) address.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.keyed("SYMBOL", name).and_then(parse_hex)
    }

    /// `NUMBER(name)`, decimal or `0x` hex, possibly negative (two's
    /// complement, as `phys_base` can be).
    pub fn number(&self, name: &str) -> Option<u64> {
        self.keyed("NUMBER", name).and_then(parse_auto)
    }

    /// `OFFSET(type.member)`.
    pub fn offset(&self, name: &str) -> Option<u64> {
        self.keyed("OFFSET", name).and_then(parse_dec)
    }

    /// `SIZE(type)`.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.keyed("SIZE", name).and_then(parse_dec)
    }

    /// `LENGTH(symbol)`.
    pub fn length(&self, name: &str) -> Option<u64> {
        self.keyed("LENGTH", name).and_then(parse_dec)
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

fn parse_dec(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

fn parse_auto(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok();
    }
    match s.strip_prefix('-') {
        Some(d) => d.parse::<u64>().ok().map(u64::wrapping_neg),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values() {
        let t = b"OSRELEASE=6.1.0-28-cloud-amd64\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff9a40a000\n\
NUMBER(phys_base)=-115343360\nNUMBER(kimage_voffset)=0xffff800008000000\nOFFSET(list_head.next)=0\n\
SIZE(page)=64\nLENGTH(mem_section)=2048\nKERNELOFFSET=18400000\nSYMBOL(init_top_pgt_x)=1\nCRASHTIME=17";
        let v = VmCoreInfo::parse(t).unwrap();
        assert_eq!(v.osrelease(), Some("6.1.0-28-cloud-amd64"));
        assert_eq!(v.page_size(), Some(4096));
        assert_eq!(v.symbol("init_top_pgt"), Some(0xffff_ffff_9a40_a000));
        assert_eq!(v.number("phys_base"), Some((-115_343_360i64) as u64));
        assert_eq!(v.number("kimage_voffset"), Some(0xffff_8000_0800_0000));
        assert_eq!(v.offset("list_head.next"), Some(0));
        assert_eq!(v.size("page"), Some(64));
        assert_eq!(v.length("mem_section"), Some(2048));
        assert_eq!(v.kernel_offset(), Some(0x1840_0000));
        assert_eq!(v.get("CRASHTIME"), None, "truncated last line is ignored");
        assert!(VmCoreInfo::parse(b"garbage").is_err());
        assert!(VmCoreInfo::parse(&[b'a'; MAX_LEN + 1]).is_err());
    }
}
