//! `kvm ps`, `kvm loadavg` and `kvm info` on every dump of every lab set,
//! against what the guest's /proc said right before the stop. No vmlinux,
//! no System.map: everything comes from the dump.

use crate::common::check_dump;
use crate::sets;

#[test]
fn ps_loadavg_and_info_match_the_guest() {
    let mut report = Vec::new();
    let mut total_mismatches = 0;
    for set in sets() {
        for (kind, path) in set.dumps() {
            let core = path.to_str().expect("utf-8 path");
            let (summary, mismatches) = check_dump(core, &set.truth, kind.contains("d31"));
            for m in &mismatches {
                eprintln!("{}/{kind}: MISMATCH {m}", set.name);
            }
            report.push(format!("{}/{kind}: {summary}", set.name));
            total_mismatches += mismatches.len();
        }
    }
    for r in &report {
        eprintln!("{r}");
    }
    assert_eq!(total_mismatches, 0, "mismatches against the guest's /proc");
}
