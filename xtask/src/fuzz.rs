//! `cargo xtask fuzz [--seconds N] [--runs N] [TARGET...]`: the fuzzing
//! campaign. Every target (or the ones named) runs in turn, its corpus
//! (`fuzz/corpus/<target>`, not committed) seeded first from the
//! project's own real fixtures: the Linux lab dumps committed under
//! `kvm/tests/data` in every format `kvm convert` writes, the real
//! FreeBSD dumps, the LiME slice, the BTF blob and kernels. Seeds are cut
//! to [`MAX_LEN`]: the headers, tables and first pages are what the
//! parsers decide on.
//!
//! A crash fails the task and is copied to `fuzz/regressions/<target>/`,
//! which is committed: `kvm/tests/fuzz_regressions.rs` replays every file
//! there through the same entry point as an ordinary test.
//!
//! Each run ends with libFuzzer's own count line (`Done N runs in S
//! second(s)`); the task prints one summary line per target with the
//! executions, the edges covered (`cov`) and the features (`ft`).

use crate::{cargo, project_root, run};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Largest input: a seed is cut to this, and libFuzzer grows none past it.
const MAX_LEN: usize = 64 * 1024;

/// The kinds of real input the fixtures give, each a directory of seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// kdump-compressed files, plain and flattened, every compression.
    Kdump,
    /// ELF cores (Linux, written by `kvm convert`; FreeBSD full dumps).
    ElfCore,
    /// LiME images.
    Lime,
    /// The OpenBSD kcore `kvm convert --to openbsd` writes.
    OpenBsd,
    /// FreeBSD minidumps.
    Minidump,
    /// The PT_NOTE segments of the ELF cores.
    Notes,
    /// BTF blobs.
    Btf,
    /// ELF kernels (symbol tables).
    Vmlinux,
    /// `nm`-style symbol lists (kallsyms, System.map).
    SymbolList,
    /// Whole-file `.xz` dumps (small: the first 16 KiB of each kdump,
    /// packed by the system's xz).
    Xz,
}

/// Which seeds each target starts from. Targets whose input is a
/// structured encoding of their own (translate, discover, kallsyms,
/// linux_paging, kernel_log, unwind, live_text) start from their
/// corpus as earlier runs left it.
const SEEDS: &[(&str, &[Kind])] = &[
    (
        "open",
        &[
            Kind::Kdump,
            Kind::ElfCore,
            Kind::Lime,
            Kind::OpenBsd,
            Kind::Minidump,
        ],
    ),
    ("kdump", &[Kind::Kdump]),
    ("elf", &[Kind::ElfCore]),
    ("lime", &[Kind::Lime]),
    ("openbsd_kcore", &[Kind::OpenBsd]),
    ("freebsd_minidump", &[Kind::Minidump]),
    ("freebsd_dumpheader", &[Kind::ElfCore, Kind::Minidump]),
    ("notes", &[Kind::Notes]),
    ("btf", &[Kind::Btf]),
    ("elf_symbols", &[Kind::Vmlinux]),
    ("system_map", &[Kind::SymbolList]),
    ("xz", &[Kind::Xz]),
];

/// The Linux fixtures and the formats each is also written in.
const LINUX_FIXTURES: [&str; 2] = [
    "kvm/tests/data/amd64-kaslr/vmcore.kdump.xz",
    "kvm/tests/data/arm64-kaslr/vmcore.kdump.xz",
];
const CONVERTED: [(&str, &[&str], Kind); 7] = [
    ("elf", &[], Kind::ElfCore),
    ("lime", &[], Kind::Lime),
    ("openbsd", &[], Kind::OpenBsd),
    ("kdump-zstd", &[], Kind::Kdump),
    ("kdump-snappy", &[], Kind::Kdump),
    ("kdump-lzo", &["--flat"], Kind::Kdump),
    ("kdump-raw", &[], Kind::Kdump),
];

