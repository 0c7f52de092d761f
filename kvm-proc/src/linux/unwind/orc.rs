//! x86-64 kernel stacks through ORC, the unwind tables objtool puts in
//! every kernel built with CONFIG_UNWINDER_ORC: `.orc_unwind_ip` (sorted
//! 32-bit self-relative instruction addresses, `__start_orc_unwind_ip`..
//! `__stop_orc_unwind_ip`) and `.orc_unwind` (one 6-byte `struct
//! orc_entry` each, from `__start_orc_unwind`). The step follows the
//! kernel's `unwind_next_frame` (arch/x86/kernel/unwind_orc.c); the entry
//! layout and register numbers follow arch/x86/include/asm/orc_types.h.

use super::Walk;
use kvm_core::{Error, Result, VirtAddr, VirtRead, VirtReadExt};

// orc_types.h's ORC_REG_*.
const REG_UNDEFINED: u8 = 0;
const REG_PREV_SP: u8 = 1;
const REG_DX: u8 = 2;
const REG_DI: u8 = 3;
const REG_BP: u8 = 4;
const REG_SP: u8 = 5;
const REG_R10: u8 = 6;
const REG_R13: u8 = 7;
const REG_BP_INDIRECT: u8 = 8;
const REG_SP_INDIRECT: u8 = 9;

/// `struct pt_regs` offsets (fixed by the entry code's push order):
/// r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs
/// flags sp ss.
const PT_BP: u64 = 32;
const PT_R10: u64 = 56;
const PT_DX: u64 = 96;
const PT_DI: u64 = 112;
const PT_R13: u64 = 16;
const PT_IP: u64 = 128;
const PT_CS: u64 = 136;
const PT_SP: u64 = 152;
/// `IRET_FRAME_OFFSET`: a partial (iret) frame starts at `pt_regs.ip`.
const IRET_OFFSET: u64 = PT_IP;

/// The two layouts of `struct orc_entry`'s last 16 bits (little-endian
/// bitfields): `sp_reg:4 bp_reg:4` then `type:2 end:1` (4.14 to 6.3) or
/// `type:3 signal:1` (6.4 on, with types UNDEFINED and END_OF_STACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// `type:2 end:1`: CALL 0, REGS 1, REGS_PARTIAL 2.
    End,
    /// `type:3 signal:1`: UNDEFINED 0, END_OF_STACK 1, CALL 2, REGS 3,
    /// REGS_PARTIAL 4.
    Signal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Call,
    Regs,
    RegsPartial,
    EndOfStack,
    Undefined,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    sp_offset: i16,
    bp_offset: i16,
    sp_reg: u8,
    bp_reg: u8,
    kind: Kind,
    /// 6.4+: the frame's ip is exact (the next lookup uses ip, not ip - 1).
    signal: Option<bool>,
}

/// The frame-pointer guess for code ORC does not cover (the kernel's
/// `orc_fp_entry`).
const FP_ENTRY: Entry = Entry {
    sp_offset: 16,
    bp_offset: -16,
    sp_reg: REG_BP,
    bp_reg: REG_PREV_SP,
    kind: Kind::Call,
    signal: None,
};

fn decode(b: [u8; 6], f: Format) -> Entry {
    let bits = u16::from_le_bytes([b[4], b[5]]);
    let sp_reg = (bits & 0xf) as u8;
    let bp_reg = ((bits >> 4) & 0xf) as u8;
    let (kind, signal) = match f {
        Format::End => {
            let kind = match (bits >> 8) & 3 {
                _ if sp_reg == REG_UNDEFINED && (bits >> 10) & 1 == 1 => Kind::EndOfStack,
                _ if sp_reg == REG_UNDEFINED => Kind::Undefined,
                0 => Kind::Call,
                1 => Kind::Regs,
                2 => Kind::RegsPartial,
                _ => Kind::Undefined,
            };
            (kind, None)
        }
        Format::Signal => {
            let kind = match (bits >> 8) & 7 {
                1 => Kind::EndOfStack,
                2 => Kind::Call,
                3 => Kind::Regs,
                4 => Kind::RegsPartial,
                _ => Kind::Undefined,
            };
            (kind, Some((bits >> 11) & 1 == 1))
        }
    };
    Entry {
        sp_offset: i16::from_le_bytes([b[0], b[1]]),
        bp_offset: i16::from_le_bytes([b[2], b[3]]),
        sp_reg,
        bp_reg,
        kind,
        signal,
    }
}

