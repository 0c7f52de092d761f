//! The symbol table: one type for every symbol source, with name → address
//! and address → nearest symbol lookups, and the KASLR state of its
//! addresses.

use alloc::string::String;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use kvm_core::{Error, Result, VirtAddr};

/// Symbols a table may hold (16 Mi): far above any kernel (a 6.x distro
/// kernel with `CONFIG_KALLSYMS_ALL` has about 200 000), low enough that
/// indexes fit in `u32`.
pub const MAX_SYMBOLS: usize = 1 << 24;

/// Longest symbol name accepted (bytes). The kernel's own limit is
/// `KSYM_NAME_LEN` (512 since 6.1); System.map and ELF files of other
/// systems get some room above it.
pub const MAX_NAME_LEN: usize = 4096;

/// Whether a table's addresses are the kernel's link-time addresses or the
/// addresses it runs at.
///
/// With KASLR the two differ by the slide (VMCOREINFO `KERNELOFFSET`).
/// Tables read from a kernel file or a `System.map` start as
/// [`AddrSpace::LinkTime`] and become [`AddrSpace::Runtime`] through
/// [`SymbolTable::relocate`], exactly once; tables read from the running
/// kernel (its in-memory kallsyms, `/proc/kallsyms`) are runtime tables
/// from the start and refuse to be relocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrSpace {
    /// Addresses as linked (the kernel file, `System.map`).
    LinkTime,
    /// Addresses as the kernel runs (KASLR slide applied, or none needed).
    Runtime,
}

/// One symbol, borrowed from its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol<'a> {
    /// The name.
    pub name: &'a str,
    /// The address (or, for per-CPU variables, the offset into each CPU's
    /// per-CPU area; for other absolute symbols, the value).
    pub addr: VirtAddr,
    /// The size in bytes, where the source records it (ELF `st_size`).
    pub size: Option<u64>,
    /// The type letter as `nm` and `/proc/kallsyms` print it: `T`/`t`
    /// text, `D`/`d` data, `B`/`b` bss, `R`/`r` read-only data, `A`/`a`
    /// absolute, `W`/`w`/`V`/`v` weak, … Upper case means global.
    pub kind: u8,
    /// The module that defines the symbol (`/proc/kallsyms` `[module]`).
    pub module: Option<&'a str>,
}

impl Symbol<'_> {
    /// Whether the symbol is global (upper-case type letter).
    pub fn is_global(&self) -> bool {
        self.kind.is_ascii_uppercase()
    }

    /// Whether `addr` lies inside the symbol (`None` when the size is not
    /// known).
    pub fn contains(&self, addr: VirtAddr) -> Option<bool> {
        let size = self.size?;
        let off = addr.0.checked_sub(self.addr.0)?;
        Some(off < size)
    }
}

/// The answer of an address lookup: the nearest symbol at or below the
/// address, and how far above it the address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nearest<'a> {
    /// The symbol.
    pub symbol: Symbol<'a>,
    /// `addr - symbol.addr`.
    pub offset: u64,
}

impl Nearest<'_> {
    /// Whether the address is inside the symbol by its recorded size
    /// (`None` when the size is not known).
    pub fn inside(&self) -> Option<bool> {
        self.symbol.size.map(|s| self.offset < s)
    }
}

const NO_MODULE: u32 = u32::MAX;
const NO_SIZE: u64 = u64::MAX;

#[derive(Clone, Copy, Debug)]
struct Entry {
    addr: u64,
    size: u64,
    name_off: u32,
    name_len: u32,
    module: u32,
    kind: u8,
}

impl Entry {
    /// Lower is preferred when several symbols share a name or an address:
    /// kernel before module, global before local, not absolute.
    fn rank(&self) -> u8 {
        let module = u8::from(self.module != NO_MODULE);
        (module << 2) | kind_rank(self.kind)
    }
}

