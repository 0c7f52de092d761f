//! A running QEMU's guest RAM, read and written through `/proc/PID/mem`
//! (`-M qemu:PID`): the RAM block is the mapping of exactly `-m` bytes
//! (QEMU maps each RAM block on its own, with a guard page after it), its
//! guest-physical layout QEMU's for the machine type
//! ([`crate::qemu::layout`]). Reading another process's memory needs the
//! rights to ptrace it (root, or its user under `kernel.yama.ptrace_scope`
//! 0). Nothing is cached: every read goes to the running guest.

use crate::mapped::MappedFile;
use crate::qemu::{self, NotQemu};
use crate::DoorError;
use kvm_core::discover;
use kvm_core::{Endian, MapRange, Source, SourceInfo};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// `/proc/PID/cmdline` split at its NULs.
pub fn cmdline(pid: u32) -> std::io::Result<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    Ok(raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect())
}

/// The pid of the door name `qemu:PID`, when `path` is that and no file
/// of that name exists (a file wins).
pub fn door_pid(path: &Path) -> Option<u32> {
    let pid = path.to_str()?.strip_prefix("qemu:")?.parse().ok()?;
    (!path.exists()).then_some(pid)
}

/// Opens QEMU process `pid`'s guest RAM, for writing too when `write`.
pub fn open(pid: u32, write: bool) -> Result<Box<dyn Source>, DoorError> {
    let door = PathBuf::from(format!("qemu:{pid}"));
    let err = |kind, msg: &str| DoorError::io(&door, kind, msg);
    let argv = cmdline(pid).map_err(|e| match e.kind() {
        ErrorKind::NotFound => err(ErrorKind::NotFound, &format!("no process {pid}")),
        _ => DoorError::Io(door.clone(), e),
    })?;
    let guest = qemu::parse_cmdline(&argv).map_err(|e| {
        let kind = match e {
            NotQemu::Command(_) => ErrorKind::InvalidInput,
            _ => ErrorKind::Unsupported,
        };
        err(kind, &format!("process {pid} is {e}"))
    })?;
    let maps_path = format!("/proc/{pid}/maps");
    let maps = std::fs::read_to_string(&maps_path)
        .map_err(|e| DoorError::Io(PathBuf::from(&maps_path), e))?;
    let maps = qemu::parse_maps(&maps);
    let candidates = qemu::ram_candidates(&maps, guest.ram);
    if candidates.is_empty() {
        return Err(err(
            ErrorKind::NotFound,
            &format!(
                "no read-write mapping of {} bytes (QEMU's -m) in {maps_path}",
                guest.ram
            ),
        ));
    }
    let mem_path = PathBuf::from(format!("/proc/{pid}/mem"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .open(&mem_path)
        .map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => DoorError::io(
                &mem_path,
                e.kind(),
                "permission denied: reading QEMU's memory needs the rights to ptrace it (root, or its user with kernel.yama.ptrace_scope 0)",
            ),
            _ => DoorError::Io(mem_path.clone(), e),
        })?;
    let layout = qemu::layout(guest.arch, &guest.machine, guest.ram);
    let mut info = SourceInfo::new("qemu-process", Endian::Little);
    info.arch = Some(guest.arch);
    info.live = true;
    // The RAM block is the candidate where the kernel's VMCOREINFO is.
    let mut chosen = None;
    for c in &candidates {
        let ranges: Vec<MapRange> = layout
            .iter()
            .map(|r| MapRange {
                value: r.value + c.start,
                ..*r
            })
            .collect();
        let f = file
            .try_clone()
            .map_err(|e| DoorError::Io(mem_path.clone(), e))?;
        let mem = MappedFile::new(f, ranges.clone(), write, info.clone());
        if let Some(found) = discover::find_vmcoreinfo(&mem, &ranges, 4096) {
            chosen = Some((mem, Some(found), c.start));
            break;
        }
        chosen.get_or_insert((mem, None, c.start));
    }
    let (mut mem, found, host) = chosen.expect("at least one candidate");
    let info = mem.info_mut();
    info.remarks.push(format!(
        "guest RAM of QEMU pid {pid} (machine {:?}, {} MiB) at host address {host:#x}, of {} mappings of its size; live",
        guest.machine,
        guest.ram >> 20,
        candidates.len()
    ));
    match found {
        // The scan ran on physical addresses already.
        Some(f) => f.apply(info),
        None => info
            .remarks
            .push("no VMCOREINFO found in the guest's RAM: the kernel cannot be located".into()),
    }
    Ok(Box::new(mem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_is_not_qemu_is_refused_by_name() {
        // This test's own process is not QEMU.
        let me = std::process::id();
        let e = open(me, false).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("qemu:{me}: process {me} is not a QEMU process")),
            "{text}"
        );
        match e {
            DoorError::Io(_, io) => assert_eq!(io.kind(), ErrorKind::InvalidInput),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_process_is_named() {
        // Pids are below 2^22 on Linux.
        let e = open(u32::MAX - 1, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("qemu:{}: no process {}", u32::MAX - 1, u32::MAX - 1)
        );
    }
}
