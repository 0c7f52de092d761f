//! i386 paging: 2-level non-PAE (4 KiB and 4 MiB pages, PSE-36) and 3-level
//! PAE (4 KiB and 2 MiB pages, NX).
//!
//! Non-PAE entries are 32-bit: P 0, R/W 1, U/S 2, PS 7 in the directory
//! (4 MiB page; PSE-36 puts PA bits 39:32 in bits 20:13), frame 31:12. PAE
//! entries are 64-bit as on x86-64; the 4-entry PDPT holds only P and the
//! frame (Intel SDM vol. 3 §4.3–4.4; FORMATS.md §6.2).

use super::radix::{Entry, Mmu};
use crate::{Error, PhysAddr, Prot, Result};

const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;
const NX: u64 = 1 << 63;
const PAE_FRAME: u64 = 0x000f_ffff_ffff_f000;
/// PDPTE bits that must be zero: R/W, U/S, A, D, PS, G and bits 63:52
/// ("reserved" in a PAE PDPTE).
const PDPTE_RESERVED: u64 = 0xfff0_0000_0000_01e6;

/// The i386 translator: a root (CR3) and the paging mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct I386 {
    root: u64,
    pae: bool,
}

impl I386 {
    /// Non-PAE paging with the page directory at `root` (CR3; flag bits
    /// masked off).
    pub fn new(root: PhysAddr) -> Self {
        I386 {
            root: root.0 & 0xffff_f000,
            pae: false,
        }
    }

    /// PAE paging with the 32-byte-aligned PDPT at `root` (`CR3[31:5]`).
    pub fn new_pae(root: PhysAddr) -> Self {
        I386 {
            root: root.0 & 0xffff_ffe0,
            pae: true,
        }
    }

    /// Whether this is PAE paging.
    pub fn pae(&self) -> bool {
        self.pae
    }

    /// The top table's physical address.
    pub fn root(&self) -> PhysAddr {
        PhysAddr(self.root)
    }
}

fn rights(e: u64, nx: bool) -> Prot {
    let mut prot = Prot::READ;
    if e & RW != 0 {
        prot = prot | Prot::WRITE;
    }
    if e & US != 0 {
        prot = prot | Prot::USER;
    }
    if !nx {
        prot = prot | Prot::EXEC;
    }
    prot
}

impl Mmu for I386 {
    fn entry_size(&self) -> u64 {
        if self.pae {
            8
        } else {
            4
        }
    }
    fn levels(&self) -> u32 {
        if self.pae {
            3
        } else {
            2
        }
    }
    #[inline]
    fn index(&self, level: u32) -> (u32, u32) {
        match (self.pae, level) {
            (false, l) => (12 + 10 * (l - 1), 10),
            (true, 3) => (30, 2),
            (true, l) => (12 + 9 * (l - 1), 9),
        }
    }
    fn root(&self) -> u64 {
        self.root
    }
    fn check_va(&self, va: u64) -> Result<u64> {
        if va > u64::from(u32::MAX) {
            return Err(Error::NonCanonical { va });
        }
        Ok(va)
    }
    fn make_va(&self, bits: u64) -> u64 {
        bits
    }
    #[inline]
    fn decode(&self, level: u32, e: u64) -> Entry {
        if e & P == 0 {
            return Entry::Invalid;
        }
        if !self.pae {
            return match level {
                2 if e & PS != 0 => {
                    // 4 MiB page; PSE-36 high bits in 20:13, bits 21 and 12 (PAT) aside.
                    if e & 0x0020_0000 != 0 {
                        return Entry::Bad;
                    }
                    let pa = (e & 0xffc0_0000) | ((e >> 13) & 0xff) << 32;
                    Entry::Leaf {
                        pa,
                        prot: rights(e, false),
                    }
                }
                2 => Entry::Table {
                    pa: e & 0xffff_f000,
                    prot: rights(e, false),
                },
                _ => Entry::Leaf {
                    pa: e & 0xffff_f000,
                    prot: rights(e, false),
                },
            };
        }
        let frame = e & PAE_FRAME;
        let nx = e & NX != 0;
        match level {
            3 if e & PDPTE_RESERVED != 0 => Entry::Bad,
            3 => Entry::Table {
                pa: frame,
                prot: super::ALL_RIGHTS,
            },
            2 if e & PS != 0 => {
                if frame & 0x1f_e000 != 0 {
                    return Entry::Bad; // misaligned 2 MiB frame (bit 12 is PAT)
                }
                Entry::Leaf {
                    pa: frame & !0x1f_ffff,
                    prot: rights(e, nx),
                }
            }
            2 => Entry::Table {
                pa: frame,
                prot: rights(e, nx),
            },
            _ => Entry::Leaf {
                pa: frame,
                prot: rights(e, nx),
            },
        }
    }
}

super::radix_translate!(I386);

#[cfg(feature = "builder")]
pub use builder::Builder;

#[cfg(feature = "builder")]
mod builder {
    use super::*;
    use crate::arch::build::{Encode, Tables};
    use crate::SparseMem;
    use crate::VirtAddr;

    impl Encode for I386 {
        fn table_entry(&self, level: u32, pa: u64) -> u64 {
            if self.pae && level == 3 {
                pa | P
            } else {
                pa | P | RW | US
            }
        }
        fn leaf_entry(&self, level: u32, pa: u64, prot: Prot) -> u64 {
            let mut e = P;
            if level == 2 {
                e |= PS;
            }
            if prot.contains(Prot::WRITE) {
                e |= RW;
            }
            if prot.contains(Prot::USER) {
                e |= US;
            }
            if self.pae {
                if !prot.contains(Prot::EXEC) {
                    e |= NX;
                }
                e | pa
            } else if level == 2 {
                e | (pa & 0xffc0_0000) | ((pa >> 32) & 0xff) << 13
            } else {
                e | pa
            }
        }
        fn table_size(&self, _level: u32) -> u64 {
            4096
        }
    }

    /// Builds i386 page tables (PAE or not) in a [`SparseMem`].
    #[derive(Debug)]
    pub struct Builder(Tables<I386>);

    impl Builder {
        /// Empty tables; they are allocated upwards from physical address
        /// 0x10_0000.
        pub fn new(pae: bool) -> Self {
            let base = 0x10_0000;
            let mmu = if pae {
                I386::new_pae(PhysAddr(base))
            } else {
                I386::new(PhysAddr(base))
            };
            Builder(Tables::new(mmu, base))
        }

        /// Maps one page of `size` (4 KiB; 4 MiB non-PAE; 2 MiB PAE).
        /// Without PAE, a physical address may use up to 40 bits in 4 MiB
        /// pages (PSE-36) and 32 bits otherwise; with PAE up to 52.
        pub fn map(&mut self, va: VirtAddr, pa: PhysAddr, size: u64, prot: Prot) -> Result<()> {
            let limit = match (self.0.mmu.pae, size) {
                (true, _) => 1u64 << 52,
                (false, 0x40_0000) => 1u64 << 40,
                (false, _) => 1u64 << 32,
            };
            if pa.0 >= limit {
                return Err(Error::Unsupported(
                    "physical address too wide for this paging mode",
                ));
            }
            self.0.map(va.0, pa.0, size, prot)
        }

        crate::arch::builder_accessors!(I386);
    }
}
