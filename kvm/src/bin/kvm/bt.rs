//! `kvm bt`: kernel backtraces of tasks, as crash's `bt` prints them
//! (`#N [stack address] function+offset at pc`), or as JSON. Without
//! `--pid` or `--all`: the tasks that were running on a CPU.

use crate::escape::printable;
use crate::{Result, Source};
use kvm::{Backtrace, Frame, ProcOp, Process, StackEnd, Thread};
use std::io::Write;

// Its help is the doc comment of `Cmd::Bt`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: Source,
    /// The process (all its threads) or the thread with this id.
    #[arg(long, value_name = "PID", conflicts_with = "all")]
    pid: Option<u32>,
    /// Every task: all processes, kernel threads and threads.
    #[arg(long)]
    all: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result {
    let kvm = a.src.open()?;
    let procs = kvm.getprocs(ProcOp::All)?;
    // Processes the dump lost have no threads to follow: said at the end.
    let lost: Vec<String> = procs
        .iter()
        .filter(|p| a.all || a.pid.is_some_and(|id| p.pid == id))
        .filter_map(|p| Some(format!("pid {}: {}", p.pid, p.unavailable.as_ref()?)))
        .collect();
    let mut tasks: Vec<(&Process, &Thread)> = procs
        .iter()
        .flat_map(|p| p.threads.iter().map(move |t| (p, t)))
        .filter(|(p, t)| match (a.pid, a.all) {
            (Some(id), _) => p.pid == id || t.tid == id,
            (None, true) => true,
            (None, false) => t.oncpu,
        })
        .collect();
    tasks.sort_by_key(|(p, t)| (p.pid, t.tid));
    if tasks.is_empty() && lost.is_empty() {
        return Err(match a.pid {
            Some(id) => format!("no process or thread {id} in the dump").into(),
            None => {
                "no task was running on a CPU (the CPUs were idle): give --pid PID or --all".into()
            }
        });
    }
    let mut traces = Vec::with_capacity(tasks.len());
    for &(p, t) in &tasks {
        traces.push(kvm.backtrace(p, t)?);
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.json {
        let v: Vec<serde_json::Value> = tasks
            .iter()
            .zip(&traces)
            .map(|(&(p, t), bt)| json(p, t, bt))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for (i, (&(p, t), bt)) in tasks.iter().zip(&traces).enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            human(&mut out, p, t, bt)?;
        }
    }
    out.flush()?;
    let broken = traces
        .iter()
        .filter(|b| matches!(b.end, StackEnd::Broken(_) | StackEnd::TooDeep))
        .count();
    if broken > 0 {
        eprintln!(
            "kvm: {broken} of {} backtraces end before the stack's end (each says why)",
            traces.len()
        );
    }
    if !lost.is_empty() {
        return Err(format!(
            "{} processes could not be read ({})",
            lost.len(),
            lost.join("; ")
        )
        .into());
    }
    Ok(())
}

/// How an unwind ended, for JSON: the word and the reason.
pub fn end_text(e: &StackEnd) -> (&'static str, Option<&str>) {
    match e {
        StackEnd::Complete => ("complete", None),
        StackEnd::UserMode => ("user mode", None),
        StackEnd::Exited => ("exited", None),
        StackEnd::TooDeep => ("too deep", None),
        StackEnd::Broken(why) => ("broken", Some(why)),
    }
}

fn json(p: &Process, t: &Thread, bt: &Backtrace) -> serde_json::Value {
    let (end, error) = end_text(&bt.end);
    serde_json::json!({
        "pid": p.pid,
        "tid": t.tid,
        "comm": t.name,
        "cpu": t.cpu,
        "state": t.state.map(String::from),
        "running": t.oncpu,
        "task": format!("{:#x}", t.task),
        "from": bt.from,
        "unwinder": bt.unwinder,
        "end": end,
        "error": error,
        "frames": frames_json(bt),
    })
}

/// A backtrace's frames as JSON objects.
pub fn frames_json(bt: &Backtrace) -> Vec<serde_json::Value> {
    bt.frames
        .iter()
        .map(|f| {
            serde_json::json!({
                "pc": format!("{:#x}", f.pc),
                "sp": format!("{:#x}", f.sp),
                "exact": f.exact,
                "function": f.function,
                "offset": f.offset,
                "module": f.module,
            })
        })
        .collect()
}

fn frame_name(f: &Frame) -> String {
    match (&f.function, f.offset, &f.module) {
        (Some(n), Some(o), Some(m)) => format!("{}+{o:#x} [{}]", printable(n), printable(m)),
        (Some(n), Some(o), None) => format!("{}+{o:#x}", printable(n)),
        _ => "?".into(),
    }
}

fn human(out: &mut impl Write, p: &Process, t: &Thread, bt: &Backtrace) -> std::io::Result<()> {
    let cpu = t.cpu.map_or("-".into(), |c| c.to_string());
    let state = t.state.map_or('-', |s| s);
    writeln!(
        out,
        "PID: {:<7} TID: {:<7} TASK: {:x}  CPU: {cpu}  STATE: {state}{}  COMMAND: \"{}\"",
        p.pid,
        t.tid,
        t.task,
        if t.oncpu { " (running)" } else { "" },
        printable(&t.name)
    )?;
    human_frames(out, bt)
}

/// A backtrace's frames, `#N [stack] function+offset at pc`, and how it
/// ended.
pub fn human_frames(out: &mut impl Write, bt: &Backtrace) -> std::io::Result<()> {
    for (i, f) in bt.frames.iter().enumerate() {
        writeln!(
            out,
            " #{i:<2} [{:016x}] {} at {:016x}",
            f.sp,
            frame_name(f),
            f.pc
        )?;
    }
    let how = format!("{}, {}", bt.from, bt.unwinder);
    match &bt.end {
        StackEnd::Complete => writeln!(out, "    (end of stack; {how})"),
        StackEnd::UserMode => writeln!(out, "    (running in user mode: no kernel frames; {how})"),
        StackEnd::Exited => writeln!(out, "    (exited: its kernel stack is freed)"),
        StackEnd::TooDeep => writeln!(out, "    (stopped after {} frames; {how})", bt.frames.len()),
        StackEnd::Broken(why) => writeln!(out, "    (unwind stopped: {}; {how})", printable(why)),
    }
}
