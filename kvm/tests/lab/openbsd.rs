//! The OpenBSD kcore round trip on whole real dumps: each amd64 set's ELF
//! dump (all of the guest's RAM) written by `kvm convert --to openbsd` and
//! read back — every page and every mapped kernel page's translation equal
//! to the source's. No dump written by OpenBSD itself could be had.

use crate::openbsd_round_trip::round_trip;
use crate::sets;

#[test]
fn openbsd_kcore_round_trip_of_every_amd64_set() {
    let mut checked = 0;
    for set in sets().into_iter().filter(|s| s.arch() == "x86_64") {
        let c = round_trip(&set.dir.join("vmcore.elf"), &set.name);
        // The whole of RAM came through (an ELF dump leaves nothing out).
        assert_eq!(c.zeros, 0, "{}: {c:?}", set.name);
        assert!(c.equal >= 60_000, "{}: {c:?}", set.name);
        assert!(c.translations > 1000, "{}: {c:?}", set.name);
        // Ranges are merged into segments, never split or dropped.
        assert!((1..=c.ranges).contains(&c.segments), "{}: {c:?}", set.name);
        checked += 1;
    }
    assert!(checked >= 1, "no amd64 lab set");
}
