//! `kvm convert`: the dump's memory written in another format. The
//! policy (what to keep, how to write) is the facade's
//! [`kvm::convert`]; this parses, shows progress and reports.

use crate::util::parse_range;
use crate::{Result, Source};
use kvm::convert::{Keep, Progress, Target};
use kvm::file::codec::Compression;
use std::path::{Path, PathBuf};

// Its help is the doc comment of `Cmd::Convert`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: Source,
    /// Output format.
    #[arg(long, value_parser = ["elf", "kdump-raw", "kdump-zlib", "kdump-lzo", "kdump-snappy", "kdump-zstd", "openbsd", "lime", "raw"])]
    to: String,
    /// Write a kdump file in makedumpfile's flattened form.
    #[arg(long)]
    flat: bool,
    /// Keep only the pages that this command reads (`ps`: processes,
    /// their argv and environment, the load average): a small dump
    /// that still answers it.
    #[arg(long, value_name = "COMMAND", value_parser = ["ps"])]
    keep_read_by: Option<String>,
    /// Keep only these physical ranges (START:LEN, hex or decimal; repeatable).
    #[arg(long = "keep", value_name = "START:LEN", value_parser = parse_range)]
    keep: Vec<(u64, u64)>,
    /// The file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Print what was written as JSON (`output`, `format`, `written`,
    /// `excluded`, `file_size`) instead of a line on stderr.
    #[arg(long)]
    json: bool,
}

/// The `--to` name as a [`Target`].
fn target(to: &str, flat: bool) -> Result<Target> {
    let compression = match to {
        "elf" => return Ok(Target::Elf),
        "openbsd" => return Ok(Target::OpenBsd),
        "lime" => return Ok(Target::Lime),
        "raw" => return Ok(Target::Raw),
        "kdump-raw" => Compression::None,
        "kdump-zlib" => Compression::Zlib,
        "kdump-lzo" => Compression::Lzo,
        "kdump-snappy" => Compression::Snappy,
        "kdump-zstd" => Compression::Zstd,
        other => return Err(format!("unknown output format {other}").into()),
    };
    Ok(Target::Kdump { compression, flat })
}

/// A progress bar on stderr for writing `output` (hidden when stderr is
/// not a terminal); `counts` is the indicatif template of its counters.
fn progress_bar(output: &Path, counts: &str) -> indicatif::ProgressBar {
    let style = indicatif::ProgressStyle::with_template(&format!(
        "{{msg}} [{{bar:40}}] {counts} ({{eta}})"
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let bar = indicatif::ProgressBar::new(0).with_style(style);
    bar.set_message(format!("writing {}", output.display()));
    bar
}

pub fn run(a: Args) -> Result {
    let to = target(&a.to, a.flat)?;
    let (kd, frames) = match a.keep_read_by {
        // "ps", the only value clap lets through.
        Some(_) => {
            let core = a
                .src
                .core
                .as_deref()
                .ok_or("convert --keep-read-by needs -M CORE")?;
            let (kd, frames) = kvm::convert::pages_read_by_ps(core, a.src.kernel.as_deref())?;
            (kd, Some(frames))
        }
        None => (a.src.open()?, None),
    };
    let keep = Keep::new(a.keep, frames);
    let counts = match to {
        Target::Elf | Target::OpenBsd | Target::Lime | Target::Raw => "{bytes}/{total_bytes}",
        Target::Kdump { .. } => "{pos}/{len} pages",
    };
    let bar = progress_bar(&a.output, counts);
    let b = bar.clone();
    let progress: Progress = Box::new(move |done, total| {
        b.set_length(total);
        b.set_position(done);
    });
    let r = kvm::convert::convert(&kd, to, &keep, &a.output, Some(progress));
    bar.finish_and_clear();
    let summary = r?;
    if a.json {
        let v = serde_json::json!({
            "output": a.output.display().to_string(),
            "format": a.to,
            "flat": a.flat,
            // Pages (kdump) or bytes of memory (the others).
            "written": summary.written,
            "excluded": summary.excluded,
            "file_size": summary.file_size,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    match to {
        Target::Kdump { .. } => eprintln!(
            "{}: {} pages saved ({} excluded), {} bytes",
            a.output.display(),
            summary.written,
            summary.excluded,
            summary.file_size
        ),
        Target::OpenBsd => eprintln!(
            "{}: {} bytes of memory ({} written as zeros: not in the source), {} bytes",
            a.output.display(),
            summary.written,
            summary.excluded,
            summary.file_size
        ),
        Target::Elf | Target::Lime | Target::Raw => {}
    }
    Ok(())
}
