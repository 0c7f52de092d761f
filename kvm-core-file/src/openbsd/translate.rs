//! Kernel virtual addresses of a dead OpenBSD kernel, as libkvm translates
//! them (FORMATS.md §4.4).
//!
//! amd64 (`lib/libkvm/kvm_amd64.c`): an address inside the direct map
//! (`PMAP_DIRECT_BASE`..`PMAP_DIRECT_END` of `amd64/include/pmap.h`) is
//! the physical address `va - PMAP_DIRECT_BASE`, without reading a table;
//! any other goes through a 4-level walk from `ptdpaddr`. libkvm honours
//! 2 MiB pages only; the walk here (kvm-core's x86-64 walker) also takes
//! 1 GiB pages. libkvm's window test includes `PMAP_DIRECT_END` itself,
//! which is the first address past the window; here the window is
//! half-open.
//!
//! i386 (`lib/libkvm/kvm_i386.c`): a 2-level walk from the page directory.
//! libkvm knows no PAE; the walk here does PAE when the dump says so
//! (only this crate's i386 record can).

use core::ops::ControlFlow;
use kvm_core::arch::i386::I386;
use kvm_core::arch::x86_64::X86_64;
use kvm_core::{Error, PageRun, Paging, PhysAddr, PhysRead, Prot, Result};
use kvm_core::{Translate, Translation, VirtAddr};

/// OpenBSD amd64's direct map: the window of kernel virtual addresses
/// that map physical memory linearly (`PMAP_DIRECT_MAP(pa)` = base + pa).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectMap {
    /// `PMAP_DIRECT_BASE`.
    pub base: u64,
    /// `PMAP_DIRECT_END` (exclusive).
    pub end: u64,
}

impl DirectMap {
    /// The layout with `NUM_L4_SLOT_DIRECT` = 4 PML4 slots below the
    /// KERNBASE slot (511): slots 507..=510, 0xfffffd8000000000 to
    /// 0xffffff8000000000, 2 TiB (current `amd64/include/pmap.h`).
    pub const FOUR_SLOTS: DirectMap = DirectMap {
        base: 0xffff_fd80_0000_0000,
        end: 0xffff_ff80_0000_0000,
    };

    /// The older layout with one slot, `L4_SLOT_DIRECT` = 509:
    /// 0xfffffe8000000000 to 0xffffff0000000000, 512 GiB (`pmap.h`
    /// v1.39, 2011; slot 510 then held the alternate recursive PTEs).
    pub const SLOT_509: DirectMap = DirectMap {
        base: 0xffff_fe80_0000_0000,
        end: 0xffff_ff00_0000_0000,
    };

    /// Whether `va` lies in the window.
    pub fn contains(&self, va: u64) -> bool {
        va >= self.base && va < self.end
    }
}

/// The translator of an OpenBSD kcore dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KcoreTranslate {
    paging: Paging,
    /// The direct map (amd64 only).
    direct: Option<DirectMap>,
    /// The end of the dumped physical memory: direct-map runs of
    /// [`Translate::walk`] stop there.
    phys_end: u64,
}

impl KcoreTranslate {
    /// amd64: the direct map `direct`, else the tables at `ptdpaddr`;
    /// `phys_end` bounds the direct-map runs a walk reports.
    pub fn amd64(ptdpaddr: u64, direct: DirectMap, phys_end: u64) -> Result<Self> {
        Ok(KcoreTranslate {
            paging: Paging::X86_64(X86_64::new(PhysAddr(ptdpaddr), 4)?),
            direct: Some(direct),
            phys_end,
        })
    }

    /// i386: the page directory (non-PAE) or PDPT (PAE) at `ptdpaddr`.
    pub fn i386(ptdpaddr: u64, pae: bool) -> Self {
        let t = if pae {
            I386::new_pae(PhysAddr(ptdpaddr))
        } else {
            I386::new(PhysAddr(ptdpaddr))
        };
        KcoreTranslate {
            paging: Paging::I386(t),
            direct: None,
            phys_end: 0,
        }
    }

    /// The page tables the walk uses (also the base of process address
    /// spaces: [`Paging::user`]).
    pub fn paging(&self) -> Paging {
        self.paging
    }

    /// The direct-map window (amd64).
    pub fn direct_map(&self) -> Option<DirectMap> {
        self.direct
    }

    /// The same translator with another direct-map window (amd64).
    pub fn with_direct_map(mut self, d: DirectMap) -> Self {
        if self.direct.is_some() {
            self.direct = Some(d);
        }
        self
    }
}

/// The largest x86 page (1 GiB, 2 MiB, 4 KiB) that starts at `pa`
/// (aligned) and fits below `end`.
fn run_len(pa: u64, end: u64) -> u64 {
    [1u64 << 30, 1 << 21, 1 << 12]
        .into_iter()
        .find(|&s| pa.is_multiple_of(s) && end - pa >= s)
        .unwrap_or(end - pa)
}

