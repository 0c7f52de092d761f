//! x86-64 paging: 4-level and 5-level (LA57), 4 KiB, 2 MiB and 1 GiB pages.
//!
//! Entry bits (Intel SDM vol. 3 §4.5; summarised in FORMATS.md §6.1): P 0,
//! R/W 1, U/S 2, PS 7 (at PDPT and PD: a 1 GiB / 2 MiB page; reserved at
//! PML4/PML5; PAT in a PTE), PAT 12 in large leaves, frame 51:12, NX 63.
//! Bits above the physical-address width (and an SME/TDX encryption bit)
//! are masked off so they never leak into addresses.

use super::radix::{Entry, Mmu};
use crate::{Error, PhysAddr, Prot, Result};

const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;
const NX: u64 = 1 << 63;
/// Frame bits 51:12, the architectural maximum.
pub const FRAME_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The x86-64 translator: a root table (CR3) and the paging mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X86_64 {
    root: u64,
    levels: u32,
    frame_mask: u64,
}

impl X86_64 {
    /// A translator for the tables at `root` (a CR3 value: PCID and flag
    /// bits are masked off) with 4 or 5 levels.
    ///
    /// Returns an error for any other level count.
    pub fn new(root: PhysAddr, levels: u32) -> Result<Self> {
        if levels != 4 && levels != 5 {
            return Err(Error::Unsupported("x86-64 paging has 4 or 5 levels"));
        }
        Ok(X86_64 {
            root: root.0 & FRAME_MASK,
            levels,
            frame_mask: FRAME_MASK,
        })
    }

    /// Clears `mask` from every frame address: the AMD SME C-bit
    /// (VMCOREINFO `NUMBER(sme_mask)`), Intel TDX's shared bit, or the bits
    /// above MAXPHYADDR.
    pub fn with_encryption_mask(mut self, mask: u64) -> Self {
        self.frame_mask &= !mask;
        self.root &= self.frame_mask;
        self
    }

    /// The kernel half of a KPTI pair: clears bit 12 of the root, which
    /// selects the user copy of the PGD (FORMATS.md §6.1).
    pub fn kernel_pgd_of_kpti_pair(mut self) -> Self {
        self.root &= !0x1000;
        self
    }

    /// The same paging mode and masks with another root (a process's PGD).
    pub fn with_root(mut self, root: PhysAddr) -> Self {
        self.root = root.0 & self.frame_mask;
        self
    }

    /// The top table's physical address.
    pub fn root(&self) -> PhysAddr {
        PhysAddr(self.root)
    }

    /// 4 or 5.
    pub fn levels(&self) -> u32 {
        self.levels
    }

    fn va_bits(&self) -> u32 {
        12 + 9 * self.levels
    }
}

impl Mmu for X86_64 {
    fn entry_size(&self) -> u64 {
        8
    }
    fn levels(&self) -> u32 {
        self.levels
    }
    #[inline]
    fn index(&self, level: u32) -> (u32, u32) {
        (12 + 9 * (level - 1), 9)
    }
    fn root(&self) -> u64 {
        self.root
    }
    #[inline]
    fn check_va(&self, va: u64) -> Result<u64> {
        if super::sign_extend(va, self.va_bits()) != va {
            return Err(Error::NonCanonical { va });
        }
        Ok(va)
    }
    fn make_va(&self, bits: u64) -> u64 {
        super::sign_extend(bits, self.va_bits())
    }
    #[inline]
    fn decode(&self, level: u32, e: u64) -> Entry {
        if e & P == 0 {
            return Entry::Invalid;
        }
        let mut prot = Prot::READ;
        if e & RW != 0 {
            prot = prot | Prot::WRITE;
        }
        if e & US != 0 {
            prot = prot | Prot::USER;
        }
        if e & NX == 0 {
            prot = prot | Prot::EXEC;
        }
        let frame = e & self.frame_mask;
        match level {
            1 => Entry::Leaf { pa: frame, prot },
            2 | 3 if e & PS != 0 => {
                // Large page: bit 12 is PAT, bits below the page size must be zero.
                let size_mask = (1u64 << (12 + 9 * (level - 1))) - 1;
                if frame & size_mask & !0x1000 != 0 {
                    return Entry::Bad;
                }
                Entry::Leaf {
                    pa: frame & !size_mask,
                    prot,
                }
            }
            4 | 5 if e & PS != 0 => Entry::Bad,
            _ => Entry::Table { pa: frame, prot },
        }
    }
}

