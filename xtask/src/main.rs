//! Project automation, run as `cargo xtask <task>` (the alias lives in
//! `.cargo/config.toml`). `cargo xtask ci` is the one command CI and the
//! README use: if it passes locally, CI passes.

mod fixtures;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// A task or CI step.
type StepFn = fn() -> Result<(), String>;
type Task = (&'static str, StepFn, &'static str);

const TASKS: &[Task] = &[
    (
        "ci",
        ci,
        "everything CI checks: fmt, clippy, tests, docs, no_std builds, fuzz build",
    ),
    ("fmt", fmt, "cargo fmt --check"),
    ("clippy", clippy, "clippy on all targets, warnings denied"),
    ("test", test, "all tests of the workspace"),
    ("doc", doc, "rustdoc with warnings denied"),
    (
        "damage",
        damage,
        "the damage sweep: every committed fixture format cut and header-flipped (release)",
    ),
    (
        "capi",
        capi,
        "the C interface: libkvm.so/.a, the C examples, the ATF tests under ASan and UBSan (kyua)",
    ),
    (
        "nostd",
        nostd,
        "build the no_std crates for bare-metal x86-64 and aarch64; run the no_std pipeline",
    ),
    (
        "fuzz-build",
        fuzz_build,
        "build every fuzz target (nightly + cargo-fuzz)",
    ),
    (
        "fuzz",
        fuzz::fuzz,
        "the fuzz campaign, corpora seeded from the fixtures ([--seconds N] [--runs N] [TARGET...])",
    ),
    (
        "miri",
        miri,
        "miri over the unit tests of kvm-core, kvm-elf and kvm-proc (nightly)",
    ),
    ("bench", bench, "cargo bench for the workspace"),
    (
        "lab",
        lab,
        "the checks against the real-kernel lab (run `fixtures` first)",
    ),
    (
        "live",
        live,
        "boot each arch's lab guest and read and write it running (RAM file, qemu:PID)",
    ),
    (
        "libkdumpfile",
        libkdumpfile,
        "write the lab's memory as kdump (zlib, lzo, snappy, zstd) and read it back with libkdumpfile",
    ),
    (
        "fixtures",
        fixtures::fixtures,
        "make the lab of real Linux kernel dumps with ground truth (QEMU; [--force] [SET...])",
    ),
];

/// The crates that must build without std.
const NO_STD_CRATES: &[&str] = &["kvm-core", "kvm-elf", "kvm-core-file", "kvm-proc"];
const NO_STD_TARGETS: &[&str] = &["x86_64-unknown-none", "aarch64-unknown-none"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        usage();
        return ExitCode::FAILURE;
    };
    let Some((_, f, _)) = TASKS.iter().find(|(n, _, _)| n == name) else {
        eprintln!("xtask: unknown task `{name}`");
        usage();
        return ExitCode::FAILURE;
    };
    let start = Instant::now();
    match f() {
        Ok(()) => {
            eprintln!("xtask {name}: ok in {:.1}s", start.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "xtask {name}: FAILED after {:.1}s: {e}",
                start.elapsed().as_secs_f64()
            );
            ExitCode::FAILURE
        }
    }
}

fn usage() {
    eprintln!("usage: cargo xtask <task>\n\ntasks:");
    for (n, _, help) in TASKS {
        eprintln!("  {n:<12} {help}");
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(project_root());
    c
}

/// Runs `cmd`, echoing it first; a non-zero exit is an error.
fn run(mut cmd: Command) -> Result<(), String> {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} exited with {status}"))
    }
}

/// Runs one named step of a larger task, printing its time.
fn step(name: &str, f: fn() -> Result<(), String>) -> Result<(), String> {
    eprintln!("\n==> {name}");
    let t = Instant::now();
    let r = f();
    let secs = t.elapsed().as_secs_f64();
    match &r {
        Ok(()) => eprintln!("<== {name}: ok ({secs:.1}s)"),
        Err(e) => eprintln!("<== {name}: FAILED ({secs:.1}s): {e}"),
    }
    r
}

fn ci() -> Result<(), String> {
    let steps: &[(&str, StepFn)] = &[
        ("fmt", fmt),
        ("clippy", clippy),
        ("test", test),
        ("damage", damage),
        ("capi", capi),
        ("doc", doc),
        ("nostd", nostd),
        ("fuzz-build", fuzz_build),
        ("fuzz-smoke", fuzz::smoke),
        ("miri", miri),
        ("fixtures", fixtures::fixtures),
        ("lab", lab),
        ("live", live),
        ("libkdumpfile", libkdumpfile),
    ];
    let mut times = Vec::new();
    for (name, f) in steps {
        let t = Instant::now();
        step(name, *f)?;
        times.push((name, t.elapsed().as_secs_f64()));
    }
    eprintln!("\nsummary:");
    for (n, s) in times {
        eprintln!("  {n:<12} {s:>7.1}s");
    }
    Ok(())
}