impl Translate for KcoreTranslate {
    fn translate(&self, mem: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
        if let Some(d) = self.direct.filter(|d| d.contains(va.0)) {
            let off = va.0 & 0xfff;
            return Ok(Translation {
                pa: PhysAddr(va.0 - d.base),
                len: 0x1000 - off,
                page_size: 0x1000,
                prot: Prot::READ | Prot::WRITE,
            });
        }
        self.paging.translate(mem, va)
    }

    /// The tables' mappings outside the direct map, and the direct map
    /// itself for the dumped physical memory (as 1 GiB, 2 MiB and 4 KiB
    /// runs, in address order).
    fn walk(
        &self,
        mem: &dyn PhysRead,
        f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
    ) -> Result<()> {
        let Some(d) = self.direct else {
            return self.paging.walk(mem, f);
        };
        let direct = |f: &mut dyn FnMut(PageRun) -> ControlFlow<()>| {
            let end = self.phys_end.min(d.end - d.base);
            let mut pa = 0u64;
            while pa < end {
                let len = run_len(pa, end);
                let run = PageRun {
                    va: VirtAddr(d.base + pa),
                    pa: PhysAddr(pa),
                    len,
                    prot: Prot::READ | Prot::WRITE,
                };
                f(run)?;
                pa += len;
            }
            ControlFlow::Continue(())
        };
        // The direct runs go in when the table walk passes the window's
        // base (or after it, when no mapping lies above the window).
        let (mut direct_done, mut stopped) = (false, false);
        self.paging.walk(mem, &mut |run: PageRun| {
            if run.va.0 >= d.base && !direct_done {
                direct_done = true;
                if direct(f).is_break() {
                    stopped = true;
                    return ControlFlow::Break(());
                }
            }
            if d.contains(run.va.0) {
                return ControlFlow::Continue(());
            }
            let r = f(run);
            stopped = r.is_break();
            r
        })?;
        if !direct_done && !stopped {
            let _ = direct(f);
        }
        Ok(())
    }
}

/// Why an i386 dump made by OpenBSD has no translator here.
pub const NO_I386_ROOT: Error = Error::Unsupported(
    "OpenBSD kcore: i386 dumps made by OpenBSD carry no page-table root (libkvm reads the kernel symbol _PTDpaddr)",
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use kvm_core::arch::x86_64::Builder;

    #[test]
    fn windows_are_the_pml4_slots() {
        let slot = |s: u64| 0xffff_0000_0000_0000 | (s << 39);
        assert_eq!(DirectMap::FOUR_SLOTS.base, slot(507));
        assert_eq!(DirectMap::FOUR_SLOTS.end, slot(511));
        assert_eq!(DirectMap::SLOT_509.base, slot(509));
        assert_eq!(DirectMap::SLOT_509.end, slot(510));
        assert!(!DirectMap::FOUR_SLOTS.contains(slot(511)));
    }

    #[test]
    fn direct_map_then_tables() {
        let mut b = Builder::with_table_base(4, PhysAddr(0x10_0000));
        let kva = 0xffff_ffff_8020_0000u64;
        b.map(VirtAddr(kva), PhysAddr(0x40_0000), 0x20_0000, Prot::READ)
            .unwrap();
        // A table mapping inside the window is ignored: the window wins.
        let dva = DirectMap::FOUR_SLOTS.base + 0x3000;
        b.map(VirtAddr(dva), PhysAddr(0x7000), 0x1000, Prot::READ)
            .unwrap();
        let (mem, _) = b.finish();
        let t = KcoreTranslate::amd64(0x10_0000, DirectMap::FOUR_SLOTS, 0x60_0000).unwrap();
        let d = t.translate(&mem, VirtAddr(dva + 0x10)).unwrap();
        assert_eq!((d.pa, d.len), (PhysAddr(0x3010), 0xff0));
        let k = t.translate(&mem, VirtAddr(kva + 0x1234)).unwrap();
        assert_eq!((k.pa, k.page_size), (PhysAddr(0x40_1234), 0x20_0000));
        assert_eq!(
            t.with_direct_map(DirectMap::SLOT_509)
                .translate(&mem, VirtAddr(dva))
                .unwrap()
                .pa,
            PhysAddr(0x7000)
        );
        let mut runs = Vec::new();
        t.walk(&mem, &mut |r| {
            runs.push((r.va.0, r.pa.0, r.len));
            ControlFlow::Continue(())
        })
        .unwrap();
        let b = DirectMap::FOUR_SLOTS.base;
        assert_eq!(
            runs,
            [
                (b, 0, 0x20_0000),
                (b + 0x20_0000, 0x20_0000, 0x20_0000),
                (b + 0x40_0000, 0x40_0000, 0x20_0000),
                (kva, 0x40_0000, 0x20_0000),
            ]
        );
        // Stopping inside the direct runs stops the walk.
        let mut n = 0;
        t.walk(&mem, &mut |_| {
            n += 1;
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(n, 1);
    }
}
