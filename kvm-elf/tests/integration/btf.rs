//! BTF.
