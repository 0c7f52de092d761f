//! `/dev/mem`: physical memory of the running machine, at offsets equal to
//! physical addresses, bounded by the "System RAM" ranges of `/proc/iomem`
//! (and, on x86, the first MiB, which the kernel always lets through).
//!
//! With CONFIG_STRICT_DEVMEM (Debian's kernels and most others) the kernel
//! refuses RAM: `read_mem` in drivers/char/mem.c fails with EPERM where
//! `devmem_is_allowed` says no, which on x86 is all RAM above 1 MiB (RAM
//! below it reads as zeros) and on arm64 all RAM. That refusal becomes
//! [`Error::Denied`] naming the option and the door that works instead.

use crate::iomem::{self, IomemError};
use crate::mapped::MappedFile;
use crate::DoorError;
use kvm_core::{
    Endian, Error, MapRange, OsHint, PhysAddr, PhysRead, PhysWrite, Result, Source, SourceInfo,
};
use std::path::Path;

/// The first MiB: always readable through `/dev/mem` on x86.
const LOW_MIB: u64 = 1 << 20;
/// What a refused read says.
const STRICT: &str = "/dev/mem refuses this RAM (CONFIG_STRICT_DEVMEM): read the running kernel through /proc/kcore instead (give no -M)";

/// `/dev/mem` as a source.
#[derive(Debug)]
pub struct DevMem {
    inner: MappedFile,
}

/// EPERM from `/dev/mem` is the kernel's devmem policy.
fn policy(e: Error) -> Error {
    match e {
        Error::Io { errno: EPERM } => Error::Denied(STRICT),
        e => e,
    }
}

/// EPERM (1 on Linux, every architecture).
const EPERM: i32 = 1;

/// The ranges `/dev/mem` is read in: "System RAM", and on x86 the first
/// MiB whole (ROMs and the BIOS area sit there, outside RAM).
fn ranges(ram: Vec<MapRange>, x86: bool) -> Vec<MapRange> {
    if !x86 {
        return ram;
    }
    let mut v = vec![MapRange {
        start: 0,
        len: LOW_MIB,
        value: 0,
    }];
    for r in ram {
        if r.end() <= LOW_MIB {
            continue;
        }
        let start = r.start.max(LOW_MIB);
        v.push(MapRange {
            start,
            len: r.end() - start,
            value: start,
        });
    }
    v
}

/// Opens `path` (a `/dev/mem`), for writing too when `write`.
pub fn open(path: &Path, write: bool) -> std::result::Result<Box<dyn Source>, DoorError> {
    let iomem_path = Path::new("/proc/iomem");
    let text = std::fs::read_to_string(iomem_path)
        .map_err(|e| DoorError::Io(iomem_path.to_path_buf(), e))?;
    let ram = iomem::system_ram(&text).map_err(|e| match e {
        IomemError::Hidden => DoorError::io(
            iomem_path,
            std::io::ErrorKind::PermissionDenied,
            "shows no addresses: reading /dev/mem needs root",
        ),
        IomemError::BadLine(l) => DoorError::io(
            iomem_path,
            std::io::ErrorKind::InvalidData,
            &format!("a line that does not parse: {l:?}"),
        ),
    })?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => DoorError::io(
                path,
                e.kind(),
                "permission denied: /dev/mem needs root (CAP_SYS_RAWIO)",
            ),
            _ => DoorError::Io(path.to_path_buf(), e),
        })?;
    let x86 = cfg!(any(target_arch = "x86_64", target_arch = "x86"));
    let mut info = SourceInfo::new("devmem", Endian::Little);
    info.arch = Some(crate::host_arch());
    info.os = Some(OsHint::Linux);
    info.live = true;
    let mut inner = MappedFile::new(file, ranges(ram, x86), write, info);
    // The kernel says where its VMCOREINFO note is; under STRICT_DEVMEM
    // it is RAM, and refused.
    match crate::sysfs_vmcoreinfo(&inner) {
        Ok(found) => found.apply(inner.info_mut()),
        Err(why) => inner
            .info_mut()
            .remarks
            .push(format!("no VMCOREINFO: {why}")),
    }
    Ok(Box::new(DevMem { inner }))
}

impl PhysRead for DevMem {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<usize> {
        self.inner.read_phys(pa, buf).map_err(policy)
    }
}

impl PhysWrite for DevMem {
    fn write_phys(&self, pa: PhysAddr, buf: &[u8]) -> Result<usize> {
        self.inner.write_phys(pa, buf).map_err(policy)
    }
}

impl Source for DevMem {
    fn info(&self) -> &SourceInfo {
        self.inner.info()
    }
    fn ranges(&self) -> &[MapRange] {
        self.inner.ranges()
    }
    fn phys_write(&self) -> Option<&dyn PhysWrite> {
        self.inner.phys_write().map(|_| self as &dyn PhysWrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_ranges_take_the_first_mib_whole() {
        let ram = vec![
            MapRange {
                start: 0x1000,
                len: 0x9ec00,
                value: 0x1000,
            },
            MapRange {
                start: 0x10_0000,
                len: 0xfee_0000,
                value: 0x10_0000,
            },
        ];
        let r = ranges(ram.clone(), true);
        assert_eq!(
            r,
            vec![
                MapRange {
                    start: 0,
                    len: LOW_MIB,
                    value: 0
                },
                ram[1]
            ]
        );
        assert_eq!(ranges(ram.clone(), false), ram);
    }

    #[test]
    fn eperm_is_the_devmem_policy() {
        assert_eq!(policy(Error::Io { errno: 1 }), Error::Denied(STRICT));
        assert_eq!(policy(Error::Io { errno: 5 }), Error::Io { errno: 5 });
    }
}
