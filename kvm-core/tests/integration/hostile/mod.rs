//! Hostile page tables: self-references, cycles, entries pointing outside
//! memory, large pages where the format forbids them, misaligned frames and
//! reserved bits. Every translation must end with the exact error (or, where
//! the hardware would translate, the exact translation), and every `walk`
//! must terminate, within a time limit, with exactly the pages it can reach.
//!
//! A note on cycles: an entry that points back at its own table or at an
//! ancestor is what a recursive page-table slot is (FreeBSD/i386 PTmap,
//! Windows' self-map). The hardware follows it, and a translation through
//! it that loops all the way down ends in a *valid* page that maps the table
//! itself. Those paths are asserted to give exactly that page; the paths
//! that leave the cycle onto an empty or malformed entry give the error.
//! `walk` skips a table that is already on its path (see `radix::walk`), so
//! it reports the pages below a recursive slot once, at their first place.

mod arm64;
mod i386;
mod x86_64;

use kvm_core::{Error, PageRun, PhysAddr, Prot, SparseMem, Translate, Translation, VirtAddr};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RW: Prot = Prot::READ.union(Prot::WRITE);
const RWX: Prot = RW.union(Prot::EXEC);

/// Walks on a worker thread and fails if the walk takes more than a few
/// seconds or reports more than a million pages.
fn walk_runs<T: Translate + Send + 'static>(mem: &SparseMem, tr: T) -> Vec<PageRun> {
    let mem = mem.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut runs = Vec::new();
        let r = tr.walk(&mem, &mut |run| {
            runs.push(run);
            if runs.len() > 1_000_000 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let _ = tx.send((r, runs, start.elapsed()));
    });
    let (r, runs, took) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("walk did not terminate");
    assert_eq!(r, Ok(()));
    assert!(runs.len() <= 1_000_000, "walk does not stop");
    assert!(took < Duration::from_secs(5), "walk took {took:?}");
    runs
}

fn run(va: u64, pa: u64, len: u64, prot: Prot) -> PageRun {
    PageRun {
        va: VirtAddr(va),
        pa: PhysAddr(pa),
        len,
        prot,
    }
}

/// The translation of an address at offset `off` in a page of `size` at `pa`.
fn page(pa: u64, off: u64, size: u64, prot: Prot) -> Translation {
    Translation {
        pa: PhysAddr(pa + off),
        len: size - off,
        page_size: size,
        prot,
    }
}

fn bad(va: u64, level: u8, entry: u64) -> Error {
    Error::BadEntry { va, level, entry }
}
