//! Address translation: the [`Translate`] trait, its results, and
//! [`Translated`], which joins physical memory and a translator into a
//! virtual address space.

use crate::{Error, PhysAddr, PhysRead, Result, VirtAddr, VirtRead, VirtWrite};
use core::ops::ControlFlow;

/// Access rights of a mapping, merged over every level of the walk.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Prot(u8);

impl Prot {
    /// Readable (every valid mapping is).
    pub const READ: Prot = Prot(1);
    /// Writable.
    pub const WRITE: Prot = Prot(2);
    /// Executable.
    pub const EXEC: Prot = Prot(4);
    /// Accessible from user mode.
    pub const USER: Prot = Prot(8);

    /// No rights.
    pub const fn empty() -> Prot {
        Prot(0)
    }
    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Rights from raw bits (unknown bits dropped).
    pub const fn from_bits_truncate(b: u8) -> Prot {
        Prot(b & 0xf)
    }
    /// Whether every right in `other` is present.
    pub const fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }
    /// The union of both.
    pub const fn union(self, other: Prot) -> Prot {
        Prot(self.0 | other.0)
    }
    /// `self` without the rights in `other`.
    pub const fn remove(self, other: Prot) -> Prot {
        Prot(self.0 & !other.0)
    }
}

impl core::ops::BitOr for Prot {
    type Output = Prot;
    fn bitor(self, o: Prot) -> Prot {
        self.union(o)
    }
}

impl core::fmt::Debug for Prot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let c = |p, ch| if self.contains(p) { ch } else { '-' };
        write!(
            f,
            "{}{}{}{}",
            c(Prot::READ, 'r'),
            c(Prot::WRITE, 'w'),
            c(Prot::EXEC, 'x'),
            c(Prot::USER, 'u')
        )
    }
}

/// The result of translating one virtual address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Where the virtual address lands.
    pub pa: PhysAddr,
    /// Bytes from `pa` to the end of the page that maps it (≥ 1): the
    /// length that is contiguous in both address spaces.
    pub len: u64,
    /// The size of that page (4 KiB, 2 MiB, 1 GiB, 64 KiB, …).
    pub page_size: u64,
    /// Access rights.
    pub prot: Prot,
}

/// One mapped page (of any size), as enumerated by [`Translate::walk`]; the
/// analogue of FreeBSD's `struct kvm_page`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRun {
    /// First virtual address of the page.
    pub va: VirtAddr,
    /// Its physical address.
    pub pa: PhysAddr,
    /// Its size in bytes.
    pub len: u64,
    /// Access rights.
    pub prot: Prot,
}

/// A translator from virtual to physical addresses: one architecture's page
/// tables (or a dump's own map), with its root.
///
/// Translators are small values; the memory holding the tables is passed in,
/// so one translator serves any source and stays dyn-compatible.
pub trait Translate {
    /// Translates `va`.
    ///
    /// Errors: [`Error::NonCanonical`] outside the address space,
    /// [`Error::Unmapped`] at a not-present entry, [`Error::BadEntry`] for an
    /// entry invalid at its level, [`Error::TableNotReadable`] when a table
    /// page is missing from `mem`.
    fn translate(&self, mem: &dyn PhysRead, va: VirtAddr) -> Result<Translation>;

    /// Calls `f` for every mapped page, in increasing virtual-address order
    /// (FreeBSD's `kvm_walk_pages`). Tables that cannot be read and invalid
    /// entries are skipped: the walk reports what can be translated.
    fn walk(
        &self,
        mem: &dyn PhysRead,
        f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
    ) -> Result<()> {
        let _ = (mem, f);
        Err(Error::Unsupported(
            "this translator cannot enumerate its mappings",
        ))
    }
}

impl<T: Translate + ?Sized> Translate for &T {
    fn translate(&self, mem: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
        (**self).translate(mem, va)
    }
    fn walk(
        &self,
        mem: &dyn PhysRead,
        f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
    ) -> Result<()> {
        (**self).walk(mem, f)
    }
}

#[cfg(feature = "alloc")]
impl<T: Translate + ?Sized> Translate for alloc::boxed::Box<T> {
    fn translate(&self, mem: &dyn PhysRead, va: VirtAddr) -> Result<Translation> {
        (**self).translate(mem, va)
    }
    fn walk(
        &self,
        mem: &dyn PhysRead,
        f: &mut dyn FnMut(PageRun) -> ControlFlow<()>,
    ) -> Result<()> {
        (**self).walk(mem, f)
    }
}

/// Physical memory seen through a translator: a virtual address space.
///
/// Reads loop once per page: translate, read the contiguous part, go on.
/// They stop early (with the count so far) at the first page that is
/// unmapped or unreadable, and fail only if the first byte is.
///
/// ```
/// use kvm_core::arch::x86_64::{Builder, X86_64};
/// use kvm_core::{PhysAddr, Prot, Translated, VirtAddr, VirtReadExt};
/// let mut b = Builder::new(4);
/// b.map(VirtAddr(0xffff_8880_0000_0000), PhysAddr(0x20_0000), 0x1000, Prot::READ | Prot::WRITE)?;
/// b.mem_mut().write(PhysAddr(0x20_0010), b"hello")?;
/// let (mem, paging) = b.finish();
/// let kernel = Translated::new(mem, paging);
/// let mut s = [0u8; 5];
/// kernel.read_virt_exact(VirtAddr(0xffff_8880_0000_0010), &mut s)?;
/// assert_eq!(&s, b"hello");
/// # Ok::<(), kvm_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Translated<M, T> {
    /// The physical memory.
    pub mem: M,
    /// The translator.
    pub vtop: T,
}

impl<M: PhysRead, T: Translate> Translated<M, T> {
    /// Joins memory and translator.
    pub fn new(mem: M, vtop: T) -> Self {
        Translated { mem, vtop }
    }

    /// Translates `va` through this address space's tables.
    pub fn translate(&self, va: VirtAddr) -> Result<Translation> {
        self.vtop.translate(&self.mem, va)
    }
}

/// The shared loop of reads and writes: `op(pa, range)` moves bytes of one
/// contiguous run and returns how many it moved.
fn per_page<T: Translate + ?Sized>(
    vtop: &T,
    mem: &dyn PhysRead,
    va: VirtAddr,
    len: usize,
    mut op: impl FnMut(PhysAddr, core::ops::Range<usize>) -> Result<usize>,
) -> Result<usize> {
    let mut done = 0usize;
    while done < len {
        let Some(at) = va.checked_add(done as u64) else {
            break;
        };
        let step = vtop.translate(mem, at).and_then(|t| {
            let want = usize::try_from(t.len).unwrap_or(usize::MAX).min(len - done);
            op(t.pa, done..done + want).map(|n| (n, want))
        });
        match step {
            Ok((n, want)) => {
                done += n;
                if n < want {
                    break; // a hole in physical memory ends the read
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    if done == 0 && len != 0 {
        return Err(Error::Unmapped { va: va.0 });
    }
    Ok(done)
}

impl<M: PhysRead, T: Translate> VirtRead for Translated<M, T> {
    fn read_virt(&self, va: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len();
        per_page(&self.vtop, &self.mem, va, len, |pa, r| {
            self.mem.read_phys(pa, &mut buf[r])
        })
    }
}

impl<M: crate::PhysWrite, T: Translate> VirtWrite for Translated<M, T> {
    fn write_virt(&self, va: VirtAddr, buf: &[u8]) -> Result<usize> {
        per_page(&self.vtop, &self.mem, va, buf.len(), |pa, r| {
            self.mem.write_phys(pa, &buf[r])
        })
    }
}
