//! The paging variants under test: page sizes and the physical limits of
//! each, the arm64 configurations, the virtual address space of a variant
//! and a builder for any of them.

use kvm_core::arch::aarch64::{self, Granule, Half};
use kvm_core::arch::{i386, x86_64};
use kvm_core::{PhysAddr, Prot, SparseMem, Translate, VirtAddr};

const K4: u64 = 1 << 12;
const K16: u64 = 1 << 14;
const K64: u64 = 1 << 16;
const M2: u64 = 1 << 21;
const M4: u64 = 1 << 22;
const M32: u64 = 1 << 25;
const M512: u64 = 1 << 29;
const G1: u64 = 1 << 30;
const G64: u64 = 1 << 36;
const G512: u64 = 1 << 39;
const T4: u64 = 1 << 42;

const P32: u64 = 1 << 32;
const P40: u64 = 1 << 40;
const P48: u64 = 1 << 48;
const P52: u64 = 1 << 52;

/// Page sizes of a variant, smallest first, each with the (exclusive) limit
/// of the physical addresses it can map.
type Sizes = &'static [(u64, u64)];

const X86_SIZES: Sizes = &[(K4, P52), (M2, P52), (G1, P52)];
/// Non-PAE: 4 KiB frames are 32-bit, 4 MiB pages reach 40 bits (PSE-36).
const I386_SIZES: Sizes = &[(K4, P32), (M4, P40)];
const PAE_SIZES: Sizes = &[(K4, P52), (M2, P52)];

/// One arm64 configuration (used for both halves).
struct ArmCfg {
    granule: Granule,
    va_bits: u32,
    pa52: bool,
    sizes: Sizes,
}

/// arm64 configurations, with the blocks each allows: level 2 always,
/// 4K level 3 (1 GiB) always, 16K level 3 (64 GiB) and 4K level 4 (512 GiB)
/// with LPA2, 64K level 3 (4 TiB) with FEAT_LPA.
const ARM: &[ArmCfg] = &[
    ArmCfg {
        granule: Granule::K4,
        va_bits: 39,
        pa52: false,
        sizes: &[(K4, P48), (M2, P48), (G1, P48)],
    },
    ArmCfg {
        granule: Granule::K4,
        va_bits: 48,
        pa52: false,
        sizes: &[(K4, P48), (M2, P48), (G1, P48)],
    },
    ArmCfg {
        granule: Granule::K4,
        va_bits: 48,
        pa52: true,
        sizes: &[(K4, P52), (M2, P52), (G1, P52), (G512, P52)],
    },
    ArmCfg {
        granule: Granule::K4,
        va_bits: 52,
        pa52: true,
        sizes: &[(K4, P52), (M2, P52), (G1, P52), (G512, P52)],
    },
    ArmCfg {
        granule: Granule::K16,
        va_bits: 36,
        pa52: false,
        sizes: &[(K16, P48), (M32, P48)],
    },
    ArmCfg {
        granule: Granule::K16,
        va_bits: 47,
        pa52: false,
        sizes: &[(K16, P48), (M32, P48)],
    },
    ArmCfg {
        granule: Granule::K16,
        va_bits: 47,
        pa52: true,
        sizes: &[(K16, P52), (M32, P52), (G64, P52)],
    },
    ArmCfg {
        granule: Granule::K16,
        va_bits: 48,
        pa52: false,
        sizes: &[(K16, P48), (M32, P48)],
    },
    ArmCfg {
        granule: Granule::K16,
        va_bits: 52,
        pa52: true,
        sizes: &[(K16, P52), (M32, P52), (G64, P52)],
    },
    ArmCfg {
        granule: Granule::K64,
        va_bits: 42,
        pa52: false,
        sizes: &[(K64, P48), (M512, P48)],
    },
    ArmCfg {
        granule: Granule::K64,
        va_bits: 42,
        pa52: true,
        sizes: &[(K64, P52), (M512, P52)],
    },
    ArmCfg {
        granule: Granule::K64,
        va_bits: 48,
        pa52: false,
        sizes: &[(K64, P48), (M512, P48)],
    },
    ArmCfg {
        granule: Granule::K64,
        va_bits: 48,
        pa52: true,
        sizes: &[(K64, P52), (M512, P52), (T4, P52)],
    },
    ArmCfg {
        granule: Granule::K64,
        va_bits: 52,
        pa52: false,
        sizes: &[(K64, P48), (M512, P48)],
    },
    ArmCfg {
        granule: Granule::K64,
        va_bits: 52,
        pa52: true,
        sizes: &[(K64, P52), (M512, P52), (T4, P52)],
    },
];

#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    X86 {
        levels: u32,
    },
    I386 {
        pae: bool,
    },
    Arm {
        granule: Granule,
        va_bits: u32,
        half: Half,
        pa52: bool,
    },
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Variant {
    pub(super) kind: Kind,
    pub(super) sizes: Sizes,
}

/// Every variant under test.
pub(super) fn variants() -> Vec<Variant> {
    let mut v = vec![
        Variant {
            kind: Kind::X86 { levels: 4 },
            sizes: X86_SIZES,
        },
        Variant {
            kind: Kind::X86 { levels: 5 },
            sizes: X86_SIZES,
        },
        Variant {
            kind: Kind::I386 { pae: false },
            sizes: I386_SIZES,
        },
        Variant {
            kind: Kind::I386 { pae: true },
            sizes: PAE_SIZES,
        },
    ];
    for half in [Half::Kernel, Half::User] {
        for c in ARM {
            v.push(Variant {
                kind: Kind::Arm {
                    granule: c.granule,
                    va_bits: c.va_bits,
                    half,
                    pa52: c.pa52,
                },
                sizes: c.sizes,
            });
        }
    }
    v
}

