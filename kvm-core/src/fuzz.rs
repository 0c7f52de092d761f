//! Entry points for the fuzz targets in `fuzz/` (one per parser), kept in
//! the library so that regressions replay as ordinary tests.

use crate::arch::aarch64::{Aarch64, Granule, Half};
use crate::arch::{i386::I386, x86_64::X86_64};
use crate::{PhysAddr, SliceMem, Translate, Translated, VirtAddr, VirtRead};
use core::ops::ControlFlow;

/// Page runs a fuzzed walk may report before the target stops it.
const WALK_LIMIT: u32 = 4096;

/// Treats `data` as physical memory holding page tables (root at physical
/// address 0) and translates, reads and walks through it with a translator
/// chosen by the first byte. Must never panic, hang or allocate.
///
/// Layout: byte 0 selects the architecture/configuration, bytes 1..9 a
/// virtual address; the whole input (from byte 0) is the memory.
pub fn translate(data: &[u8]) {
    let (Some(&sel), Some(va)) = (data.first(), data.get(1..9)) else {
        return;
    };
    let mut b = [0u8; 8];
    b.copy_from_slice(va);
    let va = VirtAddr(u64::from_le_bytes(b));
    let mem = SliceMem::new(PhysAddr(0), data);
    let granule = [Granule::K4, Granule::K16, Granule::K64][usize::from(sel >> 4) % 3];
    let va_bits = 25 + u32::from(sel >> 2) % 28;
    let half = if sel & 2 == 0 {
        Half::Kernel
    } else {
        Half::User
    };
    match sel % 5 {
        0 => exercise(&mem, X86_64::new(PhysAddr(0), 4).ok(), va),
        1 => exercise(&mem, X86_64::new(PhysAddr(0), 5).ok(), va),
        2 => exercise(&mem, Some(I386::new(PhysAddr(0))), va),
        3 => exercise(&mem, Some(I386::new_pae(PhysAddr(0))), va),
        _ => exercise(
            &mem,
            Aarch64::new(PhysAddr(0), granule, va_bits, half)
                .ok()
                .map(|a| a.with_pa52(sel & 1 != 0)),
            va,
        ),
    }
}

fn exercise<T: Translate>(mem: &SliceMem<'_>, t: Option<T>, va: VirtAddr) {
    let Some(t) = t else { return };
    if let Ok(tr) = t.translate(mem, va) {
        assert!(
            tr.len >= 1 && tr.len <= tr.page_size,
            "translation length out of range"
        );
    }
    let mut n = 0u32;
    let _ = t.walk(mem, &mut |_| {
        n += 1;
        if n >= WALK_LIMIT {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let space = Translated::new(*mem, t);
    let mut buf = [0u8; 64];
    if let Ok(k) = space.read_virt(va, &mut buf) {
        assert!(k <= buf.len());
    }
}

/// Treats `data` as physical memory from address 0 and scans it for a
/// kernel's VMCOREINFO (the page step from byte 0: 16 bytes to 64 KiB),
/// as raw images and live doors are scanned. Must never panic or hang.
#[cfg(feature = "alloc")]
pub fn discover(data: &[u8]) {
    let Some(&sel) = data.first() else {
        return;
    };
    let mem = SliceMem::new(PhysAddr(0), data);
    let ranges = [crate::MapRange {
        start: 0,
        len: data.len() as u64,
        value: 0,
    }];
    let page = 16u64 << (sel % 13);
    if let Some(found) = crate::discover::find_vmcoreinfo(&mem, &ranges, page) {
        let _ = crate::discover::arch_of(&found.vmcoreinfo);
        let mut info = crate::SourceInfo::new("fuzz", crate::Endian::Little);
        found.apply(&mut info);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn smoke() {
        // Every selector over a few memories: all zero, all ones, a table
        // whose entries point at itself.
        let mut selfref = [0u8; 4096];
        for e in selfref.chunks_exact_mut(8) {
            e.copy_from_slice(&0x0000_0000_0000_0003u64.to_le_bytes());
        }
        for sel in 0..=255u8 {
            for fill in [
                [0u8; 64].as_slice(),
                [0xffu8; 64].as_slice(),
                selfref.as_slice(),
            ] {
                let mut d = std::vec::Vec::from(fill);
                d[0] = sel;
                super::translate(&d);
            }
        }
    }
}
