//! The process list when the task list breaks: a `task_struct` whose
//! `tasks` link cannot be read (a page the dump tool excluded, or
//! damage) hides every process after it on that road. The processes are
//! then taken from the pid namespace's idr ([`Linux::idr_leaders`]),
//! which names every thread-group leader by pid and `task_struct`, and
//! joined with what the task list gave in both directions (it is doubly
//! linked: `prev` reaches the processes after the break). A process that
//! cannot be read keeps its pid and says why; none is dropped in
//! silence.

use super::walker::{Linux, MAX_TASKS};
use crate::{Kernel, Process};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use kvm_core::Error;

impl<K: Kernel + ?Sized> Linux<'_, K> {
    /// The processes when the task list from `head` stopped at `stop`
    /// (the node whose link could not be read, and why) after the nodes
    /// `forward`.
    pub(super) fn processes_past(
        &self,
        head: u64,
        forward: Vec<u64>,
        stop: (u64, Error),
    ) -> Vec<Process> {
        let task = |node: u64| node.wrapping_sub(self.l.tasks);
        // From the head backwards (`list_head.prev`) to the break.
        let mut seen: BTreeSet<u64> = forward.iter().copied().collect();
        seen.insert(stop.0);
        let (backward, back_stop) = crate::chain::follow_partial(
            self.ptr(head, 8)
                .ok()
                .filter(|p| !seen.contains(p))
                .unwrap_or(head),
            head,
            MAX_TASKS,
            "task list does not close backwards (corrupt or cyclic)",
            |n| {
                let prev = self.ptr(n, 8)?;
                // Reaching a node the forward walk saw ends the walk.
                Ok(if seen.contains(&prev) { head } else { prev })
            },
        );
        let mut listed: Vec<u64> = forward.iter().chain(&backward).map(|&n| task(n)).collect();
        let mut out = Vec::new();
        match self.idr_leaders() {
            Ok(idr) if !idr.found.is_empty() => {
                for l in &idr.found {
                    out.push(self.process_or_why(l.task, Some(l.pid)));
                }
                // Tasks on the list that the idr did not give (a part of
                // it unreadable) follow, in list order.
                let known: BTreeSet<u64> = idr.found.iter().map(|l| l.task).collect();
                listed.retain(|t| !known.contains(t));
                let broken = [Some(&stop), back_stop.as_ref()];
                for t in listed {
                    out.push(self.process_or_why(t, None));
                }
                // Where the list broke: a task the idr does not know, or
                // a loop (which the list's readers should hear of).
                for (node, why) in broken.into_iter().flatten() {
                    let looped = matches!(why, Error::Malformed(_));
                    if *node != head && (looped || !known.contains(&task(*node))) {
                        out.push(self.broken(task(*node), *why, looped));
                    }
                }
                // A part of the idr that could not be read may hide
                // processes neither road reached: said, not left out.
                if let Some(e) = idr.error {
                    out.push(Process::unavailable(0, 0, e));
                }
            }
            _ => {
                // No idr: the list as far as it goes each way, and where
                // it breaks (pid unknown unless the task gives it).
                for &n in &forward {
                    out.push(self.process_or_why(task(n), None));
                }
                let listed: BTreeSet<u64> = forward.iter().chain(&backward).copied().collect();
                out.push(self.broken(task(stop.0), stop.1, listed.contains(&stop.0)));
                if let Some((node, why)) = back_stop {
                    if node != stop.0 && node != head {
                        out.push(self.broken(task(node), why, listed.contains(&node)));
                    }
                }
                for &n in backward.iter().rev() {
                    out.push(self.process_or_why(task(n), None));
                }
            }
        }
        out
    }

    /// The entry for the task at `t`, where the list broke; its pid 0
    /// (unknown) when it cannot be read or is `listed` already (the list
    /// looped back to it).
    fn broken(&self, t: u64, why: Error, listed: bool) -> Process {
        let pid = match listed {
            true => 0,
            false => self.u32_at(t, self.l.tgid).unwrap_or(0),
        };
        Process::unavailable(pid, t, why)
    }
}
