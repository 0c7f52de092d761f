//! A file of physical memory with no header: a running VM's RAM file
//! (QEMU's `-object memory-backend-file,mem-path=F,share=on`), or a raw
//! image (QEMU's `pmemsave`, `dd` of a RAM file).
//!
//! The file says nothing about itself, so: the process that maps it, if
//! one does, is found in `/proc/*/maps` (then the memory is live, and a
//! QEMU's command line gives the machine's layout); the kernel's
//! VMCOREINFO is found by a scan of the file ([`kvm_core::discover`]),
//! which also names the architecture. The guest-physical layout is then
//! QEMU's for that machine ([`crate::qemu::layout`]); with no QEMU to ask,
//! the file starts at physical 0 on x86 and at the kernel's
//! `NUMBER(PHYS_OFFSET)` on arm64.

use crate::mapped::MappedFile;
use crate::qemu::{self, QemuGuest};
use crate::DoorError;
use kvm_core::discover::{self, Found};
use kvm_core::{Arch, Endian, Error, MapRange, PhysAddr, PhysRead, Source, SourceInfo};
use kvm_core_file::raw::RawDump;
use kvm_core_file::FileReader;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The file being opened: live (a process maps it) or a dump.
enum Image {
    Live(MappedFile),
    Dump(RawDump<FileReader>),
}

impl Image {
    fn mem(&self) -> &dyn PhysRead {
        match self {
            Image::Live(m) => m,
            Image::Dump(d) => d,
        }
    }
    fn info_mut(&mut self) -> &mut SourceInfo {
        match self {
            Image::Live(m) => m.info_mut(),
            Image::Dump(d) => d.info_mut(),
        }
    }
    /// The source, with its physical layout.
    fn finish(self, ranges: Vec<MapRange>) -> Box<dyn Source> {
        match self {
            Image::Live(mut m) => {
                m.set_ranges(ranges);
                Box::new(m)
            }
            Image::Dump(d) => Box::new(d.with_ranges(ranges)),
        }
    }
}

/// A process that maps the file.
#[derive(Debug)]
struct Mapper {
    pid: u32,
    guest: Option<QemuGuest>,
}

/// `major:minor` as `/proc/PID/maps` prints a device.
fn dev_name(dev: u64) -> String {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("{major:02x}:{minor:02x}")
}

/// The first process whose maps show the file (`dev`, `ino`).
fn find_mapper(dev: u64, ino: u64) -> Option<Mapper> {
    let dev = dev_name(dev);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(maps) = std::fs::read_to_string(entry.path().join("maps")) else {
            continue;
        };
        if qemu::parse_maps(&maps)
            .iter()
            .any(|m| m.inode == ino && m.dev == dev)
        {
            let guest = crate::process::cmdline(pid)
                .ok()
                .and_then(|argv| qemu::parse_cmdline(&argv).ok());
            return Some(Mapper { pid, guest });
        }
    }
    None
}

/// The pid of the running QEMU that maps the file at `path`, if one does.
pub fn qemu_mapper(path: &Path) -> Option<u32> {
    let meta = std::fs::metadata(path).ok()?;
    find_mapper(meta.dev(), meta.ino())
        .filter(|m| m.guest.is_some())
        .map(|m| m.pid)
}

/// A RAM file QEMU maps is exactly its `-m`: anything else is not the
/// guest's RAM (or not all of it), and its layout would be wrong.
fn check_size(size: u64, g: &QemuGuest) -> Result<(), String> {
    if size == g.ram {
        Ok(())
    } else {
        Err(format!(
            "the file is {size} bytes but its QEMU's -m is {} bytes: not the guest's RAM",
            g.ram
        ))
    }
}

/// The physical address of file offset `off` under `ranges`.
pub(crate) fn pa_of_offset(ranges: &[MapRange], off: u64) -> Option<u64> {
    ranges
        .iter()
        .find(|r| off >= r.value && off - r.value < r.len)
        .map(|r| r.start + (off - r.value))
}

/// `found` (at a file offset) moved to its physical address.
pub(crate) fn relocate(found: Found, ranges: &[MapRange]) -> Found {
    let pa = pa_of_offset(ranges, found.pa.0).unwrap_or(found.pa.0);
    Found {
        pa: PhysAddr(pa),
        ..found
    }
}

/// Where an arm64 raw image starts in physical memory: the RAM base
/// (QEMU `virt` 1 GiB, many boards 2 GiB, some 0 or above 4 GiB) at which
/// `init_uts_ns` (a kernel-image symbol: physical = virtual −
/// `kimage_voffset`) holds "Linux" and the release VMCOREINFO states.
/// (`NUMBER(PHYS_OFFSET)` is no base: with the linear map randomized it
/// is "negative".) `mem` reads the file at physical = offset.
fn arm64_base(mem: &dyn PhysRead, vi: &kvm_core::VmCoreInfo, size: u64) -> Option<u64> {
    const BASES: [u64; 5] = [0x4000_0000, 0x8000_0000, 0, 0x8_8000_0000, 0x10_0000_0000];
    let pa = vi
        .symbol("init_uts_ns")?
        .wrapping_sub(vi.number("kimage_voffset")?);
    let release = vi.osrelease()?.as_bytes();
    BASES.into_iter().find(|&base| {
        let Some(off) = pa.checked_sub(base).filter(|&o| o < size) else {
            return false;
        };
        // struct new_utsname is 6 fields of 65 bytes; before 5.11 a kref
        // came first in struct uts_namespace.
        [0u64, 4].iter().any(|&skip| {
            let mut b = [0u8; 2 * 65 + 65];
            kvm_core::PhysReadExt::read_phys_exact(mem, PhysAddr(off + skip), &mut b).is_ok()
                && b.starts_with(b"Linux\0")
                && b[130..].starts_with(release)
        })
    })
}

