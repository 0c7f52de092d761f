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
    /// The thread id.
    pub tid: u32,
    /// Its process id.
    pub pid: u32,
    /// The thread's comm.
    pub comm: String,
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
    /// The panicking CPU's registers from the dump's CPU notes (those the
    /// source keeps: program counter, stack and frame pointers).
    pub registers: Option<Registers>,
    /// The panicking task's backtrace.
    pub backtrace: Option<Backtrace>,
    /// Each CPU's running task (processes that could be listed).
    pub on_cpu: Vec<OnCpu>,
}
