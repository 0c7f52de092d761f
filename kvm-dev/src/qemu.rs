//! A QEMU guest's RAM as the guest sees it: where QEMU puts the RAM block
//! in guest-physical space (by machine type), and where the running QEMU
//! process mapped it (`/proc/PID/cmdline`, `/proc/PID/maps`).
//!
//! Layouts (QEMU 7.2, `hw/i386/pc_piix.c`, `hw/i386/pc_q35.c`,
//! `hw/arm/virt.c`): on x86 the RAM block starts at guest-physical 0; a
//! `pc` (i440fx) machine with 3.5 GiB or more keeps 3 GiB below 4 GiB, a
//! `q35` machine with 2.75 GiB or more keeps 2 GiB, and the rest of the
//! block continues at 4 GiB. On the arm `virt` machine the block starts at
//! 1 GiB (0x4000_0000), in one piece.

use kvm_core::{Arch, MapRange};

/// 4 GiB: where x86 RAM above the PCI hole starts.
const FOUR_GIB: u64 = 1 << 32;
/// The arm `virt` machine's RAM base.
pub(crate) const VIRT_RAM_BASE: u64 = 0x4000_0000;
/// QEMU's default RAM size (`-m` absent).
const DEFAULT_RAM: u64 = 128 << 20;

/// What a QEMU command line says about the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuGuest {
    /// From the binary's name (`qemu-system-x86_64`, `qemu-system-aarch64`).
    pub arch: Arch,
    /// `-machine`/`-M` type, as given (`pc`, `q35`, `pc-q35-7.2`, `virt`).
    pub machine: String,
    /// `-m` in bytes.
    pub ram: u64,
}

/// Why a process is not a QEMU guest this module understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotQemu {
    /// argv\[0\] is not `qemu-system-*`; the command, for the message.
    Command(String),
    /// A target this crate has no layout for.
    Target(String),
    /// `-m` does not parse.
    Memory(String),
}

impl core::fmt::Display for NotQemu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NotQemu::Command(c) => write!(f, "not a QEMU process (its command is {c:?})"),
            NotQemu::Target(t) => write!(f, "QEMU target {t:?} is not x86_64 or aarch64"),
            NotQemu::Memory(m) => write!(f, "QEMU's -m {m:?} does not parse"),
        }
    }
}

/// The guest of the QEMU command line `argv` (`/proc/PID/cmdline` split at
/// NULs).
pub fn parse_cmdline(argv: &[String]) -> Result<QemuGuest, NotQemu> {
    let cmd = argv.first().map(String::as_str).unwrap_or("");
    let base = cmd.rsplit('/').next().unwrap_or(cmd);
    let target = base
        .strip_prefix("qemu-system-")
        .ok_or_else(|| NotQemu::Command(argv.join(" ")))?;
    let arch = match target {
        "x86_64" => Arch::X86_64,
        "aarch64" => Arch::Aarch64,
        t => return Err(NotQemu::Target(t.to_owned())),
    };
    let values = |names: &[&str]| -> Vec<&String> {
        argv.windows(2)
            .filter(|w| names.contains(&w[0].as_str()))
            .map(|w| &w[1])
            .collect()
    };
    let value = |names: &[&str]| values(names).last().map(|v| (*v).clone());
    // -machine options merge (`-M virt -machine memory-backend=ram`): the
    // type is the last one that names one.
    let machine = values(&["-machine", "-M", "--machine"])
        .iter()
        .rev()
        .find_map(|m| {
            m.split(',')
                .map(|kv| kv.strip_prefix("type=").unwrap_or(kv))
                .find(|kv| !kv.contains('=') && !kv.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| match arch {
            Arch::X86_64 => "pc".to_owned(),
            _ => String::new(),
        });
    let ram = match value(&["-m", "--m"]) {
        None => DEFAULT_RAM,
        Some(m) => parse_size(&m).ok_or(NotQemu::Memory(m))?,
    };
    Ok(QemuGuest { arch, machine, ram })
}

/// `-m` as QEMU reads it: `N[KMGT]` or `size=N[KMGT],…`, MiB without a
/// suffix.
fn parse_size(m: &str) -> Option<u64> {
    let v = m
        .split(',')
        .map(|kv| kv.strip_prefix("size=").unwrap_or(kv))
        .find(|kv| !kv.contains('='))?;
    let (num, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&v[..i], &v[i..]),
        None => (v, "M"),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "B" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The guest-physical ranges of a RAM block of `ram` bytes, each with the
/// offset in the block as `value`.
pub fn layout(arch: Arch, machine: &str, ram: u64) -> Vec<MapRange> {
    let split = |low: u64| {
        let mut v = vec![MapRange {
            start: 0,
            len: ram.min(low),
            value: 0,
        }];
        if ram > low {
            v.push(MapRange {
                start: FOUR_GIB,
                len: ram - low,
                value: low,
            });
        }
        v
    };
    match arch {
        Arch::Aarch64 => vec![MapRange {
            start: VIRT_RAM_BASE,
            len: ram,
            value: 0,
        }],
        _ if machine.contains("q35") => split(if ram >= 0xb000_0000 { 0x8000_0000 } else { ram }),
        _ => split(if ram >= 0xe000_0000 { 0xc000_0000 } else { ram }),
    }
}

/// A mapping of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// First host address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// `rw-p`, `rw-s`, …
    pub perms: String,
    /// The mapped file's device, `major:minor` in hex as the kernel prints it.
    pub dev: String,
    /// The mapped file's inode (0 when anonymous).
    pub inode: u64,
    /// The mapped file's path, if any.
    pub path: String,
}

/// The mappings of a `/proc/PID/maps` text (lines that do not parse are
/// skipped: the kernel writes this file, a bad line is not a QEMU's).
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            let start = u64::from_str_radix(a, 16).ok()?;
            let end = u64::from_str_radix(b, 16).ok()?;
            let perms = f.next()?.to_owned();
            let _offset = f.next()?;
            let dev = f.next()?.to_owned();
            let inode = f.next()?.parse().ok()?;
            let path = f.collect::<Vec<_>>().join(" ");
            Some(Mapping {
                start,
                len: end.checked_sub(start)?,
                perms,
                dev,
                inode,
                path,
            })
        })
        .collect()
}

