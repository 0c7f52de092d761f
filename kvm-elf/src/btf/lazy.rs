//! [`LazyBtf`]: a BTF blob in kernel memory, read only as far as its
//! lookups need, with the answers of the whole blob.

use super::parse::{header, Header};
use super::types::{Btf, EnumValue, Member, Stop, TypeId, R, STR_CHUNK};
use alloc::vec;
use kvm_core::{Error, Result, VirtReadExt};

/// Largest BTF blob [`search_first`] reads, and the bound readers of a
/// blob whose extent they know should use too (vmlinux BTF is a few MiB).
///
/// [`search_first`]: super::search_first
pub const MAX_SEARCH_BLOB: u64 = 64 << 20;

/// Bytes of the type section a [`LazyBtf`] reads first (then twice as
/// much as it has each time).
const TYPES_STEP: usize = 64 << 10;

/// A kernel's BTF read from memory only as lookups need it: the type
/// section from its start, as far as the lookups go, and the string
/// section in 16 KiB chunks. A kernel's `.BTF` is several MiB, yet the
/// structs a process walker needs are among its first few thousand types:
/// the loaded part stays a few percent of the blob.
///
/// Lookups give the same answers as on the whole blob ([`Btf`]): a search
/// by name that fails on the parsed records parses more before saying
/// "none", and every record is checked as it is parsed. References to type
/// ids are checked when followed rather than up front.
#[derive(Debug)]
pub struct LazyBtf {
    btf: Btf,
    base: kvm_core::VirtAddr,
}

impl LazyBtf {
    /// The blob of `len` bytes at `at` (`__start_BTF`, `__stop_BTF -
    /// __start_BTF`): reads and checks its header and finds the pointer
    /// size. At most [`MAX_SEARCH_BLOB`] bytes.
    pub fn new(mem: &dyn kvm_core::VirtRead, at: kvm_core::VirtAddr, len: u64) -> Result<LazyBtf> {
        if len > MAX_SEARCH_BLOB {
            return Err(Error::Malformed("BTF blob larger than 64 MiB"));
        }
        let len = len as usize;
        at.0.checked_add(len as u64)
            .ok_or(Error::Malformed("BTF blob wraps around the address space"))?;
        let mut head = [0u8; 24];
        if len < head.len() {
            return Err(Error::Malformed("BTF: blob shorter than its header"));
        }
        mem.read_virt_exact(at, &mut head)?;
        let Header {
            e,
            len: hdr_len,
            types,
            strs,
        } = header(&head, len)?;
        let mut data = vec![0u8; len];
        let hdr = data
            .get_mut(..hdr_len)
            .ok_or(Error::Malformed("BTF: bad header length"))?;
        mem.read_virt_exact(at, hdr)?;
        let chunks = (strs.1 - strs.0).div_ceil(STR_CHUNK);
        let mut lazy = LazyBtf {
            btf: Btf::unparsed(data, e, types, strs, Some(vec![false; chunks])),
            base: at,
        };
        lazy.btf.ptr_size = lazy.run(mem, |b| b.detect_ptr_size())?;
        Ok(lazy)
    }

    /// Runs a lookup, loading what it asks for until it can answer. Ends:
    /// each round loads bytes not loaded before, or fails.
    fn run<T>(&mut self, mem: &dyn kvm_core::VirtRead, f: impl Fn(&Btf) -> R<T>) -> Result<T> {
        loop {
            match f(&self.btf) {
                Ok(v) => return Ok(v),
                Err(Stop::Bad(e)) => return Err(e),
                Err(Stop::Types) => self.parse_more(mem)?,
                Err(Stop::Str(off)) => self.load_str(mem, off)?,
            }
        }
    }

    /// Parses more records, loading more of the type section (twice what
    /// is loaded, at least [`TYPES_STEP`]) when the loaded part is parsed.
    fn parse_more(&mut self, mem: &dyn kvm_core::VirtRead) -> Result<()> {
        let before = self.btf.len();
        loop {
            match self.btf.parse_more() {
                Ok(()) => return Ok(()),
                Err(Stop::Bad(e)) => return Err(e),
                Err(Stop::Str(off)) => self.load_str(mem, off)?,
                Err(Stop::Types) if self.btf.len() > before => return Ok(()),
                Err(Stop::Types) => {
                    let b = &mut self.btf;
                    let from = b.types_loaded;
                    if from >= b.types.1 {
                        return Err(Error::Malformed("BTF: type section ends inside a record"));
                    }
                    let step = (from - b.types.0).max(TYPES_STEP);
                    let to = from.saturating_add(step).min(b.types.1);
                    self.read(mem, from, to)?;
                    self.btf.types_loaded = to;
                }
            }
        }
    }

