//! `kvm ps`, `kvm loadavg` and `kvm info` on every dump of every lab set,
//! against what the guest's /proc said right before the stop. No vmlinux,
//! no System.map: everything comes from the dump.

use crate::common::check_dump;
use crate::sets;

#[test]
fn ps_loadavg_and_info_match_the_guest() {
    let mut report = Vec::new();
    let mut all_mismatches = Vec::new();
    for set in sets() {
        for (kind, path) in set.dumps() {
            let core = path.to_str().expect("utf-8 path");
            let (summary, mismatches) = check_dump(core, &set.truth, kind.contains("d31"));
            for m in &mismatches {
                eprintln!("{}/{kind}: MISMATCH {m}", set.name);
            }
            report.push(format!("{}/{kind}: {summary}", set.name));
            all_mismatches.extend(
                mismatches
                    .iter()
                    .map(|m| format!("{}/{kind}: {m}", set.name)),
            );
        }
    }
    for r in &report {
        eprintln!("{r}");
    }
    // The mismatches themselves in the message: CI shows the failure's
    // message, not always the lines before it.
    assert!(
        all_mismatches.is_empty(),
        "{} mismatches against the guest's /proc, the first: {:#?}",
        all_mismatches.len(),
        &all_mismatches[..all_mismatches.len().min(20)]
    );
}
