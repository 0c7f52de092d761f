//! Why the kernel died, as the OS layers tell it: the panic, the CPU and
//! task that raised it with their registers and backtrace, and what ran
//! on each CPU.

use crate::{Backtrace, Registers};
use alloc::string::String;
use alloc::vec::Vec;

/// A task that was running on a CPU when the dump was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnCpu {
    /// The CPU.
    pub cpu: u32,
    /// The thread id (0 for the CPU's idle task).
    pub tid: u32,
    /// Its process id (0 for the idle task).
    pub pid: u32,
    /// The thread's comm (the idle task's is `swapper/CPU`, as the
    /// kernel names it).
    pub comm: String,
    /// The CPU ran its idle task: the dump has registers for the CPU and
    /// no listed task claims it.
    pub idle: bool,
}

/// The panic report of a dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicInfo {
    /// The kernel panicked (its log says so).
    pub panicked: bool,
    /// The panic message ("sysrq triggered crash").
    pub message: Option<String>,
    /// The CPU that panicked.
    pub cpu: Option<u32>,
    /// The task that panicked (pid as the log prints it: the thread id).
    pub pid: Option<u32>,
    /// Its comm.
    pub comm: Option<String>,
    /// When (ns since boot, the log's clock).
    pub time_ns: Option<u64>,
    /// The panicking CPU's registers from the dump's CPU notes: every
    /// register of its `NT_PRSTATUS` (x86-64 27, arm64 34), or the
    /// program counter, stack and frame pointers where the source keeps
    /// only those.
    pub registers: Option<Registers>,
    /// The panicking task's backtrace.
    pub backtrace: Option<Backtrace>,
    /// Each CPU's running task, by CPU (idle CPUs among them where the
    /// dump has a note per CPU).
    pub on_cpu: Vec<OnCpu>,
}
