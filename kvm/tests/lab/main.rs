//! Checks against real Linux kernels: the lab of dumps and ground truth
//! that `cargo xtask fixtures` makes (in `$KVM_LAB_DIR`, default
//! `~/.cache/kvm-lab`). Built only with `--features lab`; every test fails
//! when the lab is missing, so a green run always means the checks ran.

mod bt;
mod btf;
#[path = "../common/mod.rs"]
mod common;
mod dmesg;
mod dumps;
mod files_maps;
mod holes;
mod images;
mod in_guest;
mod in_guest_c;
mod modules;
mod openbsd;
#[path = "../common/openbsd_round_trip.rs"]
mod openbsd_round_trip;
mod panic;
mod ps;
mod symbols;
mod system_map;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// One complete lab set: a stopped VM's dumps and the guest's own view.
#[derive(Debug)]
pub struct Set {
    /// The set's name (`amd64-kaslr`, …).
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// truth.json: what the guest's /proc said right before the stop.
    pub truth: Value,
}

impl Set {
    /// The dump files, by kind (`elf`, `kdump-zlib`, …), as truth.json lists them.
    pub fn dumps(&self) -> Vec<(String, PathBuf)> {
        let mut v: Vec<_> = self.truth["dumps"]
            .as_object()
            .expect("truth.json has a dumps object")
            .iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    self.dir.join(f.as_str().expect("dump file name")),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// The guest's /proc/kallsyms entry for `name` (the kernel's own,
    /// not a module's).
    pub fn kallsyms(&self, name: &str) -> Option<u64> {
        self.kallsyms_lines()
            .into_iter()
            .find(|s| s.name == name && s.module.is_none())
            .map(|s| s.addr)
    }

    /// Every line of the guest's /proc/kallsyms, in its order.
    pub fn kallsyms_lines(&self) -> Vec<KallsymsLine> {
        let text = std::fs::read_to_string(self.dir.join("kallsyms.txt")).expect("kallsyms.txt");
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let kind = f.next()?.bytes().next()?;
                let name = f.next()?.to_string();
                let module = f.next().map(|m| m.trim_matches(['[', ']']).to_string());
                Some(KallsymsLine {
                    addr,
                    kind,
                    name,
                    module,
                })
            })
            .collect()
    }

    /// The architecture (`x86_64`, `aarch64`).
    pub fn arch(&self) -> &str {
        self.truth["arch"].as_str().expect("arch")
    }
}

/// One line of /proc/kallsyms.
#[derive(Debug)]
pub struct KallsymsLine {
    /// The address.
    pub addr: u64,
    /// The type letter (`T`, `t`, `D`, …).
    pub kind: u8,
    /// The symbol's name.
    pub name: String,
    /// The module, for a module's symbol.
    pub module: Option<String>,
}

/// A `"0x…"` string of kvm's JSON as a number.
pub fn hex(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("{v} is not a string"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("{v}: not hex"))
}

fn lab_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KVM_LAB_DIR") {
        return d.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME");
    cache.join("kvm-lab")
}

/// Every complete set; panics (fails the test) when there is none.
pub fn sets() -> Vec<Set> {
    let root = lab_dir().join("sets");
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask fixtures` first", root.display()));
    for e in entries {
        let dir = e.expect("read_dir").path();
        if !dir.join(".complete").exists() {
            continue;
        }
        let truth: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("truth.json")).expect("truth.json"),
        )
        .expect("truth.json parses");
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        out.push(Set { name, dir, truth });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        !out.is_empty(),
        "{}: no complete lab set: run `cargo xtask fixtures`",
        root.display()
    );
    out
}
