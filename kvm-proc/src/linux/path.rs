//! A file's path as the kernel's `d_path` gives it: dentry names up to
//! the mount's root, across mounts (`struct mount`'s parent and mount
//! point) up to the process's root; the names the pseudo filesystems
//! make (`pipe:[ino]`, `socket:[ino]`, `anon_inode:name`) and " (deleted)"
//! for an unlinked dentry (fs/d_path.c, fs/pipe.c, net/socket.c,
//! fs/anon_inodes.c).

use super::layout::need;
use super::walker::{at, Linux};
use crate::Kernel;
use alloc::format;
use alloc::vec::Vec;
use kvm_core::{Error, Result, VirtReadExt};

/// Dentries and mounts a path may climb through before it is declared a
/// loop.
const MAX_DEPTH: usize = 4096;

/// Longest name read from a dentry (`NAME_MAX`).
const NAME_MAX: u64 = 255;

/// The offsets a path needs, resolved once.
#[derive(Clone, Copy, Debug)]
pub(super) struct PathLayout {
    d_parent: u64,
    d_name: u64,
    d_len: u64,
    d_hash_pprev: u64,
    d_op: u64,
    d_inode: u64,
    d_dname: Option<u64>,
    i_ino: u64,
    mnt_root: u64,
    /// `struct mount`: where its `mnt` (the `vfsmount`) is, its parent
    /// and mount point.
    mount_mnt: u64,
    mnt_parent: u64,
    mnt_mountpoint: u64,
    /// `struct path`.
    path_mnt: u64,
    path_dentry: u64,
}

impl PathLayout {
    pub(super) fn resolve<K: Kernel + ?Sized>(k: &K) -> Result<PathLayout> {
        Ok(PathLayout {
            d_parent: need(k, "dentry.d_parent")?,
            d_name: need(k, "dentry.d_name.name")?,
            d_len: need(k, "dentry.d_name.len")?,
            d_hash_pprev: need(k, "dentry.d_hash.pprev")?,
            d_op: need(k, "dentry.d_op")?,
            d_inode: need(k, "dentry.d_inode")?,
            d_dname: k.offset_of("dentry_operations.d_dname"),
            i_ino: need(k, "inode.i_ino")?,
            mnt_root: need(k, "vfsmount.mnt_root")?,
            mount_mnt: need(k, "mount.mnt")?,
            mnt_parent: need(k, "mount.mnt_parent")?,
            mnt_mountpoint: need(k, "mount.mnt_mountpoint")?,
            path_mnt: need(k, "path.mnt")?,
            path_dentry: need(k, "path.dentry")?,
        })
    }

    /// (vfsmount, dentry) of the `struct path` at `p`.
    pub(super) fn path_at<K: Kernel + ?Sized>(
        &self,
        l: &Linux<'_, K>,
        p: u64,
    ) -> Result<(u64, u64)> {
        Ok((l.ptr(p, self.path_mnt)?, l.ptr(p, self.path_dentry)?))
    }
}

impl<K: Kernel + ?Sized> Linux<'_, K> {
    /// A dentry's own name.
    fn dentry_name(&self, pl: &PathLayout, d: u64) -> Result<Vec<u8>> {
        let len = u64::from(self.u32_at(d, pl.d_len)?).min(NAME_MAX);
        let name = self.ptr(d, pl.d_name)?;
        let mut b = alloc::vec![0u8; len as usize];
        self.mem().read_virt_exact(at(name, 0)?, &mut b)?;
        Ok(b)
    }

    /// The path of (`mnt`, `dentry`) as seen from `root` (the process's
    /// `fs->root`), as `/proc/PID/fd` links and `/proc/PID/maps` print it.
    pub(super) fn d_path(
        &self,
        pl: &PathLayout,
        mnt: u64,
        dentry: u64,
        root: (u64, u64),
    ) -> Result<Vec<u8>> {
        let k = self.k;
        // The pseudo filesystems name their dentries themselves.
        if let Some(off) = pl.d_dname {
            let ops = self.ptr(dentry, pl.d_op)?;
            let dname = if ops == 0 { 0 } else { self.ptr(ops, off)? };
            if dname != 0 {
                let ino = || -> Result<u64> {
                    let inode = self.ptr(dentry, pl.d_inode)?;
                    self.ptr(inode, pl.i_ino)
                };
                if Some(dname) == k.symbol("pipefs_dname") {
                    return Ok(format!("pipe:[{}]", ino()?).into_bytes());
                }
                if Some(dname) == k.symbol("sockfs_dname") {
                    return Ok(format!("socket:[{}]", ino()?).into_bytes());
                }
                if Some(dname) == k.symbol("anon_inodefs_dname") {
                    let mut v = b"anon_inode:".to_vec();
                    v.extend(self.dentry_name(pl, dentry)?);
                    return Ok(v);
                }
                // simple_dname and others: the dentry's name.
            }
        }
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let (mut vfsmnt, mut d) = (mnt, dentry);
        let mut mount = vfsmnt.wrapping_sub(pl.mount_mnt);
        for _ in 0..MAX_DEPTH {
            if (vfsmnt, d) == root {
                return Ok(joined(&parts, self.unlinked(pl, dentry)?));
            }
            let parent = self.ptr(d, pl.d_parent)?;
            if d == self.ptr(vfsmnt, pl.mnt_root)? || d == parent {
                let up = self.ptr(mount, pl.mnt_parent)?;
                if up == mount || up == 0 {
                    // The namespace's root: the root given was not met.
                    return Ok(joined(&parts, self.unlinked(pl, dentry)?));
                }
                d = self.ptr(mount, pl.mnt_mountpoint)?;
                mount = up;
                vfsmnt = mount.wrapping_add(pl.mount_mnt);
                continue;
            }
            parts.push(self.dentry_name(pl, d)?);
            d = parent;
        }
        Err(Error::Malformed(
            "a dentry chain does not reach its root (corrupt or cyclic)",
        ))
    }

    /// `d_unlinked`: hashed out of the dentry cache, and not a root.
    fn unlinked(&self, pl: &PathLayout, d: u64) -> Result<bool> {
        let pprev = self.ptr(d, pl.d_hash_pprev)?;
        Ok(pprev == 0 && self.ptr(d, pl.d_parent)? != d)
    }
}

/// `/a/b/c` from the names innermost first, " (deleted)" appended for an
/// unlinked file.
fn joined(parts: &[Vec<u8>], deleted: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts.iter().rev() {
        v.push(b'/');
        v.extend_from_slice(p);
    }
    if v.is_empty() {
        v.push(b'/');
    }
    if deleted {
        v.extend_from_slice(b" (deleted)");
    }
    v
}
