//! The fake kernel's pid namespace: every `struct pid` the builder made
//! (leaders', process groups', sessions') in an idr of two levels of
//! `xa_node`s, each leader's pid linked to its `task_struct` through
//! `pid->tasks[PIDTYPE_TGID]`, and `init_task.thread_pid` to the
//! namespace (see [`Layout::compact_with_pid_idr`](super::Layout::compact_with_pid_idr)).
//! Also the loss of a task's memory, as a filtered dump loses pages.

use super::{FakeKernel, DIRECT_MAP};

/// Slots per node (`XA_CHUNK_SIZE`).
const CHUNK: u64 = 64;

impl FakeKernel {
    /// Puts every `struct pid` into a new namespace's idr and links the
    /// leaders' pids to their tasks. Call after the last task is added.
    pub fn build_pid_idr(&mut self) {
        let ns = self.alloc(self.layout.type_size("pid_namespace"));
        let init_pid = self.pids[&0];
        self.set(init_pid + self.off("pid.numbers"), "upid.ns", ns);
        self.set(self.init_task, "task_struct.thread_pid", init_pid);
        let tgid_type = self.layout.enumerator("PIDTYPE_TGID");
        let leaders: Vec<(u32, u64)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.tgid != 0)
            .map(|(&t, g)| (g.tgid, t))
            .collect();
        for (tgid, t) in leaders {
            let pid = self.pid_struct(tgid);
            let links = t + self.off("task_struct.pid_links") + 16 * tgid_type;
            self.poke_u64(pid + self.off("pid.tasks") + 8 * tgid_type, links);
            self.set(t, "task_struct.thread_pid", pid);
        }
        let size = self.layout.type_size("xa_node");
        let root = self.alloc(size);
        self.poke(root + self.off("xa_node.shift"), &[6]);
        let slots = self.off("xa_node.slots");
        let pids: Vec<(u32, u64)> = self.pids.iter().map(|(&n, &p)| (n, p)).collect();
        for (nr, pid) in pids.into_iter().filter(|&(nr, _)| nr != 0) {
            let (hi, lo) = (u64::from(nr) / CHUNK, u64::from(nr) % CHUNK);
            assert!(hi < CHUNK, "the fake idr holds pids below 4096");
            let slot = root + slots + 8 * hi;
            let mut child = self.peek_u64(slot);
            if child == 0 {
                let leaf = self.alloc(size);
                child = leaf | 2;
                self.poke_u64(slot, child);
            }
            self.poke_u64((child - 2) + slots + 8 * lo, pid);
        }
        let head = ns
            + self.off("pid_namespace.idr")
            + self.off("idr.idr_rt")
            + self.off("xarray.xa_head");
        self.poke_u64(head, root | 2);
    }

    /// Loses the memory of the object at `va` (`len` bytes, in the direct
    /// map): every page it touches reads as excluded from the dump.
    pub fn lose(&mut self, va: u64, len: u64) {
        self.kernel.mem.lose(va - DIRECT_MAP, len);
    }

    /// The `struct xa_node` pointer (as an internal entry) in slot `i` of
    /// the idr's root node.
    pub fn idr_root_slot(&self, i: u64) -> u64 {
        let init_pid = self.pids[&0];
        let ns = self.peek_u64(init_pid + self.off("pid.numbers") + self.off("upid.ns"));
        let head = ns
            + self.off("pid_namespace.idr")
            + self.off("idr.idr_rt")
            + self.off("xarray.xa_head");
        let root = self.peek_u64(head) - 2;
        root + self.off("xa_node.slots") + 8 * i
    }
}
