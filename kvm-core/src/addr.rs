//! Address newtypes. Both are `u64` on every host, 32-bit ones included.

use core::fmt;

macro_rules! address {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// The address `self + off`, or `None` on overflow.
            #[inline]
            pub const fn checked_add(self, off: u64) -> Option<Self> {
                match self.0.checked_add(off) {
                    Some(a) => Some(Self(a)),
                    None => None,
                }
            }

            /// The address `self - off`, or `None` on underflow.
            #[inline]
            pub const fn checked_sub(self, off: u64) -> Option<Self> {
                match self.0.checked_sub(off) {
                    Some(a) => Some(Self(a)),
                    None => None,
                }
            }

            /// The address `self + off`, wrapping around the 64-bit space.
            #[inline]
            pub const fn wrapping_add(self, off: u64) -> Self {
                Self(self.0.wrapping_add(off))
            }

            /// Rounds down to a multiple of `align`, which must be a power of two.
            #[inline]
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align.wrapping_sub(1)))
            }

            /// The offset of this address within an `align`-sized block
            /// (`align` a power of two).
            #[inline]
            pub const fn offset_in(self, align: u64) -> u64 {
                self.0 & align.wrapping_sub(1)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }

        impl From<u64> for $name {
            #[inline]
            fn from(a: u64) -> Self {
                Self(a)
            }
        }

        impl From<$name> for u64 {
            #[inline]
            fn from(a: $name) -> u64 {
                a.0
            }
        }
    };
}

address!(
    /// A physical address (what the CPU puts on the memory bus, or the
    /// "machine" address of a guest dump).
    PhysAddr
);
address!(
    /// A virtual address in some address space (the kernel's, or a process's).
    VirtAddr
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_format() {
        assert_eq!(PhysAddr(u64::MAX).checked_add(1), None);
        assert_eq!(PhysAddr(0).checked_sub(1), None);
        assert_eq!(VirtAddr(0x1234).align_down(0x1000), VirtAddr(0x1000));
        assert_eq!(VirtAddr(0x1234).offset_in(0x1000), 0x234);
        assert_eq!(
            std::format!("{}", VirtAddr(0xffff_8000_0000_0000)),
            "0xffff800000000000"
        );
        assert_eq!(std::format!("{:?}", PhysAddr(16)), "PhysAddr(0x10)");
    }
}
