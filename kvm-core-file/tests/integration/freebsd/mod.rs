//! FreeBSD dumps: the real LLDB dumps (tests/data/freebsd/SOURCE.md), the
//! dump-device layout around their bodies, synthetic i386 minidumps, and
//! damaged files.

mod data;
mod device;
mod hostile;
mod i386;
mod real;
mod writer;
