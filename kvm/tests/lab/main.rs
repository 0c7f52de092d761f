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
mod images;
mod in_guest;
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

    /// The guest's /proc/kallsyms entry for `name`.
    pub fn kallsyms(&self, name: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.dir.join("kallsyms.txt")).expect("kallsyms.txt");
        text.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let addr = f.next()?;
            let _kind = f.next()?;
            (f.next()? == name && f.next().is_none()).then(|| u64::from_str_radix(addr, 16).ok())?
        })
    }

    /// The architecture (`x86_64`, `aarch64`).
    pub fn arch(&self) -> &str {
        self.truth["arch"].as_str().expect("arch")
    }
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
