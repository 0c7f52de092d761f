//! A process's memory map as `/proc/PID/maps` prints it: its VMAs from
//! the maple tree (6.1+, `mm->mm_mt`; lib/maple_tree.c) or the `mmap`
//! list before, each named as fs/proc/task_mmu.c's `show_map_vma` names
//! it (the file's path, a special mapping's name, `[heap]`, `[stack]`),
//! and x86-64's vsyscall page after them (`get_gate_vma`).

use super::layout::need;
use super::path::PathLayout;
use super::walker::{at, Linux};
use crate::{Kernel, Mapping};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use kvm_core::{Arch, Error, Result, VirtAddr, VirtReadExt};

/// VMAs and tree nodes a map may have before it is declared corrupt
/// (the kernel's `sysctl_max_map_count` is 65530 by default).
const MAX_VMAS: usize = 1 << 20;

/// `vm_flags` bits (include/linux/mm.h).
const VM_READ: u64 = 0x1;
const VM_WRITE: u64 = 0x2;
const VM_EXEC: u64 = 0x4;
const VM_MAYSHARE: u64 = 0x80;

/// Maple node types (`enum maple_type`) and the encoding of a node
/// pointer: type in bits 3..7, the node 256-byte aligned, internal
/// entries marked by low bits `10`.
const MAPLE_LEAF_64: u64 = 1;
const MAPLE_RANGE_64: u64 = 2;
const MAPLE_ARANGE_64: u64 = 3;

/// The maple tree's node layouts: pivots, slots and metadata of the
/// range (also leaf) and allocation-range nodes.
#[derive(Clone, Copy, Debug)]
struct Maple {
    root: u64,
    range: NodeLayout,
    arange: NodeLayout,
}

#[derive(Clone, Copy, Debug)]
struct NodeLayout {
    pivot: u64,
    pivots: u64,
    slot: u64,
    meta_end: u64,
}

impl NodeLayout {
    fn resolve<K: Kernel + ?Sized>(k: &K, ty: &str) -> Option<NodeLayout> {
        let f = |m: &str| alloc::format!("{ty}.{m}");
        Some(NodeLayout {
            pivot: k.offset_of(&f("pivot"))?,
            pivots: k.size_of(&f("pivot"))? / 8,
            slot: k.offset_of(&f("slot"))?,
            meta_end: k.offset_of(&f("meta.end"))?,
        })
    }
}

