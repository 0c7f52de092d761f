//! Enumerating a minidump's kernel mappings in VA order
//! ([`kvm_core::Translate::walk`], FreeBSD's `kvm_walk_pages`): the pages
//! of the page-table section, and the direct map's dumped pages. The
//! section is read 4 KiB at a time: it can be many MiB.

use super::translate::{arm_prot, x86_prot, ARM_OA, FRAME_2M, FRAME_4K, PG_PS, PG_V};
use super::MinidumpDump;
use crate::{ReadAt, Result};
use core::ops::ControlFlow;
use kvm_core::{Arch, PageRun, PhysAddr, PhysReadExt, Prot, VirtAddr};

const K4: u64 = 0x1000;
const M2: u64 = 0x20_0000;

fn le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(a)
}

impl<R: ReadAt> MinidumpDump<R> {
    /// Calls `f(index, entry)` for every non-zero entry of the
    /// page-table section, in order, until it breaks.
    fn each_entry(
        &self,
        mut f: impl FnMut(u64, u64) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        let es = self.header.entry_size();
        let entries = self.header.pmapsize / es;
        let per = 4096 / es;
        let mut chunk = [0u8; 4096];
        let mut i = 0u64;
        while i < entries {
            let n = per.min(entries - i);
            let b = &mut chunk[..(n * es) as usize];
            // The section was checked to lie in the file.
            self.file.read_exact_at(
                self.pmap_off + i * es,
                b,
                "FreeBSD minidump page-table section truncated",
            )?;
            for (k, e) in b.chunks_exact(es as usize).enumerate() {
                let e = le(e);
                if e != 0 && f(i + k as u64, e).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            i += n;
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The section's pages, in VA order.
    fn walk_section(
        &self,
        f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        let h = &self.header;
        let run = |va, pa, len, prot| PageRun {
            va: VirtAddr(va),
            pa: PhysAddr(pa),
            len,
            prot,
        };
        let at = |i: u64, size: u64| i.checked_mul(size).and_then(|o| h.kernbase.checked_add(o));
        match h.arch {
            Arch::X86_64 if h.version >= 2 => {
                let mut table = [0u8; 4096];
                self.each_entry(|i, pde| {
                    let Some(va) = at(i, M2) else {
                        return ControlFlow::Break(());
                    };
                    if pde & PG_V == 0 {
                        return ControlFlow::Continue(());
                    }
                    if pde & PG_PS != 0 {
                        return f(run(va, pde & FRAME_2M, M2, x86_prot(pde, true)));
                    }
                    // A PTE page left out of the dump is skipped, like any
                    // unreadable table of a walk.
                    if self
                        .read_phys_exact(PhysAddr(pde & FRAME_4K), &mut table)
                        .is_err()
                    {
                        return ControlFlow::Continue(());
                    }
                    for (k, e) in table.chunks_exact(8).enumerate() {
                        let pte = le(e);
                        if pte & PG_V != 0 {
                            f(run(
                                va + k as u64 * K4,
                                pte & FRAME_4K,
                                K4,
                                x86_prot(pte, true),
                            ))?;
                        }
                    }
                    ControlFlow::Continue(())
                })
            }
            Arch::X86_64 | Arch::I386 => {
                let (frame, nx) = match (h.arch, h.pae) {
                    (Arch::I386, false) => (0xffff_f000, false),
                    _ => (FRAME_4K, true),
                };
                self.each_entry(|i, pte| {
                    let va =
                        at(i, K4).filter(|&v| h.arch != Arch::I386 || u32::try_from(v).is_ok());
                    let Some(va) = va else {
                        return ControlFlow::Break(());
                    };
                    if pte & PG_V == 0 {
                        return ControlFlow::Continue(());
                    }
                    f(run(va, pte & frame, K4, x86_prot(pte, nx)))
                })
            }
            _ => {
                let page = h.page;
                self.each_entry(|i, e| {
                    let Some(va) = at(i, page) else {
                        return ControlFlow::Break(());
                    };
                    // The direct map takes precedence on arm64.
                    if e & 3 != 3 || (va >= h.dmapbase && va < h.dmapend) {
                        return ControlFlow::Continue(());
                    }
                    f(run(va, e & ARM_OA & !(page - 1), page, arm_prot(e)))
                })
            }
        }
    }

    /// The direct map's dumped pages, in VA order, except where the
    /// section takes precedence (amd64: at and above `kernbase`).
    fn walk_dmap(&self, f: &mut dyn FnMut(PageRun) -> ControlFlow<()>) -> ControlFlow<()> {
        let h = &self.header;
        let page = h.page;
        if h.arch == Arch::I386 || h.dmapbase >= h.dmapend {
            return ControlFlow::Continue(());
        }
        for r in &self.ranges {
            let mut pa = r.start;
            while pa < r.end() {
                let va = pa
                    .checked_sub(h.dmapphys)
                    .and_then(|o| h.dmapbase.checked_add(o))
                    .filter(|&v| v < h.dmapend)
                    .filter(|&v| h.arch != Arch::X86_64 || v < h.kernbase);
                if let Some(va) = va {
                    f(PageRun {
                        va: VirtAddr(va),
                        pa: PhysAddr(pa),
                        len: page,
                        prot: Prot::READ | Prot::WRITE,
                    })?;
                }
                let Some(next) = pa.checked_add(page) else {
                    break;
                };
                pa = next;
            }
        }
        ControlFlow::Continue(())
    }

    /// Both windows, the lower first; only runs above the last one are
    /// passed on, so the order stays increasing whatever a header says.
    pub(crate) fn walk_pages(&self, f: &mut dyn FnMut(PageRun) -> ControlFlow<()>) -> Result<()> {
        let mut last_end: Option<u64> = None;
        let mut guarded = |r: PageRun| {
            if last_end.is_some_and(|e| r.va.0 < e) {
                return ControlFlow::Continue(());
            }
            last_end = Some(r.va.0.saturating_add(r.len));
            f(r)
        };
        let h = &self.header;
        if h.dmapbase < h.kernbase {
            if self.walk_dmap(&mut guarded).is_continue() {
                let _ = self.walk_section(&mut guarded)?;
            }
        } else if self.walk_section(&mut guarded)?.is_continue() {
            let _ = self.walk_dmap(&mut guarded);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minidump::translate::PG_NX;
    use alloc::vec::Vec;
    use kvm_core::Translate;

    /// An amd64 v2 minidump: one 2 MiB page, one PTE page (in the dump)
    /// mapping two pages, and the direct map over the three dumped pages.
    #[test]
    fn walks_in_va_order_and_agrees_with_translate() {
        let page = 4096usize;
        let kernbase = 0xffff_fe00_0000_0000u64;
        let (dmapbase, dmapend) = (0xffff_f800_0000_0000u64, 0xffff_fc00_0000_0000u64);
        // Pages 1 (the PTE page), 2 and 3 are dumped.
        let mut pte_page = alloc::vec![0u8; page];
        pte_page[..8].copy_from_slice(&(0x2000u64 | 3).to_le_bytes());
        pte_page[5 * 8..6 * 8].copy_from_slice(&(0x3000u64 | 1 | PG_NX).to_le_bytes());
        let mut pmap = alloc::vec![0u8; page];
        pmap[..8].copy_from_slice(&(0x1000u64 | 3).to_le_bytes());
        pmap[8..16].copy_from_slice(&(0x4000_0000u64 | 3 | PG_PS).to_le_bytes());
        let mut f = alloc::vec![0u8; page];
        f[..24].copy_from_slice(b"minidump FreeBSD/amd64\0\0");
        for (o, v) in [(24usize, 2u32), (28, 0), (32, 8), (36, page as u32)] {
            f[o..o + 4].copy_from_slice(&v.to_le_bytes());
        }
        for (o, v) in [(40usize, kernbase), (48, dmapbase), (56, dmapend)] {
            f[o..o + 8].copy_from_slice(&v.to_le_bytes());
        }
        let mut bitmap = alloc::vec![0u8; page];
        bitmap[0] = 0b1110;
        f.extend_from_slice(&bitmap);
        f.extend_from_slice(&pmap);
        f.extend_from_slice(&pte_page);
        f.extend_from_slice(&[0x22; 4096]);
        f.extend_from_slice(&[0x33; 4096]);
        let d = MinidumpDump::open(f).unwrap();
        let mut runs = Vec::new();
        d.walk(&d, &mut |r| {
            runs.push(r);
            ControlFlow::Continue(())
        })
        .unwrap();
        let vas: Vec<u64> = runs.iter().map(|r| r.va.0).collect();
        assert_eq!(
            vas,
            [
                dmapbase + 0x1000,
                dmapbase + 0x2000,
                dmapbase + 0x3000,
                kernbase,
                kernbase + 0x5000,
                kernbase + 0x20_0000
            ]
        );
        for r in &runs {
            let t = d.translate(&d, r.va).unwrap();
            assert_eq!((t.pa, t.page_size, t.prot), (r.pa, r.len, r.prot), "{r:?}");
        }
        assert_eq!(runs[4].prot, Prot::READ);
        assert_eq!(runs[3].prot, Prot::READ | Prot::WRITE | Prot::EXEC);
        // A walk stops when asked.
        let mut n = 0;
        d.walk(&d, &mut |_| {
            n += 1;
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(n, 1);
    }
}
