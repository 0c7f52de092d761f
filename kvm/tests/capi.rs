//! The C interface from C (feature `capi`; run by `cargo xtask capi`):
//! the header's structs against the Rust definitions, the C examples built
//! with `-Wall -Wextra -Werror` through the pkg-config file and run on the
//! committed fixtures, and the ATF tests (tests/c/t_kvm.c) under kyua,
//! built with AddressSanitizer and UBSan against libkvm.a. A missing C
//! compiler, pkg-config, ATF or kyua fails these tests: `cargo xtask capi`
//! installs them.

use kvm::capi::{self, KinfoFile, KinfoProc, KvmNlist, KvmPage, Nlist};
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const SETS: [&str; 2] = ["amd64-kaslr", "arm64-kaslr"];

/// Where cargo puts libkvm.so, libkvm.a and the kvm binary; the
/// libraries are built (with `capi`, in this test's profile) on first
/// call: cargo builds only the rlib for a test.
fn lib_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_BIN_EXE_kvm")).parent().unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut c = Command::new(cargo);
        c.args(["build", "-p", "kvm", "--lib", "--features", "capi"]);
        if dir.ends_with("release") {
            c.arg("--release");
        }
        run(c.current_dir(manifest()));
        // The name programs linked with -lkvm ask the loader for (its
        // SONAME, see build.rs), next to the library, as an installation
        // makes it.
        let soname = dir.join(SONAME);
        let _ = std::fs::remove_file(&soname);
        std::os::unix::fs::symlink("libkvm.so", &soname).unwrap();
        dir.to_path_buf()
    })
}

/// The C library's SONAME.
const SONAME: &str = "libkvm.so.0";

