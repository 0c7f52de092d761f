//! `kvm ps`: processes (and threads) as BSD ps lists them, or as JSON;
//! `-p`/`-U`/`-C` pick processes, `-o` columns, `--forest` the order
//! (`select.rs`, `columns.rs`).

mod columns;
mod select;

use crate::escape::printable;
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
    /// Show these processes (PID[,PID…]; repeatable). With -U and -C, a
    /// process is shown if any of them picks it.
    #[arg(short = 'p', value_name = "PIDS", value_parser = select::numbers)]
    pids: Vec<select::Numbers>,
    /// Show the processes of these real user ids (UID[,UID…]).
    #[arg(short = 'U', value_name = "UIDS", value_parser = select::numbers)]
    uids: Vec<select::Numbers>,
    /// Show the processes with this command name (the kernel's comm).
    #[arg(short = 'C', value_name = "COMM")]
    comms: Vec<String>,
    /// Columns to show: pid, ppid, pgid, sid, uid, gid, euid, tt, stat,
    /// rss, vsz, nlwp, task, wchan, comm, args (comma-separated).
    #[arg(short = 'o', value_name = "COLUMNS", value_parser = columns::parse)]
    columns: Option<columns::Columns>,
    /// Each process under its parent (the command indented as a tree).
    #[arg(long, short = 'f')]
    forest: bool,
    /// Wider lines: -w 132 columns, -ww as long as they are (else the
    /// terminal's width).
    #[arg(short = 'w', action = clap::ArgAction::Count)]
    wide: u8,
    /// Each process's environment after its command line.
    #[arg(short = 'e')]
    env: bool,
}

pub fn run(a: Args) -> Result {
    let kd = a.src.open()?;
    let sel = select::Select {
        pids: a.pids.into_iter().flat_map(|n| n.0).collect(),
        uids: a.uids.into_iter().flat_map(|n| n.0).collect(),
        comms: a.comms,
    };
    let mut procs = kd.getprocs(kvm::ProcOp::All)?;
    procs.retain(|p| sel.picks(p));
    // Tree order (and depth) for --forest, else the kernel's order.
    let order: Vec<(usize, usize)> = if a.forest {
        select::forest(&procs)
    } else {
        (0..procs.len()).map(|i| (i, 0)).collect()
    };
    if a.json {
        let procs: Vec<Process> = order.iter().map(|&(i, _)| procs[i].clone()).collect();
        json(&kd, &procs, a.threads)?;
        return unreadable(&procs);
    }
    let width = match a.wide {
        0 => terminal_width(),
        1 => terminal_width().max(132),
        _ => usize::MAX,
    };
    let show = Show { width, env: a.env };
    match &a.columns {
        Some(cols) => picked_columns(&kd, &procs, &order, &cols.0, &show)?,
        None => human(&kd, &procs, &order, a.threads, &show)?,
    }
    unreadable(&procs)
}

/// After the listing: an error (exit status 1) naming the processes that
/// could not be read, which the listing showed marked.
fn unreadable(procs: &[Process]) -> Result {
    let lost: Vec<String> = procs
        .iter()
        .filter_map(|p| {
            let why = p.unavailable.as_ref()?;
            Some(match p.pid {
                0 => format!("task {:#x}: {why}", p.task),
                pid => format!("pid {pid}: {why}"),
            })
        })
        .collect();
    if lost.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} of {} processes could not be read ({})",
        lost.len(),
        procs.len(),
        lost.join("; ")
    )
    .into())
}

/// How a process's pid shows: `?` for an unreadable one whose pid is
/// not known either.
pub(super) fn pid_shown(p: &Process) -> String {
    match (p.pid, &p.unavailable) {
        (0, Some(_)) => "?".into(),
        (pid, _) => pid.to_string(),
    }
}

/// How the human listings show a line.
struct Show {
    /// Lines are cut to this many characters.
    width: usize,
    /// The environment follows the command line.
    env: bool,
}

impl Show {
    fn cut(&self, line: String) -> String {
        line.chars().take(self.width).collect()
    }
}

/// The command line as the listing shows it: argv, or `[comm]` for a
/// kernel thread (or a process without arguments), indented `depth`
/// levels under --forest; with `env`, the environment after it.
fn command(kd: &Kvm, p: &Process, depth: usize, env: bool) -> String {
    let comm = printable(&p.comm);
    let mut cmd = if let Some(why) = &p.unavailable {
        format!("<unavailable: {why}>")
    } else if p.kthread == Some(true) {
        format!("[{comm}]")
    } else {
        match kd.getargv(p) {
            Ok(v) if !v.is_empty() => printable(&v.join(" ")).into_owned(),
            Ok(_) => format!("[{comm}]"),
            Err(_) => format!("({comm}) <argv unavailable>"),
        }
    };
    if env && p.kthread != Some(true) && p.unavailable.is_none() {
        match kd.getenvv(p) {
            Ok(v) if !v.is_empty() => {
                cmd.push(' ');
                cmd.push_str(&printable(&v.join(" ")));
            }
            Ok(_) => {}
            Err(_) => cmd.push_str(" <environment unavailable>"),
        }
    }
    if depth == 0 {
        cmd
    } else {
        format!("{}\\_ {cmd}", "    ".repeat(depth - 1))
    }
}

