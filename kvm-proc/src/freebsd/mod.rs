//! FreeBSD as an [`crate::Os`]: the kernel file's symbols (`-N`) lead to
//! `allproc`, and the structure offsets the kernel exports as variables
//! (`proc_off_p_pid`, `thread_off_td_tid`, …; FreeBSD 13+, for debuggers
//! without type information) say how to read what they point to.
//!
//! ```text
//!  allproc ─► proc ─p_list─► proc ─► … NULL       (LIST, newest first)
//!              └─p_threads─► thread ─td_plist─► thread ─► … NULL  (TAILQ)
//! ```
//!
//! Only what those offsets reach is read: pid, comm, threads (tid, name,
//! on-CPU), and the registers each thread's context holds. A field the
//! kernel exports no offset for (ppid, uid, state, …) is unavailable
//! (`None`), never guessed.

mod offsets;
mod os;
mod paging;
mod pcb;
mod walker;

pub use os::{probe, FreeBsdOs};