super::radix_translate!(X86_64);

#[cfg(feature = "builder")]
pub use builder::Builder;

#[cfg(feature = "builder")]
mod builder {
    use super::*;
    use crate::arch::build::{Encode, Tables};
    use crate::SparseMem;
    use crate::VirtAddr;

    impl Encode for X86_64 {
        fn table_entry(&self, _level: u32, pa: u64) -> u64 {
            pa | P | RW | US
        }
        fn leaf_entry(&self, level: u32, pa: u64, prot: Prot) -> u64 {
            let mut e = pa | P;
            if level > 1 {
                e |= PS;
            }
            if prot.contains(Prot::WRITE) {
                e |= RW;
            }
            if prot.contains(Prot::USER) {
                e |= US;
            }
            if !prot.contains(Prot::EXEC) {
                e |= NX;
            }
            e
        }
        fn table_size(&self, _level: u32) -> u64 {
            4096
        }
    }

    /// Builds x86-64 page tables in a [`SparseMem`] (tests, benchmarks,
    /// synthetic dumps).
    #[derive(Debug)]
    pub struct Builder(Tables<X86_64>);

    impl Builder {
        /// Empty tables with 4 or 5 levels; tables are allocated from
        /// physical address 0x1_0000_0000 upwards.
        ///
        /// # Panics
        /// If `levels` is not 4 or 5.
        pub fn new(levels: u32) -> Self {
            Self::with_table_base(levels, PhysAddr(0x1_0000_0000))
        }

        /// As [`Builder::new`], allocating tables upwards from `base`.
        ///
        /// # Panics
        /// If `levels` is not 4 or 5.
        pub fn with_table_base(levels: u32, base: PhysAddr) -> Self {
            let mmu = X86_64::new(base, levels).expect("4 or 5 levels");
            Builder(Tables::new(mmu, base.0))
        }

        /// Maps `[va, va + size)` to `pa` with one page of `size` (4 KiB,
        /// 2 MiB or 1 GiB). Fails if the addresses are not aligned to the
        /// page size, the VA is not canonical, or the range is already
        /// mapped with another page size.
        pub fn map(&mut self, va: VirtAddr, pa: PhysAddr, size: u64, prot: Prot) -> Result<()> {
            self.0.map(va.0, pa.0, size, prot)
        }

        crate::arch::builder_accessors!(X86_64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_levels() {
        let m = X86_64::new(PhysAddr(0x1000), 4).unwrap();
        assert_eq!(m.decode(4, 0x2000 | P | PS), Entry::Bad);
        assert_eq!(
            m.decode(2, 0x20_0000 | P | PS | 0x1000),
            Entry::Leaf {
                pa: 0x20_0000,
                prot: Prot::READ | Prot::EXEC
            }
        );
        assert_eq!(
            m.decode(2, 0x20_2000 | P | PS),
            Entry::Bad,
            "misaligned 2 MiB frame"
        );
        assert_eq!(
            m.decode(3, 0x4000_0000 | P | PS | RW | NX),
            Entry::Leaf {
                pa: 0x4000_0000,
                prot: Prot::READ | Prot::WRITE
            }
        );
        // Software bits 52..62 never reach the address.
        assert_eq!(
            m.decode(1, 0x7ff0_0000_0000_3000 | P),
            Entry::Leaf {
                pa: 0x3000,
                prot: Prot::READ | Prot::EXEC
            }
        );
        let sme = m.with_encryption_mask(1 << 47);
        assert_eq!(
            sme.decode(1, (1 << 47) | 0x3000 | P),
            Entry::Leaf {
                pa: 0x3000,
                prot: Prot::READ | Prot::EXEC
            }
        );
        assert!(X86_64::new(PhysAddr(0), 3).is_err());
        assert_eq!(
            m.check_va(0x0000_8000_0000_0000),
            Err(Error::NonCanonical {
                va: 0x0000_8000_0000_0000
            })
        );
        assert_eq!(
            X86_64::new(PhysAddr(0x1234_5fff), 5).unwrap().root(),
            PhysAddr(0x1234_5000)
        );
    }
}
