//! `kvm files`: open files by process and descriptor (`kvm_getfiles`),
//! with the paths `/proc/PID/fd` links to and fdinfo's flags and
//! position, or as JSON.

use crate::escape::printable;
use crate::{per_process, Result, Source};
use std::io::Write;

// Its help is the doc comment of `Cmd::Files`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: Source,
    /// Only this process.
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result {
    let kvm = a.src.open()?;
    let (rows, failed) = per_process::rows(&kvm, a.pid, |p| kvm.getfiles(p))?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(pid, f)| {
                serde_json::json!({
                    "pid": pid,
                    "fd": f.fd,
                    "path": String::from_utf8_lossy(&f.path),
                    "flags": format!("0{:o}", f.flags),
                    "pos": f.pos,
                    "type": f.kind,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(
            out,
            "{:>7} {:>4} {:<10} {:>9} {:>10} PATH",
            "PID", "FD", "TYPE", "FLAGS", "POS"
        )?;
        for (pid, f) in &rows {
            writeln!(
                out,
                "{pid:>7} {:>4} {:<10} {:>9} {:>10} {}",
                f.fd,
                f.kind,
                format!("0{:o}", f.flags),
                f.pos,
                printable(&String::from_utf8_lossy(&f.path))
            )?;
        }
    }
    out.flush()?;
    per_process::done("open files", &failed)
}
