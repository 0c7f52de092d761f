//! `/proc/kcore`: the running Linux kernel's virtual memory as an ELF core
//! (`fs/proc/kcore.c`): one PT_LOAD per region (the kernel text, vmalloc
//! and modules, the direct map, vmemmap), `p_paddr` set for RAM and the
//! text since 4.19, VMCOREINFO in the notes. Read with the dump formats'
//! ELF reader (whose header read is sized from the program-header count),
//! marked live.

use crate::Amended;
use crate::DoorError;
use kvm_core::Source;
use std::path::Path;

/// Opens `path` (normally `/proc/kcore`) as the live kernel.
pub fn open(path: &Path) -> Result<Box<dyn Source>, DoorError> {
    let file = kvm_core_file::FileReader::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => DoorError::io(
            path,
            std::io::ErrorKind::PermissionDenied,
            "permission denied: reading the live kernel needs root (CAP_SYS_RAWIO), and a kernel in lockdown refuses it",
        ),
        std::io::ErrorKind::NotFound => DoorError::io(
            path,
            std::io::ErrorKind::NotFound,
            "no such file: no live kernel memory here (open a crash dump instead: -M CORE)",
        ),
        _ => DoorError::Io(path.to_path_buf(), e),
    })?;
    let source = kvm_core_file::open(file).map_err(|e| DoorError::Core(path.to_path_buf(), e))?;
    Ok(Box::new(Amended::live(source)))
}
