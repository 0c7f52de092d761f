//! Memory images with no metadata at all (issue 15): each lab set's ELF
//! dump written as a raw image (as QEMU's `pmemsave` writes guest RAM)
//! and as a LiME file; kvm finds the kernel in them by a scan for its
//! VMCOREINFO and must give what the guest's /proc said: `ps`, `loadavg`
//! and `info` with 0 mismatches, and `nlist` equal to /proc/kallsyms.

use crate::common::{check_dump, kvm_json};
use crate::sets;
use std::path::PathBuf;
use std::process::Command;

/// A scratch file, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `kvm convert -M elf --to to [--keep …] -o out`.
fn convert(elf: &str, to: &str, keep: Option<String>, out: &Scratch) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kvm"));
    c.args(["convert", "-M", elf, "--to", to, "-o"]).arg(&out.0);
    if let Some(k) = keep {
        c.args(["--keep", &k]);
    }
    let o = c.output().expect("run kvm convert");
    assert!(
        o.status.success(),
        "kvm convert --to {to}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn raw_and_lime_images_give_the_guests_processes() {
    let mut mismatches = Vec::new();
    for set in sets() {
        let elf = set.dir.join("vmcore.elf");
        let elf = elf.to_str().expect("utf-8 path");
        // The RAM: the dump's first range (x86 dumps also carry the BIOS
        // ROM below 4 GiB, which a pmemsave of the RAM does not).
        let kd = kvm::Kvm::open_dump(elf).expect("open the ELF dump");
        let ram = kd.source().ranges()[0];
        drop(kd);
        for to in ["raw", "lime"] {
            let out = Scratch(std::env::temp_dir().join(format!(
                "kvm-lab-{}-{}.{to}",
                set.name,
                std::process::id()
            )));
            let keep = (to == "raw").then(|| format!("{:#x}:{:#x}", ram.start, ram.len));
            convert(elf, to, keep, &out);
            let path = out.0.to_str().expect("utf-8 path");
            let info = kvm_json(&["info", "-M", path, "--json"]);
            assert_eq!(info["format"], to, "{}: {info}", set.name);
            let remarks = info["remarks"].to_string();
            assert!(
                remarks.contains("VMCOREINFO found in memory at physical address"),
                "{}/{to}: {remarks}",
                set.name
            );
            let (summary, m) = check_dump(path, &set.truth, false);
            eprintln!("{}/{to}: {summary}; {remarks}", set.name);
            mismatches.extend(m.into_iter().map(|m| format!("{}/{to}: {m}", set.name)));
            // Symbols from the image's own kallsyms (functions: arm64's
            // /proc/kallsyms has no data symbols).
            for name in ["start_kernel", "panic", "schedule"] {
                let got = kvm_json(&["nlist", "-M", path, "--json", name]);
                let want = set.kallsyms(name).expect("in /proc/kallsyms");
                let addr = got[name]
                    .as_str()
                    .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok());
                if addr != Some(want) {
                    mismatches.push(format!(
                        "{}/{to}: nlist {name}: kallsyms {want:#x}, kvm {got}",
                        set.name
                    ));
                }
            }
            // A memory image no process maps is a dump: never written.
            let hash = |p: &PathBuf| {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(p).expect("read the image").hash(&mut h);
                h.finish()
            };
            let before = hash(&out.0);
            let w = Command::new(env!("CARGO_BIN_EXE_kvm"))
                .args(["write", "-M", path, "--phys", "0x1000", "00"])
                .output()
                .expect("run kvm write");
            let err = String::from_utf8_lossy(&w.stderr);
            assert_eq!(w.status.code(), Some(1), "{}/{to}: {err}", set.name);
            assert!(
                err.contains("the source is read-only"),
                "{}/{to}: {err}",
                set.name
            );
            assert_eq!(hash(&out.0), before, "{}/{to}: the image changed", set.name);
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