/// One ORC table: the kernel's, or a module's.
#[derive(Clone, Copy, Debug)]
pub(super) struct Table {
    /// `__start_orc_unwind_ip`.
    pub ips: u64,
    /// `__start_orc_unwind`.
    pub entries: u64,
    /// Number of entries.
    pub count: u64,
    pub format: Format,
}

impl Table {
    /// The entry covering `ip`: the last whose address is at or below it
    /// (a binary search reading about 20 of the 32-bit addresses).
    fn find(&self, mem: &dyn VirtRead, ip: u64) -> Result<Option<Entry>> {
        let ip_of = |i: u64| -> Result<u64> {
            let at = self.ips.wrapping_add(i.wrapping_mul(4));
            let rel = mem.read_u32_le(VirtAddr(at))? as i32;
            Ok(at.wrapping_add_signed(i64::from(rel)))
        };
        let (mut lo, mut hi) = (0u64, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if ip_of(mid)? <= ip {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            return Ok(None);
        }
        let mut b = [0u8; 6];
        mem.read_virt_exact(
            VirtAddr(self.entries.wrapping_add((lo - 1).wrapping_mul(6))),
            &mut b,
        )?;
        Ok(Some(decode(b, self.format)))
    }
}

/// The unwinder's registers between frames (the kernel's `unwind_state`).
#[derive(Clone, Copy, Debug)]
pub(super) struct State {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// The `pt_regs` the last frame left (an exception or entry frame).
    regs: Option<u64>,
    full_regs: bool,
    prev_regs: Option<u64>,
    /// `ip` is exact (a signal frame): look it up as is, not `ip - 1`.
    pub signal: bool,
}

impl State {
    pub fn new(ip: u64, sp: u64, bp: u64, signal: bool) -> State {
        State {
            ip,
            sp,
            bp,
            regs: None,
            full_regs: false,
            prev_regs: None,
            signal,
        }
    }
}

/// What one step found.
pub(super) enum Step {
    /// The caller's frame (`State` updated).
    Next,
    /// The stack's end (user-mode registers, or a marked end).
    End,
}

/// The next frame of `st`, as `unwind_next_frame` finds it, through the
/// kernel's table `t` (or the module's whose code `st` is in). `guessed`
/// is set when ORC had no entry and frame pointers were assumed.
pub(super) fn step(w: &Walk<'_>, t: &Table, st: &mut State, guessed: &mut bool) -> Result<Step> {
    let mem = w.mem;
    let rd = |a: u64| mem.read_u64_le(VirtAddr(a));
    let lookup = if st.signal {
        st.ip
    } else {
        st.ip.wrapping_sub(1)
    };
    // The kernel's table for its own text, a module's for its code.
    let table = if w.text.in_kernel(lookup) {
        Some(*t)
    } else {
        w.text
            .module(lookup)
            .and_then(|m| m.orc)
            .map(|(ips, entries, count)| Table {
                ips,
                entries,
                count,
                format: t.format,
            })
    };
    let found = match table {
        Some(table) => table.find(mem, lookup)?,
        None => None,
    };
    let orc = match found {
        Some(e) => e,
        None => {
            *guessed = true;
            FP_ENTRY
        }
    };
    match orc.kind {
        Kind::EndOfStack => return Ok(Step::End),
        Kind::Undefined => {
            return Err(Error::Malformed(
                "ORC marks this code as having no unwind data",
            ))
        }
        _ => {}
    }
    if let Some(s) = orc.signal {
        st.signal = s;
    }
    let get_reg = |st: &State, off: u64| -> Result<u64> {
        let base = match (st.regs, st.full_regs, st.prev_regs) {
            (Some(r), true, _) => r,
            (Some(_), false, Some(p)) => p,
            _ => {
                return Err(Error::Malformed(
                    "ORC needs a register no saved frame holds",
                ))
            }
        };
        rd(base.wrapping_add(off))
    };
    let off = i64::from(orc.sp_offset);
    let mut sp = match orc.sp_reg {
        REG_SP | REG_SP_INDIRECT => st.sp,
        REG_BP | REG_BP_INDIRECT => st.bp.wrapping_add_signed(off),
        REG_R10 => get_reg(st, PT_R10)?,
        REG_R13 => get_reg(st, PT_R13)?,
        REG_DI => get_reg(st, PT_DI)?,
        REG_DX => get_reg(st, PT_DX)?,
        _ => return Err(Error::Malformed("ORC entry with an unknown stack register")),
    };
    match orc.sp_reg {
        REG_SP => sp = sp.wrapping_add_signed(off),
        // The stack pointer saved at the top of an IRQ stack, then the
        // offset (`*SP + offset` since 5.12, when call_on_stack() first
        // used it: unused before).
        REG_SP_INDIRECT => sp = rd(sp)?.wrapping_add_signed(off),
        REG_BP_INDIRECT => sp = rd(sp)?,
        _ => {}
    }
    let old_signal_format = orc.signal.is_none();
    match orc.kind {
        Kind::Call => {
            st.ip = rd(sp.wrapping_sub(8))?;
            st.sp = sp;
            st.regs = None;
            st.prev_regs = None;
            if old_signal_format {
                st.signal = false;
            }
        }
        Kind::Regs => {
            st.ip = rd(sp.wrapping_add(PT_IP))?;
            st.sp = rd(sp.wrapping_add(PT_SP))?;
            st.regs = Some(sp);
            st.prev_regs = None;
            st.full_regs = true;
            if old_signal_format {
                st.signal = true;
            }
        }
        Kind::RegsPartial => {
            st.ip = rd(sp)?;
            st.sp = rd(sp.wrapping_add(PT_SP - IRET_OFFSET))?;
            if st.full_regs {
                st.prev_regs = st.regs;
            }
            st.regs = Some(sp.wrapping_sub(IRET_OFFSET));
            st.full_regs = false;
            if old_signal_format {
                st.signal = true;
            }
        }
        Kind::EndOfStack | Kind::Undefined => unreachable!("handled above"),
    }
    match orc.bp_reg {
        REG_UNDEFINED => {
            if let Ok(bp) = get_reg(st, PT_BP) {
                st.bp = bp;
            }
        }
        REG_PREV_SP => st.bp = rd(sp.wrapping_add_signed(i64::from(orc.bp_offset)))?,
        REG_BP => st.bp = rd(st.bp.wrapping_add_signed(i64::from(orc.bp_offset)))?,
        _ => return Err(Error::Malformed("ORC entry with an unknown frame register")),
    }
    // Registers saved on entry from user mode: the kernel stack ends here.
    if let Some(r) = st.regs {
        if rd(r.wrapping_add(PT_CS))? & 3 != 0 {
            return Ok(Step::End);
        }
    }
    Ok(Step::Next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_decode() {
        // sp_reg SP (5), bp_reg PREV_SP (1), CALL: 6.1 layout type 0.
        let e = decode([8, 0, 0xf0, 0xff, 0x15, 0x00], Format::End);
        assert_eq!(
            (e.sp_offset, e.bp_offset, e.sp_reg, e.bp_reg),
            (8, -16, 5, 1)
        );
        assert_eq!(e.kind, Kind::Call);
        // The same in 6.4's layout: type 2 (CALL), signal 0.
        let e = decode([8, 0, 0, 0, 0x15, 0x02], Format::Signal);
        assert_eq!((e.kind, e.signal), (Kind::Call, Some(false)));
        // REGS, signal set.
        let e = decode([0, 0, 0, 0, 0x05, 0x0b], Format::Signal);
        assert_eq!((e.kind, e.signal), (Kind::Regs, Some(true)));
        // End of stack: 6.1 marks it sp_reg UNDEFINED with end = 1 …
        let e = decode([0, 0, 0, 0, 0x00, 0x04], Format::End);
        assert_eq!(e.kind, Kind::EndOfStack);
        // … and without end it is no data at all.
        let e = decode([0, 0, 0, 0, 0x00, 0x00], Format::End);
        assert_eq!(e.kind, Kind::Undefined);
        assert_eq!(decode([0; 6], Format::Signal).kind, Kind::Undefined);
        assert_eq!(
            decode([0, 0, 0, 0, 0, 1], Format::Signal).kind,
            Kind::EndOfStack
        );
    }
}
