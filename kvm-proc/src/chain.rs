//! Following a chain of pointers through kernel memory, bounded: Linux's
//! `list_head` rings (which end back at their head) and BSD's `LIST` /
//! `TAILQ` lists (which end at NULL) alike.

use alloc::vec::Vec;
use kvm_core::{Error, Result};

/// The nodes of the chain that starts at `first` and ends at `end`: each
/// node's successor is `next(node)`. A chain longer than `max`, or one
/// that loops without reaching `end`, is [`Error::Malformed`]`(what)`; a
/// loop is found as soon as it repeats (Brent's cycle detection: one saved
/// node, moved at powers of two), so a corrupt dump costs at most about
/// twice the loop's length in reads.
pub fn follow(
    first: u64,
    end: u64,
    max: usize,
    what: &'static str,
    next: impl FnMut(u64) -> Result<u64>,
) -> Result<Vec<u64>> {
    let (nodes, stop) = follow_partial(first, end, max, what, next);
    match stop {
        None => Ok(nodes),
        Some((_, e)) => Err(e),
    }
}

/// [`follow`], keeping what it found before it stopped: the nodes read
/// (each once), and, if the chain did not end, the node it stopped at (the one whose
/// link could not be read, or the one a loop or the bound came back to)
/// with the reason.
pub fn follow_partial(
    first: u64,
    end: u64,
    max: usize,
    what: &'static str,
    mut next: impl FnMut(u64) -> Result<u64>,
) -> (Vec<u64>, Option<(u64, Error)>) {
    let mut out = Vec::new();
    let (mut saved, mut power, mut steps) = (end, 1usize, 0usize);
    let mut cur = first;
    while cur != end {
        if cur == saved || out.len() >= max {
            // A loop came back: each node once, in the order first read.
            let mut once = alloc::collections::BTreeSet::new();
            out.retain(|n| once.insert(*n));
            return (out, Some((cur, Error::Malformed(what))));
        }
        out.push(cur);
        steps += 1;
        if steps == power {
            (saved, power, steps) = (cur, power * 2, 0);
        }
        cur = match next(cur) {
            Ok(n) => n,
            Err(e) => {
                let at = out.pop().expect("pushed above");
                return (out, Some((at, e)));
            }
        };
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHAT: &str = "test chain does not end";

    /// A chain over a table: node `i` links to `links[i]`.
    fn run(first: u64, end: u64, links: &[u64], max: usize) -> Result<Vec<u64>> {
        follow(first, end, max, WHAT, |n| {
            links
                .get(n as usize)
                .copied()
                .ok_or(Error::NotInMemory { pa: n })
        })
    }

    #[test]
    fn ends_at_null_or_at_the_head() {
        // 1 → 2 → 3 → 0 (NULL-terminated).
        assert_eq!(run(1, 0, &[0, 2, 3, 0], 10), Ok(alloc::vec![1, 2, 3]));
        // A ring through the head 0: 0 → 2 → 1 → 0.
        assert_eq!(run(2, 0, &[2, 0, 1], 10), Ok(alloc::vec![2, 1]));
        assert_eq!(run(0, 0, &[], 10), Ok(alloc::vec![]));
    }

    #[test]
    fn loops_and_long_chains_are_errors() {
        // 1 → 2 → 3 → 2: never reaches 0.
        assert_eq!(run(1, 0, &[0, 2, 3, 2], 100), Err(Error::Malformed(WHAT)));
        // A self-loop.
        assert_eq!(run(1, 0, &[0, 1], 100), Err(Error::Malformed(WHAT)));
        // Longer than allowed.
        assert_eq!(run(1, 0, &[0, 2, 3, 4, 0], 3), Err(Error::Malformed(WHAT)));
        // An unreadable link is that read's error.
        assert_eq!(run(1, 0, &[0, 9], 10), Err(Error::NotInMemory { pa: 9 }));
    }

    #[test]
    fn a_partial_walk_keeps_the_nodes_before_the_break() {
        let links = [0u64, 2, 3, 9];
        let r = follow_partial(1, 0, 10, WHAT, |n| {
            links
                .get(n as usize)
                .copied()
                .ok_or(Error::NotInMemory { pa: n })
        });
        // Node 9's link cannot be read: 1, 2, 3 are kept, and 9 is where
        // it stopped.
        assert_eq!(
            r,
            (
                alloc::vec![1, 2, 3],
                Some((9, Error::NotInMemory { pa: 9 }))
            )
        );
    }
}
