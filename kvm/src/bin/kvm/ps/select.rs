//! Which processes `kvm ps` shows, and in what order: `-p`, `-U`, `-C`
//! (a process shown if any of them picks it, as procps and BSD ps do),
//! and `--forest` (each process under its parent).

use kvm::Process;
use std::collections::{BTreeMap, BTreeSet};

/// The selection options.
#[derive(Debug, Default)]
pub struct Select {
    pub pids: Vec<u32>,
    pub uids: Vec<u32>,
    pub comms: Vec<String>,
}

impl Select {
    /// Whether `p` is shown: every process when nothing is asked.
    pub fn picks(&self, p: &Process) -> bool {
        if self.pids.is_empty() && self.uids.is_empty() && self.comms.is_empty() {
            return true;
        }
        self.pids.contains(&p.pid)
            || p.uid.is_some_and(|u| self.uids.contains(&u))
            || self.comms.contains(&p.comm)
    }
}

/// `procs` in tree order with each one's depth: a process after its
/// parent, children in listing order; processes whose parent is not
/// listed are roots. A parent loop (a damaged dump) cannot hide or repeat anyone:
/// what the walk from the roots misses is listed after it, as roots.
pub fn forest(procs: &[Process]) -> Vec<(usize, usize)> {
    let pids: BTreeSet<u32> = procs.iter().map(|p| p.pid).collect();
    let mut children: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (i, p) in procs.iter().enumerate() {
        match p.ppid {
            Some(pp) if pp != p.pid && pids.contains(&pp) => {
                children.entry(pp).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    let mut out = Vec::with_capacity(procs.len());
    let mut seen = vec![false; procs.len()];
    let walk = |start: usize, out: &mut Vec<(usize, usize)>, seen: &mut Vec<bool>| {
        let mut stack = vec![(start, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            out.push((i, depth));
            if let Some(kids) = children.get(&procs[i].pid) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
    };
    for r in roots {
        walk(r, &mut out, &mut seen);
    }
    for i in 0..procs.len() {
        if !seen[i] {
            walk(i, &mut out, &mut seen);
        }
    }
    out
}

/// The numbers of one `-p` or `-U`.
#[derive(Clone, Debug)]
pub struct Numbers(pub Vec<u32>);

/// A comma-separated list of numbers (`-p 1,2 -p 3`).
pub fn numbers(s: &str) -> Result<Numbers, String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.trim().parse().map_err(|_| {
                format!("{x:?}: not a number (user names are not known from a dump: give the uid)")
            })
        })
        .collect::<Result<_, _>>()
        .map(Numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, ppid: u32) -> Process {
        Process {
            unavailable: None,
            pid,
            ppid: Some(ppid),
            pgrp: None,
            session: None,
            uid: Some(pid % 2),
            gid: None,
            euid: None,
            egid: None,
            state: None,
            comm: format!("p{pid}"),
            kthread: None,
            tty_nr: None,
            tty: None,
            start_time_ns: None,
            rss_pages: None,
            vsize_pages: None,
            task: 0,
            threads: Vec::new(),
        }
    }

    #[test]
    fn forest_puts_children_under_parents_and_survives_loops() {
        let procs = vec![
            proc(1, 0),
            proc(2, 0),
            proc(5, 1),
            proc(3, 1),
            proc(7, 5),
            proc(8, 9),
            proc(9, 8),
        ];
        let order: Vec<(u32, usize)> = forest(&procs)
            .iter()
            .map(|&(i, d)| (procs[i].pid, d))
            .collect();
        // 8 and 9 are each other's parent: listed after the tree, once each.
        assert_eq!(
            order,
            [(1, 0), (5, 1), (7, 2), (3, 1), (2, 0), (8, 0), (9, 1)]
        );
    }

    #[test]
    fn selection_is_a_union() {
        let s = Select {
            pids: vec![2],
            uids: vec![1],
            comms: vec!["p4".into()],
        };
        let picked: Vec<u32> = (1..=6)
            .map(|p| proc(p, 0))
            .filter(|p| s.picks(p))
            .map(|p| p.pid)
            .collect();
        assert_eq!(picked, [1, 2, 3, 4, 5]);
        assert!(Select::default().picks(&proc(6, 0)));
        assert_eq!(numbers("1,2,,3").unwrap().0, [1, 2, 3]);
        assert!(numbers("root").unwrap_err().contains("give the uid"));
    }
}
