//! The walker's anchors: `init_task` (its symbol checked, or found without
//! one) and globals reached from the code that uses them, for arm64
//! kernels whose kallsyms holds functions only (no CONFIG_KALLSYMS_ALL).

use super::walker::{at, Linux};
use crate::Kernel;
use kvm_core::arch::aarch64::adrp::{adrp_target, adrp_targets};
use kvm_core::{Arch, Error, Result, VirtAddr, VirtReadExt};

/// Functions that take `&init_task` within their first 64 instructions
/// (`for_each_process`, `do_each_thread`): found by scanning Debian's
/// 6.1 arm64 vmlinux for ADRP/ADD pairs forming init_task's address;
/// long-lived, small, and unrelated to each other, so a kernel that
/// changed one still has the others.
const INIT_TASK_USERS: [&str; 5] = [
    "show_state_filter",
    "current_is_single_threaded",
    "thaw_kernel_threads",
    "clear_tasks_mm_cpumask",
    "send_sig_all",
];

impl<K: Kernel + ?Sized> Linux<'_, K> {
    /// The idle task of CPU 0: pid 0, no mm, its `tasks` list consistent
    /// (one neighbour linking back suffices: the other may be lost),
    /// its comm "swapper" (INIT_TASK_COMM; "swapper/0" once the CPU is
    /// up). The comm rules out the zeros and empty lists that fill most of
    /// `init_task` when a candidate address is off by a member's offset.
    pub(super) fn is_init_task(&self, t: u64) -> bool {
        let l = &self.l;
        let check = || -> Result<bool> {
            let (pid, tgid) = (self.u32_at(t, l.pid)?, self.u32_at(t, l.tgid)?);
            // Its list links back to it: through the first task's
            // `prev`, or (that task lost from the dump) the last's `next`.
            let node = t.wrapping_add(l.tasks);
            let linked = |link: u64, back: u64| {
                self.ptr(node, link)
                    .and_then(|n| self.ptr(n, back))
                    .is_ok_and(|b| b == node)
            };
            let mut comm = [0u8; 8];
            self.mem().read_virt_exact(at(t, l.comm)?, &mut comm)?;
            Ok(pid == 0
                && tgid == 0
                && (linked(0, 8) || linked(8, 0))
                && self.ptr(t, l.mm)? == 0
                && comm.starts_with(b"swapper")
                && matches!(comm[7], 0 | b'/'))
        };
        check().unwrap_or(false)
    }

    /// Finds `init_task` without its symbol: on arm64 from the functions
    /// that use its address early (each candidate checked with
    /// [`Self::is_init_task`]), else by [`Self::search_init_task`].
    pub(super) fn find_init_task(&self) -> Result<u64> {
        if self.k.arch() == Arch::Aarch64 {
            for f in INIT_TASK_USERS {
                let Some(at) = self.k.symbol(f) else { continue };
                let mut code = [0u8; 256];
                let Ok(n) = self.mem().read_virt(VirtAddr(at), &mut code) else {
                    continue;
                };
                let code = code.get(..n - n % 4).unwrap_or_default();
                // `for_each_process` starts by loading `init_task.tasks.next`.
                let found = adrp_targets(code, at)
                    .flat_map(|t| [t, t.wrapping_sub(self.l.tasks)])
                    .find(|&t| self.is_init_task(t));
                if let Some(t) = found {
                    return Ok(t);
                }
            }
        }
        self.search_init_task()
    }

    /// Searches the kernel image around `init_uts_ns` (both are in the
    /// image's data) for the idle task's comm "swapper/0" and validates
    /// each hit with [`Self::is_init_task`].
    fn search_init_task(&self) -> Result<u64> {
        let anchor = self
            .k
            .symbol("init_uts_ns")
            .ok_or(Error::Unsupported("no init_task and no init_uts_ns symbol"))?;
        // Nearest first: both live in the image's .data, usually within a
        // few MiB of each other, so most of the window is never read.
        const WINDOW: u64 = 48 << 20;
        const BLOCK: u64 = 64 << 10;
        let base = anchor & !(BLOCK - 1);
        let mut buf = alloc::vec![0u8; BLOCK as usize + 16];
        for d in 0..WINDOW / BLOCK {
            for at in [
                base.checked_add(d * BLOCK),
                base.checked_sub((d + 1) * BLOCK),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(t) = self.init_task_in(at, &mut buf) {
                    return Ok(t);
                }
            }
        }
        Err(Error::Unsupported(
            "init_task not found (no symbol, and no idle task near init_uts_ns)",
        ))
    }

    /// Looks for the idle task's comm "swapper/0" in the block at `at`
    /// (read page by page: the image's segments have unmapped gaps).
    fn init_task_in(&self, at: u64, buf: &mut [u8]) -> Option<u64> {
        let needle = b"swapper/0\0";
        let mut n = 0;
        while n < buf.len() {
            let end = (n + 4096).min(buf.len());
            match self
                .mem()
                .read_virt(VirtAddr(at + n as u64), &mut buf[n..end])
            {
                Ok(k) if k == end - n => n = end,
                _ => break,
            }
        }
        let mut i = 0;
        while let Some(p) = buf
            .get(i..n)
            .and_then(|w| w.windows(needle.len()).position(|x| x == needle))
        {
            let hit = at + (i + p) as u64;
            if let Some(t) = hit.checked_sub(self.l.comm) {
                if self.is_init_task(t) {
                    return Some(t);
                }
            }
            i += p + 1;
        }
        None
    }

    /// The global a small function loads first, for kernels without data
    /// symbols (arm64 only, see [`adrp_target`]).
    pub(super) fn global_from_code(&self, function: &'static str) -> Result<u64> {
        if self.k.arch() != Arch::Aarch64 {
            return Err(Error::Unsupported(function));
        }
        let f = self
            .k
            .symbol(function)
            .ok_or(Error::Unsupported(function))?;
        let mut code = [0u8; 64];
        let n = self.mem().read_virt(VirtAddr(f), &mut code)?;
        adrp_target(&code[..n - n % 4], f).ok_or(Error::Unsupported(function))
    }
}
