//! `kvm dmesg` against the guest's own `/dev/kmsg`: every record logged
//! before the capture, on every dump of every set (both arches, every
//! format, `-d 31` too: the log is never filtered out), with its sequence
//! number, level, time to the microsecond and text.

use crate::common::kvm_json;
use crate::sets;
use std::collections::BTreeMap;

#[test]
fn dmesg_equals_dev_kmsg_on_every_dump() {
    let mut checked = 0;
    for set in sets() {
        let truth = set.truth["kmsg"]
            .as_array()
            .expect("truth.json has kmsg (run `cargo xtask fixtures --force`)");
        assert!(
            truth.len() > 100,
            "{}: {} kmsg records",
            set.name,
            truth.len()
        );
        for (kind, dump) in set.dumps() {
            let got = kvm_json(&["dmesg", "--json", "-M", dump.to_str().unwrap()]);
            let by_seq: BTreeMap<u64, &serde_json::Value> = got
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["seq"].as_u64().expect("seq"), r))
                .collect();
            for want in truth {
                let seq = want["seq"].as_u64().unwrap();
                let r = by_seq
                    .get(&seq)
                    .unwrap_or_else(|| panic!("{} {kind}: record {seq} missing", set.name));
                assert_eq!(
                    r["level"], want["level"],
                    "{} {kind}: record {seq} level",
                    set.name
                );
                assert_eq!(
                    r["time_ns"].as_u64().unwrap() / 1000,
                    want["time_us"].as_u64().unwrap(),
                    "{} {kind}: record {seq} time",
                    set.name
                );
                assert_eq!(
                    r["text"], want["text"],
                    "{} {kind}: record {seq} text",
                    set.name
                );
            }
            // Oldest first, no record twice.
            assert_eq!(
                by_seq.len(),
                got.as_array().unwrap().len(),
                "{} {kind}",
                set.name
            );
            let seqs: Vec<u64> = got
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["seq"].as_u64().unwrap())
                .collect();
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "{} {kind}: not in order",
                set.name
            );
            eprintln!(
                "{} {kind}: {} of {} records equal /dev/kmsg",
                set.name,
                truth.len(),
                seqs.len()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} dumps checked");
}