/// `-o`: the chosen columns.
fn picked_columns(
    kd: &Kvm,
    procs: &[Process],
    order: &[(usize, usize)],
    cols: &[usize],
    show: &Show,
) -> Result {
    let page_kib = kd.info().page_size.unwrap_or(4096) / 1024;
    // The leader's, as /proc/PID/wchan: `-` while it runs, `?` when
    // its stack cannot be followed.
    let wchan = |p: &Process| match p.threads.first() {
        Some(t) if columns::wants_wchan(cols) => match kd.wchan(p, t) {
            Ok(Some(f)) => f,
            Ok(None) => "-".into(),
            Err(_) => "?".into(),
        },
        _ => "-".into(),
    };
    let rows: Vec<columns::Row<'_>> = order
        .iter()
        .map(|&(i, depth)| columns::Row {
            p: &procs[i],
            args: command(kd, &procs[i], depth, show.env),
            wchan: wchan(&procs[i]),
        })
        .collect();
    let out = std::io::stdout();
    let mut out = out.lock();
    for line in columns::render(cols, &rows, page_kib) {
        writeln!(out, "{}", show.cut(line))?;
    }
    Ok(())
}

fn json(kd: &Kvm, procs: &[Process], threads: bool) -> Result {
    let strings = |r: std::result::Result<Vec<String>, kvm::Error>| match r {
        Ok(v) => serde_json::json!(v),
        Err(_) => serde_json::Value::Null, // unavailable: never guessed
    };
    // Bytes only where the page size is known: never guessed.
    let page_size = kd.info().page_size;
    let mut out = Vec::with_capacity(procs.len());
    for p in procs {
        if let Some(why) = &p.unavailable {
            // Known only by its pid (null when even that is not) and
            // its task's address, and why.
            out.push(serde_json::json!({
                "pid": (p.pid != 0).then_some(p.pid),
                "task": format!("{:#x}", p.task),
                "unavailable": why.to_string(),
            }));
            continue;
        }
        let mut o = serde_json::json!({
            "pid": p.pid, "ppid": p.ppid, "pgrp": p.pgrp, "session": p.session,
            "uid": p.uid, "gid": p.gid, "euid": p.euid, "egid": p.egid,
            "state": p.state.map(String::from), "comm": p.comm,
            "kthread": p.kthread,
            "argv": strings(kd.getargv(p)), "envv": strings(kd.getenvv(p)),
            "tty": p.tty, "tty_nr": p.tty_nr, "start_time_ns": p.start_time_ns,
            "rss_pages": p.rss_pages,
            "vsize": p.vsize_pages.zip(page_size).map(|(v, size)| v.saturating_mul(size)),
        });
        if threads {
            o["threads"] = p
                .threads
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "tid": t.tid, "name": t.name, "state": t.state.map(String::from),
                        "oncpu": t.oncpu, "cpu": t.cpu, "crashed": t.crashed,
                        "registers": t.registers.as_ref().map(registers),
                    })
                })
                .collect();
        }
        out.push(o);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn human(
    kd: &Kvm,
    procs: &[Process],
    order: &[(usize, usize)],
    threads: bool,
    show: &Show,
) -> Result {
    let page_kib = kd.info().page_size.unwrap_or(4096) / 1024;
    let cut = |line: String| show.cut(line);
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(
        out,
        "{:>7} {:>7} {:>5} {:>5} {:<6} {:>8} S COMMAND",
        "PID", "PPID", "UID", "GID", "TT", "RSS"
    )?;
    for &(i, depth) in order {
        let p = &procs[i];
        let cmd = command(kd, p, depth, show.env);
        let tt = p
            .tty
            .as_deref()
            .map(|t| printable(t.strip_prefix("tty").unwrap_or(t)))
            .unwrap_or("-".into());
        // RSS in KiB, as BSD ps prints it.
        let rss = p
            .rss_pages
            .map_or("-".to_owned(), |r| (r * page_kib).to_string());
        let line = format!(
            "{:>7} {:>7} {:>5} {:>5} {tt:<6} {rss:>8} {} {cmd}",
            pid_shown(p),
            shown(p.ppid),
            shown(p.uid),
            shown(p.gid),
            shown(p.state)
        );
        writeln!(out, "{}", cut(line))?;
        if threads && p.threads.len() > 1 {
            for t in &p.threads {
                let line = format!(
                    "{:>7} {:>7} {:>5} {:>5} {:<6} {:>8} {}   {}",
                    t.tid,
                    "",
                    "",
                    "",
                    "",
                    "",
                    shown(t.state),
                    printable(&t.name)
                );
                writeln!(out, "{}", cut(line))?;
            }
        }
    }
    Ok(())
}

/// A field as `ps` shows it: `-` when unavailable.
fn shown<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Saved registers as a JSON object of hex strings (`"rip": "0x…"`), in
/// the architecture's order.
fn registers(r: &kvm::Registers) -> serde_json::Value {
    let m: serde_json::Map<String, serde_json::Value> = r
        .iter()
        .map(|(n, v)| ((*n).to_owned(), format!("{v:#018x}").into()))
        .collect();
    serde_json::Value::Object(m)
}
