//! Types from the dump alone: the BTF kvm reads from the dump's memory
//! gives, for every member path and type of the set's
//! `dwarf-offsets.json`, the offset and size the DWARF of the matching
//! `-dbg` vmlinux gives (gdb on it, cross-checked by pahole, build ID
//! checked against the dump's VMCOREINFO: `cargo xtask fixtures`).

use crate::common::kvm_json;
use crate::sets;
use serde_json::Value;

/// Structs the check must cover with members (the symbols issue's list).
const STRUCTS: &[&str] = &[
    "task_struct",
    "mm_struct",
    "cred",
    "signal_struct",
    "pid",
    "list_head",
    "uts_namespace",
    "tty_struct",
];

#[test]
fn btf_from_the_dump_matches_dwarf() {
    let mut report = Vec::new();
    let mut wrong = Vec::new();
    for set in sets() {
        let file = set.dir.join("dwarf-offsets.json");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run `cargo xtask fixtures` (it adds the DWARF offsets)",
                file.display()
            )
        });
        let dwarf: serde_json::Map<String, Value> =
            serde_json::from_str(&text).expect("dwarf-offsets.json parses");
        let paths: Vec<&str> = dwarf.keys().map(String::as_str).collect();
        let members = paths.iter().filter(|p| p.contains('.')).count();
        for s in STRUCTS {
            let n = paths
                .iter()
                .filter(|p| p.strip_prefix(s).is_some_and(|r| r.starts_with('.')))
                .count();
            assert!(n > 0, "{}: dwarf-offsets.json has no {s} member", set.name);
            assert!(
                dwarf.contains_key(*s),
                "{}: dwarf-offsets.json has no size of {s}",
                set.name
            );
        }
        assert!(members >= 40, "{}: only {members} member paths", set.name);
        // The ELF dump and a kdump (compressed pages: another reader).
        for kind in ["elf", "kdump-zlib"] {
            let Some((_, path)) = set.dumps().into_iter().find(|(k, _)| k == kind) else {
                panic!("{}: no {kind} dump", set.name)
            };
            let core = path.to_str().expect("utf-8 path");
            let mut args = vec!["types", "-M", core, "--json"];
            args.extend(&paths);
            let t = std::time::Instant::now();
            let btf = kvm_json(&args);
            let took = t.elapsed();
            let mut checked = 0;
            for (p, want) in &dwarf {
                let got = &btf[p.as_str()];
                let same = if p.contains('.') {
                    got["offset"] == want["offset"] && got["size"] == want["size"]
                } else {
                    got["offset"].is_null() && got["size"] == want["size"]
                };
                if same {
                    checked += 1;
                } else {
                    wrong.push(format!("{}/{kind}: {p}: DWARF {want}, BTF {got}", set.name));
                }
            }
            report.push(format!(
                "{}/{kind}: BTF equals DWARF for {checked} of {} paths ({members} members, {} type sizes; kvm types took {took:?})",
                set.name,
                dwarf.len(),
                dwarf.len() - members
            ));
        }
    }
    for r in &report {
        eprintln!("{r}");
    }
    assert!(wrong.is_empty(), "BTF and DWARF differ: {wrong:#?}");
}
