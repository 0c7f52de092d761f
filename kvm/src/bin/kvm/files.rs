//! `kvm files`: open files by process and descriptor (`kvm_getfiles`),
//! with the paths `/proc/PID/fd` links to and fdinfo's flags and
//! position, or as JSON.

use crate::escape::printable;
use crate::{Result, Source};
use kvm::ProcOp;
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
    let op = a.pid.map_or(ProcOp::All, ProcOp::Pid);
    let procs = kvm.getprocs(op)?;
    if let (Some(pid), true) = (a.pid, procs.is_empty()) {
        return Err(format!("no process {pid} in the dump").into());
    }
    // A process whose table cannot be read is said, the others listed.
    let (mut rows, mut failed) = (Vec::new(), Vec::new());
    for p in &procs {
        match kvm.getfiles(p) {
            Ok(files) => rows.extend(files.into_iter().map(|f| (p.pid, f))),
            Err(e) => failed.push(format!("pid {}: {e}", p.pid)),
        }
    }
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
    if !failed.is_empty() {
        return Err(format!(
            "the open files of {} processes could not be read ({})",
            failed.len(),
            failed.join("; ")
        )
        .into());
    }
    Ok(())
}
