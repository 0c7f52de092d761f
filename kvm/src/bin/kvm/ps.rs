//! `kvm ps`: processes (and threads) as BSD ps lists them, or as JSON.

use crate::util::terminal_width;
use crate::{Result, Source};
use kvm::{Kvm, Process};
use std::io::Write;

// Its help is the doc comment of `Cmd::Ps`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: Source,
    /// Include each process's threads.
    #[arg(long)]
    threads: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result {
    let kd = a.src.open()?;
    let procs = kd.getprocs(kvm::ProcOp::All)?;
    if a.json {
        json(&kd, &procs, a.threads)
    } else {
        human(&kd, &procs, a.threads)
    }
}

fn json(kd: &Kvm, procs: &[Process], threads: bool) -> Result {
    let strings = |r: std::result::Result<Vec<String>, kvm::Error>| match r {
        Ok(v) => serde_json::json!(v),
        Err(_) => serde_json::Value::Null, // unavailable: never guessed
    };
    let mut out = Vec::with_capacity(procs.len());
    for p in procs {
        let mut o = serde_json::json!({
            "pid": p.pid, "ppid": p.ppid, "pgrp": p.pgrp, "session": p.session,
            "uid": p.uid, "gid": p.gid, "euid": p.euid, "egid": p.egid,
            "state": p.state.to_string(), "comm": p.comm,
            "kthread": p.kthread,
            "argv": strings(kd.getargv(p)), "envv": strings(kd.getenvv(p)),
            "tty": p.tty, "tty_nr": p.tty_nr, "start_time_ns": p.start_time_ns,
            "rss_pages": p.rss_pages,
        });
        if threads {
            o["threads"] = p
                .threads
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "tid": t.tid, "name": t.name, "state": t.state.to_string(),
                        "oncpu": t.oncpu, "cpu": t.cpu,
                    })
                })
                .collect();
        }
        out.push(o);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn human(kd: &Kvm, procs: &[Process], threads: bool) -> Result {
    let page_kib = kd.info().page_size.unwrap_or(4096) / 1024;
    let width = terminal_width();
    let cut = |line: String| line.chars().take(width).collect::<String>();
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(
        out,
        "{:>7} {:>7} {:>5} {:>5} {:<6} {:>8} S COMMAND",
        "PID", "PPID", "UID", "GID", "TT", "RSS"
    )?;
    for p in procs {
        let cmd = if p.kthread {
            format!("[{}]", p.comm)
        } else {
            match kd.getargv(p) {
                Ok(v) if !v.is_empty() => v.join(" "),
                Ok(_) => format!("[{}]", p.comm),
                Err(_) => format!("({}) <argv unavailable>", p.comm),
            }
        };
        let tt = p
            .tty
            .as_deref()
            .map(|t| t.strip_prefix("tty").unwrap_or(t))
            .unwrap_or("-");
        // RSS in KiB, as BSD ps prints it.
        let rss = p
            .rss_pages
            .map_or("-".to_owned(), |r| (r * page_kib).to_string());
        let line = format!(
            "{:>7} {:>7} {:>5} {:>5} {tt:<6} {rss:>8} {} {cmd}",
            p.pid, p.ppid, p.uid, p.gid, p.state
        );
        writeln!(out, "{}", cut(line))?;
        if threads && p.threads.len() > 1 {
            for t in &p.threads {
                let line = format!(
                    "{:>7} {:>7} {:>5} {:>5} {:<6} {:>8} {}   {}",
                    t.tid, "", "", "", "", "", t.state, t.name
                );
                writeln!(out, "{}", cut(line))?;
            }
        }
    }
    Ok(())
}
