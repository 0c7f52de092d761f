//! The ABI constants /proc prints by: task state letters (`fs/proc/array.c`
//! `task_state_array`, `__task_state_index` in `include/linux/sched.h`) and
//! the load average's fixed point (`fs/proc/loadavg.c`: `LOAD_INT`/`LOAD_FRAC`
//! with `FIXED_1/200` rounding). Constants of the ABI, not structure layouts.

/// `TASK_REPORT`: the state bits /proc reports.
const TASK_REPORT: u32 = 0x7f;
/// `TASK_IDLE` = `TASK_UNINTERRUPTIBLE | TASK_NOLOAD`.
const TASK_IDLE: u32 = 0x402;
/// `TASK_RTLOCK_WAIT` (5.15+): reported as `D`.
const TASK_RTLOCK_WAIT: u32 = 0x1000;
/// Letters by `fls(state)`, as `task_state_array` orders them.
const STATE_LETTERS: &[u8; 9] = b"RSDTtXZPI";

/// The state letter `/proc/PID/stat` prints for these `__state` and
/// `exit_state` values.
pub fn state_letter(state: u32, exit_state: u32) -> char {
    let mut s = (state | exit_state) & TASK_REPORT;
    if state & TASK_IDLE == TASK_IDLE {
        s = TASK_REPORT + 1;
    }
    if state & TASK_RTLOCK_WAIT != 0 {
        s = 2; // TASK_UNINTERRUPTIBLE
    }
    let fls = 32 - s.leading_zeros();
    STATE_LETTERS.get(fls as usize).map_or('?', |&b| b as char)
}

/// One `avenrun` value (fixed point, 11 fraction bits) as `/proc/loadavg`
/// prints it: `LOAD_INT.LOAD_FRAC` after adding `FIXED_1/200`.
pub fn loadavg_value(avenrun: u64) -> f64 {
    const FSHIFT: u32 = 11;
    const FIXED_1: u64 = 1 << FSHIFT;
    let a = avenrun.wrapping_add(FIXED_1 / 200);
    let int = a >> FSHIFT;
    let frac = ((a & (FIXED_1 - 1)) * 100) >> FSHIFT;
    int as f64 + frac as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_letters_as_proc_prints_them() {
        assert_eq!(state_letter(0, 0), 'R');
        assert_eq!(state_letter(1, 0), 'S');
        assert_eq!(state_letter(2, 0), 'D');
        assert_eq!(state_letter(4, 0), 'T');
        assert_eq!(state_letter(8, 0), 't');
        assert_eq!(state_letter(0, 16), 'X');
        assert_eq!(state_letter(0, 32), 'Z');
        assert_eq!(state_letter(0x40, 0), 'P');
        assert_eq!(state_letter(0x402, 0), 'I');
        assert_eq!(state_letter(0x1000, 0), 'D');
        // TASK_KILLABLE (WAKEKILL | UNINTERRUPTIBLE) is D.
        assert_eq!(state_letter(0x102, 0), 'D');
    }

    #[test]
    fn loadavg_rounding() {
        // 0.60 as the kernel stores it: 0.6 * 2048 = 1228.8 → 1229.
        assert_eq!(loadavg_value(1229), 0.60);
        assert_eq!(loadavg_value(0), 0.0);
        assert_eq!(loadavg_value(2048 * 3 + 1024), 3.50);
    }
}
