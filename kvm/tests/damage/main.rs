//! The damage sweep (issue 16): every committed fixture, in every format
//! it comes in or `kvm convert` writes from it, cut at every header and
//! table boundary and at every 4 KiB of its first 64 KiB, and with every
//! byte of its headers flipped, one at a time. Each damaged file is
//! opened and listed as `kvm ps` lists it (processes, argv, environment)
//! and must give one of three answers:
//!
//! - an error;
//! - a listing flagged as damaged (the dump says it is incomplete, which
//!   every command warns of, or a process is marked unavailable, which
//!   makes `ps` exit 1);
//! - a listing that is the intact dump's except for fields it says it
//!   lacks (argv, environment, RSS… unavailable);
//! - exactly the intact dump's listing.
//!
//! Never a panic, never a hang (60 s per variant), never a listing that
//! differs from the intact dump's in silence; and the whole sweep's peak
//! RSS stays at most 64 MiB. Built with `--features sweep` and run in
//! release by `cargo xtask damage` (a CI step): thousands of opens.

mod layout;
#[path = "../common/sparse.rs"]
mod sparse;

use kvm::{Kvm, ProcOp};
use layout::{spots, Kind};
use sparse::sparse_copy;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest a variant may take before the sweep calls it a hang.
const HANG: Duration = Duration::from_secs(60);
/// Peak RSS allowed for the whole sweep.
const MAX_RSS_KIB: u64 = 64 << 10;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn work() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("damage");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One fixture to damage.
struct Fixture {
    name: String,
    path: PathBuf,
    kind: Kind,
    /// The kernel file (`-N`) where the dump alone gives no symbols.
    kernel: Option<PathBuf>,
}

/// Every committed fixture format: the Linux kdumps (`.xz` as committed,
/// and unpacked), what `kvm convert` writes from them, the real FreeBSD
/// dumps and the LiME slice.
fn fixtures() -> Vec<Fixture> {
    let w = work();
    let mut out = Vec::new();
    let fx = |name: &str, path: PathBuf, kind, kernel: Option<PathBuf>| Fixture {
        name: name.to_string(),
        path,
        kind,
        kernel,
    };
    for set in ["amd64-kaslr", "arm64-kaslr"] {
        let xz = data(&format!("kvm/tests/data/{set}/vmcore.kdump.xz"));
        out.push(fx(&format!("{set}.kdump.xz"), xz.clone(), Kind::Xz, None));
        let kdump = w.join(format!("{set}.kdump"));
        let mut bytes = Vec::new();
        lzma_rs::xz_decompress(
            &mut std::io::BufReader::new(File::open(&xz).unwrap()),
            &mut bytes,
        )
        .unwrap();
        std::fs::write(&kdump, &bytes).unwrap();
        drop(bytes);
        out.push(fx(
            &format!("{set}.kdump-zlib"),
            kdump.clone(),
            Kind::Kdump,
            None,
        ));
        let kd = Kvm::open_dump(&kdump).unwrap();
        use kvm::convert::{convert, Keep, Target};
        use kvm_core_file::codec::Compression as C;
        let kdump_to = |compression, flat| Target::Kdump { compression, flat };
        let mut targets = vec![
            ("elf", Target::Elf, Kind::Elf),
            ("lime", Target::Lime, Kind::Lime),
            ("kdump-zstd", kdump_to(C::Zstd, false), Kind::Kdump),
            ("kdump-snappy", kdump_to(C::Snappy, false), Kind::Kdump),
            ("kdump-lzo.flat", kdump_to(C::Lzo, true), Kind::Flat),
        ];
        if set.starts_with("amd64") {
            targets.push(("openbsd", Target::OpenBsd, Kind::OpenBsd));
        }
        for (ext, to, kind) in targets {
            let p = w.join(format!("{set}.{ext}"));
            convert(&kd, to, &Keep::default(), &p, None).unwrap();
            out.push(fx(&format!("{set}.{ext}"), p, kind, None));
        }
    }
    let bsd = data("kvm-core-file/tests/data/freebsd");
    for (name, kind, arch) in [
        ("vmcore-amd64-full", Kind::Elf, "amd64"),
        ("vmcore-amd64-minidump", Kind::Minidump, "amd64"),
        ("vmcore-arm64-minidump", Kind::Minidump, "arm64"),
    ] {
        let p = w.join(name);
        let f = File::open(bsd.join(format!("{name}.bz2"))).unwrap();
        sparse_copy(bzip2::read::BzDecoder::new(f), &p);
        let k = w.join(format!("kernel-{arch}.elf"));
        let f = File::open(data(&format!("kvm-elf/tests/data/kernel-{arch}.elf.gz"))).unwrap();
        sparse_copy(flate2::read::GzDecoder::new(f), &k);
        out.push(fx(name, p, kind, Some(k)));
    }
    let lime = data("kvm-core-file/tests/data/lime/deb-x86_64-slice.lime");
    out.push(fx("deb-x86_64-slice.lime", lime, Kind::Lime, None));
    out
}

