//! Integration tests of kvm-core-file: one binary, one module per subject.

mod common;
mod freebsd;
mod kdump;
mod kdump_hostile;