/// What the task was asked.
struct Args {
    seconds: u64,
    runs: Option<u64>,
    targets: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        seconds: std::env::var("KVM_FUZZ_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
        runs: None,
        targets: Vec::new(),
    };
    let mut it = std::env::args().skip(2);
    while let Some(arg) = it.next() {
        let mut number = |what: &str| {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{what} takes a number"))
        };
        match arg.as_str() {
            "--seconds" => a.seconds = number("--seconds")?,
            "--runs" => a.runs = Some(number("--runs")?),
            t if !t.starts_with('-') => a.targets.push(t.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// The task.
pub(crate) fn fuzz() -> Result<(), String> {
    let args = parse_args()?;
    smoke_or_campaign(&args)
}

/// The CI smoke: every target for a few seconds, seeded the same way.
pub(crate) fn smoke() -> Result<(), String> {
    smoke_or_campaign(&Args {
        seconds: 5,
        runs: None,
        targets: Vec::new(),
    })
}

fn smoke_or_campaign(args: &Args) -> Result<(), String> {
    crate::ensure_cargo_fuzz()?;
    let all = targets()?;
    let chosen: Vec<String> = if args.targets.is_empty() {
        all.clone()
    } else {
        for t in &args.targets {
            if !all.contains(t) {
                return Err(format!(
                    "no fuzz target {t} (there are: {})",
                    all.join(", ")
                ));
            }
        }
        args.targets.clone()
    };
    let seeds = make_seeds()?;
    let mut summary = Vec::new();
    let mut crashed = Vec::new();
    for t in &chosen {
        let corpus = project_root().join("fuzz/corpus").join(t);
        fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let kinds = SEEDS.iter().find(|(n, _)| n == t).map_or(&[][..], |s| s.1);
        let n = seed(&corpus, &seeds, kinds)?;
        let line = match run_target(t, &corpus, args)? {
            Ok(line) => format!("{t:<20} {line} (seeds {n})"),
            Err(line) => {
                crashed.push(t.clone());
                format!("{t:<20} CRASHED: {line}")
            }
        };
        eprintln!("fuzz: {line}");
        summary.push(line);
    }
    eprintln!("\nfuzz summary:");
    for l in &summary {
        eprintln!("  {l}");
    }
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} crashed; the inputs are in fuzz/regressions/ (commit them with the fix)",
            crashed.join(", ")
        ))
    }
}

