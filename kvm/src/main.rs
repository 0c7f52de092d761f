//! The `kvm` command: kernel memory from a crash dump, BSD-style
//! (`-M core`, `-N kernel`).

use clap::{Parser, Subcommand};
use kvm::Kvm;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "kvm",
    version,
    about = "Read kernel memory from a crash dump (kvm(3) for Rust)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where kernel memory comes from (BSD ps conventions).
#[derive(clap::Args, Debug)]
struct Source {
    /// The crash dump; without it, the running kernel (/proc/kcore).
    #[arg(short = 'M', value_name = "CORE")]
    core: Option<PathBuf>,
    /// The kernel's System.map or vmlinux, for symbols the dump's own
    /// kallsyms lacks (link-time addresses, relocated by the dump's KASLR
    /// offset).
    #[arg(short = 'N', value_name = "KERNEL")]
    kernel: Option<PathBuf>,
}

impl Source {
    fn open(&self) -> Result<Kvm, kvm::Error> {
        let kd = match &self.core {
            Some(core) => Kvm::open_dump(core)?,
            None => Kvm::open_live()?,
        };
        if let Some(k) = &self.kernel {
            kd.set_kernel_file(k)?;
        }
        Ok(kd)
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Facts about the dump: format, architecture, kernel release, paging.
    Info {
        #[command(flatten)]
        src: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read memory: kernel virtual addresses, or physical with --phys.
    Read {
        #[command(flatten)]
        src: Source,
        /// Read physical memory instead of kernel virtual memory.
        #[arg(long)]
        phys: bool,
        /// Print a hex dump instead of raw bytes.
        #[arg(long)]
        hex: bool,
        /// Start address (0x… hex or decimal).
        #[arg(value_parser = parse_u64)]
        addr: u64,
        /// Number of bytes (0x… hex or decimal).
        #[arg(value_parser = parse_u64)]
        len: u64,
    },
    /// List processes (like BSD ps), kernel threads included.
    Ps {
        #[command(flatten)]
        src: Source,
        /// Include each process's threads.
        #[arg(long)]
        threads: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Look up kernel symbols (kvm_nlist).
    Nlist {
        #[command(flatten)]
        src: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Symbol names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Member offsets and type sizes from the kernel's own BTF
    /// (`task_struct.mm`, `mm_struct`).
    Types {
        #[command(flatten)]
        src: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Member paths (`struct.member[.member…]`) or type names.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// The 1, 5 and 15-minute load averages.
    Loadavg {
        #[command(flatten)]
        src: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the dump's memory in another format.
    Convert {
        #[command(flatten)]
        src: Source,
        /// Output format.
        #[arg(long, value_parser = ["elf", "kdump-raw", "kdump-zlib", "kdump-lzo", "kdump-snappy", "kdump-zstd"])]
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
    },
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("`{s}` is not a number: {e}"))
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not START:LEN"))?;
    Ok((parse_u64(a)?, parse_u64(b)?))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `kvm ps | head`: the reader left; that is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kvm: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.cmd {
        Cmd::Info { src, json } => info(&src.open()?, json),
        Cmd::Read {
            src,
            phys,
            hex,
            addr,
            len,
        } => read(&src.open()?, phys, hex, addr, len),
        Cmd::Ps { src, threads, json } => ps(&src.open()?, threads, json),
        Cmd::Nlist { src, json, names } => nlist(&src.open()?, &names, json),
        Cmd::Types { src, json, paths } => types(&src.open()?, &paths, json),
        Cmd::Loadavg { src, json } => loadavg(&src.open()?, json),
        Cmd::Convert {
            src,
            to,
            flat,
            keep_read_by,
            keep,
            output,
        } => {
            let pages = kvm::record::PageSet::default();
            let kd = if keep_read_by.is_some() {
                let p = pages.clone();
                let core = src
                    .core
                    .as_ref()
                    .ok_or("convert --keep-read-by needs -M CORE")?;
                let kd =
                    Kvm::open_dump_with(core, |d| Box::new(kvm::record::Recording::new(d, p)))?;
                if let Some(k) = &src.kernel {
                    kd.set_kernel_file(k)?;
                }
                run_ps_for_recording(&kd)?;
                kd
            } else {
                src.open()?
            };
            let read: Option<std::collections::BTreeSet<u64>> =
                keep_read_by.map(|_| pages.lock().map(|p| p.clone()).unwrap_or_default());
            convert(&kd, &to, flat, read, &keep, &output)
        }
    }
}

fn ps(kd: &Kvm, threads: bool, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    let procs = kd.getprocs(kvm::ProcOp::All)?;
    let page_kib = kd.info().page_size.unwrap_or(4096) / 1024;
    let strings = |r: Result<Vec<String>, kvm::Error>| match r {
        Ok(v) => serde_json::json!(v),
        Err(_) => serde_json::Value::Null, // unavailable: never guessed
    };
    if json {
        let mut out = Vec::with_capacity(procs.len());
        for p in &procs {
            let mut o = serde_json::json!({
                "pid": p.pid, "ppid": p.ppid, "pgrp": p.pgrp, "session": p.session,
                "uid": p.uid, "gid": p.gid, "euid": p.euid, "egid": p.egid,
                "state": p.state.to_string(), "comm": p.comm,
                "kthread": p.kthread,
                "argv": strings(kd.getargv(p)), "envv": strings(kd.getenvv(p)),
                "tty": p.tty, "tty_nr": p.tty_nr, "start_time_ns": p.start_time_ns, "rss_pages": p.rss_pages,
            });
            if threads {
                o["threads"] = p
                    .threads
                    .iter()
                    .map(|t| serde_json::json!({"tid": t.tid, "name": t.name, "state": t.state.to_string(), "oncpu": t.oncpu, "cpu": t.cpu}))
                    .collect();
            }
            out.push(o);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let width = terminal_width();
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(
        out,
        "{:>7} {:>7} {:>5} {:>5} {:<6} {:>8} S COMMAND",
        "PID", "PPID", "UID", "GID", "TT", "RSS"
    )?;
    for p in &procs {
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
        let cut: String = line.chars().take(width).collect();
        writeln!(out, "{cut}")?;
        if threads && p.threads.len() > 1 {
            for t in &p.threads {
                let line = format!(
                    "{:>7} {:>7} {:>5} {:>5} {:<6} {:>8} {}   {}",
                    t.tid, "", "", "", "", "", t.state, t.name
                );
                writeln!(out, "{}", line.chars().take(width).collect::<String>())?;
            }
        }
    }
    Ok(())
}

/// Columns for human output: the terminal's width (long command lines are
/// cut, as BSD ps does), `$COLUMNS` when set, unlimited into a pipe.
fn terminal_width() -> usize {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return c;
    }
    match terminal_size::terminal_size_of(std::io::stdout()) {
        Some((terminal_size::Width(w), _)) => usize::from(w),
        None => usize::MAX,
    }
}

fn nlist(kd: &Kvm, names: &[String], json: bool) -> Result<(), Box<dyn std::error::Error>> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let found = kd.nlist(&refs)?;
    if json {
        let m: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(&found)
            .map(|(n, a)| (n.clone(), hex_opt(*a)))
            .collect();
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        for (n, a) in names.iter().zip(&found) {
            match a {
                Some(a) => println!("{a:016x} {n}"),
                None => println!("{:>16} {n}", "-"),
            }
        }
    }
    if found.iter().any(Option::is_none) && !json {
        return Err(format!(
            "{}: {} of {} symbols not found",
            kd.path().display(),
            found.iter().filter(|a| a.is_none()).count(),
            names.len()
        )
        .into());
    }
    Ok(())
}

fn types(kd: &Kvm, paths: &[String], json: bool) -> Result<(), Box<dyn std::error::Error>> {
    let mut m = serde_json::Map::new();
    for p in paths {
        let found = kd.type_info(p)?;
        if !json {
            match found {
                Some((Some(o), s)) => println!("{p}: offset {o} size {s}"),
                Some((None, s)) => println!("{p}: size {s}"),
                None => println!("{p}: not found"),
            }
        }
        let v = match found {
            Some((off, size)) => serde_json::json!({"offset": off, "size": size}),
            None => serde_json::Value::Null,
        };
        m.insert(p.clone(), v);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    }
    Ok(())
}

fn loadavg(kd: &Kvm, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    let l = kd.getloadavg()?;
    if json {
        println!("{}", serde_json::to_string(&l)?);
    } else {
        println!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
    }
    Ok(())
}

fn hex_opt(v: Option<u64>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |v| format!("{v:#x}").into())
}

fn info(kd: &Kvm, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    let i = kd.info();
    if json {
        let v = serde_json::json!({
            "format": i.format,
            "arch": i.arch,
            "os": i.os,
            "release": i.release,
            "page_size": i.page_size,
            "kaslr_offset": hex_opt(i.kaslr_offset),
            "root": hex_opt(i.root),
            "paging": i.paging,
            "ranges": i.ranges.0,
            "memory_bytes": i.ranges.1,
            "incomplete": i.incomplete,
            "remarks": i.remarks,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let or = |s: Option<String>| s.unwrap_or_else(|| "unknown".into());
    println!("file:         {}", kd.path().display());
    println!("format:       {}", i.format);
    println!("arch:         {}", or(i.arch.map(str::to_owned)));
    println!("os:           {}", or(i.os.map(str::to_owned)));
    println!("release:      {}", or(i.release));
    println!("page size:    {}", or(i.page_size.map(|p| p.to_string())));
    println!(
        "kaslr offset: {}",
        or(i.kaslr_offset.map(|o| format!("{o:#x}")))
    );
    println!("paging:       {}", i.paging);
    if let Some(r) = i.root {
        println!("root table:   {r:#x}");
    }
    println!(
        "memory:       {} ranges, {} MiB",
        i.ranges.0,
        i.ranges.1 >> 20
    );
    if i.incomplete {
        println!("incomplete:   yes (the dump says it was cut short)");
    }
    for r in i.remarks {
        println!("note:         {r}");
    }
    Ok(())
}

fn read(
    kd: &Kvm,
    phys: bool,
    hex: bool,
    addr: u64,
    len: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    const MAX: u64 = 1 << 30;
    if len > MAX {
        return Err(format!("refusing to read more than {MAX} bytes at once").into());
    }
    let mut buf = vec![0u8; len as usize];
    let n = if phys {
        kd.read_phys(addr, &mut buf)?
    } else {
        kd.read(addr, &mut buf)?
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    if hex {
        for (i, line) in buf[..n].chunks(16).enumerate() {
            let a = addr + 16 * i as u64;
            let h: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
            let t: String = line
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            writeln!(out, "{a:016x}  {:<47}  |{t}|", h.join(" "))?;
        }
    } else {
        out.write_all(&buf[..n])?;
    }
    out.flush()?;
    if (n as u64) < len {
        return Err(format!(
            "{}: read stopped after {n} of {len} bytes: {}",
            kd.path().display(),
            kd.geterr()
        )
        .into());
    }
    Ok(())
}

/// Everything `kvm ps --json` and `kvm loadavg`/`info` read.
fn run_ps_for_recording(kd: &Kvm) -> Result<(), Box<dyn std::error::Error>> {
    let _ = kd.info();
    let _ = kd.uts_release()?;
    for p in kd.getprocs(kvm::ProcOp::All)? {
        let _ = kd.getargv(&p);
        let _ = kd.getenvv(&p);
    }
    let _ = kd.getloadavg()?;
    // The banner, as `kvm read` of linux_banner shows it.
    if let Some(Some(banner)) = kd.nlist(&["linux_banner"])?.first() {
        let mut b = [0u8; 512];
        let _ = kd.read(*banner, &mut b);
    }
    Ok(())
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

fn convert(
    kd: &Kvm,
    to: &str,
    flat: bool,
    read: Option<std::collections::BTreeSet<u64>>,
    keep: &[(u64, u64)],
    output: &PathBuf,
) -> Result<(), Box<dyn std::error::Error>> {
    use kvm_core::MapRange;
    use kvm_core_file::write::{elf, IoSink};
    let dump = kd.dump();
    let info = dump.info();
    // Ranges to write: the dump's own, cut to the --keep ranges when given.
    let mut ranges: Vec<MapRange> = Vec::new();
    for r in dump.ranges() {
        let r = MapRange {
            start: r.start,
            len: r.len,
            value: 0,
        };
        if keep.is_empty() {
            ranges.push(r);
            continue;
        }
        for &(ks, kl) in keep {
            let s = r.start.max(ks);
            let e = r.end().min(ks.saturating_add(kl));
            if s < e {
                ranges.push(MapRange {
                    start: s,
                    len: e - s,
                    value: 0,
                });
            }
        }
    }
    ranges.sort_by_key(|r| r.start);
    // The same notes the kdump writer stores: CPU states and VMCOREINFO.
    let notes = kvm_core_file::write::kdump::notes_for(info, info.endian);
    // EM_NONE when the source does not say.
    let machine = info.arch.map_or(0, kvm_core_file::Arch::elf_machine);
    match to {
        "elf" => {
            let f =
                std::fs::File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
            let mut sink = IoSink(std::io::BufWriter::with_capacity(1 << 20, f));
            let opts = elf::ElfOptions {
                is64: true,
                endian: info.endian,
                machine,
            };
            let total: u64 = ranges.iter().map(|r| r.len).sum();
            let bar = progress_bar(output, "{bytes}/{total_bytes}");
            bar.set_length(total);
            let r = elf::write_elf(&mut sink, opts, dump, &ranges, &notes, &mut |done| {
                bar.set_position(done)
            });
            bar.finish_and_clear();
            r.map_err(|e| format!("{}: {e}", output.display()))?;
            sink.0.flush()?;
        }
        kdump => {
            use kvm_core_file::codec::Compression;
            use kvm_core_file::write::kdump as kw;
            let compression = match kdump {
                "kdump-raw" => Compression::None,
                "kdump-zlib" => Compression::Zlib,
                "kdump-lzo" => Compression::Lzo,
                "kdump-snappy" => Compression::Snappy,
                "kdump-zstd" => Compression::Zstd,
                other => return Err(format!("unknown output format {other}").into()),
            };
            let mut opts = kw::KdumpOptions::new(compression);
            let bar = progress_bar(output, "{pos}/{len} pages");
            let b = bar.clone();
            opts.progress = Some(Box::new(move |done, total| {
                b.set_length(total);
                b.set_position(done);
            }));
            let keep_ranges = keep.to_vec();
            let shift = info.page_size.unwrap_or(4096).trailing_zeros();
            if read.is_some() || !keep_ranges.is_empty() {
                let read = read.unwrap_or_default();
                opts.keep = Some(Box::new(move |pfn: u64| {
                    let pa = pfn << shift;
                    let frames = (pa >> 12)..((pa + (1u64 << shift)) >> 12);
                    let by_read = frames.clone().any(|f| read.contains(&f));
                    let by_range = keep_ranges
                        .iter()
                        .any(|&(s, l)| pa < s.saturating_add(l) && pa + (1u64 << shift) > s);
                    by_read || by_range
                }));
            }
            let f =
                std::fs::File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
            let summary = if flat {
                kw::write_flattened(dump, &opts, f)
            } else {
                kw::write(dump, &opts, f)
            }
            .map_err(|e| format!("{}: {e}", output.display()))?;
            bar.finish_and_clear();
            eprintln!(
                "{}: {} pages saved ({} excluded), {} bytes",
                output.display(),
                summary.pages,
                summary.excluded,
                summary.file_size
            );
        }
    }
    Ok(())
}