fn fmt() -> Result<(), String> {
    let mut c = cargo();
    c.args(["fmt", "--all", "--", "--check"]);
    run(c)?;
    let mut c = cargo();
    c.args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]);
    run(c)
}

fn clippy() -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    run(c)?;
    // The no-default-features configurations compile different code.
    for krate in NO_STD_CRATES {
        let mut c = cargo();
        c.args([
            "clippy",
            "-p",
            krate,
            "--no-default-features",
            "--",
            "-D",
            "warnings",
        ]);
        run(c)?;
    }
    Ok(())
}

fn test() -> Result<(), String> {
    let mut c = cargo();
    // Default features: the lab tests (feature `lab`) need the lab and run
    // in their own step.
    c.args(["test", "--workspace"]);
    run(c)?;
    for krate in NO_STD_CRATES {
        let mut c = cargo();
        c.args(["test", "-p", krate, "--no-default-features", "--lib"]);
        run(c)?;
    }
    Ok(())
}

/// The C interface, from C: `kvm/tests/capi.rs` builds libkvm (release,
/// `capi`), checks the header's layouts, builds the C examples with
/// `-Werror` and runs the ATF tests under kyua with the sanitizers.
/// Installs the C tools it needs (Debian packages) when missing.
fn capi() -> Result<(), String> {
    let have = |p: &str| Path::new(p).exists();
    let mut missing = Vec::new();
    for (file, pkg) in [
        ("/usr/include/atf-c.h", "libatf-dev"),
        ("/usr/bin/kyua", "kyua"),
        ("/usr/bin/pkg-config", "pkg-config"),
    ] {
        if !have(file) {
            missing.push(pkg);
        }
    }
    if !missing.is_empty() {
        fixtures::apt_install(&missing)?;
    }
    kvm_release_test("capi", "capi", None)
}

/// Runs `cargo test --release -p kvm --features FEATURES --test TEST
/// [FILTER] -- --nocapture`.
fn kvm_release_test(features: &str, test: &str, filter: Option<&str>) -> Result<(), String> {
    run(kvm_release_test_cmd(features, test, filter))
}

/// The command [`kvm_release_test`] runs.
fn kvm_release_test_cmd(features: &str, test: &str, filter: Option<&str>) -> Command {
    let mut c = cargo();
    c.args([
        "test",
        "--release",
        "-p",
        "kvm",
        "--features",
        features,
        "--test",
        test,
    ]);
    c.args(filter);
    c.args(["--", "--nocapture"]);
    c
}

fn doc() -> Result<(), String> {
    let mut c = cargo();
    c.args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(c)
}

/// Makes sure `target` is installed; a missing target is an error, never a skip.
fn ensure_target(target: &str) -> Result<(), String> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup is needed to install {target}: {e}"))?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    let mut c = Command::new("rustup");
    c.args(["target", "add", target]);
    run(c)
}

fn nostd() -> Result<(), String> {
    nostd_builds()?;
    nostd_pipeline()
}

fn nostd_builds() -> Result<(), String> {
    for target in NO_STD_TARGETS {
        ensure_target(target)?;
        for krate in NO_STD_CRATES {
            let mut c = cargo();
            c.args([
                "build",
                "-p",
                krate,
                "--no-default-features",
                "--target",
                target,
            ]);
            run(c)?;
            if *krate == "kvm-core" {
                let mut c = cargo();
                c.args([
                    "build",
                    "-p",
                    krate,
                    "--no-default-features",
                    "--features",
                    "alloc",
                    "--target",
                    target,
                ]);
                run(c)?;
            }
        }
    }
    Ok(())
}

/// The committed fixtures the no_std pipeline is compared on.
const NO_STD_FIXTURES: &[&str] = &[
    "kvm/tests/data/amd64-kaslr/vmcore.kdump.xz",
    "kvm/tests/data/arm64-kaslr/vmcore.kdump.xz",
];

