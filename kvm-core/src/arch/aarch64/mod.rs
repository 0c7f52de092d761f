//! AArch64 (VMSAv8-64 stage 1) paging: 4 KiB, 16 KiB and 64 KiB granules,
//! virtual-address sizes from 25 to 52 bits with the level count derived
//! from them, table/block/page descriptors, and 52-bit output addresses
//! (FEAT_LPA with 64 KiB pages, FEAT_LPA2 with 4 KiB/16 KiB pages).
//!
//! Descriptor bits (Arm ARM D8.3; summarised in FORMATS.md §6.3): `[1:0]`
//! `0b11` table (page at the last level), `0b01` block, else invalid;
//! `AP[2]` 7 read-only, `AP[1]` 6 EL0 access, AF 10, Contiguous 52 (a hint only:
//! the translation is the same with or without it), PXN 53, UXN 54; table
//! descriptors restrict what is below them with PXNTable 59, UXNTable 60
//! and APTable 62:61.

pub mod adrp;

use super::radix::{Entry, Mmu};
use crate::{Endian, Error, PhysAddr, Prot, Result};

/// Translation granule (page size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granule {
    /// 4 KiB pages.
    K4,
    /// 16 KiB pages.
    K16,
    /// 64 KiB pages.
    K64,
}

impl Granule {
    /// log2 of the page size.
    pub const fn shift(self) -> u32 {
        match self {
            Granule::K4 => 12,
            Granule::K16 => 14,
            Granule::K64 => 16,
        }
    }

    /// The granule whose page size is `size` bytes.
    pub fn from_page_size(size: u64) -> Option<Granule> {
        match size {
            0x1000 => Some(Granule::K4),
            0x4000 => Some(Granule::K16),
            0x1_0000 => Some(Granule::K64),
            _ => None,
        }
    }
}

/// Which half of the address space a root translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Half {
    /// TTBR1: addresses whose top bits are all ones (the kernel).
    Kernel,
    /// TTBR0: addresses whose top bits are all zeros (user processes).
    User,
}

const TABLE_OR_PAGE: u64 = 0b11;
const BLOCK: u64 = 0b01;
const AP_EL0: u64 = 1 << 6;
const AP_RO: u64 = 1 << 7;
const AF: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const PXN_TABLE: u64 = 1 << 59;
const UXN_TABLE: u64 = 1 << 60;
const AP_TABLE_NO_EL0: u64 = 1 << 61;
const AP_TABLE_RO: u64 = 1 << 62;
/// Output-address bits 47:0 of a descriptor before the page offset is cut.
const OA_48: u64 = 0x0000_ffff_ffff_ffff;
/// OA bits 49:0 with FEAT_LPA2.
const OA_50: u64 = 0x0003_ffff_ffff_ffff;

/// The AArch64 translator for one half of the address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aarch64 {
    root: u64,
    granule: Granule,
    va_bits: u32,
    levels: u32,
    half: Half,
    pa52: bool,
    endian: Endian,
}

impl Aarch64 {
    /// A translator for `half` with the top table at `root`, pages of
    /// `granule` and `va_bits`-bit addresses (64 − TnSZ).
    ///
    /// 52-bit addresses with 4 KiB or 16 KiB pages imply FEAT_LPA2, whose
    /// descriptors carry 52-bit output addresses. Returns an error for VA
    /// sizes the architecture does not allow for the granule.
    pub fn new(root: PhysAddr, granule: Granule, va_bits: u32, half: Half) -> Result<Self> {
        let ps = granule.shift();
        // TnSZ ranges from 12 to 39 (52- to 25-bit spaces) for every granule.
        if !(25..=52).contains(&va_bits) {
            return Err(Error::Unsupported("arm64 VA size must be 25..=52 bits"));
        }
        let levels = (va_bits - ps).div_ceil(ps - 3);
        let lpa2 = va_bits > 48 && granule != Granule::K64;
        let m = Aarch64 {
            root: 0,
            granule,
            va_bits,
            levels,
            half,
            pa52: lpa2,
            endian: Endian::Little,
        };
        Ok(m.with_root(root))
    }

    /// The kernel half (TTBR1), e.g. `swapper_pg_dir`.
    pub fn kernel(root: PhysAddr, granule: Granule, va_bits: u32) -> Result<Self> {
        Self::new(root, granule, va_bits, Half::Kernel)
    }

