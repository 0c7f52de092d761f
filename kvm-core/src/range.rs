//! Range maps: sorted, non-overlapping address ranges, each with a value
//! (typically the file offset of a dump segment), found by binary search.

/// One range `[start, start + len)` carrying a value (a file offset, an
/// index, a translated base address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapRange {
    /// First address of the range.
    pub start: u64,
    /// Length in bytes (> 0).
    pub len: u64,
    /// What the range maps to, e.g. the file offset of `start`.
    pub value: u64,
}

impl MapRange {
    /// One past the last address (saturating at `u64::MAX`).
    #[inline]
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }

    /// Whether `addr` lies in the range.
    #[inline]
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.start && addr - self.start < self.len
    }

    /// Finds the range containing `addr` in `ranges`, which must be sorted
    /// by `start` and non-overlapping (as [`RangeMap`] keeps them). Returns
    /// the range and the offset of `addr` within it.
    #[inline]
    pub fn find(ranges: &[MapRange], addr: u64) -> Option<(&MapRange, u64)> {
        let i = ranges.partition_point(|r| r.start <= addr);
        let r = ranges.get(i.checked_sub(1)?)?;
        r.contains(addr).then(|| (r, addr - r.start))
    }

    /// The first range that starts above `addr` (to skip a hole).
    #[inline]
    pub fn next_after(ranges: &[MapRange], addr: u64) -> Option<&MapRange> {
        ranges.get(ranges.partition_point(|r| r.start <= addr))
    }
}

#[cfg(feature = "alloc")]
pub use owned::RangeMap;

#[cfg(feature = "alloc")]
mod owned {
    use super::*;
    use crate::{Error, Result};
    use alloc::vec::Vec;

    /// An owned, validated set of [`MapRange`]s.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct RangeMap {
        ranges: Vec<MapRange>,
    }

    impl RangeMap {
        /// Sorts `ranges` and checks them: no empty range, no range that
        /// wraps around, no overlap. Adjacent ranges stay separate (their
        /// values need not be continuous).
        pub fn new(mut ranges: Vec<MapRange>) -> Result<Self> {
            ranges.sort_unstable_by_key(|r| r.start);
            for r in &ranges {
                if r.len == 0 {
                    return Err(Error::Malformed("empty address range"));
                }
                if r.start.checked_add(r.len - 1).is_none() {
                    return Err(Error::Malformed("address range wraps around"));
                }
            }
            if ranges
                .windows(2)
                .any(|w| w[0].start + (w[0].len - 1) >= w[1].start)
            {
                return Err(Error::Malformed("overlapping address ranges"));
            }
            Ok(RangeMap { ranges })
        }

        /// The range holding `addr` and the offset of `addr` within it.
        #[inline]
        pub fn find(&self, addr: u64) -> Option<(&MapRange, u64)> {
            MapRange::find(&self.ranges, addr)
        }

        /// The first range that starts above `addr`.
        #[inline]
        pub fn next_after(&self, addr: u64) -> Option<&MapRange> {
            MapRange::next_after(&self.ranges, addr)
        }

        /// All ranges, sorted.
        pub fn ranges(&self) -> &[MapRange] {
            &self.ranges
        }

        /// The sum of all lengths (saturating).
        pub fn total_len(&self) -> u64 {
            self.ranges
                .iter()
                .fold(0u64, |a, r| a.saturating_add(r.len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: [MapRange; 3] = [
        MapRange {
            start: 0,
            len: 0x1000,
            value: 100,
        },
        MapRange {
            start: 0x2000,
            len: 0x1000,
            value: 200,
        },
        MapRange {
            start: u64::MAX - 9,
            len: 10,
            value: 300,
        },
    ];

    #[test]
    fn find_edges() {
        assert_eq!(
            MapRange::find(&R, 0).map(|(r, o)| (r.value, o)),
            Some((100, 0))
        );
        assert_eq!(
            MapRange::find(&R, 0xfff).map(|(r, o)| (r.value, o)),
            Some((100, 0xfff))
        );
        assert_eq!(MapRange::find(&R, 0x1000), None);
        assert_eq!(
            MapRange::find(&R, 0x2fff).map(|(r, o)| (r.value, o)),
            Some((200, 0xfff))
        );
        assert_eq!(
            MapRange::find(&R, u64::MAX).map(|(r, o)| (r.value, o)),
            Some((300, 9))
        );
        assert_eq!(MapRange::next_after(&R, 0x1000).map(|r| r.value), Some(200));
        assert_eq!(MapRange::find(&[], 5), None);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn validation() {
        use crate::Error;
        use alloc::vec;
        assert!(RangeMap::new(R.to_vec()).is_ok());
        let overlap = vec![
            MapRange {
                start: 0,
                len: 0x1001,
                value: 0,
            },
            MapRange {
                start: 0x1000,
                len: 1,
                value: 0,
            },
        ];
        assert_eq!(
            RangeMap::new(overlap),
            Err(Error::Malformed("overlapping address ranges"))
        );
        let wrap = vec![MapRange {
            start: u64::MAX,
            len: 2,
            value: 0,
        }];
        assert!(RangeMap::new(wrap).is_err());
        assert!(RangeMap::new(vec![MapRange {
            start: 1,
            len: 0,
            value: 0
        }])
        .is_err());
    }
}
