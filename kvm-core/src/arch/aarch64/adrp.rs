//! arm64 instruction decoding for finding data from code: the globals a
//! function reaches with ADRP + ADD/LDR, for kernels whose symbol table
//! holds functions only.

/// arm64: the address a function loads with `ADRP Xn, sym` followed by
/// `ADD Xd, Xn, #:lo12:sym` or `LDR Xt, [Xn, #:lo12:sym]` — how an arm64
/// kernel reaches a global, and so a way to find data symbols (such as
/// `avenrun` from `get_avenrun`) in kernels whose kallsyms holds functions
/// only. `code` is the function's first bytes, `pc` its address. Returns
/// the first such target (ARM ARM C6.2.10 ADRP, C6.2.4 ADD (immediate),
/// C6.2.132 LDR (immediate, unsigned offset)).
pub fn adrp_target(code: &[u8], pc: u64) -> Option<u64> {
    adrp_targets(code, pc).next()
}

/// Every target [`adrp_target`] would see in `code`, in order:
/// for each ADRP, the address its register reaches through ADDs, at the
/// first load from it or the last ADD.
pub fn adrp_targets(code: &[u8], pc: u64) -> impl Iterator<Item = u64> + '_ {
    let insn = move |i: usize| {
        let b = code.get(4 * i..4 * i + 4)?;
        Some((
            pc.wrapping_add(4 * i as u64),
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        ))
    };
    (0..code.len() / 4).filter_map(move |i| {
        let (at, insn0) = insn(i)?;
        if insn0 & 0x9f00_0000 != 0x9000_0000 {
            return None; // not ADRP
        }
        let rd = insn0 & 0x1f;
        let immlo = u64::from((insn0 >> 29) & 3);
        let immhi = u64::from((insn0 >> 5) & 0x7_ffff);
        let imm = ((((immhi << 2) | immlo) << 12) << 31) as i64 >> 31; // sign-extend 33 bits
        let page = (at & !0xfff).wrapping_add(imm as u64);
        // Follow Xd through `ADD Xd', Xd, #imm` steps (compilers add a
        // section anchor first, then the symbol's offset in the section)
        // to the first load from it.
        let (mut reg, mut addr, mut added) = (rd, page, false);
        for (_, next) in (i + 1..i + 13).map_while(insn) {
            if (next >> 5) & 0x1f != reg {
                continue;
            }
            let imm12 = u64::from((next >> 10) & 0xfff);
            if next & 0xff80_0000 == 0x9100_0000 {
                // ADD Xd, Xn, #imm12 {, LSL #12}
                let shift = if next & (1 << 22) != 0 { 12 } else { 0 };
                addr = addr.wrapping_add(imm12 << shift);
                reg = next & 0x1f;
                added = true;
            } else if next & 0xffc0_0000 == 0xf940_0000 {
                // LDR Xt, [Xn, #imm12 * 8]: the load names the global.
                return Some(addr.wrapping_add(imm12 * 8));
            } else if next & 0xffe0_0000 == 0xf840_0000 {
                // LDUR / LDR post-index / LDR pre-index with a signed imm9
                // (C6.2.133, C6.2.134): the address is base + imm9 except
                // post-index, which loads from the base.
                let imm9 = ((((next >> 12) & 0x1ff) as i64) << 55 >> 55) as u64;
                return match (next >> 10) & 3 {
                    0 | 3 => Some(addr.wrapping_add(imm9)),
                    1 => Some(addr),
                    _ => None,
                };
            } else {
                break;
            }
        }
        added.then_some(addr)
    })
}

#[cfg(test)]
mod tests {
    use super::adrp_target;
    use std::vec::Vec;

    #[test]
    fn adrp_add_and_adrp_ldr() {
        // adrp x3, #0x1234000 (from pc 0x...1000); add x3, x3, #0x280
        let pc = 0xffff_8000_0800_1004u64;
        let delta_pages: u64 = 0x1234;
        let immlo = (delta_pages & 3) as u32;
        let immhi = (delta_pages >> 2) as u32;
        let adrp = 0x9000_0000 | (immlo << 29) | (immhi << 5) | 3;
        let add: u32 = 0x9100_0000 | (0x280 << 10) | (3 << 5) | 3;
        let mut code = Vec::new();
        code.extend_from_slice(&0xd503_233fu32.to_le_bytes()); // paciasp
        code.extend_from_slice(&adrp.to_le_bytes());
        code.extend_from_slice(&add.to_le_bytes());
        let want = ((pc + 4) & !0xfff) + 0x0123_4000 + 0x280;
        assert_eq!(adrp_target(&code, pc), Some(want));
        // ldr x5, [x3, #0x10] after the adrp
        let ldr: u32 = 0xf940_0000 | (2 << 10) | (3 << 5) | 5;
        code.truncate(8);
        code.extend_from_slice(&ldr.to_le_bytes());
        assert_eq!(
            adrp_target(&code, pc),
            Some(((pc + 4) & !0xfff) + 0x0123_4000 + 0x10)
        );
        // Negative page offsets sign-extend.
        let back = 0x9000_0000u32 | (3 << 29) | (0x7_ffff << 5) | 1; // -1 page
        let add1: u32 = 0x9100_0000 | (8 << 10) | (1 << 5) | 1;
        let code: Vec<u8> = [back, add1].iter().flat_map(|i| i.to_le_bytes()).collect();
        assert_eq!(adrp_target(&code, 0x10_0000), Some(0xf_f008));
        assert_eq!(adrp_target(&[0; 16], 0), None);
        // As find_module_all (Linux 6.1 arm64) reaches `modules`:
        // adrp x21, P; add x21, x21, #0x5c0; ldr x0, [x21, #80]!
        let code: Vec<u8> = [0xb000_bb75u32, 0x9117_02b5, 0xa901_53f3, 0xf845_0ea0]
            .iter()
            .flat_map(|i| i.to_le_bytes())
            .collect();
        let pc = 0xffff_c72a_6274_f4a8u64;
        assert_eq!(
            adrp_target(&code, pc),
            Some(0xffff_c72a_63eb_c000 + 0x5c0 + 80)
        );
    }

    #[test]
    fn every_target_in_order() {
        // As thaw_kernel_threads (Linux 6.1 arm64) starts: three ADRP
        // sequences, the second loading init_task.tasks.next (0x468).
        let code: Vec<u8> = [
            0xd503_233fu32, // paciasp
            0xa9be_7bfd,    // stp x29, x30, [sp, #-32]!
            0xb000_0940,    // adrp x0, page + 0x129000
            0x910003fd,     // mov x29, sp
            0x9119_8000,    // add x0, x0, #0x660
            0x9400_0000,    // bl
            0xf000_0001,    // adrp x1, page
            0x9132_0021,    // add x1, x1, #0xc80
            0xf942_3420,    // ldr x0, [x1, #0x468]
        ]
        .iter()
        .flat_map(|i| i.to_le_bytes())
        .collect();
        let pc = 0xffff_8000_0810_0000u64;
        let got: Vec<u64> = super::adrp_targets(&code, pc).collect();
        let first = pc + 0x12_9000 + 0x660;
        let adrp1 = 0xf000_0001u32;
        let page = {
            let imm =
                (u64::from((adrp1 >> 5) & 0x7_ffff) << 2 | u64::from((adrp1 >> 29) & 3)) << 12;
            ((pc + 24) & !0xfff) + imm
        };
        assert_eq!(got, [first, page + 0xc80 + 0x468]);
        assert_eq!(adrp_target(&code, pc), Some(first));
    }
}