    /// Loads the string chunk holding `off` (an offset in the string
    /// section) and checks the section's first and last bytes are NUL.
    fn load_str(&mut self, mem: &dyn kvm_core::VirtRead, off: usize) -> Result<()> {
        let c = off / STR_CHUNK;
        let strs = self.btf.strs;
        let from = strs.0 + c * STR_CHUNK;
        let to = from.saturating_add(STR_CHUNK).min(strs.1);
        match self.btf.str_loaded.as_ref().and_then(|l| l.get(c)) {
            Some(false) => {}
            _ => {
                return Err(Error::Malformed(
                    "BTF: string offset outside the string section",
                ))
            }
        }
        self.read(mem, from, to)?;
        let d = &self.btf.data;
        if (from == strs.0 && d.get(from) != Some(&0))
            || (to == strs.1 && d.get(to - 1) != Some(&0))
        {
            return Err(Error::Malformed(
                "BTF: string section must start and end with NUL",
            ));
        }
        if let Some(slot) = self.btf.str_loaded.as_mut().and_then(|l| l.get_mut(c)) {
            *slot = true;
        }
        Ok(())
    }

    /// Reads blob bytes `from..to` from memory.
    fn read(&mut self, mem: &dyn kvm_core::VirtRead, from: usize, to: usize) -> Result<()> {
        let buf = self
            .btf
            .data
            .get_mut(from..to)
            .ok_or(Error::Malformed("BTF: read outside the blob"))?;
        mem.read_virt_exact(kvm_core::VirtAddr(self.base.0 + from as u64), buf)
    }

    /// Bytes of the blob read from memory so far.
    pub fn loaded(&self) -> usize {
        let b = &self.btf;
        let strs = b.str_loaded.as_ref().map_or(0, |l| {
            (0..l.len())
                .filter(|&c| l[c])
                .map(|c| STR_CHUNK.min(b.strs.1 - b.strs.0 - c * STR_CHUNK))
                .sum()
        });
        b.types_loaded - b.types.0 + strs
    }

    /// The blob's size.
    pub fn blob_len(&self) -> usize {
        self.btf.data.len()
    }

    /// [`Btf::composite`].
    pub fn composite(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        name: &str,
    ) -> Result<Option<TypeId>> {
        self.run(mem, |b| b.q_composite(name))
    }

    /// [`Btf::member_path`].
    pub fn member_path(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        path: &str,
    ) -> Result<Option<Member>> {
        self.run(mem, |b| b.q_member_path(path))
    }

    /// [`Btf::member_of`].
    pub fn member_of(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        id: TypeId,
        path: &str,
    ) -> Result<Option<Member>> {
        self.run(mem, |b| b.q_member_of(id, path))
    }

    /// [`Btf::size_of`].
    pub fn size_of(&mut self, mem: &dyn kvm_core::VirtRead, id: TypeId) -> Result<u64> {
        self.run(mem, |b| b.q_size_of(id))
    }

    /// [`Btf::size_of_name`].
    pub fn size_of_name(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        name: &str,
    ) -> Result<Option<u64>> {
        self.run(mem, |b| b.q_size_of_name(name))
    }

    /// [`Btf::enum_value`].
    pub fn enum_value(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        enum_name: &str,
        enumerator: &str,
    ) -> Result<Option<EnumValue>> {
        self.run(mem, |b| b.q_enum_value(enum_name, enumerator))
    }

    /// [`Btf::enumerator`].
    pub fn enumerator(
        &mut self,
        mem: &dyn kvm_core::VirtRead,
        name: &str,
    ) -> Result<Option<EnumValue>> {
        self.run(mem, |b| b.q_enumerator(name))
    }

    /// [`Btf::pointer_size`].
    pub fn pointer_size(&self) -> u32 {
        self.btf.ptr_size
    }
}
