//! `kvm nlist -N System.map`: link-time addresses from the `-dbg`
//! package's System.map (copied into each set by `cargo xtask fixtures`),
//! relocated by the dump's KASLR offset, for the names the guest's own
//! kallsyms lacks (data symbols on arm64 Debian kernels, built without
//! CONFIG_KALLSYMS_ALL). The answers are checked against facts kvm does
//! not derive from System.map: VMCOREINFO's SYMBOL() lines, the guest's
//! /proc (truth.json), the guest's /proc/kallsyms (amd64 has the data
//! symbols), and the memory the addresses point at.

use crate::common::kvm_json;
use crate::{sets, Set};
use std::collections::{BTreeMap, HashMap};
use std::process::Command;

/// Data symbols the checks name (absent from arm64's kallsyms).
const NAMED: &[&str] = &[
    "init_task",
    "avenrun",
    "linux_banner",
    "init_uts_ns",
    "jiffies",
    "jiffies_64",
    "modules",
    "init_mm",
    "init_pid_ns",
];

/// kallsyms' own tables: never in /proc/kallsyms (on any kernel), but in
/// System.map and in VMCOREINFO (6.0+).
const KALLSYMS_TABLES: &[&str] = &[
    "kallsyms_names",
    "kallsyms_num_syms",
    "kallsyms_token_table",
    "kallsyms_token_index",
    "kallsyms_markers",
    "kallsyms_offsets",
    "kallsyms_relative_base",
];

/// `System.map` or `kallsyms.txt` of a set: name -> (address, kind) for
/// names that occur once (static variables repeat across files).
fn unique_symbols(text: &str, image_only: bool) -> BTreeMap<String, (u64, char)> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    let mut all = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || (image_only && f.len() > 3) {
            continue;
        }
        *count.entry(f[2]).or_default() += 1;
        let addr = u64::from_str_radix(f[0], 16).expect("hex address");
        all.push((f[2], addr, f[1].chars().next().unwrap_or('?')));
    }
    all.into_iter()
        .filter(|(n, _, _)| count[n] == 1)
        .map(|(n, a, k)| (n.to_owned(), (a, k)))
        .collect()
}

fn is_data(kind: char) -> bool {
    matches!(kind, 'd' | 'D' | 'b' | 'B' | 'r' | 'R')
}

