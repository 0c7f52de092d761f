//! The processes a pid namespace knows, found without the task list: the
//! namespace's `idr` of `struct pid`s (an xarray since 4.20, a radix
//! tree of the same shape before), each leader's `struct pid` pointing
//! at its `task_struct` through `pid->tasks[PIDTYPE_TGID]`.
//!
//! This is the second road to the processes when a link of the task list
//! cannot be read (a `task_struct` page the dump tool excluded): the idr's
//! nodes and the `struct pid`s live in other slabs, so every process keeps
//! its pid even where its `task_struct` is lost (`alloc_pid` and
//! `attach_pid` in kernel/pid.c; the node layout is
//! include/linux/xarray.h's).

use super::layout::need;
use super::walker::{at, Linux};
use crate::Kernel;
use alloc::vec::Vec;
use kvm_core::{Error, Result, VirtReadExt};

/// Nodes of one idr visited at most: `PID_MAX_LIMIT` (4 Mi pids) in
/// nodes of 64 slots, and the nodes above them.
const MAX_NODES: usize = 1 << 17;
/// An xarray internal entry (`xa_is_internal`): its low two bits are 10.
const INTERNAL: u64 = 2;

/// A thread-group leader found in the idr: its pid and `task_struct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Leader {
    pub(super) pid: u32,
    pub(super) task: u64,
}

/// The leaders the idr gives, in pid order, and the first reason some
/// part of it could not be read.
#[derive(Debug, Default)]
pub(super) struct Leaders {
    pub(super) found: Vec<Leader>,
    pub(super) error: Option<Error>,
}

/// The offsets the idr walk reads.
struct IdrLayout {
    thread_pid: u64,
    upid_ns: u64,
    ns_head: u64,
    node_shift: u64,
    node_slots: u64,
    chunk: u64,
    pid_tasks: u64,
    tgid_links: u64,
    pid_nr: u64,
}

impl IdrLayout {
    fn resolve<K: Kernel + ?Sized>(k: &K) -> Result<IdrLayout> {
        let tgid = k
            .enum_value("PIDTYPE_TGID")
            .and_then(|v| u64::try_from(v).ok())
            .ok_or(Error::Unsupported("PIDTYPE_TGID"))?;
        let slots = need(k, "xa_node.slots")?;
        let chunk = k.size_of("xa_node.slots").unwrap_or(64 * 8) / 8;
        if !chunk.is_power_of_two() || !(2..=64).contains(&chunk) {
            return Err(Error::Malformed("xa_node.slots is not a power of two"));
        }
        Ok(IdrLayout {
            thread_pid: need(k, "task_struct.thread_pid")?,
            upid_ns: need(k, "upid.ns")?,
            ns_head: need(k, "pid_namespace.idr")?
                + need(k, "idr.idr_rt")?
                + need(k, "xarray.xa_head")?,
            node_shift: need(k, "xa_node.shift")?,
            node_slots: slots,
            chunk,
            pid_tasks: need(k, "pid.tasks")? + 8 * tgid,
            tgid_links: need(k, "task_struct.pid_links")? + 16 * tgid,
            pid_nr: need(k, "pid.numbers")? + need(k, "upid.nr")?,
        })
    }
}

impl<K: Kernel + ?Sized> Linux<'_, K> {
    /// Every thread-group leader of the initial pid namespace (the one
    /// `init_task`'s pid belongs to), in pid order. Parts of the tree
    /// that cannot be read are skipped and the first reason kept.
    pub(super) fn idr_leaders(&self) -> Result<Leaders> {
        let l = IdrLayout::resolve(self.k)?;
        let pid = self.ptr(self.init_task, l.thread_pid)?;
        let ns = self.ptr(pid, self.l.pid_numbers + l.upid_ns)?;
        let head = self.ptr(ns, l.ns_head)?;
        let mut out = Leaders::default();
        let mut pids = Vec::new();
        self.xa_entries(&l, head, &mut pids, &mut out.error)?;
        for (index, pid) in pids {
            match self.leader(&l, index, pid) {
                Ok(Some(found)) => out.found.push(found),
                Ok(None) => {}
                Err(e) => {
                    out.error.get_or_insert(e);
                }
            }
        }
        Ok(out)
    }

    /// The leader whose `struct pid` is at `pid` (idr index `index`),
    /// `None` for a pid that leads no thread group (a thread's, or a
    /// process group's whose leader is gone).
    fn leader(&self, l: &IdrLayout, index: u64, pid: u64) -> Result<Option<Leader>> {
        let nr = self.u32_at(pid, l.pid_nr)?;
        if u64::from(nr) != index {
            return Err(Error::Malformed(
                "a struct pid's number is not its index in the pid idr",
            ));
        }
        let first = self.ptr(pid, l.pid_tasks)?;
        if first == 0 {
            return Ok(None);
        }
        let task = first.checked_sub(l.tgid_links).ok_or(Error::Malformed(
            "a pid's task link is not in a task_struct",
        ))?;
        Ok(Some(Leader { pid: nr, task }))
    }

    /// The non-NULL pointer entries of the xarray whose head is `head`,
    /// with their indices, in index order. A node that cannot be read is
    /// skipped (its reason kept in `error`); one whose shift does not
    /// step down from its parent's ends the walk as corrupt.
    fn xa_entries(
        &self,
        l: &IdrLayout,
        head: u64,
        out: &mut Vec<(u64, u64)>,
        error: &mut Option<Error>,
    ) -> Result<()> {
        let bits = u64::from(l.chunk.trailing_zeros());
        // (entry, first index under it, the shift its node must have).
        let mut stack: Vec<(u64, u64, Option<u64>)> = alloc::vec![(head, 0, None)];
        let mut nodes = 0usize;
        let mut slots = alloc::vec![0u8; (l.chunk * 8) as usize];
        while let Some((entry, base, want)) = stack.pop() {
            if entry & 3 != INTERNAL {
                // A pointer (or NULL, or a value entry, never a pid).
                if entry != 0 && entry & 1 == 0 {
                    out.push((base, entry));
                }
                continue;
            }
            if entry <= 4096 {
                continue; // sibling, retry and zero entries
            }
            nodes += 1;
            if nodes > MAX_NODES {
                return Err(Error::Malformed("the pid idr has too many nodes"));
            }
            let node = entry - INTERNAL;
            let read = self
                .mem()
                .read_virt_exact(at(node, l.node_shift)?, &mut slots[..1])
                .map(|()| u64::from(slots[0]))
                .and_then(|shift| {
                    self.mem()
                        .read_virt_exact(at(node, l.node_slots)?, &mut slots)
                        .map(|()| shift)
                });
            let shift = match read {
                Ok(s) => s,
                Err(e) => {
                    error.get_or_insert(e);
                    continue;
                }
            };
            if shift % bits != 0 || shift >= 64 || want.is_some_and(|w| w != shift) {
                return Err(Error::Malformed("a pid idr node's shift is inconsistent"));
            }
            // Pushed last slot first: popped in index order.
            for i in (0..l.chunk).rev() {
                let b = &slots[(i * 8) as usize..(i * 8 + 8) as usize];
                let child = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                if child == 0 {
                    continue;
                }
                let index = base | (i << shift);
                let child_shift = if child & 3 == INTERNAL && child > 4096 {
                    if shift == 0 {
                        return Err(Error::Malformed("a pid idr leaf node holds a node"));
                    }
                    Some(shift - bits)
                } else {
                    None
                };
                stack.push((child, index, child_shift));
            }
        }
        Ok(())
    }
}
