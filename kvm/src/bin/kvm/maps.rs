//! `kvm maps`: a process's memory map, as `/proc/PID/maps` prints it, or
//! as JSON.

use crate::escape::printable;
use crate::{Result, Source};
use kvm::ProcOp;
use std::io::Write;

// Its help is the doc comment of `Cmd::Maps`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: Source,
    /// The process.
    #[arg(long, value_name = "PID")]
    pid: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result {
    let kvm = a.src.open()?;
    let p = kvm
        .getprocs(ProcOp::Pid(a.pid))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no process {} in the dump", a.pid))?;
    let maps = kvm.maps(&p)?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.json {
        let v: Vec<serde_json::Value> = maps
            .iter()
            .map(|m| {
                let perms: String = [
                    if m.read { 'r' } else { '-' },
                    if m.write { 'w' } else { '-' },
                    if m.exec { 'x' } else { '-' },
                    if m.shared { 's' } else { 'p' },
                ]
                .iter()
                .collect();
                serde_json::json!({
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
        for m in &maps {
            writeln!(
                out,
                "{}",
                printable(&String::from_utf8_lossy(&m.proc_line()))
            )?;
        }
    }
    Ok(())
}