/// `readelf -d` of `file`: its dynamic section.
fn dynamic(file: &Path) -> String {
    let out = run(Command::new("readelf").arg("-d").arg(file));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_library_has_its_soname_and_programs_need_it() {
    let lib = dynamic(&lib_dir().join("libkvm.so"));
    assert!(
        lib.contains(&format!("(SONAME)             Library soname: [{SONAME}]")),
        "{lib}"
    );
    let dir = work("soname");
    build_examples(&dir);
    let ps = dynamic(&dir.join("ps"));
    assert!(
        ps.contains(&format!("(NEEDED)             Shared library: [{SONAME}]")),
        "{ps}"
    );
}

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(set: &str) -> PathBuf {
    manifest()
        .join("tests/data")
        .join(set)
        .join("vmcore.kdump.xz")
}

/// A fresh directory for one test's outputs.
fn work(name: &str) -> PathBuf {
    let d = lib_dir().join("capi-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(c: &mut Command) -> Output {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e} (cargo xtask capi installs it)"));
    assert!(
        out.status.success(),
        "{c:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The installed layout pkg-config describes: `include/kvm/{kvm,nlist}.h`
/// and `lib/pkgconfig/kvm.pc` under `prefix`, the libraries in cargo's
/// directory.
fn install(prefix: &Path) -> PathBuf {
    let inc = prefix.join("include/kvm");
    std::fs::create_dir_all(&inc).unwrap();
    for h in ["kvm.h", "nlist.h"] {
        std::fs::copy(manifest().join("include").join(h), inc.join(h)).unwrap();
    }
    let pc_dir = prefix.join("lib/pkgconfig");
    std::fs::create_dir_all(&pc_dir).unwrap();
    let pc = std::fs::read_to_string(manifest().join("include/kvm.pc.in"))
        .unwrap()
        .replace("@PREFIX@", prefix.to_str().unwrap())
        .replace("@LIBDIR@", lib_dir().to_str().unwrap())
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    std::fs::write(pc_dir.join("kvm.pc"), pc).unwrap();
    pc_dir
}

fn pkg_config(pc_dir: &Path, args: &[&str]) -> Vec<String> {
    let out = run(Command::new("pkg-config")
        .args(args)
        .arg("kvm")
        .env("PKG_CONFIG_PATH", pc_dir));
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// AddressSanitizer (with LeakSanitizer) and UBSan, every report fatal.
const SANITIZE: &[&str] = &[
    "-g",
    "-O1",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];

/// What linking libkvm.a needs besides it (`Libs.private`).
fn static_libs(pc_dir: &Path) -> Vec<String> {
    pkg_config(pc_dir, &["--static", "--libs-only-l"])
        .into_iter()
        .filter(|l| l != "-lkvm")
        .collect()
}

const CFLAGS: &[&str] = &[
    "-std=c11",
    "-D_POSIX_C_SOURCE=200809L",
    "-Wall",
    "-Wextra",
    "-Werror",
];

#[test]
fn header_structs_match_the_rust_definitions() {
    let dir = work("layout");
    let pc = install(&dir);
    // The C side prints every size and offset; the Rust side is below.
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <kvm.h>\nint main(void) {\n",
    );
    let mut want = String::new();
    macro_rules! check {
        ($cty:literal, $rty:ty, [$($f:ident),*]) => {
            c.push_str(&format!("printf(\"{} %zu\\n\", sizeof({}));\n", $cty, $cty));
            want.push_str(&format!("{} {}\n", $cty, size_of::<$rty>()));
            $(
                c.push_str(&format!(
                    "printf(\"{}.{} %zu\\n\", offsetof({}, {}));\n",
                    $cty, stringify!($f), $cty, stringify!($f)
                ));
                want.push_str(&format!("{}.{} {}\n", $cty, stringify!($f), offset_of!($rty, $f)));
            )*
        };
    }
    check!(
        "struct nlist",
        Nlist,
        [n_name, n_type, n_other, n_desc, n_value]
    );
    check!("struct kvm_nlist", KvmNlist, [n_name, n_type, n_value]);
    check!(
        "struct kvm_page",
        KvmPage,
        [
            kp_version,
            kp_paddr,
            kp_kmap_vaddr,
            kp_dmap_vaddr,
            kp_prot,
            kp_offset,
            kp_len
        ]
    );
    check!(
        "struct kinfo_file",
        KinfoFile,
        [
            f_fileaddr,
            f_offset,
            va_fileid,
            f_flag,
            f_type,
            va_mode,
            p_pid,
            fd_fd,
            fd_ofileflags,
            p_uid,
            p_gid,
            f_kvm_pathlen,
            p_comm,
            f_kvm_pad,
            f_kvm_path
        ]
    );
    check!(
        "struct kinfo_proc",
        KinfoProc,
        [
            p_paddr,
            p_cpuid,
            p_ustart_sec,
            p_ustart_usec,
            p_pid,
            p_ppid,
            p_sid,
            p__pgid,
            p_tid,
            p_uid,
            p_ruid,
            p_gid,
            p_rgid,
            p_tdev,
            p_vm_rssize,
            p_flag,
            p_kvm_valid,
            p_kvm_nthreads,
            p_stat,
            p_kvm_state,
            p_comm,
            p_kvm_pad
        ]
    );
    // And every constant the library also defines.
    macro_rules! constant {
        ($($name:ident),*) => {$(
            c.push_str(&format!(
                "printf(\"{} %lld\\n\", (long long){});\n",
                stringify!($name), stringify!($name)
            ));
            want.push_str(&format!("{} {}\n", stringify!($name), i64::from(capi::$name)));
        )*};
    }
    constant!(
        KERN_PROC_ALL,
        KERN_PROC_PID,
        KERN_PROC_PGRP,
        KERN_PROC_SESSION,
        KERN_PROC_TTY,
        KERN_PROC_UID,
        KERN_PROC_RUID,
        KERN_PROC_KTHREAD,
        KERN_PROC_SHOW_THREADS,
        SRUN,
        SSLEEP,
        SSTOP,
        SZOMB,
        SDEAD,
        SONPROC,
        P_SYSTEM,
        PS_SYSTEM,
        KI_NODEV,
        KVM_KI_PPID,
        KVM_KI_PGID,
        KVM_KI_SID,
        KVM_KI_UID,
        KVM_KI_GID,
        KVM_KI_STAT,
        KVM_KI_TDEV,
        KVM_KI_USTART,
        KVM_KI_RSS,
        KVM_KI_FLAG,
        KVM_KI_CPUID,
        N_EXT,
        N_ABS,
        N_TEXT,
        N_DATA,
        N_BSS,
        LIBKVM_WALK_PAGES_VERSION
    );
    // An unsigned literal in C, an int's bits in Rust (flags are ints).
    c.push_str("printf(\"KVM_NO_FILES %u\\n\", (unsigned)KVM_NO_FILES);\n");
    want.push_str(&format!("KVM_NO_FILES {}\n", capi::KVM_NO_FILES as u32));
    c.push_str("printf(\"KI_MAXCOMLEN %d\\n\", KI_MAXCOMLEN);\n");
    want.push_str(&format!("KI_MAXCOMLEN {}\n", capi::KI_MAXCOMLEN));
    c.push_str("printf(\"ERRBUF %d\\n\", _POSIX2_LINE_MAX);\n");
    want.push_str(&format!("ERRBUF {}\n", capi::ERRBUF_LEN));
    c.push_str("return 0;\n}\n");
    let src = dir.join("layout.c");
    std::fs::write(&src, c).unwrap();
    let exe = dir.join("layout");
    run(Command::new("cc")
        .args(CFLAGS)
        .args(pkg_config(&pc, &["--cflags"]))
        .arg(&src)
        .arg("-o")
        .arg(&exe));
    let got = String::from_utf8(run(&mut Command::new(&exe)).stdout).unwrap();
    assert_eq!(got, want);
    // No padding the header leaves implicit in kinfo_proc.
    assert_eq!(size_of::<KinfoProc>(), 120);
}

/// `kvm ps --json` of `core` as the C ps example prints it.
fn ps_as_the_example_prints(core: &Path) -> String {
    let out = run(Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(["ps", "--json", "-M"])
        .arg(core));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let field = |x: &serde_json::Value| match x {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut s = String::from("PID PPID UID S COMM ARGS\n");
    for p in v.as_array().unwrap() {
        s.push_str(&format!(
            "{} {} {} {} {}",
            p["pid"],
            field(&p["ppid"]),
            field(&p["uid"]),
            field(&p["state"]),
            p["comm"].as_str().unwrap()
        ));
        match p["argv"].as_array() {
            Some(a) => a
                .iter()
                .for_each(|x| s.push_str(&format!(" {}", x.as_str().unwrap()))),
            None => s.push_str(" -"),
        }
        s.push('\n');
    }
    s
}

/// The C examples (`examples/c/NAME.c`).
const EXAMPLES: [&str; 3] = ["ps", "dmesg", "fstat"];

#[test]
fn c_examples_build_with_werror_and_ps_equals_kvm_ps() {
    let dir = work("examples");
    build_examples(&dir);
    for set in SETS {
        let out = run(Command::new(dir.join("ps"))
            .arg("-M")
            .arg(fixture(set))
            .env("LD_LIBRARY_PATH", lib_dir()));
        // The example prints argv as kvm_getargv returns it: the bytes
        // the process holds (a 0xff in the fixture's kvm-odd-bytes),
        // where `kvm ps --json` has text (U+FFFD).
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got, ps_as_the_example_prints(&fixture(set)), "{set}");
        assert!(
            out.stdout.windows(7).any(|w| w == b"bad-\xff-b"),
            "{set}: the raw byte"
        );
        assert!(got.lines().count() > 60, "{set}");
    }
    // The same under the sanitizers, linked with libkvm.a.
    let pc = dir.join("lib/pkgconfig");
    run(Command::new("cc")
        .args(CFLAGS)
        .args(SANITIZE)
        .args(pkg_config(&pc, &["--cflags"]))
        .arg(manifest().join("examples/c/ps.c"))
        .arg(lib_dir().join("libkvm.a"))
        .args(static_libs(&pc))
        .arg("-o")
        .arg(dir.join("ps-san")));
    for set in SETS {
        let plain = run(Command::new(dir.join("ps"))
            .arg("-M")
            .arg(fixture(set))
            .env("LD_LIBRARY_PATH", lib_dir()));
        let san = run(Command::new(dir.join("ps-san")).arg("-M").arg(fixture(set)));
        assert_eq!(plain.stdout, san.stdout, "{set}");
        assert!(
            san.stderr.is_empty(),
            "{set}: {}",
            String::from_utf8_lossy(&san.stderr)
        );
    }
    // A failure is a message and status 1.
    let out = Command::new(dir.join("ps"))
        .args(["-M", "/nonexistent/vmcore"])
        .env("LD_LIBRARY_PATH", lib_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("ps: /nonexistent/vmcore: "));
}

/// The C examples built as [`c_examples_build_with_werror_and_ps_equals_kvm_ps`]
/// builds them, into `dir`.
fn build_examples(dir: &Path) {
    let pc = install(dir);
    let cflags = pkg_config(&pc, &["--cflags"]);
    let libs = pkg_config(&pc, &["--libs"]);
    for ex in EXAMPLES {
        run(Command::new("cc")
            .args(CFLAGS)
            .args(&cflags)
            .arg(manifest().join("examples/c").join(format!("{ex}.c")))
            .args(&libs)
            .arg("-o")
            .arg(dir.join(ex)));
    }
}

/// The lab's complete sets (`cargo xtask fixtures`; `$KVM_LAB_DIR`, else
/// `~/.cache/kvm-lab`).
#[cfg(feature = "lab")]
fn lab_sets() -> Vec<PathBuf> {
    let lab = std::env::var_os("KVM_LAB_DIR").map_or_else(
        || Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/kvm-lab"),
        PathBuf::from,
    );
    let mut sets: Vec<PathBuf> = std::fs::read_dir(lab.join("sets"))
        .expect("the lab: run `cargo xtask fixtures`")
        .map(|e| e.unwrap().path())
        .filter(|d| d.join(".complete").exists())
        .collect();
    sets.sort();
    sets
}

/// The text of a kernel line of a console log or dmesg output
/// (`[    1.234567] text`), `None` for other lines.
#[cfg(feature = "lab")]
fn kernel_text(line: &str) -> Option<&str> {
    let (t, text) = line.strip_prefix('[')?.split_once("] ")?;
    let stamp = t.len() >= 8
        && t.trim_start()
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
    stamp.then_some(text)
}

/// The C dmesg (kvm_nlist and kvm_read only) on every lab set of both
/// arches: its output holds every kernel line the guest printed on its
/// console, in order (the console shows all but debug records until the
/// workload lowers the level); where makedumpfile wrote the dumps (amd64),
/// it equals `makedumpfile --dump-dmesg` byte for byte, from the whole ELF
/// The C fstat (kvm_getfiles) against the guest's own /proc/PID/fd and
/// fdinfo, for every user process of every lab set (init left out: its
/// descriptors change between the capture and the stop).
#[cfg(feature = "lab")]
#[test]
fn lab_fstat_example_equals_proc_fd() {
    let dir = work("lab-fstat");
    build_examples(&dir);
    let mut checked = 0;
    for set in lab_sets() {
        let out = run(Command::new(dir.join("fstat"))
            .arg("-M")
            .arg(set.join("vmcore.elf"))
            .env("LD_LIBRARY_PATH", lib_dir()));
        let mut got: std::collections::BTreeMap<u64, Vec<serde_json::Value>> = Default::default();
        for l in String::from_utf8(out.stdout).unwrap().lines() {
            let f: Vec<&str> = l.splitn(8, '\t').collect();
            let [pid, _comm, fd, _type, _ino, flags, pos, path] = f[..] else {
                panic!("{set:?}: bad fstat line {l:?}");
            };
            let cloexec = fd.ends_with('e');
            let mut flags = u32::from_str_radix(flags.trim_start_matches('0'), 8).unwrap_or(0);
            if cloexec {
                flags |= 0o2000000; // O_CLOEXEC, as fdinfo shows it
            }
            got.entry(pid.parse().unwrap())
                .or_default()
                .push(serde_json::json!({
                    "fd": fd.trim_end_matches('e').parse::<u64>().unwrap(),
                    "path": path,
                    "pos": pos.parse::<u64>().unwrap(),
                    "flags": format!("0{flags:o}"),
                }));
        }
        let truth: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(set.join("truth.json")).unwrap())
                .unwrap();
        for p in truth["processes"].as_array().unwrap() {
            if p["kthread"] == true || p["state"] == "Z" || p["pid"] == 1 {
                continue;
            }
            let want = p["fds"]
                .as_array()
                .expect("truth.json has fds (run `cargo xtask fixtures`)");
            let pid = p["pid"].as_u64().unwrap();
            assert_eq!(
                got.get(&pid).cloned().unwrap_or_default(),
                *want,
                "{set:?}: pid {pid}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} processes compared");
    eprintln!("fstat (kvm_getfiles): the descriptors of {checked} processes equal /proc");
}

/// dump and from the `-d 31` one (the log is never filtered out).
#[cfg(feature = "lab")]
#[test]
fn lab_dmesg_example_equals_the_kernel_log() {
    let dir = work("lab-dmesg");
    build_examples(&dir);
    let (mut arches, mut peer_checked) = (std::collections::BTreeSet::new(), 0);
    for set in lab_sets() {
        let dmesg = |dump: &str| {
            let out = run(Command::new(dir.join("dmesg"))
                .arg("-M")
                .arg(set.join(dump))
                .env("LD_LIBRARY_PATH", lib_dir()));
            String::from_utf8(out.stdout).unwrap()
        };
        let ours = dmesg("vmcore.elf");
        let console = std::fs::read_to_string(set.join("console.log")).unwrap();
        // The console prints each line of a record with its own stamp;
        // dmesg indents a record's further lines under the first.
        let mut indent = 0;
        let mut lines = ours.lines().map(|l| match kernel_text(l) {
            Some(text) => {
                indent = l.len() - text.len();
                text
            }
            None => l.get(indent..).unwrap_or(""),
        });
        let mut seen = 0;
        // The console up to the ready line: vmcore.elf was taken then (the
        // panic the panic dumps hold came later).
        let before_dump = console
            .lines()
            .take_while(|l| !l.starts_with("KVM-LAB-READY"));
        for want in before_dump.filter_map(kernel_text) {
            assert!(
                lines.any(|l| l == want),
                "{set:?}: console line not in the C dmesg's output (or out of order): {want}"
            );
            seen += 1;
        }
        assert!(seen > 100, "{set:?}: {seen} console lines");
        let truth: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(set.join("truth.json")).unwrap())
                .unwrap();
        arches.insert(truth["arch"].as_str().unwrap().to_owned());
        eprintln!(
            "{}: {seen} console lines found in order among {}",
            set.display(),
            ours.lines().count()
        );
        // makedumpfile reads its own dumps (not QEMU's ELF); the lab makes
        // them where the host can (amd64).
        if !set.join("vmcore.makedumpfile-lzo").exists() {
            continue;
        }
        let want = dir.join("want.txt");
        let _ = std::fs::remove_file(&want);
        run(Command::new("makedumpfile")
            .arg("--dump-dmesg")
            .arg(set.join("vmcore.makedumpfile-lzo"))
            .arg(&want));
        let want = std::fs::read_to_string(&want).unwrap();
        assert!(
            ours == want,
            "{set:?}: the C dmesg differs from makedumpfile"
        );
        assert!(
            dmesg("vmcore.makedumpfile-zlib-d31") == want,
            "{set:?}: -d 31"
        );
        eprintln!(
            "{}: equal to makedumpfile --dump-dmesg ({} lines)",
            set.display(),
            want.lines().count()
        );
        peer_checked += 1;
    }
    assert!(arches.len() >= 2, "{arches:?}");
    assert!(peer_checked >= 1);
}

/// `s` with `%`, tab, newline and `\x1f` as `%XX` (t_kvm.c's `escaped`).
fn escaped(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '%' | '\t' | '\n' | '\x1f' => out.push_str(&format!("%{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The truth of `set` as the ATF tests read it (see tests/c/t_kvm.c).
fn truth_tsv(set: &str) -> String {
    let text = std::fs::read_to_string(manifest().join("tests/data").join(set).join("truth.json"))
        .unwrap();
    let t: serde_json::Value = serde_json::from_str(&text).unwrap();
    let l = t["loadavg"].as_array().unwrap();
    let mut s = format!("loadavg {} {} {}\n", l[0], l[1], l[2]);
    let list = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| escaped(x.as_str().unwrap()))
                    .collect::<Vec<_>>()
                    .join("\x1f")
            })
            .unwrap_or_default()
    };
    for p in t["processes"].as_array().unwrap() {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            p["pid"],
            p["ppid"],
            p["uid"],
            p["gid"],
            p["state"].as_str().unwrap(),
            u8::from(p["kthread"] == true),
            p["comm"].as_str().unwrap(),
            list(&p["argv"]),
            list(&p["envv"])
        ));
    }
    s
}

