//! `/proc/iomem`: the machine's physical address map, of which the
//! "System RAM" entries are the RAM `/dev/mem` may expose.
//!
//! Lines are `start-end : name` in hex, inclusive, nested entries indented
//! by two spaces per level. Without CAP_SYS_ADMIN the kernel prints every
//! address as 0 (`iomem_map_sanity_check` aside, `r_show` in
//! kernel/resource.c): that is reported, not taken for a map.

use kvm_core::MapRange;

/// Why the map could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IomemError {
    /// A line is not `start-end : name`.
    BadLine(String),
    /// Every address is zero: the reader lacks the rights to see them.
    Hidden,
}

/// The "System RAM" ranges of `text` (a `/proc/iomem`), sorted, with
/// `value` equal to `start` (for `/dev/mem`, the file offset is the
/// physical address).
pub fn system_ram(text: &str) -> Result<Vec<MapRange>, IomemError> {
    let mut ram = Vec::new();
    let mut any_nonzero = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || IomemError::BadLine(line.to_owned());
        let (span, name) = line.trim_start().split_once(" : ").ok_or_else(bad)?;
        let (a, b) = span.split_once('-').ok_or_else(bad)?;
        let start = u64::from_str_radix(a, 16).map_err(|_| bad())?;
        let end = u64::from_str_radix(b, 16).map_err(|_| bad())?;
        if end < start {
            return Err(bad());
        }
        any_nonzero |= end != 0;
        if name == "System RAM" {
            ram.push(MapRange {
                start,
                len: (end - start).saturating_add(1),
                value: start,
            });
        }
    }
    if !any_nonzero {
        return Err(IomemError::Hidden);
    }
    ram.sort_by_key(|r| r.start);
    Ok(ram)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head of a 256 MiB x86-64 QEMU guest's /proc/iomem.
    const X86: &str = "00000000-00000fff : Reserved\n\
00001000-0009fbff : System RAM\n\
0009fc00-0009ffff : Reserved\n\
000a0000-000bffff : PCI Bus 0000:00\n\
000f0000-000fffff : Reserved\n  000f0000-000fffff : System ROM\n\
00100000-0ffdffff : System RAM\n  01000000-01e00fff : Kernel code\n\
0ffe0000-0fffffff : Reserved\n";

    #[test]
    fn system_ram_of_an_x86_guest() {
        let r = system_ram(X86).unwrap();
        assert_eq!(
            r,
            vec![
                MapRange {
                    start: 0x1000,
                    len: 0x9ec00,
                    value: 0x1000
                },
                MapRange {
                    start: 0x10_0000,
                    len: 0xfee_0000,
                    value: 0x10_0000
                },
            ]
        );
    }

    #[test]
    fn hidden_addresses_and_bad_lines_are_errors() {
        let hidden = "00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n";
        assert_eq!(system_ram(hidden), Err(IomemError::Hidden));
        assert_eq!(
            system_ram("00001000-zz : System RAM\n"),
            Err(IomemError::BadLine("00001000-zz : System RAM".into()))
        );
        assert_eq!(
            system_ram("2000-1000 : System RAM\n"),
            Err(IomemError::BadLine("2000-1000 : System RAM".into()))
        );
    }
}
