//! `kvm panic`: why the kernel died — the panic message, the CPU and task
//! that raised it, their registers and backtrace — or that it did not,
//! with each CPU's running task.

use crate::bt::{end_text, frames_json, human_frames};
use crate::escape::printable;
use crate::{Query, Result};
use kvm::PanicInfo;
use std::io::Write;

pub fn run(a: Query) -> Result {
    let info = a.src.open()?.panic_info()?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&json(&info))?)?;
    } else {
        human(&mut out, &info)?;
    }
    Ok(())
}

fn json(p: &PanicInfo) -> serde_json::Value {
    let registers = p.registers.as_ref().map(|r| {
        r.iter()
            .map(|(n, v)| ((*n).to_string(), serde_json::json!(format!("{v:#x}"))))
            .collect::<serde_json::Map<_, _>>()
    });
    let (end, error) = match &p.backtrace {
        Some(b) => {
            let (e, why) = end_text(&b.end);
            (Some(e), why)
        }
        None => (None, None),
    };
    let on_cpu: Vec<serde_json::Value> = p
        .on_cpu
        .iter()
        .map(|c| {
            serde_json::json!({"cpu": c.cpu, "pid": c.pid, "tid": c.tid, "comm": c.comm, "idle": c.idle})
        })
        .collect();
    serde_json::json!({
        "panicked": p.panicked,
        "message": p.message,
        "cpu": p.cpu,
        "pid": p.pid,
        "comm": p.comm,
        "time_ns": p.time_ns,
        "registers": registers,
        "backtrace": p.backtrace.as_ref().map(frames_json),
        "backtrace_end": end,
        "backtrace_error": error,
        "on_cpu": on_cpu,
    })
}

fn human(out: &mut impl Write, p: &PanicInfo) -> std::io::Result<()> {
    match &p.message {
        Some(m) if p.panicked => writeln!(out, "PANIC: \"{}\"", printable(m))?,
        _ => writeln!(
            out,
            "no panic: the kernel log has no \"Kernel panic\" record"
        )?,
    }
    if p.panicked {
        let opt = |v: Option<u32>| v.map_or("?".into(), |v| v.to_string());
        let t = p.time_ns.unwrap_or(0);
        writeln!(
            out,
            "  CPU: {}  PID: {}  COMMAND: \"{}\"  TIME: [{:5}.{:06}]",
            opt(p.cpu),
            opt(p.pid),
            printable(p.comm.as_deref().unwrap_or("?")),
            t / 1_000_000_000,
            t % 1_000_000_000 / 1000
        )?;
        if let Some(r) = &p.registers {
            // Three a line, as crash prints them.
            for line in r.chunks(3) {
                let regs: Vec<String> = line
                    .iter()
                    .map(|(n, v)| format!("{n:>8}: {v:016x}"))
                    .collect();
                writeln!(out, "  {}", regs.join(" "))?;
            }
        }
        match &p.backtrace {
            Some(b) => human_frames(out, b)?,
            None => writeln!(
                out,
                "  (no backtrace: the panicking task is not in the task list)"
            )?,
        }
    }
    for c in &p.on_cpu {
        writeln!(
            out,
            "  CPU {}: PID {} TID {} \"{}\"{}",
            c.cpu,
            c.pid,
            c.tid,
            printable(&c.comm),
            if c.idle { " (idle)" } else { "" }
        )?;
    }
    Ok(())
}
