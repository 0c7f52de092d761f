//! Symbols from the dump alone: every symbol of the guest's /proc/kallsyms
//! that lives in the kernel image resolves, through the kallsyms tables
//! decoded from the dump's memory, to the address the guest printed; and
//! every name looked up alone (the kallsyms sequence index) gives the
//! decoded table's answer.

use crate::sets;
use kvm::Kvm;
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn every_kallsyms_symbol_resolves_from_the_dump() {
    for set in sets() {
        let text = std::fs::read_to_string(set.dir.join("kallsyms.txt")).expect("kallsyms.txt");
        // name -> addresses (names repeat: static functions of different files)
        let mut guest: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
        let mut module_syms: BTreeSet<(String, u64, String)> = BTreeSet::new();
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() > 3 {
                // `[module]`: from the module's own table, checked below.
                let module = f[3].trim_matches(|c| c == '[' || c == ']').to_owned();
                module_syms.insert((
                    f[2].to_owned(),
                    u64::from_str_radix(f[0], 16).expect("address"),
                    module,
                ));
                continue;
            }
            let addr = u64::from_str_radix(f[0], 16).expect("address");
            guest.entry(f[2]).or_default().insert(addr);
        }
        let image_syms: usize = guest.values().map(BTreeSet::len).sum();
        for (kind, path) in set.dumps() {
            let kd = Kvm::open_dump(&path).unwrap();
            let t = std::time::Instant::now();
            let table = kd
                .kernel_symbols()
                .unwrap_or_else(|e| panic!("{}/{kind}: {e}", set.name));
            let load = t.elapsed();
            let mut ours: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
            for s in table.iter() {
                ours.entry(s.name).or_default().insert(s.addr.0);
            }
            let mut wrong = Vec::new();
            for (name, addrs) in &guest {
                if ours.get(name) != Some(addrs) {
                    wrong.push(format!(
                        "{name}: guest {addrs:x?}, kvm {:x?}",
                        ours.get(name)
                    ));
                }
            }
            // By name, as `ps` and `nlist` look symbols up (the kallsyms
            // sequence index where the kernel has one): the decoded table's
            // preferred symbol for every name.
            let names: Vec<&str> = guest.keys().copied().collect();
            let t = std::time::Instant::now();
            let by_name = kd.nlist(&names).unwrap();
            let lookups = t.elapsed();
            for (name, got) in names.iter().zip(&by_name) {
                let want = table.addr(name).map(|a| a.0);
                if *got != want {
                    wrong.push(format!("nlist {name}: {got:x?}, decoded table {want:x?}"));
                }
            }
            let mods: BTreeSet<(String, u64, String)> = kd
                .module_symbols()
                .unwrap_or_else(|e| panic!("{}/{kind}: modules: {e}", set.name))
                .iter()
                .map(|m| (m.name.clone(), m.addr, m.module.clone()))
                .collect();
            let mod_missing: Vec<_> = module_syms.difference(&mods).take(5).collect();
            if !mod_missing.is_empty() {
                wrong.push(format!("module symbols missing, e.g. {mod_missing:?}"));
            }
            eprintln!(
                "{}/{kind}: {image_syms} image symbols of /proc/kallsyms resolved, {} wrong or missing; \
                 {} module symbols: {} found; {} symbols decoded in {load:?}; \
                 {} names looked up one by one in {lookups:?}",
                set.name,
                wrong.len(),
                module_syms.len(),
                module_syms.intersection(&mods).count(),
                table.len(),
                names.len()
            );
            assert!(
                wrong.is_empty(),
                "{}/{kind}: {:#?}",
                set.name,
                &wrong[..wrong.len().min(20)]
            );
        }
    }
}