fn hex(v: &serde_json::Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

/// `kvm nlist -M core [-N map] --json names…`, in batches (the command
/// line has a limit).
fn nlist(core: &str, map: Option<&str>, names: &[&str]) -> BTreeMap<String, Option<u64>> {
    let mut out = BTreeMap::new();
    for chunk in names.chunks(4000) {
        let mut args = vec!["nlist", "-M", core];
        if let Some(m) = map {
            args.extend(["-N", m]);
        }
        args.push("--json");
        args.extend(chunk);
        // Exit status 1 when a name is not found: the JSON says which.
        let o = Command::new(env!("CARGO_BIN_EXE_kvm"))
            .args(&args)
            .output()
            .expect("run kvm nlist");
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "kvm {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("nlist JSON");
        for n in chunk {
            out.insert((*n).to_owned(), hex(&v[*n]));
        }
    }
    out
}

/// `kvm read -M core ADDR LEN`: the raw bytes.
fn kvm_read(core: &str, addr: u64, len: usize) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(["read", "-M", core, &format!("{addr:#x}"), &len.to_string()])
        .output()
        .expect("run kvm read");
    assert!(
        out.status.success(),
        "kvm read {addr:#x} {len}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), len, "kvm read {addr:#x} {len}: short");
    out.stdout
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `SYMBOL(name)=` and `KERNELOFFSET=` of the ELF dump's VMCOREINFO note,
/// read straight from the file (QEMU puts the notes first).
fn vmcoreinfo(set: &Set) -> HashMap<String, String> {
    use std::io::Read;
    let mut head = vec![0u8; 1 << 20];
    let mut f = std::fs::File::open(set.dir.join("vmcore.elf")).expect("vmcore.elf");
    let n = f.read(&mut head).expect("read vmcore.elf");
    let head = &head[..n];
    let start = head
        .windows(10)
        .position(|w| w == b"OSRELEASE=")
        .expect("VMCOREINFO in the first MiB of vmcore.elf");
    let text = &head[start..];
    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
    String::from_utf8_lossy(&text[..end])
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The member offsets of the set's dwarf-offsets.json.
fn dwarf_offset(set: &Set, path: &str) -> u64 {
    let text = std::fs::read_to_string(set.dir.join("dwarf-offsets.json"))
        .expect("dwarf-offsets.json: run `cargo xtask fixtures`");
    let v: serde_json::Value = serde_json::from_str(&text).expect("dwarf-offsets.json parses");
    v[path]["offset"]
        .as_u64()
        .unwrap_or_else(|| panic!("dwarf-offsets.json has no {path}"))
}

/// What the set's System.map says, what KERNELOFFSET is.
struct MapFacts {
    map_path: String,
    map: BTreeMap<String, (u64, char)>,
    guest: BTreeMap<String, (u64, char)>,
    offset: u64,
}

fn map_facts(set: &Set) -> MapFacts {
    let map_path = set.dir.join("System.map");
    let text = std::fs::read_to_string(&map_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run `cargo xtask fixtures` (it adds the -dbg System.map)",
            map_path.display()
        )
    });
    let map = unique_symbols(&text, false);
    assert!(
        map.len() > 50_000,
        "{}: {} symbols: not a real System.map",
        set.name,
        map.len()
    );
    let kallsyms = std::fs::read_to_string(set.dir.join("kallsyms.txt")).expect("kallsyms.txt");
    let guest = unique_symbols(&kallsyms, true);
    let vi = vmcoreinfo(set);
    let offset = u64::from_str_radix(&vi["KERNELOFFSET"], 16).expect("KERNELOFFSET");
    let truth_offset = set.truth["kaslr_offset"].as_str().expect("kaslr_offset");
    assert_eq!(format!("{offset:#x}"), truth_offset, "{}", set.name);
    let info = kvm_json(&[
        "info",
        "-M",
        set.dir.join("vmcore.elf").to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(
        hex(&info["kaslr_offset"]),
        Some(offset),
        "{}: kvm info",
        set.name
    );
    MapFacts {
        map_path: map_path.to_str().expect("utf-8").to_owned(),
        map,
        guest,
        offset,
    }
}

/// The checks of the named symbols on one dump, whatever answered them:
/// returns a line of what was checked.
fn check_named(set: &Set, kind: &str, core: &str, f: &MapFacts) -> String {
    let got = nlist(core, Some(&f.map_path), NAMED);
    let vi = vmcoreinfo(set);
    let at = |n: &str| got[n].unwrap_or_else(|| panic!("{}/{kind}: {n} not found", set.name));
    for n in NAMED {
        let (link, _) = f.map[*n];
        assert_eq!(
            at(n),
            link.wrapping_add(f.offset),
            "{}/{kind}: {n} = System.map {link:#x} + KERNELOFFSET {:#x}",
            set.name,
            f.offset
        );
    }
    // VMCOREINFO's own SYMBOL(init_uts_ns), and kvm without -N (kallsyms
    // on amd64; VMCOREINFO on arm64).
    let uts = at("init_uts_ns");
    let vi_uts = u64::from_str_radix(&vi["SYMBOL(init_uts_ns)"], 16).expect("SYMBOL(init_uts_ns)");
    assert_eq!(
        uts, vi_uts,
        "{}/{kind}: init_uts_ns vs VMCOREINFO",
        set.name
    );
    let plain = nlist(core, None, &["init_uts_ns"]);
    assert_eq!(
        plain["init_uts_ns"],
        Some(uts),
        "{}/{kind}: without -N",
        set.name
    );

    // linux_banner reads /proc/version through the page tables.
    let version = set.truth["version"].as_str().expect("version");
    let banner = kvm_read(core, at("linux_banner"), version.len());
    assert_eq!(
        String::from_utf8_lossy(&banner),
        version,
        "{}/{kind}: linux_banner",
        set.name
    );
    // init_uts_ns.name: "Linux" and the release.
    let uts = at("init_uts_ns");
    let sys = kvm_read(
        core,
        uts + dwarf_offset(set, "uts_namespace.name.sysname"),
        65,
    );
    let rel = kvm_read(
        core,
        uts + dwarf_offset(set, "uts_namespace.name.release"),
        65,
    );
    assert_eq!(cstr(&sys), "Linux", "{}/{kind}: sysname", set.name);
    assert_eq!(
        Some(cstr(&rel).as_str()),
        set.truth["release"].as_str(),
        "{}/{kind}: release",
        set.name
    );
    // init_task: the idle task, comm "swapper/0", pid 0.
    let task = at("init_task");
    let comm = kvm_read(core, task + dwarf_offset(set, "task_struct.comm"), 16);
    let pid = kvm_read(core, task + dwarf_offset(set, "task_struct.pid"), 4);
    assert_eq!(
        cstr(&comm),
        "swapper/0",
        "{}/{kind}: init_task comm",
        set.name
    );
    assert_eq!(pid, [0; 4], "{}/{kind}: init_task pid", set.name);
    // avenrun: /proc/loadavg's arithmetic (fixed point, 11 bits) gives
    // what the guest read.
    let av = kvm_read(core, at("avenrun"), 24);
    for i in 0..3 {
        let a = u64_at(&av, 8 * i) + 2048 / 200;
        let shown = (a >> 11) as f64 + (((a & 2047) * 100) >> 11) as f64 / 100.0;
        let want = set.truth["loadavg"][i].as_f64().expect("loadavg");
        assert!(
            (shown - want).abs() <= 0.01 + 1e-9,
            "{}/{kind}: avenrun[{i}] shows {shown:.2}, guest read {want}",
            set.name
        );
    }
    // jiffies is jiffies_64 (the linker script's alias) and readable.
    assert_eq!(at("jiffies"), at("jiffies_64"), "{}/{kind}", set.name);
    let _ = kvm_read(core, at("jiffies"), 8);
    // modules: a closed list whose first entry is a module the guest had.
    let head = at("modules");
    let links = kvm_read(core, head, 16);
    let first = u64_at(&links, 0);
    assert_ne!(first, head, "{}/{kind}: no module loaded", set.name);
    assert_eq!(
        u64_at(&kvm_read(core, first + 8, 8), 0),
        head,
        "{}/{kind}: modules.next->prev",
        set.name
    );
    let module = first - dwarf_offset(set, "module.list");
    let mname = cstr(&kvm_read(
        core,
        module + dwarf_offset(set, "module.name"),
        56,
    ));
    let kallsyms = std::fs::read_to_string(set.dir.join("kallsyms.txt")).expect("kallsyms.txt");
    assert!(
        kallsyms.contains(&format!("\t[{mname}]")),
        "{}/{kind}: first module {mname:?} is not in /proc/kallsyms",
        set.name
    );
    // kallsyms' own tables: never in kallsyms; -N against VMCOREINFO.
    let tables = nlist(core, Some(&f.map_path), KALLSYMS_TABLES);
    let mut tables_checked = 0;
    for n in KALLSYMS_TABLES {
        assert!(!f.guest.contains_key(*n), "{n} in /proc/kallsyms?");
        let (link, _) = f.map[*n];
        assert_eq!(
            tables[*n],
            Some(link.wrapping_add(f.offset)),
            "{}/{kind}: {n}",
            set.name
        );
        if let Some(v) = vi.get(&format!("SYMBOL({n})")) {
            let v = u64::from_str_radix(v, 16).expect("hex");
            assert_eq!(
                tables[*n],
                Some(v),
                "{}/{kind}: {n} vs VMCOREINFO",
                set.name
            );
            tables_checked += 1;
        }
    }
    format!(
        "{}/{kind}: {} named data symbols = System.map + {:#x}; init_uts_ns = VMCOREINFO; \
         linux_banner, uts release, init_task, avenrun, modules read right; \
         {} kallsyms tables = VMCOREINFO",
        set.name,
        NAMED.len(),
        f.offset,
        tables_checked
    )
}

#[test]
fn system_map_gives_data_symbols_kallsyms_lacks() {
    let mut report = Vec::new();
    let mut arm64 = 0;
    for set in sets() {
        let f = map_facts(&set);
        // Every data symbol of System.map that the guest's kallsyms lacks.
        let absent: Vec<&str> = f
            .map
            .iter()
            .filter(|(n, (_, k))| is_data(*k) && !f.guest.contains_key(*n))
            .map(|(n, _)| n.as_str())
            .collect();
        let elf = set.dir.join("vmcore.elf");
        let core = elf.to_str().expect("utf-8");
        let t = std::time::Instant::now();
        let got = nlist(core, Some(&f.map_path), &absent);
        let mut wrong = Vec::new();
        for n in &absent {
            let want = f.map[*n].0.wrapping_add(f.offset);
            if got[*n] != Some(want) {
                wrong.push(format!("{n}: want {want:#x}, kvm {:x?}", got[*n]));
            }
        }
        assert!(
            wrong.is_empty(),
            "{}: {} of {} wrong: {:#?}",
            set.name,
            wrong.len(),
            absent.len(),
            &wrong[..wrong.len().min(20)]
        );
        report.push(format!(
            "{}/elf: {} data symbols absent from kallsyms, all = System.map + KERNELOFFSET {:#x} ({:?})",
            set.name,
            absent.len(),
            f.offset,
            t.elapsed()
        ));
        if set.arch() == "aarch64" {
            arm64 += 1;
            for n in NAMED {
                assert!(
                    !f.guest.contains_key(*n),
                    "{}: {n} is in kallsyms: the check would not test -N",
                    set.name
                );
            }
            assert!(absent.len() > 1000, "{}: {}", set.name, absent.len());
        }
        for (kind, path) in set.dumps() {
            if kind == "elf" || kind == "kdump-zlib" {
                report.push(check_named(&set, &kind, path.to_str().expect("utf-8"), &f));
            }
        }
    }
    for r in &report {
        eprintln!("{r}");
    }
    assert!(arm64 > 0, "no arm64 set: the -N case is not covered");
}

/// amd64 has the data symbols in kallsyms: there the System.map answers,
/// relocated as kvm relocates them, must be the guest's.
#[test]
fn system_map_agrees_with_kallsyms_on_amd64() {
    let mut report = Vec::new();
    for set in sets().into_iter().filter(|s| s.arch() == "x86_64") {
        let f = map_facts(&set);
        let text = std::fs::read(&f.map_path).expect("System.map");
        // The -N table exactly as kvm builds it.
        let table = kvm_elf::SymbolTable::from_system_map(&text)
            .and_then(|t| t.relocated(f.offset))
            .expect("System.map loads");
        let (pcpu_lo, pcpu_hi) = table.percpu_range().expect("zero-based per-CPU symbols");
        let mut both: Vec<&str> = Vec::new();
        let mut percpu = 0;
        let mut wrong = Vec::new();
        for (n, &(link, k)) in &f.map {
            let Some(&(guest, _)) = f.guest.get(n) else {
                continue;
            };
            if !is_data(k) {
                continue;
            }
            both.push(n);
            let is_percpu = (pcpu_lo..=pcpu_hi).contains(&link);
            percpu += usize::from(is_percpu);
            // By hand: image symbols move by KERNELOFFSET, per-CPU offsets do not.
            let by_hand = if is_percpu {
                link
            } else {
                link.wrapping_add(f.offset)
            };
            let kvm = table.addr(n).map(|a| a.0);
            if by_hand != guest || kvm != Some(guest) {
                wrong.push(format!(
                    "{n}: guest {guest:#x}, System.map {link:#x} (+ offset: {by_hand:#x}), -N table {kvm:x?}"
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{}: {} of {} differ: {:#?}",
            set.name,
            wrong.len(),
            both.len(),
            &wrong[..wrong.len().min(20)]
        );
        // The command: a few hundred of them (every n-th, per-CPU ones included).
        let step = (both.len() / 400).max(1);
        let mut sample: Vec<&str> = both.iter().step_by(step).copied().collect();
        sample.extend(NAMED);
        sample.extend(
            ["fixed_percpu_data", "runqueues", "current_task"]
                .into_iter()
                .filter(|n| f.guest.contains_key(*n)),
        );
        sample.sort_unstable();
        sample.dedup();
        let elf = set.dir.join("vmcore.elf");
        let got = nlist(elf.to_str().expect("utf-8"), Some(&f.map_path), &sample);
        for n in &sample {
            assert_eq!(
                got[*n],
                Some(f.guest[*n].0),
                "{}: kvm nlist -N {n} vs kallsyms",
                set.name
            );
        }
        report.push(format!(
            "{}: {} data symbols in both System.map and kallsyms: System.map + {:#x} (per-CPU: + 0, {percpu} of them) = kallsyms = kvm's -N table; kvm nlist -N = kallsyms for {} of them",
            set.name,
            both.len(),
            f.offset,
            sample.len()
        ));
    }
    for r in &report {
        eprintln!("{r}");
    }
    assert!(!report.is_empty(), "no amd64 set");
}