    /// The user half (TTBR0), e.g. a process's `mm->pgd`.
    pub fn user(root: PhysAddr, granule: Granule, va_bits: u32) -> Result<Self> {
        Self::new(root, granule, va_bits, Half::User)
    }

    /// Descriptors carry 52-bit output addresses: FEAT_LPA with 64 KiB
    /// pages (`OA[51:48]` in bits 15:12), FEAT_LPA2 (TCR.DS = 1) with 4 KiB
    /// and 16 KiB pages (`OA[51:50]` in bits 9:8).
    pub fn with_pa52(mut self, on: bool) -> Self {
        self.pa52 = on || (self.va_bits > 48 && self.granule != Granule::K64);
        self.with_root(PhysAddr(self.root))
    }

    /// Entries in big-endian byte order (an `aarch64_be` kernel).
    pub fn with_endian(mut self, e: Endian) -> Self {
        self.endian = e;
        self
    }

    /// The same configuration with another root table (another process).
    pub fn with_root(mut self, root: PhysAddr) -> Self {
        // Bits 51:48 are kept even without 52-bit addresses, so that
        // `with_pa52` may come after `new`; `root_pa` drops them when unused.
        self.root = root.0 & !0x3f_u64 & ((1 << 52) - 1);
        self
    }

    /// The root as the walk uses it: 48 or 52 bits.
    fn root_pa(&self) -> u64 {
        if self.pa52 {
            self.root
        } else {
            self.root & OA_48
        }
    }

    /// The top table's physical address.
    pub fn root(&self) -> PhysAddr {
        PhysAddr(self.root_pa())
    }

    /// The number of levels walked.
    pub fn levels(&self) -> u32 {
        self.levels
    }

    /// The granule.
    pub fn granule(&self) -> Granule {
        self.granule
    }

    /// The VA size in bits.
    pub fn va_bits(&self) -> u32 {
        self.va_bits
    }

    /// The same configuration for the other half of the address space
    /// (a process's TTBR0 tables next to the kernel's TTBR1).
    pub fn with_half(mut self, half: Half, root: PhysAddr) -> Self {
        self.half = half;
        self.with_root(root)
    }

    /// The output address of a descriptor whose address field starts at
    /// bit `low` (page shift, or block shift for blocks).
    #[inline]
    fn oa(&self, e: u64, low: u32) -> u64 {
        let field = !((1u64 << low) - 1);
        match (self.pa52, self.granule) {
            (false, _) => e & OA_48 & field,
            (true, Granule::K64) => (e & OA_48 & field) | ((e >> 12) & 0xf) << 48,
            (true, _) => (e & OA_50 & field) | ((e >> 8) & 0x3) << 50,
        }
    }

    fn block_allowed(&self, level: u32) -> bool {
        match (level, self.granule) {
            (2, _) => true,
            (3, Granule::K4) => true,
            (3, _) | (4, Granule::K4) => self.pa52,
            _ => false,
        }
    }
}