/// Preference among kernel symbols of one name or address by type letter
/// (lower first): global before local, not absolute.
pub(crate) fn kind_rank(kind: u8) -> u8 {
    let local = u8::from(!kind.is_ascii_uppercase());
    let abs = u8::from(matches!(kind, b'A' | b'a'));
    (local << 1) | abs
}

/// Collects symbols, then builds a [`SymbolTable`] with its indexes.
#[derive(Debug)]
pub struct SymbolTableBuilder {
    space: AddrSpace,
    names: String,
    entries: Vec<Entry>,
    modules: Vec<String>,
    module_ids: HashMap<String, u32>,
}

impl SymbolTableBuilder {
    /// An empty table whose addresses are in `space`.
    pub fn new(space: AddrSpace) -> Self {
        SymbolTableBuilder {
            space,
            names: String::new(),
            entries: Vec::new(),
            modules: Vec::new(),
            module_ids: HashMap::new(),
        }
    }

    /// Number of symbols so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no symbol was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a symbol of the kernel itself.
    ///
    /// Returns an error for an empty or over-long name, or when the table
    /// is full ([`MAX_SYMBOLS`]).
    pub fn push(&mut self, name: &str, addr: u64, kind: u8, size: Option<u64>) -> Result<()> {
        self.push_in(name, addr, kind, size, None)
    }

    /// Adds a symbol, optionally defined by module `module`.
    pub fn push_in(
        &mut self,
        name: &str,
        addr: u64,
        kind: u8,
        size: Option<u64>,
        module: Option<&str>,
    ) -> Result<()> {
        if name.is_empty() {
            return Err(Error::Malformed("symbol with an empty name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(Error::Malformed("symbol name longer than 4096 bytes"));
        }
        if self.entries.len() >= MAX_SYMBOLS {
            return Err(Error::Unsupported("more than 16 Mi symbols"));
        }
        let name_off = u32::try_from(self.names.len())
            .map_err(|_| Error::Unsupported("symbol names exceed 4 GiB"))?;
        let module = match module {
            None => NO_MODULE,
            Some(m) => match self.module_ids.get(m) {
                Some(&id) => id,
                None => {
                    let id = u32::try_from(self.modules.len())
                        .map_err(|_| Error::Unsupported("too many modules"))?;
                    self.modules.push(String::from(m));
                    self.module_ids.insert(String::from(m), id);
                    id
                }
            },
        };
        self.names.push_str(name);
        self.entries.push(Entry {
            addr,
            size: size.filter(|&s| s != NO_SIZE).unwrap_or(NO_SIZE),
            name_off,
            // MAX_NAME_LEN fits in u32.
            name_len: name.len() as u32,
            module,
            kind,
        });
        Ok(())
    }

    /// Builds the indexes.
    pub fn finish(self) -> SymbolTable {
        let mut t = SymbolTable {
            space: self.space,
            names: self.names,
            entries: self.entries,
            modules: self.modules,
            by_name: HashTable::new(),
            by_addr: Vec::new(),
            addrs: Vec::new(),
            hasher: DefaultHashBuilder::default(),
        };
        t.index_names();
        t.index_addrs();
        t
    }
}

/// A symbol table: name → address, address → nearest symbol.
///
/// Built from an ELF kernel file ([`SymbolTable::from_elf`]), a
/// `System.map` ([`SymbolTable::from_system_map`]), `/proc/kallsyms` text
/// ([`SymbolTable::from_proc_kallsyms`]), the kernel's compressed kallsyms
/// in memory ([`crate::kallsyms::decode`]) or by hand
/// ([`SymbolTableBuilder`]).
///
/// Names map to one preferred symbol when several share a name (kernel
/// before module, global before local, then the first); reverse lookups
/// return the nearest symbol at or below an address, preferring the same
/// way among symbols at one address.
///
/// ```
/// use kvm_elf::{AddrSpace, SymbolTable};
/// let map = b"ffffffff81000000 T _stext\nffffffff81000100 t helper\n0000000000000000 D __per_cpu_start\n0000000000001000 D __per_cpu_end\n";
/// let mut t = SymbolTable::from_system_map(map)?;
/// assert_eq!(t.space(), AddrSpace::LinkTime);
/// t.relocate(0x2a00_0000)?; // KERNELOFFSET
/// assert_eq!(t.addr("_stext"), Some(kvm_core::VirtAddr(0xffff_ffff_ab00_0000)));
/// assert_eq!(t.addr("__per_cpu_end"), Some(kvm_core::VirtAddr(0x1000))); // per-CPU: not moved
/// let near = t.nearest(kvm_core::VirtAddr(0xffff_ffff_ab00_0123)).unwrap();
/// assert_eq!((near.symbol.name, near.offset), ("helper", 0x23));
/// assert!(t.relocate(0x2a00_0000).is_err()); // never twice
/// # Ok::<(), kvm_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SymbolTable {
    space: AddrSpace,
    names: String,
    entries: Vec<Entry>,
    modules: Vec<String>,
    /// Indexes into `entries`, hashed by name.
    by_name: HashTable<u32>,
    /// Indexes into `entries`, sorted by (address, rank, index).
    by_addr: Vec<u32>,
    /// The addresses of `by_addr`, in the same order (a dense array for
    /// the binary search).
    addrs: Vec<u64>,
    hasher: DefaultHashBuilder,
}

impl core::fmt::Debug for SymbolTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SymbolTable")
            .field("space", &self.space)
            .field("symbols", &self.entries.len())
            .field("modules", &self.modules.len())
            .finish()
    }
}