#[test]
fn atf_tests_pass_under_asan_and_ubsan() {
    let dir = work("atf");
    let pc = install(&dir);
    for set in SETS {
        std::fs::write(dir.join(format!("{set}.tsv")), truth_tsv(set)).unwrap();
    }
    // Static: the sanitizers see every allocation of the library too.
    run(Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .args(SANITIZE)
        .args(pkg_config(&pc, &["--cflags"]))
        .arg(manifest().join("tests/c/t_kvm.c"))
        .arg(lib_dir().join("libkvm.a"))
        .arg("-latf-c")
        .args(static_libs(&pc))
        .arg("-o")
        .arg(dir.join("t_kvm")));
    std::fs::write(
        dir.join("Kyuafile"),
        "syntax(2)\ntest_suite('kvm')\natf_test_program{name='t_kvm'}\n",
    )
    .unwrap();
    // libatf-c leaks its own test-case list; every other leak counts.
    let suppressions = dir.join("lsan.supp");
    std::fs::write(&suppressions, "leak:libatf-c.so\n").unwrap();
    let results = dir.join("results.db");
    let data = format!(
        "test_suites.kvm.data={}",
        manifest().join("tests/data").display()
    );
    let truth = format!("test_suites.kvm.truth={}", dir.display());
    let test = Command::new("kyua")
        .arg("--variable")
        .arg(&data)
        .arg("--variable")
        .arg(&truth)
        .arg("test")
        .arg("--kyuafile")
        .arg(dir.join("Kyuafile"))
        .arg("--results-file")
        .arg(&results)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        .env(
            "LSAN_OPTIONS",
            format!(
                "suppressions={}:print_suppressions=0",
                suppressions.display()
            ),
        )
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .expect("kyua (cargo xtask capi installs it)");
    let summary = String::from_utf8_lossy(&test.stdout).into_owned();
    eprintln!("{summary}");
    if !test.status.success() {
        let report = Command::new("kyua")
            .args(["report", "--verbose", "--results-file"])
            .arg(&results)
            .output()
            .unwrap();
        panic!(
            "kyua test failed:\n{summary}\n{}",
            String::from_utf8_lossy(&report.stdout)
        );
    }
    // Every test case ran and passed: kyua's "N/N passed (0 failed)",
    // none skipped.
    let line = summary
        .lines()
        .find(|l| l.contains(" passed ("))
        .unwrap_or("");
    let (passed, total) = line
        .split_once(' ')
        .and_then(|(n, _)| n.split_once('/'))
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .unwrap_or_else(|| panic!("no kyua summary in:\n{summary}"));
    assert_eq!(passed, total, "{summary}");
    assert!(passed >= 29, "{summary}");
    assert!(!summary.contains("->  skipped"), "{summary}");
}