/// The fuzz targets, as cargo-fuzz lists them.
fn targets() -> Result<Vec<String>, String> {
    let out = Command::new("cargo")
        .current_dir(project_root())
        .args(["+nightly", "fuzz", "list"])
        .output()
        .map_err(|e| format!("cargo fuzz list: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo fuzz list: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Runs one target; `Ok` carries libFuzzer's last counts, `Err` a crash
/// (its input then copied to `fuzz/regressions/<target>/`).
fn run_target(t: &str, corpus: &Path, args: &Args) -> Result<Result<String, String>, String> {
    let artifacts = project_root().join("fuzz/artifacts").join(t);
    fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    let before = listing(&artifacts);
    let mut c = Command::new("cargo");
    c.current_dir(project_root())
        .args(["+nightly", "fuzz", "run", "-O", "-a", t]);
    c.arg(corpus);
    c.arg("--");
    c.arg(format!("-max_total_time={}", args.seconds));
    c.arg(format!("-max_len={MAX_LEN}"));
    c.arg(format!("-artifact_prefix={}/", artifacts.display()));
    if let Some(r) = args.runs {
        c.arg(format!("-runs={r}"));
    }
    eprintln!("$ {}", format!("{c:?}").replace('"', ""));
    let out = c
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cargo fuzz run {t}: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let counts = last_counts(&log);
    if out.status.success() {
        return Ok(Ok(counts));
    }
    eprintln!("{log}");
    let regressions = project_root().join("fuzz/regressions").join(t);
    fs::create_dir_all(&regressions).map_err(|e| format!("{}: {e}", regressions.display()))?;
    let mut kept = Vec::new();
    for p in listing(&artifacts) {
        if before.contains(&p) {
            continue;
        }
        let name = p.file_name().expect("a listed file has a name");
        fs::copy(&p, regressions.join(name)).map_err(|e| format!("{}: {e}", p.display()))?;
        kept.push(name.to_string_lossy().into_owned());
    }
    Ok(Err(format!("{counts}; kept {}", kept.join(", "))))
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// libFuzzer's last status line: `#N DONE cov: C ft: F …` or the
/// `Done N runs in S second(s)` line, whichever it printed last.
fn last_counts(log: &str) -> String {
    let status = log
        .lines()
        .rfind(|l| l.starts_with('#') && l.contains("cov:"))
        .unwrap_or("no status line");
    let done = log.lines().rfind(|l| l.starts_with("Done ")).unwrap_or("");
    format!("{} {}", status.trim(), done.trim())
}

/// Copies the seeds of `kinds` into `corpus`; returns how many.
fn seed(corpus: &Path, seeds: &Path, kinds: &[Kind]) -> Result<usize, String> {
    let mut n = 0;
    for k in kinds {
        for p in listing(&seeds.join(format!("{k:?}"))) {
            let to = corpus.join(format!(
                "seed-{:?}-{}",
                k,
                p.file_name().expect("named").to_string_lossy()
            ));
            fs::copy(&p, &to).map_err(|e| format!("{}: {e}", p.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes every seed under `target/fuzz-seeds/<Kind>/`, from the committed
/// fixtures: unpacked with the system's xz, bzip2 and gzip, converted with
/// the workspace's own `kvm` (release build).
fn make_seeds() -> Result<PathBuf, String> {
    let root = project_root();
    let dir = root.join("target/fuzz-seeds");
    let _ = fs::remove_dir_all(&dir);
    let mut c = cargo();
    c.args(["build", "--release", "-p", "kvm", "--bin", "kvm"]);
    run(c)?;
    let kvm = release_bin("kvm");
    let work = dir.join("work");
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    for f in LINUX_FIXTURES {
        let arch = f.split('/').nth(3).expect("kvm/tests/data/<set>/…");
        let kdump = work.join(format!("{arch}.kdump"));
        unpack("xz", &root.join(f), &kdump)?;
        put(&dir, Kind::Kdump, &format!("{arch}-zlib"), &kdump)?;
        let head = work.join(format!("{arch}.head"));
        let mut bytes = read(&kdump)?;
        bytes.truncate(16 << 10);
        fs::write(&head, &bytes).map_err(|e| format!("{}: {e}", head.display()))?;
        let packed = Command::new("xz")
            .args(["-c", "-9"])
            .arg(&head)
            .output()
            .map_err(|e| format!("cannot run xz (install it): {e}"))?;
        put_bytes(&dir, Kind::Xz, arch, &packed.stdout)?;
        for (to, extra, kind) in CONVERTED {
            if to == "openbsd" && !arch.starts_with("amd64") {
                continue; // OpenBSD kcores are amd64 and i386 only
            }
            let out = work.join(format!("{arch}.{to}"));
            let mut c = Command::new(&kvm);
            c.args(["convert", "--to", to]).args(extra);
            c.arg("-M").arg(&kdump).arg("-o").arg(&out);
            run(c)?;
            put(&dir, kind, &format!("{arch}-{to}"), &out)?;
            if kind == Kind::ElfCore {
                for (i, note) in elf_notes(&read(&out)?).into_iter().enumerate() {
                    put_bytes(&dir, Kind::Notes, &format!("{arch}-{i}"), &note)?;
                }
            }
        }
    }
    let freebsd = root.join("kvm-core-file/tests/data/freebsd");
    for (name, kind) in [
        ("vmcore-amd64-full", Kind::ElfCore),
        ("vmcore-amd64-minidump", Kind::Minidump),
        ("vmcore-arm64-minidump", Kind::Minidump),
    ] {
        let out = work.join(name);
        unpack("bzip2", &freebsd.join(format!("{name}.bz2")), &out)?;
        put(&dir, kind, name, &out)?;
    }
    put(
        &dir,
        Kind::Lime,
        "deb-x86_64-slice",
        &root.join("kvm-core-file/tests/data/lime/deb-x86_64-slice.lime"),
    )?;
    for (name, kind) in [
        ("task-closure-6.18.btf", Kind::Btf),
        ("kernel-amd64.elf", Kind::Vmlinux),
        ("kernel-arm64.elf", Kind::Vmlinux),
    ] {
        let out = work.join(name);
        unpack(
            "gzip",
            &root.join(format!("kvm-elf/tests/data/{name}.gz")),
            &out,
        )?;
        put(&dir, kind, name, &out)?;
    }
    for set in ["amd64-kaslr", "arm64-kaslr"] {
        put(
            &dir,
            Kind::SymbolList,
            set,
            &root.join(format!("kvm/tests/data/{set}/kallsyms-subset.txt")),
        )?;
    }
    Ok(dir)
}

fn release_bin(name: &str) -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => project_root().join(d),
        _ => project_root().join("target"),
    };
    target.join("release").join(name)
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// `tool -dc from > to`.
fn unpack(tool: &str, from: &Path, to: &Path) -> Result<(), String> {
    let out = fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let status = Command::new(tool)
        .arg("-dc")
        .arg(from)
        .stdout(out)
        .status()
        .map_err(|e| format!("cannot run {tool} (install it): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{tool} -dc {}: {status}", from.display()))
    }
}

/// The first [`MAX_LEN`] bytes of `file` as a seed of `kind`.
fn put(dir: &Path, kind: Kind, name: &str, file: &Path) -> Result<(), String> {
    let mut bytes = read(file)?;
    bytes.truncate(MAX_LEN);
    put_bytes(dir, kind, name, &bytes)
}

fn put_bytes(dir: &Path, kind: Kind, name: &str, bytes: &[u8]) -> Result<(), String> {
    let d = dir.join(format!("{kind:?}"));
    fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    let p = d.join(name);
    fs::write(&p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

/// The PT_NOTE segments of a little-endian ELF64 core (at most
/// [`MAX_LEN`] bytes each).
fn elf_notes(elf: &[u8]) -> Vec<Vec<u8>> {
    let u = |o: usize, n: usize| -> Option<u64> {
        let b = elf.get(o..o + n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(b);
        Some(u64::from_le_bytes(v))
    };
    let mut notes = Vec::new();
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u(32, 8), u(54, 2), u(56, 2)) else {
        return notes;
    };
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        if u(at, 4) != Some(4) {
            continue;
        }
        let (Some(off), Some(size)) = (u(at + 8, 8), u(at + 32, 8)) else {
            continue;
        };
        let (off, size) = (off as usize, (size as usize).min(MAX_LEN));
        if let Some(b) = elf.get(off..off.saturating_add(size)) {
            notes.push(b.to_vec());
        }
    }
    notes
}
