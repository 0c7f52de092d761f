//! BTF, the BPF Type Format (FORMATS.md §7.2): the kernel's own
//! description of its types, so that walkers take struct member offsets
//! from the kernel they look at.
//!
//! [`LazyBtf`] runs the same parser over a blob in kernel memory, reading
//! only the part its lookups need (a few percent of a kernel's BTF for the
//! process walkers), with the same answers.
//!
//! [`Btf::parse`] validates the whole blob once: header, section bounds,
//! every type record of every kind (INT … ENUM64) and its trailer, every
//! string offset and every type id a record refers to. Accessors then work
//! on the validated bytes, still without indexing that could panic.
//! Lookups that follow type references (typedef chains, anonymous members,
//! arrays of arrays) are bounded in depth and in work, so a blob with type
//! loops gives an error, not a hang.
//!
//! ```
//! # #[cfg(feature = "builder")] {
//! use kvm_elf::write::{BtfBuilder, Field};
//! use kvm_elf::Btf;
//! let mut b = BtfBuilder::new(kvm_core::Endian::Little);
//! let int = b.int("int", 4, kvm_elf::btf::INT_SIGNED, 32);
//! let pid_t = b.typedef("pid_t", int);
//! let inner = b.struct_("", 8, &[Field::new("exec_start", int, 0), Field::new("pid", pid_t, 32)]);
//! let task = b.struct_("task_struct", 16, &[Field::new("state", int, 0), Field::new("", inner, 64)]);
//! let btf = Btf::parse(&b.finish())?;
//! let m = btf.member("task_struct", "pid")?.unwrap(); // found inside the anonymous struct
//! assert_eq!((m.offset, btf.size_of(m.type_id)?), (12, 4));
//! assert_eq!(btf.size_of_name("task_struct")?, Some(16));
//! # let _ = task;
//! # }
//! # Ok::<(), kvm_core::Error>(())
//! ```

// First: rustdoc lists `Btf`'s methods in module order, and `parse` and
// `from_vec` lead them.
mod parse;

mod lazy;
mod lookup;
mod search;
mod types;

pub use lazy::{LazyBtf, MAX_SEARCH_BLOB};
pub use search::{search, search_first};
pub use types::{
    ArrayInfo, Btf, EnumValue, Enumerator, IntInfo, Kind, Member, Param, RawMember, Type, TypeId,
    VarSecInfo, BTF_MAGIC, INT_BOOL, INT_CHAR, INT_SIGNED, MAX_CHAIN, MAX_NAME, MEMBER_BUDGET,
};
