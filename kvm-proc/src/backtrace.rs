//! Kernel backtraces as the OS layers give them: frames, how the unwind
//! ended, and the bounds every unwinder keeps.

use alloc::string::String;
use alloc::vec::Vec;

/// Frames one unwind gives at most: a corrupt stack that keeps going ends
/// with [`StackEnd::TooDeep`] (the kernel's own `/proc/PID/stack` stops at
/// 64).
pub const MAX_FRAMES: usize = 128;

/// One frame of a kernel backtrace, innermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame's program counter: the exact instruction for the first
    /// frame of a running task and for a frame interrupted by an
    /// exception, else a return address.
    pub pc: u64,
    /// Where the frame is on the stack: the stack pointer above the
    /// return address (x86-64, ORC's CFA), or the frame record holding it
    /// (arm64).
    pub sp: u64,
    /// `pc` is an exact instruction address (not a return address): the
    /// function is the one containing `pc`, where for a return address it
    /// is the one containing `pc - 1` (the call, which may be the last
    /// instruction of a function that does not return).
    pub exact: bool,
    /// The function, from the kernel's symbols (kallsyms, modules'
    /// symbols); `None` when no symbol covers it.
    pub function: Option<String>,
    /// `pc` minus the function's address.
    pub offset: Option<u64>,
    /// The module the function is in (`None` for the kernel itself).
    pub module: Option<String>,
}

impl Frame {
    /// A frame not yet symbolized.
    pub fn at(pc: u64, sp: u64, exact: bool) -> Frame {
        Frame {
            pc,
            sp,
            exact,
            function: None,
            offset: None,
            module: None,
        }
    }

    /// The address whose symbol names the frame (see [`Frame::exact`]).
    pub fn lookup_addr(&self) -> u64 {
        if self.exact {
            self.pc
        } else {
            self.pc.wrapping_sub(1)
        }
    }
}

/// How an unwind ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StackEnd {
    /// At the stack's end: the registers saved at entry from user mode, or
    /// the first frame of a kernel thread.
    Complete,
    /// The task runs in user mode: its kernel stack holds no frames.
    UserMode,
    /// The task has exited (a zombie): its kernel stack is freed.
    Exited,
    /// The unwind could not go on: the frames before are kept, the reason
    /// says why (memory missing from the dump, a corrupt stack, code
    /// without unwind data).
    Broken(String),
    /// [`MAX_FRAMES`] frames were read without reaching the end (a loop
    /// in a corrupt stack, or a very deep one).
    TooDeep,
}

/// A task's kernel backtrace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backtrace {
    /// The frames, innermost first.
    pub frames: Vec<Frame>,
    /// How the unwind ended.
    pub end: StackEnd,
    /// The unwinder: `"orc"` (x86-64's tables in the kernel image),
    /// `"orc+fp"` (frame pointers guessed where ORC had no entry),
    /// `"frame records"` (arm64's x29 chain).
    pub unwinder: &'static str,
    /// Where the unwind started: `"saved context"` (a sleeping task's
    /// switch frame) or `"cpu registers"` (a task running when the dump
    /// was taken, from the dump's CPU notes).
    pub from: &'static str,
}
