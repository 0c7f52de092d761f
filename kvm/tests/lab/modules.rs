//! `kvm modules` against the guest's own `/proc/modules`: every module's
//! name, size and address, in the same order, on every dump of every set
//! (`-d 31` too).

use crate::common::kvm_json;
use crate::sets;

#[test]
fn modules_equal_proc_modules_on_every_dump() {
    let mut checked = 0;
    for set in sets() {
        let want = set.truth["modules"]
            .as_array()
            .expect("truth.json has modules (run `cargo xtask fixtures --force`)");
        assert!(want.len() >= 3, "{}: {} modules", set.name, want.len());
        for (kind, dump) in set.dumps() {
            let got = kvm_json(&["modules", "--json", "-M", dump.to_str().unwrap()]);
            let got = got.as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{} {kind}", set.name);
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g["name"], w["name"], "{} {kind}", set.name);
                assert_eq!(g["size"], w["size"], "{} {kind}: {}", set.name, w["name"]);
                // /proc/modules prints the address zero-padded.
                let addr = |v: &serde_json::Value| {
                    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
                };
                assert_eq!(
                    addr(&g["addr"]),
                    addr(&w["addr"]),
                    "{} {kind}: {}",
                    set.name,
                    w["name"]
                );
            }
            eprintln!(
                "{} {kind}: {} modules equal /proc/modules",
                set.name,
                want.len()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} dumps checked");
}