fn name_of<'a>(names: &'a str, e: &Entry) -> &'a str {
    let start = e.name_off as usize;
    names
        .get(start..start + e.name_len as usize)
        .unwrap_or_default()
}

impl SymbolTable {
    fn index_names(&mut self) {
        let SymbolTable {
            names,
            entries,
            by_name,
            hasher,
            ..
        } = self;
        by_name.clear();
        by_name.reserve(entries.len(), |&i| {
            hasher.hash_one(name_of(names, &entries[i as usize]))
        });
        for (i, e) in entries.iter().enumerate() {
            let name = name_of(names, e);
            let h = hasher.hash_one(name);
            match by_name.find_mut(h, |&j| name_of(names, &entries[j as usize]) == name) {
                Some(slot) => {
                    if e.rank() < entries[*slot as usize].rank() {
                        *slot = i as u32;
                    }
                }
                None => {
                    by_name.insert_unique(h, i as u32, |&j| {
                        hasher.hash_one(name_of(names, &entries[j as usize]))
                    });
                }
            }
        }
    }

    fn index_addrs(&mut self) {
        let entries = &self.entries;
        let mut idx: Vec<u32> = (0..entries.len() as u32).collect();
        idx.sort_unstable_by_key(|&i| {
            let e = &entries[i as usize];
            (e.addr, e.rank(), i)
        });
        self.addrs = idx.iter().map(|&i| entries[i as usize].addr).collect();
        self.by_addr = idx;
    }

