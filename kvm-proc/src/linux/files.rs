//! A process's open files, as `/proc/PID/fd` and `/proc/PID/fdinfo` show
//! them: its fd table (`files->fdt`: `max_fds` slots of `struct file *`,
//! and the close-on-exec bitmap), each file's path (`d_path`), flags and
//! position (fs/proc/fd.c).

use super::layout::need;
use super::path::PathLayout;
use super::walker::{at, Linux};
use crate::{Kernel, OpenFile};
use alloc::vec::Vec;
use kvm_core::{Error, Result, VirtReadExt};

/// Most descriptors a table may have (`NR_OPEN`, the kernel's own cap on
/// `fs.nr_open`): a larger `max_fds` is corrupt.
const NR_OPEN: u32 = 1 << 20;

/// `O_CLOEXEC` as fdinfo adds it to the flags.
const O_CLOEXEC: u32 = 0o2000000;

/// The `S_IFMT` kinds.
fn kind(mode: u16) -> &'static str {
    match mode & 0o170000 {
        0o140000 => "socket",
        0o120000 => "link",
        0o100000 => "file",
        0o060000 => "block",
        0o040000 => "dir",
        0o020000 => "char",
        0o010000 => "fifo",
        _ => "unknown",
    }
}

impl<K: Kernel + ?Sized> Linux<'_, K> {
    /// The open files of the process whose leader is the task at `t`, by
    /// descriptor; empty for a task without a file table (kernel threads,
    /// zombies).
    pub fn files(&self, t: u64) -> Result<Vec<OpenFile>> {
        let k = self.k;
        let files = self.ptr(t, need(k, "task_struct.files")?)?;
        if files == 0 {
            return Ok(Vec::new());
        }
        let pl = PathLayout::resolve(k)?;
        let fs = self.ptr(t, need(k, "task_struct.fs")?)?;
        let root = pl.path_at(self, at(fs, need(k, "fs_struct.root")?)?.0)?;
        let fdt = self.ptr(files, need(k, "files_struct.fdt")?)?;
        let max = self.u32_at(fdt, need(k, "fdtable.max_fds")?)?;
        if max > NR_OPEN {
            return Err(Error::Malformed(
                "an fd table with more slots than the kernel allows (NR_OPEN)",
            ));
        }
        let fd_array = self.ptr(fdt, need(k, "fdtable.fd")?)?;
        let cloexec = self.ptr(fdt, need(k, "fdtable.close_on_exec")?)?;
        let off = |m: &'static str| need(k, m);
        let (f_path, f_flags, f_pos, f_inode, i_mode, i_ino) = (
            off("file.f_path")?,
            off("file.f_flags")?,
            off("file.f_pos")?,
            off("file.f_inode")?,
            off("inode.i_mode")?,
            off("inode.i_ino")?,
        );
        let mut out = Vec::new();
        // The table in pages of pointers, not a slot at a time.
        let mut chunk = alloc::vec![0u8; 4096];
        let mut fd = 0u32;
        while fd < max {
            let n = (max - fd).min(512);
            let b = &mut chunk[..n as usize * 8];
            self.mem()
                .read_virt_exact(at(fd_array, u64::from(fd) * 8)?, b)?;
            for (i, p) in b.chunks_exact(8).enumerate() {
                let mut w = [0u8; 8];
                w.copy_from_slice(p);
                let file = u64::from_le_bytes(w);
                if file == 0 {
                    continue;
                }
                let fd = fd + i as u32;
                let word = self.ptr(cloexec, u64::from(fd / 64) * 8)?;
                let mut flags = self.u32_at(file, f_flags)?;
                if word >> (fd % 64) & 1 == 1 {
                    flags |= O_CLOEXEC;
                }
                let (mnt, dentry) = pl.path_at(self, at(file, f_path)?.0)?;
                let inode = self.ptr(file, f_inode)?;
                let mut mode = [0u8; 2];
                self.mem().read_virt_exact(at(inode, i_mode)?, &mut mode)?;
                let mode = u16::from_le_bytes(mode);
                let path = self.d_path(&pl, mnt, dentry, root)?;
                let kind = match path.starts_with(b"anon_inode:") {
                    true => "anon_inode",
                    false => kind(mode),
                };
                out.push(OpenFile {
                    fd,
                    path,
                    flags,
                    pos: self.ptr(file, f_pos)? as i64,
                    kind,
                    mode,
                    inode: self.ptr(inode, i_ino)?,
                    file,
                });
            }
            fd += n;
        }
        Ok(out)
    }
}