/// One process as `kvm ps` shows it, argv and environment included:
/// each field `None` where unavailable (the whole process `None` when it
/// could not be read).
#[derive(Debug, PartialEq)]
struct Proc {
    pid: u32,
    fields: Option<Vec<(&'static str, Option<String>)>>,
}

/// The fields of `p` that `ps` shows, threads included.
fn fields(p: &kvm::Process) -> Vec<(&'static str, Option<String>)> {
    fn s<T: std::fmt::Debug>(v: &Option<T>) -> Option<String> {
        v.as_ref().map(|v| format!("{v:?}"))
    }
    let mut f = vec![
        ("ppid", s(&p.ppid)),
        ("pgrp", s(&p.pgrp)),
        ("session", s(&p.session)),
        ("uid", s(&p.uid)),
        ("gid", s(&p.gid)),
        ("euid", s(&p.euid)),
        ("egid", s(&p.egid)),
        ("state", s(&p.state)),
        ("comm", Some(p.comm.clone())),
        ("kthread", s(&p.kthread)),
        ("tty_nr", s(&p.tty_nr)),
        ("tty", s(&p.tty)),
        ("start", s(&p.start_time_ns)),
        ("rss", s(&p.rss_pages)),
        ("vsize", s(&p.vsize_pages)),
        ("task", Some(format!("{:#x}", p.task))),
        ("threads", Some(p.threads.len().to_string())),
    ];
    for t in &p.threads {
        f.extend([
            ("tid", Some(t.tid.to_string())),
            ("thread task", Some(format!("{:#x}", t.task))),
            ("thread name", Some(t.name.clone())),
            ("thread state", s(&t.state)),
            ("thread cpu", s(&t.cpu)),
            ("oncpu", Some(t.oncpu.to_string())),
            ("crashed", s(&t.crashed)),
            ("registers", s(&t.registers)),
        ]);
    }
    f
}

/// What a (damaged) dump gives.
#[derive(Debug)]
enum Answer {
    Error(String),
    Listed { procs: Vec<Proc>, flagged: bool },
}

fn answer(path: &Path, kernel: Option<&Path>) -> Answer {
    let kd = match Kvm::open_dump(path) {
        Ok(kd) => kd,
        Err(e) => return Answer::Error(e.to_string()),
    };
    if let Some(k) = kernel {
        if let Err(e) = kd.set_kernel_file(k) {
            return Answer::Error(e.to_string());
        }
    }
    let procs = match kd.getprocs(ProcOp::All) {
        Ok(p) => p,
        Err(e) => return Answer::Error(e.to_string()),
    };
    let flagged = kd.info().incomplete || procs.iter().any(|p| p.unavailable.is_some());
    let procs = procs
        .iter()
        .map(|p| Proc {
            pid: p.pid,
            fields: p.unavailable.is_none().then(|| {
                let mut f = fields(p);
                f.push(("argv", kd.getargv(p).ok().map(|v| format!("{v:?}"))));
                f.push(("envv", kd.getenvv(p).ok().map(|v| format!("{v:?}"))));
                f
            }),
        })
        .collect();
    Answer::Listed { procs, flagged }
}

/// The verdict on `got` against the intact dump's `base`: `Ok(kind)`
/// (`"error"`, `"flagged"`, `"same"`) or `Err(why it misleads)`.
fn judge(base: &Answer, got: &Answer) -> Result<&'static str, String> {
    let (base, (procs, flagged)) = match (base, got) {
        (_, Answer::Error(_)) => return Ok("error"),
        (Answer::Error(_), Answer::Listed { .. }) => {
            return Err("lists processes where the intact dump gives an error".into())
        }
        (Answer::Listed { procs: b, .. }, Answer::Listed { procs, flagged }) => {
            (b, (procs, flagged))
        }
    };
    // A dump that says it is damaged (incomplete: every command warns;
    // a process unavailable: ps exits 1) is not silent, whatever it
    // then lists.
    if *flagged {
        return Ok("flagged");
    }
    let mut less = false;
    let mut seen = std::collections::BTreeSet::new();
    for p in procs {
        if p.fields.is_none() {
            less = true;
            continue;
        }
        let Some(b) = base.iter().find(|b| b.pid == p.pid) else {
            return Err(format!("pid {} is not in the intact dump", p.pid));
        };
        seen.insert(p.pid);
        let (Some(got), Some(want)) = (&p.fields, &b.fields) else {
            return Err(format!("pid {} read where the intact dump cannot", p.pid));
        };
        if got.len() != want.len() {
            return Err(format!("pid {}: other threads", p.pid));
        }
        for ((name, g), (_, w)) in got.iter().zip(want) {
            match (g, w) {
                (Some(g), Some(w)) if g != w => {
                    return Err(format!("pid {}: {name} {g} instead of {w}", p.pid))
                }
                (Some(g), None) => {
                    return Err(format!(
                        "pid {}: {name} {g} where the intact dump has none",
                        p.pid
                    ))
                }
                (None, Some(_)) => less = true,
                _ => {}
            }
        }
    }
    let missing = base.iter().filter(|b| !seen.contains(&b.pid)).count();
    match (missing, less) {
        (0, false) => Ok("same"),
        (_, true) => Ok("flagged"),
        (n, false) => Err(format!("{n} processes missing, and nothing says so")),
    }
}

