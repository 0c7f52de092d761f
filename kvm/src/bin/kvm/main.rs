//! The `kvm` command: kernel memory from a crash dump, BSD-style
//! (`-M core`, `-N kernel`). One module per command; each parses its
//! arguments, calls the facade and prints.

mod bt;
mod convert;
mod dmesg;
mod escape;
mod files;
mod info;
mod loadavg;
mod maps;
mod modules;
mod nlist;
mod panic;
mod per_process;
mod ps;
mod read;
mod types;
mod util;
mod write;

use clap::{Parser, Subcommand};
use kvm::Kvm;
use std::path::PathBuf;
use std::process::ExitCode;

/// A command's result: errors are printed as `kvm: {error}`.
type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

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
    /// The crash dump, or a live door: a running VM's RAM file, qemu:PID,
    /// /dev/mem; without it, the running kernel (/proc/kcore).
    #[arg(short = 'M', value_name = "CORE")]
    core: Option<PathBuf>,
    /// The kernel's System.map or vmlinux, for symbols the dump's own
    /// kallsyms lacks (link-time addresses, relocated by the dump's KASLR
    /// offset).
    #[arg(short = 'N', value_name = "KERNEL")]
    kernel: Option<PathBuf>,
    /// Stop the VM behind -M (qemu:PID, or the QEMU that maps the RAM
    /// file) for the length of this command: a consistent snapshot. It is
    /// always resumed, also on an error or Ctrl-C; its clocks jump by the
    /// time it stood.
    #[arg(long)]
    stop: bool,
}

/// The VM `--stop` stopped, resumed when `main` ends (or, should kvm be
/// killed first, by kvm-dev's guardian process).
static PAUSED: std::sync::Mutex<Option<kvm_dev::pause::Paused>> = std::sync::Mutex::new(None);

impl Source {
    /// Opens the source read-only, as `kvm_openfiles(3)`.
    fn open(&self) -> Result<Kvm> {
        self.open_with(kvm::OpenFlags::ReadOnly)
    }

    /// Opens the source with `flags` (after stopping its VM with `--stop`).
    fn open_with(&self, flags: kvm::OpenFlags) -> Result<Kvm> {
        if self.stop {
            self.pause()?;
        }
        let kd = Kvm::openfiles(self.kernel.as_deref(), self.core.as_deref(), flags)?;
        // A dump that lost part of itself says so on every command, not
        // only in `kvm info`: what it answers may lack what was lost.
        let info = kd.source().info();
        if info.incomplete {
            let why = info
                .remarks
                .iter()
                .find(|r| r.starts_with("truncated") || r.starts_with("incomplete"))
                .map_or("memory is missing from it", String::as_str);
            eprintln!(
                "kvm: warning: {}: the dump is incomplete ({why}); answers lack what it lost",
                kd.path().display()
            );
        }
        Ok(kd)
    }

    /// Stops the QEMU behind `-M` until `main` ends.
    fn pause(&self) -> Result {
        let core = self
            .core
            .as_deref()
            .ok_or("--stop needs -M qemu:PID or a VM's RAM file")?;
        let pid = kvm_dev::qemu_pid_of(core).ok_or_else(|| {
            format!(
                "{}: --stop: no running QEMU behind it (give -M qemu:PID or a RAM file QEMU maps)",
                core.display()
            )
        })?;
        let paused = kvm_dev::pause::Paused::stop(pid).map_err(|e| format!("--stop: {e}"))?;
        *PAUSED.lock().map_err(|_| "--stop: lock poisoned")? = Some(paused);
        Ok(())
    }
}

/// The source and the output form, which most commands take.
#[derive(clap::Args, Debug)]
struct Query {
    #[command(flatten)]
    src: Source,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Facts about the dump: format, architecture, kernel release, paging.
    Info(Query),
    /// Read memory: kernel virtual addresses, or physical with --phys.
    Read(read::Args),
    /// Write memory of a running kernel or VM (-M a VM's RAM file,
    /// qemu:PID, /dev/mem): kernel virtual addresses, or physical with
    /// --phys; prints the count written. Dumps are never written.
    Write(write::Args),
    /// List processes (like BSD ps), kernel threads included.
    Ps(ps::Args),
    /// Look up kernel symbols (kvm_nlist).
    Nlist(nlist::Args),
    /// Member offsets and type sizes from the kernel's own BTF
    /// (`task_struct.mm`, `mm_struct`).
    Types(types::Args),
    /// The 1, 5 and 15-minute load averages.
    Loadavg(Query),
    /// The kernel log, oldest record first (from VMCOREINFO alone: no BTF,
    /// no vmlinux).
    Dmesg(Query),
    /// The loaded kernel modules: name, size, address (/proc/modules).
    Modules(Query),
    /// Kernel backtraces (crash's bt): the tasks running on a CPU, or
    /// --pid PID, or --all; from the dump alone (x86-64: the kernel's ORC
    /// tables; arm64: frame records).
    Bt(bt::Args),
    /// Memory maps, as /proc/PID/maps prints them (the maple tree, or
    /// the mmap list before 6.1): one process's, or every process's.
    Maps(maps::Args),
    /// Open files by process and descriptor (kvm_getfiles): the paths
    /// /proc/PID/fd links to, with fdinfo's flags and position.
    Files(files::Args),
    /// Why the kernel died: the panic message, CPU, task, its registers
    /// and backtrace (or "no panic", with each CPU's running task).
    Panic(Query),
    /// Write the dump's memory in another format.
    Convert(convert::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(cli);
    // Resume a VM `--stop` stopped as soon as the command is done.
    if let Ok(mut p) = PAUSED.lock() {
        p.take();
    }
    match result {
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

fn run(cli: Cli) -> Result {
    match cli.cmd {
        Cmd::Info(a) => info::run(a),
        Cmd::Read(a) => read::run(a),
        Cmd::Write(a) => write::run(a),
        Cmd::Ps(a) => ps::run(a),
        Cmd::Nlist(a) => nlist::run(a),
        Cmd::Types(a) => types::run(a),
        Cmd::Loadavg(a) => loadavg::run(a),
        Cmd::Dmesg(a) => dmesg::run(a),
        Cmd::Modules(a) => modules::run(a),
        Cmd::Bt(a) => bt::run(a),
        Cmd::Panic(a) => panic::run(a),
        Cmd::Maps(a) => maps::run(a),
        Cmd::Files(a) => files::run(a),
        Cmd::Convert(a) => convert::run(a),
    }
}