/// The virtual address space of a variant, seen as a contiguous range of
/// "index" values `[0, 2^bits)` (what the tables index), mapped
/// monotonically onto virtual addresses.
#[derive(Clone, Copy, Debug)]
pub(super) enum Space {
    /// `[0, 2^bits)`: i386, arm64 TTBR0.
    Low(u32),
    /// `[2^64 - 2^bits, 2^64)`: arm64 TTBR1.
    High(u32),
    /// Sign-extended from bit `bits - 1`: x86-64.
    SignExt(u32),
}

impl Space {
    fn bits(self) -> u32 {
        match self {
            Space::Low(b) | Space::High(b) | Space::SignExt(b) => b,
        }
    }
    pub(super) fn len(self) -> u64 {
        1 << self.bits()
    }
    pub(super) fn mask(self) -> u64 {
        self.len() - 1
    }
    /// The virtual address of index `idx`.
    pub(super) fn va(self, idx: u64) -> u64 {
        match self {
            Space::Low(_) => idx,
            Space::High(_) => idx | !self.mask(),
            Space::SignExt(b) => (((idx << (64 - b)) as i64) >> (64 - b)) as u64,
        }
    }
    /// The index of `va`, if it is in the space.
    pub(super) fn index(self, va: u64) -> Option<u64> {
        let idx = va & self.mask();
        (self.va(idx) == va).then_some(idx)
    }
    /// A virtual address outside the space: a valid one with one bit above
    /// the space flipped.
    pub(super) fn outside(self, seed: u64) -> u64 {
        let b = self.bits();
        let t = b + ((seed >> 58) as u32 % (64 - b));
        self.va(seed & self.mask()) ^ (1 << t)
    }
    /// Addresses just outside the space.
    pub(super) fn edges(self) -> Vec<u64> {
        let b = self.bits();
        match self {
            Space::Low(_) => vec![1 << b, u64::MAX, 1 << 63],
            Space::High(_) => vec![!self.mask() - 1, 0, (1 << 63) - 1],
            Space::SignExt(_) => vec![1 << (b - 1), !((1 << (b - 1)) - 1) - 1, 1 << 63 >> 1],
        }
    }
}

impl Variant {
    pub(super) fn name(&self) -> String {
        match self.kind {
            Kind::X86 { levels } => format!("x86-64 {levels}-level"),
            Kind::I386 { pae } => format!("i386 {}", if pae { "PAE" } else { "non-PAE" }),
            Kind::Arm {
                granule,
                va_bits,
                half,
                pa52,
            } => format!("arm64 {granule:?} VA{va_bits} {half:?} pa52={pa52}"),
        }
    }

    pub(super) fn space(&self) -> Space {
        match self.kind {
            Kind::X86 { levels } => Space::SignExt(12 + 9 * levels),
            Kind::I386 { .. } => Space::Low(32),
            Kind::Arm {
                va_bits,
                half: Half::Kernel,
                ..
            } => Space::High(va_bits),
            Kind::Arm {
                va_bits,
                half: Half::User,
                ..
            } => Space::Low(va_bits),
        }
    }

    /// Physical range the builder allocates tables from (kept clear of
    /// mapped pages so that test data never overwrites a table).
    pub(super) fn table_window(&self) -> (u64, u64) {
        match self.kind {
            Kind::X86 { .. } => (0x1_0000_0000, 64 << 20),
            Kind::I386 { .. } => (0x10_0000, 64 << 20),
            Kind::Arm { .. } => (0x4000_0000, 64 << 20),
        }
    }

    /// Rights every page has whatever its entry says.
    pub(super) fn forced(&self) -> Prot {
        match self.kind {
            Kind::I386 { pae: false } => Prot::EXEC, // no NX bit without PAE
            _ => Prot::empty(),
        }
    }

    pub(super) fn builder(&self) -> AnyBuilder {
        match self.kind {
            Kind::X86 { levels } => AnyBuilder::X86(x86_64::Builder::new(levels)),
            Kind::I386 { pae } => AnyBuilder::I386(i386::Builder::new(pae)),
            Kind::Arm {
                granule,
                va_bits,
                half,
                pa52,
            } => AnyBuilder::Arm(
                aarch64::Builder::new(granule, va_bits, half, pa52).expect("valid arm64 config"),
            ),
        }
    }
}

pub(super) enum AnyBuilder {
    X86(x86_64::Builder),
    I386(i386::Builder),
    Arm(aarch64::Builder),
}

impl AnyBuilder {
    pub(super) fn map(&mut self, va: u64, pa: u64, size: u64, prot: Prot) -> kvm_core::Result<()> {
        let (va, pa) = (VirtAddr(va), PhysAddr(pa));
        match self {
            AnyBuilder::X86(b) => b.map(va, pa, size, prot),
            AnyBuilder::I386(b) => b.map(va, pa, size, prot),
            AnyBuilder::Arm(b) => b.map(va, pa, size, prot),
        }
    }
    pub(super) fn finish(self) -> (SparseMem, Box<dyn Translate>) {
        match self {
            AnyBuilder::X86(b) => {
                let (m, t) = b.finish();
                (m, Box::new(t))
            }
            AnyBuilder::I386(b) => {
                let (m, t) = b.finish();
                (m, Box::new(t))
            }
            AnyBuilder::Arm(b) => {
                let (m, t) = b.finish();
                (m, Box::new(t))
            }
        }
    }
}