/// Runs `answer` on a thread of its own: a panic or a hang is the
/// variant's failure, not the sweep's end.
fn guarded(path: &Path, kernel: Option<&Path>) -> Result<Answer, String> {
    let (tx, rx) = mpsc::channel();
    let (p, k) = (path.to_path_buf(), kernel.map(Path::to_path_buf));
    std::thread::spawn(move || {
        let _ = tx.send(answer(&p, k.as_deref()));
    });
    match rx.recv_timeout(HANG) {
        Ok(a) => Ok(a),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("hangs (over {HANG:?})")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("panics".into()),
    }
}

/// Starts this process's peak RSS afresh: the heap earlier variants
/// freed is given back (`malloc_trim`: else it stays resident and counts
/// against every later one), then `clear_refs` 5 resets VmHWM to the
/// current RSS.
#[allow(unsafe_code)] // one libc call, no pointers
fn reset_peak_rss() {
    // SAFETY: malloc_trim only returns free heap memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").expect("/proc/self/clear_refs");
}

/// Peak RSS of this process since the last reset (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
fn damaged_dumps_error_or_say_so_and_never_mislead() {
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut report = Vec::new();
    // The variant with the highest peak RSS, and that peak (KiB).
    let mut worst = (0u64, String::new());
    for fx in fixtures() {
        let kernel = fx.kernel.as_deref();
        let base = guarded(&fx.path, kernel).expect("the intact fixture");
        let len = std::fs::metadata(&fx.path).unwrap().len();
        // All of it, or the first MiB of a large sparse dump (the
        // FreeBSD ones: their headers and tables are there).
        let mut head = vec![0u8; len.min(if len <= 16 << 20 { len } else { 1 << 20 }) as usize];
        File::open(&fx.path).unwrap().read_exact(&mut head).unwrap();
        let s = spots(fx.kind, &head, len);
        drop(head);
        let scratch = work().join(format!("scratch-{}", fx.name));
        sparse_copy(File::open(&fx.path).unwrap(), &scratch);
        let f = OpenOptions::new().write(true).open(&scratch).unwrap();
        let src = File::open(&fx.path).unwrap();
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        let mut check = |what: String| {
            reset_peak_rss();
            match guarded(&scratch, kernel) {
                Ok(got) => match judge(&base, &got) {
                    Ok(kind) => *counts.entry(kind).or_default() += 1,
                    Err(why) => failures.push(format!("{}: {what}: {why}", fx.name)),
                },
                Err(why) => failures.push(format!("{}: {what}: {why}", fx.name)),
            }
            let rss = peak_rss_kib();
            if rss > worst.0 {
                worst = (rss, format!("{}: {what}", fx.name));
            }
        };
        for r in &s.header {
            for off in r.clone() {
                let mut b = [0u8];
                src.read_exact_at(&mut b, off).unwrap();
                f.write_all_at(&[b[0] ^ 0xff], off).unwrap();
                check(format!("byte {off:#x} flipped"));
                f.write_all_at(&b, off).unwrap();
            }
        }
        for &cut in &s.cuts {
            f.set_len(cut).unwrap();
            check(format!("cut at {cut:#x} of {len:#x}"));
            // Put the tail back.
            let mut buf = vec![0u8; 1 << 20];
            let mut at = cut;
            while at < len {
                let n = src.read_at(&mut buf, at).unwrap();
                if buf[..n].iter().any(|&b| b != 0) {
                    f.write_all_at(&buf[..n], at).unwrap();
                }
                at += n as u64;
            }
            f.set_len(len).unwrap();
        }
        let base_kind = match &base {
            Answer::Error(e) => format!("intact: error ({e})"),
            Answer::Listed { procs, .. } => format!("intact: {} processes", procs.len()),
        };
        let flips: u64 = s.header.iter().map(|r| r.end - r.start).sum();
        report.push(format!(
            "{:<28} {flips:>5} flips, {:>3} cuts: {counts:?} ({base_kind})",
            fx.name,
            s.cuts.len()
        ));
        drop(f);
        let _ = std::fs::remove_file(&scratch);
    }
    for r in &report {
        eprintln!("{r}");
    }
    let (rss, at) = worst;
    eprintln!(
        "sweep: {:.1} s, {} failures; highest peak RSS {rss} KiB, at {at}",
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} variants mislead, panic or hang:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(rss <= MAX_RSS_KIB, "peak RSS {rss} KiB");
}
