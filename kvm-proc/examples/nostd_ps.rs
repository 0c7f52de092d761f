//! `ps` from a Linux crash dump with the `no_std` crates only: the whole
//! pipeline — source over a byte slice → OS probe → paging → kallsyms →
//! BTF → tasks → argv — as a kernel debugger would embed it. Only this
//! `main` uses std, to read the file and print; every crate below runs
//! without std features (check with `cargo tree -p kvm-proc -e features`).
//!
//! Prints the same table as `kvm ps -M CORE` into a pipe (`cargo xtask
//! nostd` compares the two on the committed fixtures):
//!
//! ```sh
//! cargo run -p kvm-proc --example nostd_ps -- kvm/tests/data/amd64-kaslr/vmcore.kdump.xz
//! ```

use kvm_proc::{Machine, Os, Process, Strings};
use std::process::ExitCode;

/// The whole-file xz container's magic (the committed fixtures are
/// shipped compressed).
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: nostd_ps CORE");
        return ExitCode::FAILURE;
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nostd_ps: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str) -> Result<(), String> {
    let mut bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.starts_with(XZ_MAGIC) {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut &bytes[..], &mut out).map_err(|e| format!("xz: {e}"))?;
        bytes = out;
    }
    let lines = ps(bytes).map_err(|e| e.to_string())?;
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// The pipeline, no_std crates only: `kvm ps`'s lines for the dump in
/// `bytes`.
fn ps(bytes: Vec<u8>) -> Result<Vec<String>, Box<dyn core::fmt::Display>> {
    let boxed = |e: kvm_core::Error| Box::new(e) as Box<dyn core::fmt::Display>;
    // The source: the dump's format found from its content.
    let source = kvm_core_file::open(bytes).map_err(boxed)?;
    // The OS whose kernel it holds, and the kernel's page tables.
    let os: Box<dyn Os> = kvm_proc::probe(&*source).map_err(|e| Box::new(e) as _)?;
    let paging = os.kernel_paging(&*source).map_err(boxed)?;
    let m = Machine {
        source: &*source,
        // The format's own map where it has one, else the tables.
        kernel: match (source.translator(), &paging.paging) {
            (Some(t), _) => t,
            (None, Some(p)) => p,
            (None, None) => return Err(boxed(kvm_core::Error::Unsupported("no page-table root"))),
        },
        paging: paging.paging,
    };
    let page_kib = source.info().page_size.unwrap_or(4096) / 1024;
    let mut out = vec![format!(
        "{:>7} {:>7} {:>5} {:>5} {:<6} {:>8} S COMMAND",
        "PID", "PPID", "UID", "GID", "TT", "RSS"
    )];
    for p in os.processes(&m).map_err(boxed)? {
        let argv = os.argv(&m, &p).map_err(boxed)?;
        out.push(line(&p, argv, page_kib));
    }
    Ok(out)
}

/// One process as `kvm ps` prints it.
fn line(p: &Process, argv: Strings, page_kib: u64) -> String {
    let cmd = match argv {
        _ if p.kthread == Some(true) => format!("[{}]", p.comm),
        Strings::Read(v) if !v.is_empty() => String::from_utf8_lossy(&v.join(&b' ')).into_owned(),
        Strings::Read(_) => format!("[{}]", p.comm),
        Strings::Unavailable(_) => format!("({}) <argv unavailable>", p.comm),
    };
    let tt = p
        .tty
        .as_deref()
        .map(|t| t.strip_prefix("tty").unwrap_or(t))
        .unwrap_or("-");
    let rss = p
        .rss_pages
        .map_or("-".to_owned(), |r| (r * page_kib).to_string());
    format!(
        "{:>7} {:>7} {:>5} {:>5} {tt:<6} {rss:>8} {} {cmd}",
        p.pid,
        shown(p.ppid),
        shown(p.uid),
        shown(p.gid),
        shown(p.state)
    )
}

/// A field as `ps` shows it: `-` when unavailable.
fn shown<T: core::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