/// Opens `path` as physical memory, for writing too when `write`.
pub fn open(path: &Path, write: bool) -> Result<Box<dyn Source>, DoorError> {
    let meta = std::fs::metadata(path).map_err(|e| DoorError::Io(path.to_path_buf(), e))?;
    let mapper = find_mapper(meta.dev(), meta.ino());
    let size = meta.len();
    if size == 0 {
        return Err(DoorError::Core(
            path.to_path_buf(),
            Error::Malformed("an empty file is no memory image"),
        ));
    }
    let format = if mapper.is_some() { "ram-file" } else { "raw" };
    let mut info = SourceInfo::new(format, Endian::Little);
    info.live = mapper.is_some();
    let whole = vec![MapRange {
        start: 0,
        len: size,
        value: 0,
    }];
    let mut mem = if mapper.is_some() {
        // Live: every read and write goes to the file.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|e| DoorError::Io(path.to_path_buf(), e))?;
        Image::Live(MappedFile::new(file, whole.clone(), write, info.clone()))
    } else {
        // A file no process maps is a dump, never written. Scanned for
        // VMCOREINFO with pread (a scan of a mapping would keep every
        // page it read resident: a 4 GiB file that is no memory image
        // would cost 4 GiB of RSS), then read mapped.
        let file =
            FileReader::open_unmapped(path).map_err(|e| DoorError::Io(path.to_path_buf(), e))?;
        Image::Dump(RawDump::new(file, whole.clone(), info.clone()))
    };
    let found = discover::find_vmcoreinfo(mem.mem(), &whole, 4096);
    if let (Image::Dump(_), Some(_)) = (&mem, &found) {
        let file = FileReader::open(path).map_err(|e| DoorError::Io(path.to_path_buf(), e))?;
        mem = Image::Dump(RawDump::new(file, whole.clone(), info));
    }
    let guest = mapper.as_ref().and_then(|m| m.guest.clone());
    let arch = guest
        .as_ref()
        .map(|g| g.arch)
        .or(found.as_ref().and_then(|f| f.arch));
    let Some(arch) = arch else {
        return Err(DoorError::Core(
            path.to_path_buf(),
            Error::Unsupported(
                "unknown dump format (not ELF, kdump, flattened kdump, LiME, FreeBSD minidump or OpenBSD kcore), \
                 and no kernel's VMCOREINFO in it read as raw memory",
            ),
        ));
    };
    if let Some(g) = &guest {
        check_size(size, g)
            .map_err(|why| DoorError::io(path, std::io::ErrorKind::InvalidInput, &why))?;
    }
    let ranges = match (&guest, arch) {
        (Some(g), _) => qemu::layout(g.arch, &g.machine, size),
        (None, Arch::Aarch64) => {
            let base = found
                .as_ref()
                .and_then(|f| arm64_base(mem.mem(), &f.vmcoreinfo, size))
                .unwrap_or(qemu::VIRT_RAM_BASE);
            vec![MapRange {
                start: base,
                len: size,
                value: 0,
            }]
        }
        (None, _) => whole,
    };
    let info = mem.info_mut();
    info.arch = Some(arch);
    match &mapper {
        Some(Mapper {
            pid,
            guest: Some(g),
        }) => info.remarks.push(format!(
            "guest RAM of the running QEMU pid {pid} (machine {:?}, {} MiB): its layout, live",
            g.machine,
            size >> 20
        )),
        Some(Mapper { pid, guest: None }) => info.remarks.push(format!(
            "mapped by the running process {pid} (not a QEMU this layer knows): physical 0 at offset 0, live"
        )),
        None => info.remarks.push(format!(
            "a raw image: physical {:#x} at offset 0",
            ranges[0].start
        )),
    }
    match found {
        Some(f) => relocate(f, &ranges).apply(info),
        None => info
            .remarks
            .push("no VMCOREINFO found in the file: the kernel cannot be located".into()),
    }
    Ok(mem.finish(ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_print_as_maps_does() {
        // makedev(0, 0x19) (tmpfs /dev/shm) and makedev(8, 1) (sda1).
        assert_eq!(dev_name(0x19), "00:19");
        assert_eq!(dev_name(0x801), "08:01");
        // makedev(259, 259): both above 255.
        let dev = (259u64 << 8) | 0x03 | (0x100u64 << 12);
        assert_eq!(dev_name(dev), "103:103");
    }

    #[test]
    fn a_ram_file_is_exactly_qemus_memory() {
        let g = QemuGuest {
            arch: Arch::X86_64,
            machine: "pc".into(),
            ram: 256 << 20,
        };
        assert_eq!(check_size(256 << 20, &g), Ok(()));
        assert_eq!(
            check_size(1000, &g),
            Err(
                "the file is 1000 bytes but its QEMU's -m is 268435456 bytes: not the guest's RAM"
                    .into()
            )
        );
    }

    #[test]
    fn offsets_map_to_physical_addresses() {
        let r = qemu::layout(Arch::X86_64, "q35", 4 << 30);
        assert_eq!(pa_of_offset(&r, 0x1000), Some(0x1000));
        assert_eq!(pa_of_offset(&r, (2 << 30) + 5), Some((4 << 30) + 5));
        assert_eq!(pa_of_offset(&r, 4 << 30), None);
    }
}