    fn symbol(&self, i: u32) -> Option<Symbol<'_>> {
        let e = self.entries.get(i as usize)?;
        Some(Symbol {
            name: name_of(&self.names, e),
            addr: VirtAddr(e.addr),
            size: (e.size != NO_SIZE).then_some(e.size),
            kind: e.kind,
            module: self.modules.get(e.module as usize).map(String::as_str),
        })
    }

    /// Whether the addresses are link-time or runtime addresses.
    pub fn space(&self) -> AddrSpace {
        self.space
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The preferred symbol called `name` (kernel before module, global
    /// before local, then the first in the source).
    pub fn lookup(&self, name: &str) -> Option<Symbol<'_>> {
        let h = self.hasher.hash_one(name);
        let &i = self.by_name.find(h, |&j| {
            self.entries
                .get(j as usize)
                .is_some_and(|e| name_of(&self.names, e) == name)
        })?;
        self.symbol(i)
    }

    /// The address of `name` (`kvm_nlist` for one name).
    pub fn addr(&self, name: &str) -> Option<VirtAddr> {
        self.lookup(name).map(|s| s.addr)
    }

    /// Every symbol called `name`, in source order (a linear scan: static
    /// symbols of the same name are common in kernels).
    pub fn lookup_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Symbol<'a>> + 'a {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, e)| name_of(&self.names, e) == name)
            .filter_map(|(i, _)| self.symbol(i as u32))
    }

    /// The symbol at or nearest below `addr`, with the offset of `addr`
    /// from it. Among symbols at the same address the preferred one is
    /// returned (kernel before module, global before local, not absolute).
    pub fn nearest(&self, addr: VirtAddr) -> Option<Nearest<'_>> {
        let end = self.addrs.partition_point(|&a| a <= addr.0);
        let base = *self.addrs.get(end.checked_sub(1)?)?;
        // The first (preferred) symbol at that address.
        let first = self.addrs.partition_point(|&a| a < base);
        let symbol = self.symbol(*self.by_addr.get(first)?)?;
        Some(Nearest {
            symbol,
            offset: addr.0 - base,
        })
    }

    /// Like [`SymbolTable::nearest`], but among symbols at the same address
    /// the first in the table's own order: the one the kernel's
    /// `kallsyms_lookup` names (and `/proc/PID/stack`, oops traces print)
    /// when the table is the kernel's kallsyms.
    pub fn nearest_first(&self, addr: VirtAddr) -> Option<Nearest<'_>> {
        let end = self.addrs.partition_point(|&a| a <= addr.0);
        let base = *self.addrs.get(end.checked_sub(1)?)?;
        let first = self.addrs.partition_point(|&a| a < base);
        let i = *self.by_addr.get(first..end)?.iter().min()?;
        Some(Nearest {
            symbol: self.symbol(i)?,
            offset: addr.0 - base,
        })
    }

    /// The symbol that contains `addr` by its recorded size; `None` when
    /// the nearest symbol has no size or ends below `addr`.
    pub fn containing(&self, addr: VirtAddr) -> Option<Nearest<'_>> {
        self.nearest(addr).filter(|n| n.inside() == Some(true))
    }

    /// Every symbol, in source order.
    pub fn iter(&self) -> impl Iterator<Item = Symbol<'_>> + '_ {
        (0..self.entries.len() as u32).filter_map(move |i| self.symbol(i))
    }

    /// Every symbol, in address order.
    pub fn iter_by_addr(&self) -> impl Iterator<Item = Symbol<'_>> + '_ {
        self.by_addr.iter().filter_map(move |&i| self.symbol(i))
    }

    /// Module names seen (`/proc/kallsyms` tables).
    pub fn modules(&self) -> impl Iterator<Item = &str> + '_ {
        self.modules.iter().map(String::as_str)
    }

    /// The zero-based per-CPU range `[__per_cpu_start, __per_cpu_end]`
    /// when the per-CPU section is linked at address 0 below the kernel
    /// text (x86-64 SMP), where its symbols are offsets, not addresses.
    pub fn percpu_range(&self) -> Option<(u64, u64)> {
        let start = self.lookup("__per_cpu_start")?.addr.0;
        let end = self.lookup("__per_cpu_end")?.addr.0;
        let text = self
            .lookup("_stext")
            .or_else(|| self.lookup("_text"))
            .map_or(u64::MAX, |s| s.addr.0);
        (start <= end && end < text).then_some((start, end))
    }

    /// Applies the KASLR slide: adds `offset` (VMCOREINFO `KERNELOFFSET`;
    /// wrapping, so a downward slide is a two's-complement value) to every
    /// address except absolute symbols (type `A`/`a`) and zero-based
    /// per-CPU symbols ([`SymbolTable::percpu_range`]), and marks the table
    /// [`AddrSpace::Runtime`]. A kernel without KASLR needs
    /// `relocate(0)`.
    ///
    /// Returns an error, and changes nothing, if the table already holds
    /// runtime addresses: the slide is never applied twice.
    pub fn relocate(&mut self, offset: u64) -> Result<()> {
        if self.space == AddrSpace::Runtime {
            return Err(Error::Unsupported(
                "symbol table already holds runtime addresses (KASLR slide applied once)",
            ));
        }
        let percpu = self.percpu_range();
        for e in &mut self.entries {
            let absolute = matches!(e.kind, b'A' | b'a');
            let in_percpu = percpu.is_some_and(|(s, end)| (s..=end).contains(&e.addr));
            if !absolute && !in_percpu {
                e.addr = e.addr.wrapping_add(offset);
            }
        }
        self.space = AddrSpace::Runtime;
        self.index_addrs();
        Ok(())
    }

    /// [`SymbolTable::relocate`] by value.
    pub fn relocated(mut self, offset: u64) -> Result<Self> {
        self.relocate(offset)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SymbolTable {
        let mut b = SymbolTableBuilder::new(AddrSpace::LinkTime);
        b.push("b", 0x2000, b't', None).unwrap();
        b.push("a", 0x1000, b'T', Some(0x10)).unwrap();
        b.push("dup", 0x3000, b't', None).unwrap();
        b.push("dup", 0x4000, b'T', None).unwrap();
        b.push_in("dup", 0x5000, b'T', None, Some("m")).unwrap();
        b.push("alias", 0x2000, b'T', None).unwrap();
        b.finish()
    }

    #[test]
    fn nearest_first_keeps_the_table_order_among_aliases() {
        let t = table();
        // "b" (local) comes before "alias" (global) at 0x2000.
        assert_eq!(t.nearest(VirtAddr(0x2004)).unwrap().symbol.name, "alias");
        let n = t.nearest_first(VirtAddr(0x2004)).unwrap();
        assert_eq!((n.symbol.name, n.offset), ("b", 4));
        assert_eq!(t.nearest_first(VirtAddr(0x1000)).unwrap().symbol.name, "a");
        assert!(t.nearest_first(VirtAddr(0xfff)).is_none());
    }

    #[test]
    fn lookups() {
        let t = table();
        assert_eq!(t.len(), 6);
        assert_eq!(t.addr("a"), Some(VirtAddr(0x1000)));
        assert_eq!(t.addr("dup"), Some(VirtAddr(0x4000)));
        assert_eq!(t.lookup_all("dup").count(), 3);
        assert_eq!(t.addr("nope"), None);
        assert!(t.nearest(VirtAddr(0xfff)).is_none());
        let n = t.nearest(VirtAddr(0x1008)).unwrap();
        assert_eq!((n.symbol.name, n.offset, n.inside()), ("a", 8, Some(true)));
        assert!(t.containing(VirtAddr(0x1010)).is_none());
        // Two symbols at 0x2000: the global one wins.
        assert_eq!(t.nearest(VirtAddr(0x2fff)).unwrap().symbol.name, "alias");
        assert_eq!(
            t.nearest(VirtAddr(u64::MAX)).unwrap().symbol.module,
            Some("m")
        );
        let by_addr: Vec<_> = t.iter_by_addr().map(|s| s.addr.0).collect();
        assert!(by_addr.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(t.modules().collect::<Vec<_>>(), ["m"]);
    }

    #[test]
    fn rejects_bad_names() {
        let mut b = SymbolTableBuilder::new(AddrSpace::Runtime);
        assert!(b.push("", 0, b'T', None).is_err());
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(b.push(&long, 0, b'T', None).is_err());
        assert!(b.is_empty());
    }

    #[test]
    fn relocate_once() {
        let mut t = table();
        t.relocate(0x100).unwrap();
        assert_eq!(t.addr("a"), Some(VirtAddr(0x1100)));
        assert_eq!(t.space(), AddrSpace::Runtime);
        assert!(t.relocate(0x100).is_err());
        assert_eq!(t.addr("a"), Some(VirtAddr(0x1100)));
    }
}