impl Mmu for Aarch64 {
    fn entry_size(&self) -> u64 {
        8
    }
    fn endian(&self) -> Endian {
        self.endian
    }
    fn levels(&self) -> u32 {
        self.levels
    }
    #[inline]
    fn index(&self, level: u32) -> (u32, u32) {
        let ps = self.granule.shift();
        let shift = ps + (level - 1) * (ps - 3);
        (shift, (ps - 3).min(self.va_bits - shift))
    }
    fn root(&self) -> u64 {
        self.root_pa()
    }
    #[inline]
    fn check_va(&self, va: u64) -> Result<u64> {
        let low = (1u64 << self.va_bits) - 1;
        let ok = match self.half {
            Half::Kernel => va | low == u64::MAX,
            Half::User => va & !low == 0,
        };
        if !ok {
            return Err(Error::NonCanonical { va });
        }
        Ok(va & low)
    }
    fn make_va(&self, bits: u64) -> u64 {
        match self.half {
            Half::Kernel => bits | !((1u64 << self.va_bits) - 1),
            Half::User => bits,
        }
    }
    #[inline]
    fn decode(&self, level: u32, e: u64) -> Entry {
        let ps = self.granule.shift();
        match (e & 0b11, level) {
            (TABLE_OR_PAGE, 1) | (BLOCK, _) => {
                let low = if e & 0b11 == BLOCK {
                    if level == 1 || !self.block_allowed(level) {
                        return Entry::Bad;
                    }
                    ps + (level - 1) * (ps - 3)
                } else {
                    ps
                };
                let pa = self.oa(e, ps);
                if pa & ((1u64 << low) - 1) != 0 {
                    return Entry::Bad; // block output address not aligned to the block
                }
                let mut prot = Prot::READ;
                if e & AP_RO == 0 {
                    prot = prot | Prot::WRITE;
                }
                if e & AP_EL0 != 0 {
                    prot = prot | Prot::USER;
                }
                let nx = match self.half {
                    Half::Kernel => PXN,
                    Half::User => UXN,
                };
                if e & nx == 0 {
                    prot = prot | Prot::EXEC;
                }
                let _ = AF; // AF = 0 faults on first access but the mapping stands
                Entry::Leaf { pa, prot }
            }
            (TABLE_OR_PAGE, _) => {
                let mut prot = super::ALL_RIGHTS;
                if e & AP_TABLE_RO != 0 {
                    prot = prot.remove(Prot::WRITE);
                }
                if e & AP_TABLE_NO_EL0 != 0 {
                    prot = prot.remove(Prot::USER);
                }
                let nx = match self.half {
                    Half::Kernel => PXN_TABLE,
                    Half::User => UXN_TABLE,
                };
                if e & nx != 0 {
                    prot = prot.remove(Prot::EXEC);
                }
                Entry::Table {
                    pa: self.oa(e, ps),
                    prot,
                }
            }
            _ => Entry::Invalid,
        }
    }
}

super::radix_translate!(Aarch64);

#[cfg(feature = "builder")]
pub use builder::Builder;

#[cfg(feature = "builder")]
mod builder {
    use super::*;
    use crate::arch::build::{Encode, Tables};
    use crate::SparseMem;
    use crate::VirtAddr;

    impl Aarch64 {
        fn encode_oa(&self, pa: u64) -> u64 {
            match (self.pa52, self.granule) {
                (false, _) => pa & OA_48,
                (true, Granule::K64) => (pa & OA_48) | ((pa >> 48) & 0xf) << 12,
                (true, _) => (pa & OA_50) | ((pa >> 50) & 0x3) << 8,
            }
        }
    }

    impl Encode for Aarch64 {
        fn table_entry(&self, _level: u32, pa: u64) -> u64 {
            self.encode_oa(pa) | TABLE_OR_PAGE
        }
        fn leaf_entry(&self, level: u32, pa: u64, prot: Prot) -> u64 {
            let mut e = self.encode_oa(pa) | AF | if level == 1 { TABLE_OR_PAGE } else { BLOCK };
            if !prot.contains(Prot::WRITE) {
                e |= AP_RO;
            }
            if prot.contains(Prot::USER) {
                e |= AP_EL0;
            }
            if !prot.contains(Prot::EXEC) {
                e |= match self.half {
                    Half::Kernel => PXN,
                    Half::User => UXN,
                };
            }
            e
        }
        fn table_size(&self, _level: u32) -> u64 {
            1 << self.granule.shift()
        }
    }

    /// Builds AArch64 page tables in a [`SparseMem`].
    #[derive(Debug)]
    pub struct Builder(Tables<Aarch64>);

    impl Builder {
        /// Empty tables for `half` with the given granule, VA size and
        /// output-address format; tables are allocated upwards from
        /// physical address 0x4000_0000.
        pub fn new(granule: Granule, va_bits: u32, half: Half, pa52: bool) -> Result<Self> {
            let base = PhysAddr(0x4000_0000);
            let mmu = Aarch64::new(base, granule, va_bits, half)?.with_pa52(pa52);
            Ok(Builder(Tables::new(mmu, base.0)))
        }

        /// Maps one page or block of `size` bytes.
        pub fn map(&mut self, va: VirtAddr, pa: PhysAddr, size: u64, prot: Prot) -> Result<()> {
            let limit = if self.0.mmu.pa52 {
                1u64 << 52
            } else {
                1u64 << 48
            };
            if pa.0 >= limit {
                return Err(Error::Unsupported(
                    "physical address too wide for the descriptor format",
                ));
            }
            self.0.map(va.0, pa.0, size, prot)
        }

        crate::arch::builder_accessors!(Aarch64);
    }
}
