//! `kvm maps`: memory maps, as `/proc/PID/maps` prints them, or as JSON:
//! one process's (`--pid`), or every process's, each line with its pid.

use crate::escape::printable;
use crate::{per_process, Result, Source};
use std::io::Write;

// Its help is the doc comment of `Cmd::Maps`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: Source,
    /// Only this process (without it: every process, each line after its
    /// pid).
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result {
    let kvm = a.src.open()?;
    let (rows, failed) = per_process::rows(&kvm, a.pid, |p| kvm.maps(p))?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(pid, m)| {
                let perms: String = [
                    if m.read { 'r' } else { '-' },
                    if m.write { 'w' } else { '-' },
                    if m.exec { 'x' } else { '-' },
                    if m.shared { 's' } else { 'p' },
                ]
                .iter()
                .collect();
                serde_json::json!({
                    "pid": pid,
                    "start": format!("{:#x}", m.start),
                    "end": format!("{:#x}", m.end),
                    "perms": perms,
                    "offset": m.offset,
                    "dev": format!("{:02x}:{:02x}", m.major, m.minor),
                    "inode": m.inode,
                    "path": m.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()),
                    "line": String::from_utf8_lossy(&m.proc_line()),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for (pid, m) in &rows {
            let line = m.proc_line();
            let line = String::from_utf8_lossy(&line);
            let line = printable(&line);
            match a.pid {
                Some(_) => writeln!(out, "{line}")?,
                None => writeln!(out, "{pid:>7} {line}")?,
            }
        }
    }
    out.flush()?;
    per_process::done("maps", &failed)
}
