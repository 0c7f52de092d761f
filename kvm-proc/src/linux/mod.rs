//! Linux: found from VMCOREINFO, symbols from the kernel's own kallsyms,
//! types from its BTF, then the task list, threads, argv/env, load
//! average and uname, with every structure offset taken from the BTF.
//!
//! ```text
//!  Source ──probe──► LinuxOs ──paging (VMCOREINFO / CR3)──► Machine
//!                       │
//!                       ├─ symbols: kallsyms index / decoded table, -N, VMCOREINFO
//!                       ├─ btf: __start_BTF or searched after the kallsyms tables
//!                       └─ walker over a View (Kernel): layout, anchors, tasks, modules,
//!                          backtraces (unwind/: ORC, frame records)
//! ```

mod anchors;
mod btf;
mod files;
mod layout;
pub mod log;
mod maps;
mod modules;
mod os;
pub mod paging;
pub mod panic;
mod path;
mod pids;
mod reach;
mod state;
mod symbols;
mod unwind;
mod view;
mod walker;

pub use layout::Layout;
pub use os::{probe, LinuxOs};
pub use state::{loadavg_value, state_letter};
pub(crate) use unwind::fuzz_walk;
pub use unwind::{ModuleText, Text};
pub use walker::{Linux, MAX_ARGS, MAX_TASKS};