/// The mappings that can be the guest's RAM block: readable and writable,
/// exactly `ram` bytes, in address order.
pub fn ram_candidates(maps: &[Mapping], ram: u64) -> Vec<&Mapping> {
    maps.iter()
        .filter(|m| m.len == ram && m.perms.starts_with("rw"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn command_lines_of_the_lab_and_others() {
        let g = parse_cmdline(&argv(
            "/usr/bin/qemu-system-x86_64 -machine q35,accel=tcg -m 256M -nographic",
        ))
        .unwrap();
        assert_eq!(
            g,
            QemuGuest {
                arch: Arch::X86_64,
                machine: "q35".into(),
                ram: 256 << 20
            }
        );
        let g = parse_cmdline(&argv(
            "qemu-system-aarch64 -M virt,gic-version=3 -m size=1G,slots=2",
        ))
        .unwrap();
        assert_eq!(
            (g.arch, g.machine.as_str(), g.ram),
            (Arch::Aarch64, "virt", 1 << 30)
        );
        let g = parse_cmdline(&argv("qemu-system-x86_64 -m 512")).unwrap();
        assert_eq!((g.machine.as_str(), g.ram), ("pc", 512 << 20));
        let g = parse_cmdline(&argv("qemu-system-x86_64 -machine memory-backend=ram")).unwrap();
        assert_eq!(g.machine, "pc");
        let g = parse_cmdline(&argv(
            "qemu-system-aarch64 -M virt -machine memory-backend=ram",
        ))
        .unwrap();
        assert_eq!(g.machine, "virt");
        let g = parse_cmdline(&argv("qemu-system-x86_64 -machine type=pc-q35-7.2")).unwrap();
        assert_eq!((g.machine.as_str(), g.ram), ("pc-q35-7.2", DEFAULT_RAM));
        assert_eq!(
            parse_cmdline(&argv("/bin/sleep 100")),
            Err(NotQemu::Command("/bin/sleep 100".into()))
        );
        assert_eq!(
            parse_cmdline(&argv("qemu-system-riscv64 -m 1G")),
            Err(NotQemu::Target("riscv64".into()))
        );
        assert_eq!(
            parse_cmdline(&argv("qemu-system-x86_64 -m 4X")),
            Err(NotQemu::Memory("4X".into()))
        );
    }

    #[test]
    fn layouts_split_where_qemu_splits() {
        assert_eq!(
            layout(Arch::X86_64, "pc", 256 << 20),
            vec![MapRange {
                start: 0,
                len: 256 << 20,
                value: 0
            }]
        );
        // q35 with 4 GiB: 2 GiB low, 2 GiB at 4 GiB.
        assert_eq!(
            layout(Arch::X86_64, "pc-q35-7.2", 4 << 30),
            vec![
                MapRange {
                    start: 0,
                    len: 2 << 30,
                    value: 0
                },
                MapRange {
                    start: 4 << 30,
                    len: 2 << 30,
                    value: 2 << 30
                },
            ]
        );
        // q35 with 2.5 GiB: one piece.
        assert_eq!(layout(Arch::X86_64, "q35", 0xa000_0000).len(), 1);
        // pc with 4 GiB: 3 GiB low.
        assert_eq!(
            layout(Arch::X86_64, "pc", 4 << 30)[1],
            MapRange {
                start: 4 << 30,
                len: 1 << 30,
                value: 3 << 30
            }
        );
        assert_eq!(
            layout(Arch::Aarch64, "virt", 1 << 30),
            vec![MapRange {
                start: 0x4000_0000,
                len: 1 << 30,
                value: 0
            }]
        );
    }

    #[test]
    fn ram_is_the_writable_mapping_of_its_size() {
        let maps =
            "55d1c0000000-55d1c0100000 r-xp 00000000 08:01 1234 /usr/bin/qemu-system-x86_64\n\
7f0000000000-7f0010000000 rw-p 00000000 00:00 0 \n\
7f0010000000-7f0010001000 ---p 00000000 00:00 0 \n\
7f2000000000-7f2010000000 rw-s 00000000 00:19 77 /dev/shm/lab ram\n\
garbage line\n";
        let m = parse_maps(maps);
        assert_eq!(m.len(), 4);
        assert_eq!(m[3].path, "/dev/shm/lab ram");
        assert_eq!(m[3].inode, 77);
        let c = ram_candidates(&m, 256 << 20);
        assert_eq!(
            c.iter().map(|m| m.start).collect::<Vec<_>>(),
            [0x7f00_0000_0000, 0x7f20_0000_0000]
        );
    }
}