impl<K: Kernel + ?Sized> Linux<'_, K> {
    /// The VMAs of the mm at `mm`, lowest first.
    fn vmas(&self, mm: u64) -> Result<Vec<u64>> {
        let k = self.k;
        if let Some(mt) = k.offset_of("mm_struct.mm_mt.ma_root") {
            let maple = Maple {
                root: self.ptr(mm, mt)?,
                range: NodeLayout::resolve(k, "maple_range_64")
                    .ok_or(Error::Unsupported("maple_range_64"))?,
                arange: NodeLayout::resolve(k, "maple_arange_64")
                    .ok_or(Error::Unsupported("maple_arange_64"))?,
            };
            return self.maple_entries(&maple);
        }
        // Before 6.1: the `mmap` list, in address order.
        let first = self.ptr(mm, need(k, "mm_struct.mmap")?)?;
        let next = need(k, "vm_area_struct.vm_next")?;
        let mut v = Vec::new();
        let mut vma = first;
        while vma != 0 {
            if v.len() >= MAX_VMAS {
                return Err(Error::Malformed(
                    "the VMA list does not end (corrupt or cyclic)",
                ));
            }
            v.push(vma);
            vma = self.ptr(vma, next)?;
        }
        Ok(v)
    }

    /// The leaf entries of a maple tree, in index order: a depth-first
    /// walk taking each node's slots up to its data end
    /// (`ma_data_end`).
    fn maple_entries(&self, t: &Maple) -> Result<Vec<u64>> {
        let is_node = |e: u64| e & 3 == 2 && e > 4096;
        if t.root == 0 {
            return Ok(Vec::new());
        }
        if !is_node(t.root) {
            return Ok(alloc::vec![t.root]);
        }
        let mut out = Vec::new();
        let mut stack: Vec<(u64, u64)> = alloc::vec![(t.root, u64::MAX)];
        let mut seen = BTreeSet::new();
        while let Some((enode, max)) = stack.pop() {
            let node = enode & !0xff;
            if !seen.insert(node) || seen.len() > MAX_VMAS || out.len() > MAX_VMAS {
                return Err(Error::Malformed(
                    "the maple tree does not end (corrupt or cyclic)",
                ));
            }
            let ty = (enode >> 3) & 0xf;
            let nl = match ty {
                MAPLE_LEAF_64 | MAPLE_RANGE_64 => &t.range,
                MAPLE_ARANGE_64 => &t.arange,
                _ => {
                    return Err(Error::Malformed(
                        "a maple node of a type mm trees do not have",
                    ))
                }
            };
            let mut pivots = [0u64; 16];
            let n = (nl.pivots as usize).min(pivots.len());
            for (i, p) in pivots.iter_mut().enumerate().take(n) {
                *p = self.ptr(node, nl.pivot + 8 * i as u64)?;
            }
            let meta_end = || -> Result<u64> {
                let mut b = [0u8; 1];
                self.mem().read_virt_exact(at(node, nl.meta_end)?, &mut b)?;
                Ok(u64::from(b[0]))
            };
            let end = if ty == MAPLE_ARANGE_64 || pivots[n - 1] == 0 {
                meta_end()?
            } else if pivots[n - 1] == max {
                (n - 1) as u64
            } else {
                n as u64
            };
            if end > n as u64 {
                return Err(Error::Malformed("a maple node's end is past its slots"));
            }
            let slot = |i: u64| self.ptr(node, nl.slot + 8 * i);
            if ty == MAPLE_LEAF_64 {
                for i in 0..=end {
                    let e = slot(i)?;
                    // NULL: a gap; internal values are no VMAs.
                    if e != 0 && e & 3 == 0 {
                        out.push(e);
                    }
                }
            } else {
                for i in (0..=end).rev() {
                    let child = slot(i)?;
                    if !is_node(child) {
                        continue;
                    }
                    let child_max = pivots
                        .get(i as usize)
                        .copied()
                        .filter(|_| i < n as u64)
                        .unwrap_or(max);
                    stack.push((child, child_max));
                }
            }
        }
        Ok(out)
    }

    /// The memory map of the process whose leader is the task at `t`, as
    /// `/proc/PID/maps` lists it; empty for a task without an mm.
    /// `page_size`: the kernel's (file offsets are in pages).
    pub fn maps(&self, t: u64, page_size: u64) -> Result<Vec<Mapping>> {
        let k = self.k;
        let mm = self.ptr(t, self.l.mm)?;
        if mm == 0 {
            return Ok(Vec::new());
        }
        let pl = PathLayout::resolve(k)?;
        let fs = self.ptr(t, need(k, "task_struct.fs")?)?;
        let root = pl.path_at(self, at(fs, need(k, "fs_struct.root")?)?.0)?;
        let off = |m: &'static str| need(k, m);
        let (start, end, flags, pgoff, file) = (
            off("vm_area_struct.vm_start")?,
            off("vm_area_struct.vm_end")?,
            off("vm_area_struct.vm_flags")?,
            off("vm_area_struct.vm_pgoff")?,
            off("vm_area_struct.vm_file")?,
        );
        let (ops, private) = (
            off("vm_area_struct.vm_ops")?,
            off("vm_area_struct.vm_private_data")?,
        );
        let (f_path, f_inode, i_sb, s_dev, i_ino) = (
            off("file.f_path")?,
            off("file.f_inode")?,
            off("inode.i_sb")?,
            off("super_block.s_dev")?,
            off("inode.i_ino")?,
        );
        let ops_name = k.offset_of("vm_operations_struct.name");
        let special = k.symbol("special_mapping_name");
        let brk = (
            self.ptr(mm, off("mm_struct.start_brk")?)?,
            self.ptr(mm, off("mm_struct.brk")?)?,
        );
        let start_stack = self.ptr(mm, off("mm_struct.start_stack")?)?;
        let page_shift = page_size.max(1).trailing_zeros();
        let mut out = Vec::new();
        for vma in self.vmas(mm)? {
            let (s, e) = (self.ptr(vma, start)?, self.ptr(vma, end)?);
            if s >= e {
                return Err(Error::Malformed("a VMA that ends before it starts"));
            }
            let fl = self.ptr(vma, flags)?;
            let f = self.ptr(vma, file)?;
            let mut m = bare(s, e, fl);
            if f != 0 {
                let inode = self.ptr(f, f_inode)?;
                let dev = self.u32_at(self.ptr(inode, i_sb)?, s_dev)?;
                m.major = dev >> 20;
                m.minor = dev & 0xf_ffff;
                m.inode = self.ptr(inode, i_ino)?;
                m.offset = self.ptr(vma, pgoff)?.wrapping_shl(page_shift);
                let (mnt, dentry) = pl.path_at(self, at(f, f_path)?.0)?;
                m.name = Some(self.d_path(&pl, mnt, dentry, root)?);
            } else if let Some(name) = self.special_name(vma, ops, ops_name, special, private)? {
                m.name = Some(name);
            } else if s <= brk.1 && e >= brk.0 {
                m.name = Some(b"[heap]".to_vec());
            } else if s <= start_stack && e >= start_stack {
                m.name = Some(b"[stack]".to_vec());
            }
            out.push(m);
        }
        if let Some(gate) = self.gate_vma()? {
            out.push(gate);
        }
        Ok(out)
    }

    /// A special mapping's name (`[vdso]`, `[vvar]`): its `vm_ops` name
    /// the vma with `special_mapping_name`, which returns the first
    /// member of the `vm_special_mapping` in `vm_private_data`.
    fn special_name(
        &self,
        vma: u64,
        ops: u64,
        ops_name: Option<u64>,
        special: Option<u64>,
        private: u64,
    ) -> Result<Option<Vec<u8>>> {
        let (Some(name_off), Some(special)) = (ops_name, special) else {
            return Ok(None);
        };
        let o = self.ptr(vma, ops)?;
        if o == 0 || self.ptr(o, name_off)? != special {
            return Ok(None);
        }
        let sm = self.ptr(vma, private)?;
        let s = self.ptr(sm, 0)?;
        let mut b = [0u8; 64];
        let n = self.mem().read_virt(VirtAddr(s), &mut b)?;
        let len = b[..n].iter().position(|&c| c == 0).unwrap_or(n);
        Ok(Some(b[..len].to_vec()))
    }

    /// x86-64's vsyscall page, which every process's map ends with unless
    /// the kernel runs with `vsyscall=none` (`vsyscall_mode` NONE, 2).
    fn gate_vma(&self) -> Result<Option<Mapping>> {
        let k = self.k;
        if k.arch() != Arch::X86_64 {
            return Ok(None);
        }
        let (Some(gate), Some(mode)) = (k.symbol("gate_vma"), k.symbol("vsyscall_mode")) else {
            return Ok(None);
        };
        if self.u32_at(mode, 0)? == 2 {
            return Ok(None);
        }
        let off = |m: &'static str| need(k, m);
        let fl = self.ptr(gate, off("vm_area_struct.vm_flags")?)?;
        let mut m = bare(
            self.ptr(gate, off("vm_area_struct.vm_start")?)?,
            self.ptr(gate, off("vm_area_struct.vm_end")?)?,
            fl,
        );
        m.name = Some(b"[vsyscall]".to_vec());
        Ok(Some(m))
    }
}

/// A mapping of `[start, end)` with `vm_flags`' permissions and nothing
/// behind it yet (no file, no name).
fn bare(start: u64, end: u64, vm_flags: u64) -> Mapping {
    Mapping {
        start,
        end,
        read: vm_flags & VM_READ != 0,
        write: vm_flags & VM_WRITE != 0,
        exec: vm_flags & VM_EXEC != 0,
        shared: vm_flags & VM_MAYSHARE != 0,
        offset: 0,
        major: 0,
        minor: 0,
        inode: 0,
        name: None,
    }
}
