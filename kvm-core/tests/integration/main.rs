//! Integration tests of kvm-core, in one test binary.

mod hostile;
mod props;
mod vectors;
