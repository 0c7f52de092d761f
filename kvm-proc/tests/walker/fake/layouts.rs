//! The fake kernel's structure layouts: two made-up tables of member
//! offsets and sizes, type sizes and enumerator values ([`Layout::compact`]
//! and [`Layout::shuffled`]), and how the builder looks them up.

use std::collections::BTreeMap;

/// Member offsets and sizes, type sizes and enumerator values: what BTF
/// would say about one made-up kernel.
#[derive(Clone, Debug)]
pub struct Layout {
    pub(super) members: BTreeMap<&'static str, (u64, u64)>,
    pub(super) types: BTreeMap<&'static str, u64>,
    pub(super) enums: BTreeMap<&'static str, i64>,
}

impl Layout {
    fn new(
        members: &[(&'static str, u64, u64)],
        types: &[(&'static str, u64)],
        enums: &[(&'static str, i64)],
    ) -> Layout {
        Layout {
            members: members.iter().map(|&(p, o, s)| (p, (o, s))).collect(),
            types: types.iter().copied().collect(),
            enums: enums.iter().copied().collect(),
        }
    }

    /// A 5.14+-style kernel: `__state` (4 bytes), `task_struct.cpu`,
    /// `rss_stat` as an `atomic_long_t` array, the real `pid_type` and
    /// `MM_*` values. Packed tight, in an order of its own.
    pub fn compact() -> Layout {
        Layout::new(
            &[
                ("task_struct.comm", 0x00, 16),
                ("task_struct.tasks", 0x10, 16),
                ("task_struct.pid", 0x20, 4),
                ("task_struct.tgid", 0x24, 4),
                ("task_struct.__state", 0x28, 4),
                ("task_struct.exit_state", 0x2c, 4),
                ("task_struct.flags", 0x30, 4),
                ("task_struct.cpu", 0x34, 4),
                ("task_struct.on_cpu", 0x38, 4),
                ("task_struct.real_parent", 0x40, 8),
                ("task_struct.mm", 0x48, 8),
                ("task_struct.real_cred", 0x50, 8),
                ("task_struct.signal", 0x58, 8),
                ("task_struct.thread_node", 0x60, 16),
                ("task_struct.start_boottime", 0x70, 8),
                ("signal_struct.thread_head", 0x08, 16),
                ("signal_struct.pids", 0x18, 32),
                ("signal_struct.tty", 0x38, 8),
                ("pid.numbers", 0x10, 16),
                ("upid.nr", 0x00, 4),
                ("upid.ns", 0x08, 8),
                ("cred.uid", 0x04, 4),
                ("cred.gid", 0x08, 4),
                ("cred.suid", 0x0c, 4),
                ("cred.sgid", 0x10, 4),
                ("cred.euid", 0x14, 4),
                ("cred.egid", 0x18, 4),
                ("cred.fsuid", 0x1c, 4),
                ("mm_struct.pgd", 0x00, 8),
                ("mm_struct.rss_stat", 0x08, 32),
                ("mm_struct.arg_start", 0x28, 8),
                ("mm_struct.arg_end", 0x30, 8),
                ("mm_struct.env_start", 0x38, 8),
                ("mm_struct.env_end", 0x40, 8),
                ("mm_struct.total_vm", 0x48, 8),
                ("tty_struct.driver", 0x00, 8),
                ("tty_struct.index", 0x08, 4),
                ("tty_struct.name", 0x0c, 64),
                ("tty_driver.major", 0x04, 4),
                ("tty_driver.minor_start", 0x08, 4),
                ("uts_namespace.name", 0x08, 390),
                ("new_utsname.sysname", 0, 65),
                ("new_utsname.nodename", 65, 65),
                ("new_utsname.release", 130, 65),
                ("new_utsname.version", 195, 65),
                ("new_utsname.machine", 260, 65),
            ],
            &[
                ("task_struct", 0x80),
                ("signal_struct", 0x40),
                ("pid", 0x20),
                ("cred", 0x20),
                ("mm_struct", 0x50),
                ("tty_struct", 0x50),
                ("tty_driver", 0x10),
                ("uts_namespace", 0x190),
            ],
            &[
                ("PIDTYPE_PID", 0),
                ("PIDTYPE_TGID", 1),
                ("PIDTYPE_PGID", 2),
                ("PIDTYPE_SID", 3),
                ("PIDTYPE_MAX", 4),
                ("MM_FILEPAGES", 0),
                ("MM_ANONPAGES", 1),
                ("MM_SWAPENTS", 2),
                ("MM_SHMEMPAGES", 3),
                ("NR_MM_COUNTERS", 4),
            ],
        )
    }

    /// An older-style kernel in another order, with gaps: `state` (8
    /// bytes, no `__state`), `task_struct.thread_info.cpu`, `rss_stat` as
    /// `percpu_counter`s (6.2+), permuted `pid_type` and `MM_*` values.
    pub fn shuffled() -> Layout {
        Layout::new(
            &[
                ("task_struct.thread_info.cpu", 0x08, 4),
                ("task_struct.state", 0x18, 8),
                ("task_struct.on_cpu", 0x24, 4),
                ("task_struct.flags", 0x2c, 4),
                ("task_struct.start_boottime", 0x38, 8),
                ("task_struct.mm", 0x60, 8),
                ("task_struct.tasks", 0x90, 16),
                ("task_struct.exit_state", 0xa4, 4),
                ("task_struct.pid", 0xb0, 4),
                ("task_struct.tgid", 0xb4, 4),
                ("task_struct.real_parent", 0xc8, 8),
                ("task_struct.thread_node", 0xe0, 16),
                ("task_struct.real_cred", 0x100, 8),
                ("task_struct.signal", 0x118, 8),
                ("task_struct.comm", 0x150, 16),
                ("signal_struct.tty", 0x00, 8),
                ("signal_struct.pids", 0x10, 32),
                ("signal_struct.thread_head", 0x48, 16),
                ("pid.numbers", 0x28, 16),
                ("upid.ns", 0x00, 8),
                ("upid.nr", 0x08, 4),
                ("cred.euid", 0x08, 4),
                ("cred.egid", 0x0c, 4),
                ("cred.uid", 0x14, 4),
                ("cred.gid", 0x18, 4),
                ("cred.suid", 0x1c, 4),
                ("cred.sgid", 0x20, 4),
                ("cred.fsuid", 0x24, 4),
                ("mm_struct.env_end", 0x00, 8),
                ("mm_struct.env_start", 0x08, 8),
                ("mm_struct.arg_end", 0x10, 8),
                ("mm_struct.arg_start", 0x18, 8),
                ("mm_struct.rss_stat", 0x20, 4 * 40),
                ("mm_struct.total_vm", 0xc0, 8),
                ("mm_struct.pgd", 0xc8, 8),
                ("percpu_counter.count", 0x08, 8),
                ("tty_struct.name", 0x00, 64),
                ("tty_struct.index", 0x40, 4),
                ("tty_struct.driver", 0x48, 8),
                ("tty_driver.minor_start", 0x00, 4),
                ("tty_driver.major", 0x10, 4),
                ("uts_namespace.name", 0x20, 390),
                ("new_utsname.sysname", 0, 65),
                ("new_utsname.nodename", 65, 65),
                ("new_utsname.release", 130, 65),
                ("new_utsname.version", 195, 65),
                ("new_utsname.machine", 260, 65),
            ],
            &[
                ("task_struct", 0x180),
                ("signal_struct", 0x60),
                ("pid", 0x38),
                ("cred", 0x28),
                ("mm_struct", 0xd0),
                ("tty_struct", 0x50),
                ("tty_driver", 0x18),
                ("percpu_counter", 40),
                ("uts_namespace", 0x1b0),
            ],
            &[
                ("PIDTYPE_PID", 0),
                ("PIDTYPE_TGID", 3),
                ("PIDTYPE_PGID", 1),
                ("PIDTYPE_SID", 2),
                ("PIDTYPE_MAX", 4),
                ("MM_SWAPENTS", 0),
                ("MM_FILEPAGES", 1),
                ("MM_SHMEMPAGES", 2),
                ("MM_ANONPAGES", 3),
                ("NR_MM_COUNTERS", 4),
            ],
        )
    }

    /// [`Layout::compact`] with what open files and memory maps need:
    /// `task_struct.files`/`.fs`, the mm's maple tree and heap/stack
    /// bounds after its other members, and made-up dentry, mount, file,
    /// inode, fd table, VMA and maple node layouts.
    pub fn compact_with_files() -> Layout {
        let mut l = Layout::compact();
        assert_eq!(l.types["task_struct"], 0x80);
        assert_eq!(l.types["mm_struct"], 0x50);
        let more: &[(&'static str, u64, u64)] = &[
            ("task_struct.files", 0x80, 8),
            ("task_struct.fs", 0x88, 8),
            ("mm_struct.mm_mt.ma_root", 0x50, 8),
            ("mm_struct.start_brk", 0x58, 8),
            ("mm_struct.brk", 0x60, 8),
            ("mm_struct.start_stack", 0x68, 8),
            ("dentry.d_hash.pprev", 0x08, 8),
            ("dentry.d_parent", 0x18, 8),
            ("dentry.d_name.len", 0x24, 4),
            ("dentry.d_name.name", 0x28, 8),
            ("dentry.d_inode", 0x30, 8),
            ("dentry.d_op", 0x60, 8),
            ("dentry_operations.d_dname", 0x40, 8),
            ("inode.i_mode", 0x00, 2),
            ("inode.i_sb", 0x28, 8),
            ("inode.i_ino", 0x40, 8),
            ("super_block.s_dev", 0x10, 4),
            ("vfsmount.mnt_root", 0x00, 8),
            ("mount.mnt_parent", 0x10, 8),
            ("mount.mnt_mountpoint", 0x18, 8),
            ("mount.mnt", 0x20, 0x20),
            ("path.mnt", 0x00, 8),
            ("path.dentry", 0x08, 8),
            ("file.f_path", 0x10, 16),
            ("file.f_inode", 0x20, 8),
            ("file.f_flags", 0x40, 4),
            ("file.f_pos", 0x48, 8),
            ("fdtable.max_fds", 0x00, 4),
            ("fdtable.fd", 0x08, 8),
            ("fdtable.close_on_exec", 0x10, 8),
            ("files_struct.fdt", 0x20, 8),
            ("fs_struct.root", 0x18, 16),
            ("vm_area_struct.vm_start", 0x00, 8),
            ("vm_area_struct.vm_end", 0x08, 8),
            ("vm_area_struct.vm_flags", 0x20, 8),
            ("vm_area_struct.vm_pgoff", 0x28, 8),
            ("vm_area_struct.vm_file", 0x30, 8),
            ("vm_area_struct.vm_ops", 0x38, 8),
            ("vm_area_struct.vm_private_data", 0x40, 8),
            ("maple_range_64.pivot", 0x08, 15 * 8),
            ("maple_range_64.slot", 0x80, 16 * 8),
            ("maple_range_64.meta.end", 0xf8, 1),
            ("maple_arange_64.pivot", 0x08, 9 * 8),
            ("maple_arange_64.slot", 0x50, 10 * 8),
            ("maple_arange_64.meta.end", 0xf8, 1),
        ];
        l.members.extend(more.iter().map(|&(p, o, s)| (p, (o, s))));
        l.types.insert("task_struct", 0x90);
        l.types.insert("mm_struct", 0x70);
        l
    }

    /// [`Layout::compact`] with a pid namespace: `task_struct.pid_links`
    /// and `thread_pid`, `pid.tasks`, the namespace's idr and its
    /// `xa_node`s (64 slots), as 4.20+ kernels have them.
    pub fn compact_with_pid_idr() -> Layout {
        let mut l = Layout::compact();
        let more: &[(&'static str, u64, u64)] = &[
            ("task_struct.pid_links", 0x80, 64),
            ("task_struct.thread_pid", 0xc0, 8),
            ("pid.tasks", 0x20, 32),
            ("pid_namespace.idr", 0x08, 24),
            ("idr.idr_rt", 0x00, 16),
            ("xarray.xa_head", 0x08, 8),
            ("xa_node.shift", 0x00, 1),
            ("xa_node.slots", 0x28, 64 * 8),
        ];
        l.members.extend(more.iter().map(|&(p, o, s)| (p, (o, s))));
        l.types.insert("task_struct", 0xc8);
        l.types.insert("pid", 0x40);
        l.types.insert("pid_namespace", 0x40);
        l.types.insert("xa_node", 0x228);
        l
    }

    pub(super) fn has(&self, path: &str) -> bool {
        self.members.contains_key(path)
    }

    pub(super) fn member(&self, path: &str) -> (u64, u64) {
        *self
            .members
            .get(path)
            .unwrap_or_else(|| panic!("the fake layout has no {path}"))
    }

    pub(super) fn off(&self, path: &str) -> u64 {
        self.member(path).0
    }

    pub(super) fn type_size(&self, name: &str) -> u64 {
        *self
            .types
            .get(name)
            .unwrap_or_else(|| panic!("the fake layout has no type {name}"))
    }

    pub(super) fn enumerator(&self, name: &str) -> u64 {
        let v = *self
            .enums
            .get(name)
            .unwrap_or_else(|| panic!("the fake layout has no enumerator {name}"));
        u64::try_from(v).expect("non-negative enumerator")
    }
}