/// Runs the whole Linux pipeline with the no_std crates only (kvm-proc's
/// `nostd_ps` example: no std feature anywhere below it) on each committed
/// fixture, and requires its output to equal `kvm ps`.
fn nostd_pipeline() -> Result<(), String> {
    let stdout = |mut c: Command| -> Result<Vec<u8>, String> {
        let shown = format!("{c:?}").replace('"', "");
        eprintln!("$ {shown}");
        let out = c.output().map_err(|e| format!("cannot run {shown}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{shown} exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out.stdout)
    };
    for core in NO_STD_FIXTURES {
        let mut c = cargo();
        c.args([
            "run",
            "-q",
            "-p",
            "kvm-proc",
            "--example",
            "nostd_ps",
            "--",
            core,
        ]);
        let nostd = stdout(c)?;
        let mut c = cargo();
        c.args(["run", "-q", "-p", "kvm", "--", "ps", "-M", core])
            .env_remove("COLUMNS");
        let kvm = stdout(c)?;
        if nostd != kvm {
            return Err(format!(
                "{core}: the no_std pipeline printed\n{}\nbut kvm ps printed\n{}",
                String::from_utf8_lossy(&nostd),
                String::from_utf8_lossy(&kvm)
            ));
        }
        let lines = nostd.iter().filter(|&&b| b == b'\n').count();
        eprintln!("{core}: the no_std pipeline and kvm ps agree ({lines} lines)");
    }
    Ok(())
}

/// cargo-fuzz needs nightly; installs cargo-fuzz when it is missing.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let ok = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    let mut c = Command::new("cargo");
    c.args(["install", "cargo-fuzz", "--locked"]);
    run(c)
}

fn fuzz_build() -> Result<(), String> {
    ensure_cargo_fuzz()?;
    let mut c = Command::new("cargo");
    c.current_dir(project_root())
        .args(["+nightly", "fuzz", "build", "-O", "-a"]);
    run(c)
}

/// The crates miri runs the unit tests of: the `no_std` parsers and
/// walkers, whose unit tests need no file system (kvm-core-file's open
/// files and map them: foreign calls miri cannot make).
const MIRI_CRATES: [&str; 3] = ["kvm-core", "kvm-elf", "kvm-proc"];

/// miri over [`MIRI_CRATES`]' unit tests: undefined behaviour, out of
/// bounds accesses and leaks in the code below the facade.
fn miri() -> Result<(), String> {
    let mut c = Command::new("rustup");
    c.args(["component", "add", "--toolchain", "nightly", "miri"]);
    run(c)?;
    let mut c = Command::new("cargo");
    c.current_dir(project_root())
        .args(["+nightly", "miri", "test", "--lib"]);
    for k in MIRI_CRATES {
        c.args(["-p", k]);
    }
    run(c)
}

/// The damage sweep over the committed fixtures (`kvm/tests/damage`):
/// thousands of opens, so in release.
fn damage() -> Result<(), String> {
    kvm_release_test("sweep", "damage", None)
}

/// The tests that read the lab's real dumps (release build: they read
/// gigabytes).
fn lab() -> Result<(), String> {
    kvm_release_test("lab", "lab", None)?;
    // The C dmesg example against the lab's kernel logs (the C tools come
    // from the capi step).
    kvm_release_test("lab,capi", "capi", Some("lab_"))
}

/// kvm against running lab guests: their RAM file and their QEMU process.
fn live() -> Result<(), String> {
    fixtures::live(&|| kvm_release_test_cmd("lab", "live", None))
}

/// Our kdump writer checked by an independent reader: every page of each
/// lab set's ELF dump, written by `kvm convert` in each compression, must
/// read back identically through libkdumpfile (Debian's
/// python3-libkdumpfile, installed when missing).
fn libkdumpfile() -> Result<(), String> {
    let have = Command::new("/usr/bin/python3")
        .args(["-c", "import kdumpfile"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        fixtures::apt_install(&["python3-libkdumpfile"])?;
    }
    let mut c = cargo();
    c.args(["build", "--release", "-p", "kvm"]);
    run(c)?;
    let kvm = project_root().join("target/release/kvm");
    let script = project_root().join("kvm-core-file/tests/libkdumpfile_check.py");
    let lab = fixtures::lab_dir()?;
    let out_dir = lab.join("libkdumpfile-check");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    // Every compression on amd64, one on arm64 (the layout is the same).
    let runs = [
        ("amd64-kaslr", &["zlib", "lzo", "snappy", "zstd"][..]),
        ("arm64-kaslr", &["zstd"][..]),
    ];
    for (set, comps) in runs {
        let elf = lab.join("sets").join(set).join("vmcore.elf");
        for &comp in comps {
            let out = out_dir.join(format!("{set}.{comp}.kdump"));
            let mut c = Command::new(&kvm);
            c.arg("convert")
                .arg("-M")
                .arg(&elf)
                .args(["--to", &format!("kdump-{comp}"), "-o"])
                .arg(&out);
            run(c)?;
            let mut c = Command::new("/usr/bin/python3");
            c.arg(&script).arg(&out).arg(&elf);
            run(c)?;
            let _ = std::fs::remove_file(&out);
        }
    }
    Ok(())
}

fn bench() -> Result<(), String> {
    let mut c = cargo();
    c.args(["bench", "--workspace"]);
    run(c)
}
