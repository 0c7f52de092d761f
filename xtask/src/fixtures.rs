//! `cargo xtask fixtures`: the project's lab of real Linux kernel dumps with
//! ground truth (docs/FIXTURES.md has the facts behind every choice here).
//!
//! For every set (a Debian kernel booted one way) it boots the kernel under
//! QEMU (TCG) with a busybox initramfs whose `/init` (`xtask/guest/init.sh`)
//! starts a workload of hard cases, captures the ground truth from `/proc`
//! (`xtask/guest/capture.sh`) and signals "ready"; the host then stops the VM
//! over QMP and writes the same memory in several dump formats:
//!
//! | file | made by |
//! |---|---|
//! | `vmcore.elf` | QEMU `dump-guest-memory`, ELF, `paging: false` (physical addresses) |
//! | `vmcore-paging.elf` | the same with `paging: true` (x86 only: virtual addresses) |
//! | `vmcore.kdump-zlib.flat` | QEMU `kdump-zlib`, flattened as QEMU writes it |
//! | `vmcore.kdump-zlib` | `makedumpfile -R` of the flattened file |
//! | `vmcore.makedumpfile-lzo` | `makedumpfile -l -d 0` (LZO, unfiltered), amd64 only |
//! | `vmcore.makedumpfile-zlib-d31` | `makedumpfile -c -d 31` (zlib, filtered), amd64 only |
//!
//! next to `truth.json` (the guest's own view: processes, threads, argv,
//! environment, load average, kernel version and command line),
//! `kallsyms.txt` (the guest's `/proc/kallsyms`), `console.log` (serial
//! console), `truth.raw.txt` (what the guest wrote, hex of the /proc files),
//! `qemu.log` and `makedumpfile.log`; and from the kernel's `-dbg` package
//! (`dwarf.rs`: the debug-kernel step), `System.map` (link-time addresses)
//! and `dwarf-offsets.json` (member offsets and type sizes from the DWARF,
//! to check the dump's BTF against).
//!
//! The ground truth comes back on a small virtio disk (a tar written by the
//! guest), not on a second serial port: QEMU's 16550 paces output at the
//! line rate (about 16 KB/s measured here), and the kallsyms alone are
//! several MB. The console only carries progress lines and the ready line.
//!
//! Everything lives outside the git tree, in `$KVM_LAB_DIR` (default
//! `$XDG_CACHE_HOME/kvm-lab`, else `~/.cache/kvm-lab`):
//!
//! ```text
//! downloads/            the .deb files (kernels, their -dbg packages, busybox-static:arm64)
//! kernels/<package>/    each kernel package, unpacked with dpkg -x
//! kernels/<pkg>-dbg/    vmlinux (DWARF) and System.map from the -dbg package, dwarf-offsets.json
//! busybox/arm64/        busybox-static:arm64, unpacked
//! sets/<set>/           the dumps and the ground truth of one set
//! sets/<set>/.complete  written last; holds the recipe fingerprint and facts
//! work/<set>/           initramfs and truth disk while a set is made
//! ```
//!
//! A set whose `.complete` matches the current recipe (guest scripts,
//! initramfs contents, kernel package, QEMU arguments) is not made again.
//! Usage: `cargo xtask fixtures [--force] [--list] [SET...]`; environment:
//! `KVM_LAB_DIR`, `KVM_LAB_SETTLE_SECS` (workload run time before the
//! capture, default 25), `KVM_LAB_KERNEL_AMD64` / `KVM_LAB_KERNEL_ARM64`
//! (a full kernel image package name, to use another build, e.g.
//! `linux-image-6.12.117+deb12-cloud-amd64-unsigned`; give such a run its own
//! `KVM_LAB_DIR`, or it replaces the default sets).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod dwarf;

/// Bump when the host-side processing changes in a way that makes old sets
/// stale (the guest side is covered by hashing the initramfs).
const RECIPE: &str = "kvm-lab recipe 1";

const INIT_SH: &str = include_str!("../guest/init.sh");
const CAPTURE_SH: &str = include_str!("../guest/capture.sh");
const LONG_SCRIPT: &str = include_str!("../guest/kvm-lab-long-script-name");

/// Kernel modules the guest loads, in this order (dependencies first are
/// added from each module's `.modinfo`). qemu_fw_cfg first: it hands the
/// kernel's VMCOREINFO to QEMU's `-device vmcoreinfo`.
const GUEST_MODULES: &[&str] = &["qemu_fw_cfg", "virtio_pci", "virtio_blk"];

/// Size of the disk that carries the ground truth back (sparse).
const TRUTH_DISK_BYTES: u64 = 64 << 20;

/// How long to wait for the guest's ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(900);

/// PF_KTHREAD in `task_struct.flags` (stat field 9).
const PF_KTHREAD: u64 = 0x0020_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// Debian's name.
    fn deb(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
    /// The kernel's name (`uname -m`).
    fn uname(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }
    fn qemu(self) -> &'static str {
        match self {
            Arch::Amd64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }
    fn machine_args(self) -> &'static [&'static str] {
        match self {
            Arch::Amd64 => &["-cpu", "max,la57=off"],
            Arch::Arm64 => &["-M", "virt", "-cpu", "cortex-a57"],
        }
    }
    fn console(self) -> &'static str {
        match self {
            Arch::Amd64 => "ttyS0",
            Arch::Arm64 => "ttyAMA0",
        }
    }
    fn env_kernel(self) -> &'static str {
        match self {
            Arch::Amd64 => "KVM_LAB_KERNEL_AMD64",
            Arch::Arm64 => "KVM_LAB_KERNEL_ARM64",
        }
    }
}

/// One set: a kernel booted one way.
#[derive(Debug)]
struct SetSpec {
    name: &'static str,
    arch: Arch,
    kaslr: bool,
}

const SETS: &[SetSpec] = &[
    SetSpec {
        name: "amd64-kaslr",
        arch: Arch::Amd64,
        kaslr: true,
    },
    SetSpec {
        name: "amd64-nokaslr",
        arch: Arch::Amd64,
        kaslr: false,
    },
    SetSpec {
        name: "arm64-kaslr",
        arch: Arch::Arm64,
        kaslr: true,
    },
];

impl SetSpec {
    fn cmdline(&self) -> String {
        let mut c = format!("console={} panic=-1", self.arch.console());
        if !self.kaslr {
            c.push_str(" nokaslr");
        }
        c
    }
}

fn say(msg: impl AsRef<str>) {
    eprintln!("[fixtures] {}", msg.as_ref());
}

fn section(msg: impl AsRef<str>) {
    eprintln!("\n[fixtures] ==> {}", msg.as_ref());
}

/// The `fixtures` task.
pub fn fixtures() -> Result<(), String> {
    let started = Instant::now();
    let mut force = false;
    let mut wanted = Vec::new();
    for a in std::env::args().skip(2) {
        match a.as_str() {
            "--force" => force = true,
            "--list" => {
                for s in SETS {
                    println!("{}", s.name);
                }
                return Ok(());
            }
            "-h" | "--help" => {
                eprintln!(
                    "usage: cargo xtask fixtures [--force] [--list] [SET...]\n\
                     sets: {}\n\
                     env: KVM_LAB_DIR, KVM_LAB_SETTLE_SECS, KVM_LAB_KERNEL_AMD64, KVM_LAB_KERNEL_ARM64",
                    SETS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                );
                return Ok(());
            }
            _ if a.starts_with('-') => return Err(format!("unknown option `{a}`")),
            _ => {
                if !SETS.iter().any(|s| s.name == a) {
                    return Err(format!(
                        "unknown set `{a}` (known: {})",
                        SETS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                    ));
                }
                wanted.push(a);
            }
        }
    }
    let sets: Vec<&SetSpec> = SETS
        .iter()
        .filter(|s| wanted.is_empty() || wanted.iter().any(|w| w == s.name))
        .collect();
    let settle: u32 = match std::env::var("KVM_LAB_SETTLE_SECS") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("KVM_LAB_SETTLE_SECS={v} is not a number of seconds"))?,
        Err(_) => 25,
    };

    let lab = lab_dir()?;
    say(format!("lab directory: {}", lab.display()));
    for d in ["downloads", "kernels", "busybox", "sets", "work"] {
        mkdir(&lab.join(d))?;
    }
    let _lock = Lock::take(&lab.join(".lock"))?;
    let mut arches: Vec<Arch> = sets.iter().map(|s| s.arch).collect();
    arches.sort();
    arches.dedup();

    section("host tools");
    ensure_host_tools(&arches)?;

    let mut guests = HashMap::new();
    for &arch in &arches {
        section(format!("{} guest: kernel, modules, busybox", arch.deb()));
        guests.insert(arch, prepare_guest(&lab, arch)?);
    }

    section("debug kernels: vmlinux (DWARF), System.map, DWARF offsets");
    let t = Instant::now();
    dwarf::ensure_dwarf_tools()?;
    let ordered: Vec<&Guest> = arches.iter().map(|a| &guests[a]).collect();
    let debug: BTreeMap<Arch, dwarf::DebugKernel> = dwarf::prepare_debug_kernels(&lab, &ordered)?
        .into_iter()
        .collect();
    say(format!(
        "debug kernels ready in {:.1}s",
        t.elapsed().as_secs_f64()
    ));

    let mut results = Vec::new();
    for spec in &sets {
        section(format!("set {}", spec.name));
        let t = Instant::now();
        let facts = make_set(&lab, spec, &guests[&spec.arch], settle, force)?;
        dwarf::install_debug_files(&lab, spec, &guests[&spec.arch], &debug[&spec.arch])?;
        say(format!(
            "set {}: done in {:.1}s",
            spec.name,
            t.elapsed().as_secs_f64()
        ));
        results.push((spec, facts));
    }

    section("summary");
    for (arch, dk) in &debug {
        dwarf::summary_line(*arch, dk);
    }
    print_summary(&lab, &results)?;
    say(format!(
        "all {} set(s) ready in {:.1}s",
        results.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

// ---------------------------------------------------------------------------
// Paths, processes, small helpers

pub(crate) fn lab_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("KVM_LAB_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("kvm-lab"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache").join("kvm-lab")),
        None => Err("neither KVM_LAB_DIR, XDG_CACHE_HOME nor HOME is set".into()),
    }
}

/// One run at a time per lab: a file holding the owner's pid, removed on drop.
#[derive(Debug)]
struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path) -> Result<Lock, String> {
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(Lock(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = fs::read_to_string(path).unwrap_or_default();
                    let pid = pid.trim();
                    if !pid.is_empty() && Path::new("/proc").join(pid).exists() {
                        return Err(format!(
                            "another `cargo xtask fixtures` (pid {pid}) is using this lab ({})",
                            path.display()
                        ));
                    }
                    say(format!(
                        "removing stale lock {} (pid {pid:?} is gone)",
                        path.display()
                    ));
                    rm_rf(path)?;
                }
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(format!("cannot take the lock {}", path.display()))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn mkdir(p: &Path) -> Result<(), String> {
    fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
}

fn rm_rf(p: &Path) -> Result<(), String> {
    match fs::symlink_metadata(p) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(p).map_err(|e| format!("cannot remove {}: {e}", p.display()))
        }
        Ok(_) => fs::remove_file(p).map_err(|e| format!("cannot remove {}: {e}", p.display())),
    }
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn write(p: &Path, data: impl AsRef<[u8]>) -> Result<(), String> {
    fs::write(p, data).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

fn rename(from: &Path, to: &Path) -> Result<(), String> {
    fs::rename(from, to)
        .map_err(|e| format!("cannot rename {} to {}: {e}", from.display(), to.display()))
}

fn shown(cmd: &Command) -> String {
    format!("{cmd:?}").replace('"', "")
}

/// Runs `cmd` and returns its stdout; a failure carries its stderr.
fn output(mut cmd: Command) -> Result<String, String> {
    let s = shown(&cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {s}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{s} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` echoing it, with its output appended to `log`.
fn run_logged(mut cmd: Command, log: &Path) -> Result<(), String> {
    let s = shown(&cmd);
    eprintln!("$ {s}");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    writeln!(f, "$ {s}").map_err(|e| e.to_string())?;
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {s}: {e}"))?;
    f.write_all(&out.stdout).map_err(|e| e.to_string())?;
    f.write_all(&out.stderr).map_err(|e| e.to_string())?;
    writeln!(f, "[exit: {}]", out.status).map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{s} exited with {} (output in {}): {}",
            out.status,
            log.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn in_path(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn file_size(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn human(bytes: u64) -> String {
    let mb = 1024.0 * 1024.0;
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    if b >= mb {
        format!("{:.1} MiB", b / mb)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// FNV-1a, 64 bits: a stable fingerprint (std's hasher may change).
#[derive(Debug)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab","c") differs from ("a","bc").
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}

// ---------------------------------------------------------------------------
// Step 1: host tools and downloads

fn is_root() -> bool {
    output({
        let mut c = Command::new("id");
        c.arg("-u");
        c
    })
    .map(|s| s.trim() == "0")
    .unwrap_or(false)
}

fn apt_get(args: &[&str]) -> Result<(), String> {
    if !is_root() {
        return Err(format!(
            "need root to run apt-get {} (or install it yourself)",
            args.join(" ")
        ));
    }
    let mut c = Command::new("apt-get");
    c.env("DEBIAN_FRONTEND", "noninteractive").args(args);
    super::run(c)
}

pub(crate) fn apt_install(pkgs: &[&str]) -> Result<(), String> {
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend_from_slice(pkgs);
    if apt_get(&args).is_ok() {
        return Ok(());
    }
    say("apt-get install failed; running apt-get update and trying again");
    apt_get(&["update"])?;
    apt_get(&args)
}

fn dpkg_installed(pkg: &str) -> bool {
    let mut c = Command::new("dpkg-query");
    c.args(["-W", "-f", "${Status}", pkg]);
    output(c)
        .map(|s| s.trim() == "install ok installed")
        .unwrap_or(false)
}

fn ensure_host_tools(arches: &[Arch]) -> Result<(), String> {
    let mut missing: Vec<&str> = Vec::new();
    let mut need = vec![
        ("makedumpfile", "makedumpfile"),
        ("dpkg-deb", "dpkg"),
        ("xz", "xz-utils"),
    ];
    for a in arches {
        match a {
            Arch::Amd64 => need.push(("qemu-system-x86_64", "qemu-system-x86")),
            Arch::Arm64 => need.push(("qemu-system-aarch64", "qemu-system-arm")),
        }
    }
    for (prog, pkg) in &need {
        match in_path(prog) {
            Some(p) => say(format!("{prog}: {}", p.display())),
            None => {
                say(format!("{prog}: missing (package {pkg})"));
                missing.push(pkg);
            }
        }
    }
    if arches.contains(&Arch::Amd64) {
        if dpkg_installed("busybox-static") {
            say("busybox-static: installed");
        } else {
            say("busybox-static: missing");
            missing.push("busybox-static");
        }
    }
    if !missing.is_empty() {
        say(format!("installing {}", missing.join(" ")));
        apt_install(&missing)?;
        for (prog, pkg) in &need {
            if in_path(prog).is_none() {
                return Err(format!("{prog} still missing after installing {pkg}"));
            }
        }
    }
    if arches.contains(&Arch::Arm64) {
        let mut c = Command::new("dpkg");
        c.arg("--print-foreign-architectures");
        let foreign = output(c)?;
        if foreign.lines().any(|l| l.trim() == "arm64") {
            say("dpkg foreign architecture arm64: present");
        } else {
            say("adding dpkg foreign architecture arm64 (for apt-get download of arm64 packages)");
            if !is_root() {
                return Err("need root to run dpkg --add-architecture arm64".into());
            }
            let mut c = Command::new("dpkg");
            c.args(["--add-architecture", "arm64"]);
            super::run(c)?;
            apt_get(&["update"])?;
        }
    }
    Ok(())
}

/// The .deb of `pkg` for `arch` in `downloads`, if one is there.
fn find_deb(downloads: &Path, pkg: &str, arch: &str) -> Result<Option<PathBuf>, String> {
    let prefix = format!("{pkg}_");
    let suffix = format!("_{arch}.deb");
    let mut found: Vec<PathBuf> = fs::read_dir(downloads)
        .map_err(|e| format!("cannot list {}: {e}", downloads.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(&suffix)
        })
        .collect();
    found.sort();
    Ok(found.pop())
}

/// Downloads `pkg:arch` with `apt-get download` into `downloads` (once).
fn download_deb(downloads: &Path, pkg: &str, arch: &str) -> Result<PathBuf, String> {
    if let Some(p) = find_deb(downloads, pkg, arch)? {
        say(format!("{pkg}:{arch}: cached {}", p.display()));
        return Ok(p);
    }
    say(format!("{pkg}:{arch}: downloading"));
    let tmp = downloads.join(format!("tmp-{}", std::process::id()));
    rm_rf(&tmp)?;
    mkdir(&tmp)?;
    let spec = format!("{pkg}:{arch}");
    let attempt = |tmp: &Path| {
        let mut c = Command::new("apt-get");
        c.current_dir(tmp).args(["download", &spec]);
        super::run(c)
    };
    if attempt(&tmp).is_err() {
        say("apt-get download failed; running apt-get update and trying again");
        apt_get(&["update"])?;
        attempt(&tmp)?;
    }
    let got = find_deb(&tmp, pkg, arch)?
        .ok_or_else(|| format!("apt-get download {spec} left no .deb in {}", tmp.display()))?;
    let dest = downloads.join(got.file_name().unwrap_or_default());
    rename(&got, &dest)?;
    rm_rf(&tmp)?;
    Ok(dest)
}

/// Unpacks `deb` into `dest` with `dpkg -x` (once; `dest` appears only when complete).
fn unpack_deb(deb: &Path, dest: &Path) -> Result<(), String> {
    if dest.is_dir() {
        say(format!("unpacked: {}", dest.display()));
        return Ok(());
    }
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    rm_rf(&tmp)?;
    let mut c = Command::new("dpkg");
    c.arg("-x").arg(deb).arg(&tmp);
    super::run(c)?;
    rename(&tmp, dest)
}

fn deb_version(deb: &Path) -> Result<String, String> {
    let mut c = Command::new("dpkg-deb");
    c.arg("-f").arg(deb).arg("Version");
    Ok(output(c)?.trim().to_string())
}

/// Picks the kernel image package for `arch`: the environment, else the
/// newest already downloaded, else the newest `linux-image-6.1.0-NN-cloud-ARCH-unsigned`
/// apt-cache knows.
fn choose_kernel(downloads: &Path, arch: Arch) -> Result<String, String> {
    if let Ok(p) = std::env::var(arch.env_kernel()) {
        say(format!("kernel package from {}: {p}", arch.env_kernel()));
        return Ok(p);
    }
    let abi = |name: &str| -> Option<u32> {
        name.strip_prefix("linux-image-6.1.0-")?
            .strip_suffix(&format!("-cloud-{}-unsigned", arch.deb()))?
            .parse()
            .ok()
    };
    let mut cached: Vec<(u32, String)> = fs::read_dir(downloads)
        .map_err(|e| format!("cannot list {}: {e}", downloads.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let pkg = n.split('_').next()?.to_string();
            n.ends_with(&format!("_{}.deb", arch.deb()))
                .then_some(())
                .and_then(|()| abi(&pkg).map(|v| (v, pkg)))
        })
        .collect();
    cached.sort();
    if let Some((_, pkg)) = cached.pop() {
        say(format!("kernel package (already downloaded): {pkg}"));
        return Ok(pkg);
    }
    let search = || -> Result<Vec<(u32, String)>, String> {
        let mut c = Command::new("apt-cache");
        c.args([
            "search",
            "--names-only",
            &format!(
                "^linux-image-6\\.1\\.0-[0-9]+-cloud-{}-unsigned$",
                arch.deb()
            ),
        ]);
        let mut v: Vec<(u32, String)> = output(c)?
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|p| abi(p).map(|n| (n, p.to_string())))
            .collect();
        v.sort();
        Ok(v)
    };
    let mut found = search()?;
    if found.is_empty() {
        say("apt-cache knows no such kernel; running apt-get update");
        apt_get(&["update"])?;
        found = search()?;
    }
    let (_, pkg) = found.pop().ok_or_else(|| {
        format!(
            "apt-cache finds no linux-image-6.1.0-NN-cloud-{}-unsigned",
            arch.deb()
        )
    })?;
    say(format!(
        "kernel package (newest in apt-cache, recorded by its download): {pkg}"
    ));
    Ok(pkg)
}

/// Everything one architecture's guest needs.
#[derive(Debug)]
struct Guest {
    arch: Arch,
    kernel_package: String,
    kernel_version: String,
    release: String,
    vmlinuz: PathBuf,
    /// (module name, .ko bytes), in load order.
    modules: Vec<(String, Vec<u8>)>,
    busybox: Vec<u8>,
    busybox_version: String,
}

fn prepare_guest(lab: &Path, arch: Arch) -> Result<Guest, String> {
    let downloads = lab.join("downloads");
    let pkg = choose_kernel(&downloads, arch)?;
    let deb = download_deb(&downloads, &pkg, arch.deb())?;
    let kernel_version = deb_version(&deb)?;
    let root = lab.join("kernels").join(&pkg);
    unpack_deb(&deb, &root)?;
    let moddir = root.join("lib/modules");
    let mut releases: Vec<String> = fs::read_dir(&moddir)
        .map_err(|e| format!("cannot list {}: {e}", moddir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    releases.sort();
    let release = match releases.as_slice() {
        [one] => one.clone(),
        _ => {
            return Err(format!(
                "expected one kernel release in {}, found {releases:?}",
                moddir.display()
            ))
        }
    };
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        return Err(format!("no kernel image {}", vmlinuz.display()));
    }
    say(format!(
        "kernel {pkg} {kernel_version}: release {release}, image {}",
        vmlinuz.display()
    ));
    let modules = guest_modules(&moddir.join(&release), GUEST_MODULES)?;
    say(format!(
        "guest modules (load order): {}",
        modules
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));

    let (busybox, busybox_version) = match arch {
        Arch::Amd64 => {
            let mut c = Command::new("dpkg");
            c.args(["-L", "busybox-static"]);
            let path = output(c)?
                .lines()
                .find(|l| l.ends_with("/bin/busybox"))
                .map(PathBuf::from)
                .ok_or("dpkg -L busybox-static lists no /bin/busybox")?;
            let mut c = Command::new("dpkg-query");
            c.args(["-W", "-f", "${Version}", "busybox-static"]);
            let v = output(c)?;
            say(format!("busybox: {} (busybox-static {v})", path.display()));
            (read(&path)?, format!("busybox-static:amd64 {v}"))
        }
        Arch::Arm64 => {
            let deb = download_deb(&downloads, "busybox-static", "arm64")?;
            let v = deb_version(&deb)?;
            let dir = lab.join("busybox").join("arm64");
            unpack_deb(&deb, &dir)?;
            let path = ["bin/busybox", "usr/bin/busybox"]
                .iter()
                .map(|p| dir.join(p))
                .find(|p| p.is_file())
                .ok_or_else(|| format!("no bin/busybox in {}", dir.display()))?;
            say(format!(
                "busybox: {} (busybox-static:arm64 {v})",
                path.display()
            ));
            (read(&path)?, format!("busybox-static:arm64 {v}"))
        }
    };
    let want_machine: u16 = match arch {
        Arch::Amd64 => 62,
        Arch::Arm64 => 183,
    };
    if busybox.len() < 20
        || &busybox[..4] != b"\x7fELF"
        || u16::from_le_bytes([busybox[18], busybox[19]]) != want_machine
    {
        return Err(format!("busybox for {} is not an ELF for it", arch.deb()));
    }
    Ok(Guest {
        arch,
        kernel_package: pkg,
        kernel_version,
        release,
        vmlinuz,
        modules,
        busybox,
        busybox_version,
    })
}

// ---------------------------------------------------------------------------
// Kernel modules: find them, read their dependencies from `.modinfo`

fn module_name(file: &str) -> Option<String> {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|s| file.strip_suffix(s))
        .map(|n| n.replace('-', "_"))
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    for e in fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let t = e.file_type().map_err(|e| e.to_string())?;
        if t.is_dir() {
            walk_files(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// The module file's bytes, decompressed on the host if needed.
fn module_bytes(p: &Path) -> Result<Vec<u8>, String> {
    let n = p.to_string_lossy();
    let tool = if n.ends_with(".xz") {
        "xz"
    } else if n.ends_with(".zst") {
        "zstd"
    } else if n.ends_with(".gz") {
        "gzip"
    } else {
        return read(p);
    };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(p)
        .output()
        .map_err(|e| format!("cannot run {tool} to decompress {}: {e}", p.display()))?;
    if !out.status.success() {
        return Err(format!("{tool} -dc {} failed", p.display()));
    }
    Ok(out.stdout)
}

/// `wanted` and their dependencies in load order, built-in ones left out.
fn guest_modules(moddir: &Path, wanted: &[&str]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let builtin: HashSet<String> = fs::read_to_string(moddir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| module_name(l.rsplit('/').next().unwrap_or(l)))
        .collect();
    let mut files = Vec::new();
    walk_files(&moddir.join("kernel"), &mut files)?;
    let index: HashMap<String, PathBuf> = files
        .into_iter()
        .filter_map(|p| {
            let n = module_name(&p.file_name()?.to_string_lossy())?;
            Some((n, p))
        })
        .collect();

    fn visit(
        name: &str,
        index: &HashMap<String, PathBuf>,
        builtin: &HashSet<String>,
        seen: &mut HashSet<String>,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), String> {
        let name = name.replace('-', "_");
        if !seen.insert(name.clone()) {
            return Ok(());
        }
        if builtin.contains(&name) {
            say(format!("module {name}: built into the kernel"));
            return Ok(());
        }
        let path = index
            .get(&name)
            .ok_or_else(|| format!("module {name} is neither built in nor in the package"))?;
        let bytes = module_bytes(path)?;
        let modinfo = elf_section(&bytes, ".modinfo")
            .ok_or_else(|| format!("{} has no .modinfo section", path.display()))?;
        let depends = modinfo
            .split(|&b| b == 0)
            .find_map(|kv| kv.strip_prefix(b"depends="))
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .unwrap_or_default();
        for dep in depends.split(',').filter(|d| !d.is_empty()) {
            visit(dep, index, builtin, seen, out)?;
        }
        out.push((name, bytes));
        Ok(())
    }

    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for w in wanted {
        visit(w, &index, &builtin, &mut seen, &mut out)?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// ELF64 (little endian): what the lab needs, std only

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
fn us(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

/// The contents of the section called `name` in an ELF64 LE file.
fn elf_section<'a>(b: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if b.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = us(le64(b, 0x28)?)?;
    let shentsize = usize::from(le16(b, 0x3a)?);
    let shnum = usize::from(le16(b, 0x3c)?);
    let shstrndx = usize::from(le16(b, 0x3e)?);
    let sh = |i: usize| -> Option<(u32, &'a [u8])> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let off = us(le64(b, at + 24)?)?;
        let size = us(le64(b, at + 32)?)?;
        Some((le32(b, at)?, b.get(off..off.checked_add(size)?)?))
    };
    let (_, strtab) = sh(shstrndx)?;
    (0..shnum).find_map(|i| {
        let (n, data) = sh(i)?;
        let n = us(u64::from(n))?;
        let s = strtab.get(n..)?;
        let end = s.iter().position(|&c| c == 0)?;
        (&s[..end] == name.as_bytes()).then_some(data)
    })
}

/// The parts of an ELF64 core file's layout the lab reads.
#[derive(Debug)]
struct CoreLayout {
    ehdr: [u8; 64],
    phoff: u64,
    phentsize: usize,
    phnum: usize,
    shoff: u64,
    shentsize: usize,
    shnum: usize,
}

fn read_at(f: &mut File, off: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut v = vec![0; len];
    f.seek(SeekFrom::Start(off))
        .and_then(|_| f.read_exact(&mut v))
        .map_err(|e| format!("cannot read {len} bytes at {off:#x}: {e}"))?;
    Ok(v)
}

fn core_layout(f: &mut File) -> Result<CoreLayout, String> {
    let mut ehdr = [0u8; 64];
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.read_exact(&mut ehdr))
        .map_err(|e| format!("cannot read the ELF header: {e}"))?;
    if &ehdr[..6] != b"\x7fELF\x02\x01" {
        return Err("not an ELF64 little-endian file".into());
    }
    let bad = || "truncated ELF header".to_string();
    let phoff = le64(&ehdr, 0x20).ok_or_else(bad)?;
    let shoff = le64(&ehdr, 0x28).ok_or_else(bad)?;
    let phentsize = usize::from(le16(&ehdr, 0x36).ok_or_else(bad)?);
    let mut phnum = usize::from(le16(&ehdr, 0x38).ok_or_else(bad)?);
    let shentsize = usize::from(le16(&ehdr, 0x3a).ok_or_else(bad)?);
    let mut shnum = usize::from(le16(&ehdr, 0x3c).ok_or_else(bad)?);
    // Extended numbering: section 0 holds the real counts.
    if (phnum == 0xffff || (shnum == 0 && shoff != 0)) && shentsize >= 64 {
        let sh0 = read_at(f, shoff, 64)?;
        if phnum == 0xffff {
            phnum = us(u64::from(le32(&sh0, 44).ok_or_else(bad)?)).ok_or_else(bad)?;
        }
        if shnum == 0 {
            shnum = us(le64(&sh0, 32).ok_or_else(bad)?).ok_or_else(bad)?;
        }
    }
    if phentsize != 56 || (shnum > 0 && shentsize != 64) {
        return Err(format!(
            "unexpected ELF header sizes: phentsize {phentsize}, shentsize {shentsize}"
        ));
    }
    Ok(CoreLayout {
        ehdr,
        phoff,
        phentsize,
        phnum,
        shoff,
        shentsize,
        shnum,
    })
}

/// (p_type, p_offset, p_filesz) of each program header.
type Segments = Vec<(u32, u64, u64)>;

/// Program headers as (type, offset, filesz) plus the raw table.
fn program_headers(f: &mut File, l: &CoreLayout) -> Result<(Vec<u8>, Segments), String> {
    let raw = read_at(f, l.phoff, l.phnum * l.phentsize)?;
    let v = raw
        .chunks_exact(l.phentsize)
        .map(|p| {
            (
                le32(p, 0).unwrap_or(0),
                le64(p, 8).unwrap_or(0),
                le64(p, 32).unwrap_or(0),
            )
        })
        .collect();
    Ok((raw, v))
}

/// Copies the ELF core `src` to `dst` with the program headers moved right
/// after the ELF header (offset 64) and the section headers after them.
/// makedumpfile 1.7.2 assumes that layout; QEMU 7.2 puts the section headers
/// first. Segment data stays where it is.
fn rewrite_elf_phdrs_first(src: &Path, dst: &Path) -> Result<(), String> {
    let ctx = |e: String| format!("{}: {e}", src.display());
    let mut f = File::open(src).map_err(|e| ctx(e.to_string()))?;
    let l = core_layout(&mut f).map_err(ctx)?;
    let (phdrs, segs) = program_headers(&mut f, &l).map_err(ctx)?;
    let shdrs = read_at(&mut f, l.shoff, l.shnum * l.shentsize).map_err(ctx)?;
    let ph_len = phdrs.len() as u64;
    let sh_len = shdrs.len() as u64;
    let new_end = 64 + ph_len + sh_len;
    let mut first_data = u64::MAX;
    for &(_, off, size) in &segs {
        if size > 0 {
            first_data = first_data.min(off);
        }
    }
    for s in shdrs.chunks_exact(64) {
        let (ty, off, size) = (
            le32(s, 4).unwrap_or(0),
            le64(s, 24).unwrap_or(0),
            le64(s, 32).unwrap_or(0),
        );
        // SHT_NULL and SHT_NOBITS own no bytes of the file.
        if ty != 0 && ty != 8 && size > 0 {
            first_data = first_data.min(off);
        }
    }
    if new_end > first_data {
        return Err(format!(
            "{}: headers ({new_end} bytes) would overlap data at {first_data:#x}",
            src.display()
        ));
    }
    let old_end = (l.phoff + ph_len).max(l.shoff + sh_len).max(64);
    drop(f);
    fs::copy(src, dst)
        .map_err(|e| format!("cannot copy {} to {}: {e}", src.display(), dst.display()))?;
    let mut ehdr = l.ehdr;
    ehdr[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    let new_shoff = if l.shnum > 0 { 64 + ph_len } else { 0 };
    ehdr[0x28..0x30].copy_from_slice(&new_shoff.to_le_bytes());
    let mut head = Vec::with_capacity(us(new_end.max(old_end)).unwrap_or(0));
    head.extend_from_slice(&ehdr);
    head.extend_from_slice(&phdrs);
    head.extend_from_slice(&shdrs);
    // Old header bytes past the new headers (none for QEMU's layout) become zero.
    while (head.len() as u64) < old_end.min(first_data) {
        head.push(0);
    }
    let mut out = OpenOptions::new()
        .write(true)
        .open(dst)
        .map_err(|e| format!("cannot open {}: {e}", dst.display()))?;
    out.write_all(&head)
        .map_err(|e| format!("cannot write {}: {e}", dst.display()))
}

/// The VMCOREINFO text of an ELF core (from its PT_NOTE segments).
fn elf_vmcoreinfo(path: &Path) -> Result<String, String> {
    let ctx = |e: String| format!("{}: {e}", path.display());
    let mut f = File::open(path).map_err(|e| ctx(e.to_string()))?;
    let l = core_layout(&mut f).map_err(ctx)?;
    let (_, segs) = program_headers(&mut f, &l).map_err(ctx)?;
    for (ty, off, size) in segs {
        if ty != 4 || size > (16 << 20) {
            continue;
        }
        let notes = read_at(&mut f, off, us(size).unwrap_or(0)).map_err(ctx)?;
        // A simple byte search is enough: the text starts with OSRELEASE=.
        if let Some(start) = find(&notes, b"OSRELEASE=") {
            let text = &notes[start..];
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            return Ok(String::from_utf8_lossy(&text[..end]).into_owned());
        }
    }
    Err(format!(
        "{}: no VMCOREINFO in the ELF notes (did the guest load qemu_fw_cfg? is -device vmcoreinfo given?)",
        path.display()
    ))
}

fn vmcoreinfo_value<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// The guest: initramfs (cpio newc, written here) and a tiny threaded program

/// A cpio "newc" archive, as the kernel's initramfs unpacker reads it.
#[derive(Debug, Default)]
struct Cpio {
    data: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, uid: u32, rdev: (u32, u32), body: &[u8]) {
        self.ino += 1;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let size = u32::try_from(body.len()).expect("initramfs entry under 4 GiB");
        let namesize = u32::try_from(name.len() + 1).expect("short name");
        let fields = [
            self.ino, mode, uid, uid, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.data.extend_from_slice(b"070701");
        for f in fields {
            let _ = write!(HexSink(&mut self.data), "{f:08x}");
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(body);
        self.pad();
    }
    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }
    fn dir(&mut self, name: &str, uid: u32) {
        self.entry(name, 0o040755, uid, (0, 0), &[]);
    }
    fn file(&mut self, name: &str, perm: u32, body: &[u8]) {
        self.entry(name, 0o100000 | perm, 0, (0, 0), body);
    }
    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, 0, (0, 0), target.as_bytes());
    }
    fn chardev(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(name, 0o020000 | perm, 0, (major, minor), &[]);
    }
    fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, 0, (0, 0), &[]);
        while !self.data.len().is_multiple_of(512) {
            self.data.push(0);
        }
        self.data
    }
}

/// `fmt::Write` into a byte vector.
#[derive(Debug)]
struct HexSink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for HexSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn initramfs(g: &Guest, spec: &SetSpec, settle: u32) -> Vec<u8> {
    let mut c = Cpio::default();
    for d in [
        "bin", "dev", "etc", "proc", "sys", "tmp", "out", "modules", "root", "home",
    ] {
        c.dir(d, 0);
    }
    c.dir("home/lab", 1000);
    c.chardev("dev/console", 0o600, 5, 1);
    c.chardev("dev/null", 0o666, 1, 3);
    c.file("bin/busybox", 0o755, &g.busybox);
    c.symlink("bin/sh", "busybox");
    c.symlink("bin/kvm-lab-argv0-differs", "busybox");
    c.symlink("bin/kvm) odd (name", "busybox");
    c.file(
        "bin/kvm-lab-long-script-name",
        0o755,
        LONG_SCRIPT.as_bytes(),
    );
    c.file("bin/kvm-lab-threads", 0o755, &threads_elf(g.arch));
    c.file("init", 0o755, INIT_SH.as_bytes());
    c.file("capture.sh", 0o755, CAPTURE_SH.as_bytes());
    c.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nlab:x:1000:1000:kvm lab:/home/lab:/bin/sh\n",
    );
    c.file("etc/group", 0o644, b"root:x:0:\nlab:x:1000:\n");
    c.file(
        "etc/kvm-lab.conf",
        0o644,
        format!("KVM_LAB_SET={}\nKVM_LAB_SETTLE={settle}\n", spec.name).as_bytes(),
    );
    let mut order = String::new();
    for (name, bytes) in &g.modules {
        c.file(&format!("modules/{name}.ko"), 0o644, bytes);
        order.push_str(name);
        order.push('\n');
    }
    c.file("modules/order", 0o644, order.as_bytes());
    c.finish()
}

/// A tiny assembler: bytes plus label fix-ups.
#[derive(Debug, Default)]
struct Asm {
    code: Vec<u8>,
    labels: HashMap<&'static str, usize>,
    fixups: Vec<(usize, &'static str, Fix)>,
}

#[derive(Debug, Clone, Copy)]
enum Fix {
    /// x86: 8-bit displacement from the end of the byte.
    Rel8,
    /// x86: 32-bit displacement from the end of the four bytes.
    Rel32,
    /// aarch64 CBZ: imm19 words at bit 5.
    A64Imm19,
    /// aarch64 B: imm26 words.
    A64Imm26,
    /// aarch64 ADR: 21-bit byte offset split in immlo/immhi.
    A64Adr,
}

impl Asm {
    fn bytes(&mut self, b: &[u8]) {
        self.code.extend_from_slice(b);
    }
    fn label(&mut self, l: &'static str) {
        self.labels.insert(l, self.code.len());
    }
    /// Emits `b`, then a fix-up placeholder of the right width.
    fn fix(&mut self, b: &[u8], l: &'static str, f: Fix) {
        self.bytes(b);
        self.fixups.push((self.code.len(), l, f));
        match f {
            Fix::Rel8 => self.code.push(0),
            Fix::Rel32 => self.code.extend_from_slice(&[0; 4]),
            _ => {}
        }
    }
    fn a64(&mut self, insn: u32) {
        self.code.extend_from_slice(&insn.to_le_bytes());
    }
    /// An aarch64 instruction whose offset field points at `l`.
    fn a64_fix(&mut self, insn: u32, l: &'static str, f: Fix) {
        self.fixups.push((self.code.len(), l, f));
        self.a64(insn);
    }
    fn finish(mut self) -> Vec<u8> {
        for (at, l, f) in std::mem::take(&mut self.fixups) {
            let target = i64::try_from(self.labels[l]).expect("small");
            let here = i64::try_from(at).expect("small");
            match f {
                Fix::Rel8 => {
                    let d = i8::try_from(target - (here + 1)).expect("rel8 in range");
                    self.code[at] = d.to_le_bytes()[0];
                }
                Fix::Rel32 => {
                    let d = i32::try_from(target - (here + 4)).expect("rel32 in range");
                    self.code[at..at + 4].copy_from_slice(&d.to_le_bytes());
                }
                Fix::A64Imm19 | Fix::A64Imm26 | Fix::A64Adr => {
                    let d = target - here;
                    let mut insn = u32::from_le_bytes(self.code[at..at + 4].try_into().expect("4"));
                    let field = |v: i64, bits: u32| -> u32 {
                        u32::try_from(v & ((1i64 << bits) - 1)).expect("masked")
                    };
                    match f {
                        Fix::A64Imm19 => insn |= field(d / 4, 19) << 5,
                        Fix::A64Imm26 => insn |= field(d / 4, 26),
                        _ => insn |= (field(d, 2) << 29) | (field(d >> 2, 19) << 5),
                    }
                    self.code[at..at + 4].copy_from_slice(&insn.to_le_bytes());
                }
            }
        }
        self.code
    }
}

/// A static ELF executable (no libc) that starts two threads named
/// "kvm-thread-a" and "kvm-thread-b"; all three then sleep forever
/// (pause / ppoll). Busybox has no threaded applet, and the lab needs a
/// process with several threads.
fn threads_elf(arch: Arch) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HDRS: usize = 64 + 56;
    // CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
    const FLAGS: u32 = 0x0005_0f00;
    let mut a = Asm::default();
    let machine: u16 = match arch {
        Arch::Amd64 => {
            for child in ["child_a", "child_b"] {
                a.bytes(&[0xb8, 56, 0, 0, 0]); // mov eax, SYS_clone
                a.bytes(&[0xbf]); // mov edi, FLAGS
                a.bytes(&FLAGS.to_le_bytes());
                a.bytes(&[0x31, 0xf6]); // xor esi, esi   (same stack: no pushes)
                a.bytes(&[0x31, 0xd2]); // xor edx, edx
                a.bytes(&[0x45, 0x31, 0xd2]); // xor r10d, r10d
                a.bytes(&[0x45, 0x31, 0xc0]); // xor r8d, r8d
                a.bytes(&[0x0f, 0x05]); // syscall
                a.bytes(&[0x85, 0xc0]); // test eax, eax
                a.fix(&[0x74], child, Fix::Rel8); // jz child
            }
            a.label("loop");
            a.bytes(&[0xb8, 34, 0, 0, 0]); // mov eax, SYS_pause
            a.bytes(&[0x0f, 0x05]); // syscall
            a.fix(&[0xeb], "loop", Fix::Rel8); // jmp loop
            for (child, name) in [("child_a", "name_a"), ("child_b", "name_b")] {
                a.label(child);
                a.fix(&[0x48, 0x8d, 0x35], name, Fix::Rel32); // lea rsi, [rip+name]
                a.bytes(&[0xbf, 15, 0, 0, 0]); // mov edi, PR_SET_NAME
                a.bytes(&[0xb8, 157, 0, 0, 0]); // mov eax, SYS_prctl
                a.bytes(&[0x0f, 0x05]); // syscall
                a.fix(&[0xeb], "loop", Fix::Rel8); // jmp loop
            }
            62
        }
        Arch::Arm64 => {
            let movz = |rd: u32, imm: u32, hw: u32| 0xd280_0000 | (hw << 21) | (imm << 5) | rd;
            let movk = |rd: u32, imm: u32, hw: u32| 0xf280_0000 | (hw << 21) | (imm << 5) | rd;
            const SVC0: u32 = 0xd400_0001;
            for child in ["child_a", "child_b"] {
                a.a64(movz(8, 220, 0)); // x8 = SYS_clone
                a.a64(movz(0, FLAGS & 0xffff, 0));
                a.a64(movk(0, FLAGS >> 16, 1));
                for r in 1..=4 {
                    a.a64(movz(r, 0, 0)); // stack 0 = same stack, no tid pointers
                }
                a.a64(SVC0);
                a.a64_fix(0xb400_0000, child, Fix::A64Imm19); // cbz x0, child
            }
            a.label("loop");
            for r in 0..=4 {
                a.a64(movz(r, 0, 0)); // ppoll(NULL, 0, NULL, NULL, 0): forever
            }
            a.a64(movz(8, 73, 0));
            a.a64(SVC0);
            a.a64_fix(0x1400_0000, "loop", Fix::A64Imm26); // b loop
            a.label("child_a");
            a.a64_fix(0x1000_0001, "name_a", Fix::A64Adr); // adr x1, name_a
            a.a64_fix(0x1400_0000, "set_name", Fix::A64Imm26);
            a.label("child_b");
            a.a64_fix(0x1000_0001, "name_b", Fix::A64Adr); // adr x1, name_b
            a.label("set_name");
            a.a64(movz(0, 15, 0)); // PR_SET_NAME
            a.a64(movz(8, 167, 0)); // SYS_prctl
            a.a64(SVC0);
            a.a64_fix(0x1400_0000, "loop", Fix::A64Imm26);
            183
        }
    };
    a.label("name_a");
    a.bytes(b"kvm-thread-a\0");
    a.label("name_b");
    a.bytes(b"kvm-thread-b\0");
    let code = a.finish();
    let total = (HDRS + code.len()) as u64;
    let mut e = Vec::with_capacity(HDRS + code.len());
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&machine.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(BASE + HDRS as u64).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes()); // ehsize phentsize phnum shentsize shnum shstrndx
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R X
    for v in [0, BASE, BASE, total, total, 0x1000] {
        e.extend_from_slice(&v.to_le_bytes()); // offset vaddr paddr filesz memsz align
    }
    e.extend_from_slice(&code);
    e
}

// ---------------------------------------------------------------------------
// QMP

/// A QMP connection to one QEMU.
#[derive(Debug)]
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn connect(sock: &Path, qemu: &mut Child) -> Result<Qmp, String> {
        let t = Instant::now();
        let stream = loop {
            match UnixStream::connect(sock) {
                Ok(s) => break s,
                Err(e) => {
                    if let Ok(Some(st)) = qemu.try_wait() {
                        return Err(format!("QEMU exited ({st}) before QMP was up"));
                    }
                    if t.elapsed() > Duration::from_secs(60) {
                        return Err(format!("cannot connect to QMP at {}: {e}", sock.display()));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(600)))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut q = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = q.line()?;
        if !greeting.contains("\"QMP\"") {
            return Err(format!("unexpected QMP greeting: {greeting}"));
        }
        q.execute("qmp_capabilities", "")?;
        Ok(q)
    }

    fn line(&mut self) -> Result<String, String> {
        let mut l = String::new();
        match self.reader.read_line(&mut l) {
            Ok(0) => Err("QMP connection closed".into()),
            Ok(_) => Ok(l.trim().to_string()),
            Err(e) => Err(format!("QMP read: {e}")),
        }
    }

    /// Runs `cmd` with `args` (a JSON object's members, or empty); events
    /// that arrive meanwhile are skipped.
    fn execute(&mut self, cmd: &str, args: &str) -> Result<String, String> {
        let msg = if args.is_empty() {
            format!("{{\"execute\": \"{cmd}\"}}\n")
        } else {
            format!("{{\"execute\": \"{cmd}\", \"arguments\": {{{args}}}}}\n")
        };
        self.writer
            .write_all(msg.as_bytes())
            .map_err(|e| format!("QMP write: {e}"))?;
        loop {
            let l = self.line()?;
            if l.starts_with("{\"return\"") {
                return Ok(l);
            }
            if l.starts_with("{\"error\"") {
                return Err(format!("QMP {cmd} failed: {l}"));
            }
            // {"timestamp": ..., "event": ...}: not ours.
        }
    }

    fn dump(&mut self, path: &Path, paging: bool, format: &str) -> Result<(), String> {
        let t = Instant::now();
        let args = format!(
            "\"paging\": {paging}, \"protocol\": {}, \"format\": \"{format}\"",
            json_str(&format!("file:{}", path.display()))
        );
        self.execute("dump-guest-memory", &args)?;
        let size = file_size(path);
        if size == 0 {
            return Err(format!(
                "dump-guest-memory wrote nothing to {}",
                path.display()
            ));
        }
        say(format!(
            "  {} ({format}, paging {paging}): {} in {:.1}s",
            path.file_name().unwrap_or_default().to_string_lossy(),
            human(size),
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// One set

/// What a finished set records in `.complete` (key=value lines).
#[derive(Debug, Default)]
struct Facts {
    map: BTreeMap<String, String>,
}

impl Facts {
    fn set(&mut self, k: &str, v: impl ToString) {
        self.map.insert(k.to_string(), v.to_string());
    }
    fn get(&self, k: &str) -> &str {
        self.map.get(k).map(String::as_str).unwrap_or("?")
    }
    fn render(&self) -> String {
        self.map.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }
    fn parse(s: &str) -> Facts {
        let map = s
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Facts { map }
    }
}

/// The QEMU command line of a set, file paths left as placeholders for the fingerprint.
fn qemu_args(spec: &SetSpec, paths: Option<(&Path, &Path, &Path, &Path, &Path)>) -> Vec<String> {
    let p = |i: usize| -> String {
        match paths {
            Some(ps) => {
                let all = [ps.0, ps.1, ps.2, ps.3, ps.4];
                all[i].display().to_string()
            }
            None => format!("<path{i}>"),
        }
    };
    let mut a: Vec<String> = vec![
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-display".into(),
        "none".into(),
        "-no-reboot".into(),
        "-accel".into(),
        "tcg,thread=multi".into(),
    ];
    a.extend(spec.arch.machine_args().iter().map(|s| s.to_string()));
    a.extend([
        "-m".to_string(),
        "256M".into(),
        "-smp".into(),
        "2".into(),
        "-kernel".into(),
        p(0),
        "-initrd".into(),
        p(1),
        "-append".into(),
        spec.cmdline(),
        "-serial".into(),
        format!("file:{}", p(2)),
        "-device".into(),
        "vmcoreinfo".into(),
        "-drive".into(),
        format!("if=none,id=truth,format=raw,file={}", p(3)),
        "-device".into(),
        "virtio-blk-pci,drive=truth".into(),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", p(4)),
    ]);
    a
}

fn make_set(
    lab: &Path,
    spec: &SetSpec,
    g: &Guest,
    settle: u32,
    force: bool,
) -> Result<Facts, String> {
    let dir = lab.join("sets").join(spec.name);
    let marker = dir.join(".complete");
    let initrd = initramfs(g, spec, settle);
    let mut fp = Fnv::new();
    fp.add(RECIPE.as_bytes());
    fp.add(&initrd);
    fp.add(g.kernel_package.as_bytes());
    fp.add(g.kernel_version.as_bytes());
    fp.add(qemu_args(spec, None).join(" ").as_bytes());
    let fingerprint = format!("{:016x}", fp.0);

    if let Ok(text) = fs::read_to_string(&marker) {
        let facts = Facts::parse(&text);
        if facts.get("fingerprint") == fingerprint && !force {
            say(format!("up to date ({}): nothing to do", marker.display()));
            return Ok(facts);
        }
        if force {
            say("--force: making it again");
        } else {
            say(format!(
                "recipe changed (fingerprint {} -> {fingerprint}): making it again",
                facts.get("fingerprint")
            ));
        }
    }

    let partial = lab.join("sets").join(format!("{}.partial", spec.name));
    let work = lab.join("work").join(spec.name);
    let mut boots = 0;
    let (boot, info) = loop {
        boots += 1;
        rm_rf(&partial)?;
        mkdir(&partial)?;
        rm_rf(&work)?;
        mkdir(&work)?;
        let boot = boot_and_dump(spec, g, &initrd, &partial, &work)?;
        let info = elf_vmcoreinfo(&partial.join("vmcore.elf"))?;
        let offset = vmcoreinfo_value(&info, "KERNELOFFSET").unwrap_or("");
        say(format!(
            "VMCOREINFO: OSRELEASE={} KERNELOFFSET={offset}",
            vmcoreinfo_value(&info, "OSRELEASE").unwrap_or("?")
        ));
        if offset.is_empty() {
            return Err("VMCOREINFO has no KERNELOFFSET".into());
        }
        let zero = u64::from_str_radix(offset, 16)
            .map(|v| v == 0)
            .unwrap_or(false);
        if spec.kaslr && zero {
            if boots < 2 {
                say("KASLR is on but KERNELOFFSET is 0 (it happens): booting once more");
                continue;
            }
            return Err("KASLR is on but KERNELOFFSET came out 0 on two boots".into());
        }
        if !spec.kaslr && !zero {
            return Err(format!("booted with nokaslr but KERNELOFFSET is {offset}"));
        }
        break (boot, info);
    };
    let offset = format!(
        "0x{}",
        vmcoreinfo_value(&info, "KERNELOFFSET").unwrap_or("0")
    );

    let mut dumps: Vec<(&str, &str)> = vec![("elf", "vmcore.elf")];
    if spec.arch == Arch::Amd64 {
        dumps.push(("elf-paging", "vmcore-paging.elf"));
    }
    dumps.push(("kdump-zlib-flat", "vmcore.kdump-zlib.flat"));

    let mut notes = Vec::new();
    let mlog = partial.join("makedumpfile.log");
    section(format!("set {}: makedumpfile", spec.name));
    {
        let flat = partial.join("vmcore.kdump-zlib.flat");
        let out = partial.join("vmcore.kdump-zlib");
        let mut c = Command::new("makedumpfile");
        c.arg("-R").arg(&out);
        let stdin =
            File::open(&flat).map_err(|e| format!("cannot open {}: {e}", flat.display()))?;
        c.stdin(stdin);
        let s = shown(&c);
        eprintln!("$ {s} < {}", flat.display());
        let o = c.output().map_err(|e| format!("cannot run {s}: {e}"))?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&mlog)
            .map_err(|e| e.to_string())?;
        let _ = writeln!(f, "$ {s} < {}", flat.display());
        let _ = f.write_all(&o.stdout);
        let _ = f.write_all(&o.stderr);
        if !o.status.success() || file_size(&out) == 0 {
            return Err(format!(
                "{s} failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        say(format!("  vmcore.kdump-zlib: {}", human(file_size(&out))));
        dumps.push(("kdump-zlib", "vmcore.kdump-zlib"));
    }
    if spec.arch == Arch::Amd64 {
        let fixed = partial.join("vmcore.phdrs-first.elf.tmp");
        say("rewriting vmcore.elf with program headers at offset 64 (makedumpfile 1.7.2 needs that)");
        rewrite_elf_phdrs_first(&partial.join("vmcore.elf"), &fixed)?;
        for (name, file, args) in [
            (
                "makedumpfile-lzo",
                "vmcore.makedumpfile-lzo",
                ["-l", "-d", "0"],
            ),
            (
                "makedumpfile-zlib-d31",
                "vmcore.makedumpfile-zlib-d31",
                ["-c", "-d", "31"],
            ),
        ] {
            let out = partial.join(file);
            rm_rf(&out)?;
            let mut c = Command::new("makedumpfile");
            c.args(args).arg(&fixed).arg(&out);
            run_logged(c, &mlog)?;
            say(format!("  {file}: {}", human(file_size(&out))));
            dumps.push((name, file));
        }
        rm_rf(&fixed)?;
    } else {
        notes.push(
            "no makedumpfile-lzo / makedumpfile-zlib-d31 dumps: Debian's makedumpfile 1.7.2 on this \
             x86_64 host reads only x86_64 dumps; on this aarch64 ELF (program headers moved to \
             offset 64) `makedumpfile -l -d 0` fails with \"vtop4_x86_64: Can't get the symbol of \
             init_level4_pgt/init_top_pgt ... check_release: Can't get the address of \
             system_utsname\"; makedumpfile -R (which only reassembles the flattened stream, no \
             architecture involved) did make vmcore.kdump-zlib"
                .to_string(),
        );
    }

    section(format!("set {}: ground truth", spec.name));
    write(&partial.join("kallsyms.txt"), &boot.kallsyms)?;
    write(&partial.join("truth.raw.txt"), &boot.truth)?;
    let truth = parse_truth(&boot.truth)?;
    if truth.release != g.release {
        return Err(format!(
            "guest says release {}, the package is {}",
            truth.release, g.release
        ));
    }
    notes.extend(truth.notes.iter().cloned());
    notes.push(format!(
        "the host stopped the VM {} ms after the ready line reached the console log",
        boot.stop_ms
    ));
    if boot.stop_ms > 2000 {
        notes.push("the stop came late: loadavg may have been updated once more before it".into());
    }
    if boots > 1 {
        notes.push("booted twice: the first KASLR boot came out with KERNELOFFSET 0".into());
    }
    let procs = truth.procs.len();
    let json = truth_json(spec, g, &truth, &boot.loadavg, &offset, &dumps, &mut notes)?;
    write(&partial.join("truth.json"), json)?;
    let checks = validate(&truth, &boot.loadavg)?;
    for c in &checks {
        say(format!("  ok: {c}"));
    }

    let mut facts = Facts::default();
    facts.set("fingerprint", &fingerprint);
    facts.set("arch", spec.arch.uname());
    facts.set(
        "kernel_package",
        format!("{} {}", g.kernel_package, g.kernel_version),
    );
    facts.set("release", &g.release);
    facts.set("kaslr", spec.kaslr);
    facts.set("kaslr_offset", &offset);
    facts.set("processes", procs);
    facts.set(
        "threads",
        truth.procs.iter().map(|p| p.threads.len()).sum::<usize>(),
    );
    facts.set(
        "kallsyms_lines",
        boot.kallsyms.iter().filter(|&&b| b == b'\n').count(),
    );
    facts.set(
        "loadavg",
        boot.loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    facts.set("boots", boots);
    facts.set("busybox", &g.busybox_version);
    facts.set(
        "dumps",
        dumps.iter().map(|(_, f)| *f).collect::<Vec<_>>().join(","),
    );
    // QEMU writes its dumps 0400: make the set readable for test runs as another user.
    for e in
        fs::read_dir(&partial).map_err(|e| format!("cannot list {}: {e}", partial.display()))?
    {
        let p = e.map_err(|e| e.to_string())?.path();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("cannot chmod {}: {e}", p.display()))?;
    }
    write(&partial.join(".complete"), facts.render())?;
    rm_rf(&dir)?;
    rename(&partial, &dir)?;
    rm_rf(&work)?;
    say(format!("set {} is in {}", spec.name, dir.display()));
    Ok(facts)
}

/// What one boot brought back.
#[derive(Debug)]
struct Boot {
    truth: Vec<u8>,
    kallsyms: Vec<u8>,
    loadavg: String,
    /// From seeing the ready line to QEMU confirming the stop.
    stop_ms: u128,
}

fn boot_and_dump(
    spec: &SetSpec,
    g: &Guest,
    initrd: &[u8],
    out: &Path,
    work: &Path,
) -> Result<Boot, String> {
    let initrd_path = work.join("initramfs.cpio");
    write(&initrd_path, initrd)?;
    let disk = work.join("truth.img");
    File::create(&disk)
        .and_then(|f| f.set_len(TRUTH_DISK_BYTES))
        .map_err(|e| format!("cannot create {}: {e}", disk.display()))?;
    let console = out.join("console.log");
    // Unix socket paths are short (108 bytes): keep it in the temp dir.
    let sock =
        std::env::temp_dir().join(format!("kvm-lab-{}-{}.qmp", std::process::id(), spec.name));
    rm_rf(&sock)?;
    let args = qemu_args(
        spec,
        Some((&g.vmlinuz, &initrd_path, &console, &disk, &sock)),
    );
    let qlog = out.join("qemu.log");
    let qlog_f =
        File::create(&qlog).map_err(|e| format!("cannot create {}: {e}", qlog.display()))?;
    let qlog_f2 = qlog_f.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(spec.arch.qemu());
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(qlog_f)
        .stderr(qlog_f2);
    say(format!(
        "booting {} ({}, cmdline \"{}\") under TCG",
        g.kernel_package,
        spec.arch.uname(),
        spec.cmdline()
    ));
    eprintln!("$ {}", shown(&cmd));
    let mut qemu = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", spec.arch.qemu()))?;
    let result: Result<(String, u128), String> = (|| {
        let mut qmp = Qmp::connect(&sock, &mut qemu)?;
        let t = Instant::now();
        let loadavg = wait_ready(&mut qemu, &console, &qlog)?;
        say(format!(
            "guest ready after {:.1}s (loadavg {loadavg}); stopping the VM",
            t.elapsed().as_secs_f64()
        ));
        let t = Instant::now();
        qmp.execute("stop", "")?;
        let stop_ms = t.elapsed().as_millis();
        say(format!(
            "VM stopped ({stop_ms} ms after the ready line); dumping"
        ));
        qmp.dump(&out.join("vmcore.elf"), false, "elf")?;
        if spec.arch == Arch::Amd64 {
            qmp.dump(&out.join("vmcore-paging.elf"), true, "elf")?;
        }
        qmp.dump(&out.join("vmcore.kdump-zlib.flat"), false, "kdump-zlib")?;
        let _ = qmp.execute("quit", "");
        Ok((loadavg, stop_ms))
    })();
    // Make sure this QEMU (and only it) is gone.
    let t = Instant::now();
    loop {
        match qemu.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if result.is_ok() && t.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            _ => {
                let _ = qemu.kill();
                let _ = qemu.wait();
                break;
            }
        }
    }
    let _ = fs::remove_file(&sock);
    let (loadavg, stop_ms) = result?;

    let img = read(&disk)?;
    let files = untar(&img).map_err(|e| format!("truth disk {}: {e}", disk.display()))?;
    let get = |n: &str| {
        files
            .iter()
            .find(|(name, _)| name.trim_start_matches("./") == n)
            .map(|(_, d)| d.clone())
            .ok_or_else(|| format!("truth disk has no {n}"))
    };
    Ok(Boot {
        truth: get("truth.txt")?,
        kallsyms: get("kallsyms.txt")?,
        loadavg,
        stop_ms,
    })
}

/// Waits for "`KVM-LAB-READY <loadavg line>`" on the console, echoing the
/// guest's progress lines; returns the load-average line.
fn wait_ready(qemu: &mut Child, console: &Path, qlog: &Path) -> Result<String, String> {
    let t = Instant::now();
    let mut shown_upto = 0;
    let mut last_note = Instant::now();
    loop {
        let text = fs::read(console).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        for line in text[shown_upto.min(complete)..complete].lines() {
            let line = line.trim_end_matches('\r');
            if line.starts_with("kvm-lab:") {
                say(format!("  guest: {line}"));
            }
            if let Some(e) = line.strip_prefix("KVM-LAB-ERROR:") {
                return Err(format!("the guest failed: {}", e.trim()));
            }
            if line.contains("Kernel panic") {
                return Err(format!(
                    "guest kernel panic: {line} (see {})",
                    console.display()
                ));
            }
            if let Some(la) = line.strip_prefix("KVM-LAB-READY ") {
                return Ok(la.trim().to_string());
            }
        }
        shown_upto = shown_upto.max(complete);
        if let Ok(Some(st)) = qemu.try_wait() {
            let log = fs::read_to_string(qlog).unwrap_or_default();
            return Err(format!(
                "QEMU exited ({st}) before the guest was ready; qemu.log: {}; console tail: {}",
                log.trim(),
                text.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            ));
        }
        if t.elapsed() > READY_TIMEOUT {
            return Err(format!(
                "guest not ready after {}s; see {}",
                READY_TIMEOUT.as_secs(),
                console.display()
            ));
        }
        if last_note.elapsed() > Duration::from_secs(15) {
            last_note = Instant::now();
            say(format!(
                "  ...waiting for the guest ({:.0}s so far)",
                t.elapsed().as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The regular files of a ustar archive.
fn untar(img: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut files = Vec::new();
    let mut at = 0usize;
    while at + 512 <= img.len() {
        let h = &img[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let cstr = |b: &[u8]| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let mut name = cstr(&h[0..100]);
        let prefix = cstr(&h[345..500]);
        if &h[257..262] == b"ustar" && !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        let size_s = cstr(&h[124..136]);
        let size = usize::from_str_radix(size_s.trim(), 8)
            .map_err(|_| format!("bad size {size_s:?} in tar header at {at}"))?;
        let data_at = at + 512;
        let data = img
            .get(data_at..data_at + size)
            .ok_or_else(|| format!("tar member {name} runs past the disk"))?;
        if h[156] == b'0' || h[156] == 0 {
            files.push((name, data.to_vec()));
        }
        at = data_at + size.div_ceil(512) * 512;
    }
    if files.is_empty() {
        return Err("no tar archive (did the guest write it?)".into());
    }
    Ok(files)
}

// ---------------------------------------------------------------------------
// Ground truth: parse the guest's truth.txt

#[derive(Debug, Default)]
struct Thread {
    tid: u32,
    name: Vec<u8>,
    proc_comm: Vec<u8>,
    state: char,
}

#[derive(Debug, Default)]
struct Proc {
    pid: u32,
    ppid: u32,
    pgid: u32,
    sid: u32,
    uid: u32,
    gid: u32,
    state: char,
    comm: Vec<u8>,
    proc_comm: Vec<u8>,
    flags: u64,
    argv: Vec<Vec<u8>>,
    envv: Vec<Vec<u8>>,
    threads: Vec<Thread>,
}

#[derive(Debug, Default)]
struct Truth {
    release: String,
    version: Vec<u8>,
    cmdline: Vec<u8>,
    procs: Vec<Proc>,
    notes: Vec<String>,
}

fn unhex(lines: &[&str]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for l in lines {
        for w in l.split_whitespace() {
            let b = u8::from_str_radix(w, 16).map_err(|_| format!("bad hex byte {w:?}"))?;
            out.push(b);
        }
    }
    Ok(out)
}

/// (comm, fields after the comm) of a /proc stat line.
fn split_stat(stat: &[u8]) -> Result<(Vec<u8>, Vec<String>), String> {
    let open = stat
        .iter()
        .position(|&b| b == b'(')
        .ok_or("stat without '('")?;
    let close = stat
        .iter()
        .rposition(|&b| b == b')')
        .ok_or("stat without ')'")?;
    if close < open {
        return Err("stat with ')' before '('".into());
    }
    let comm = stat[open + 1..close].to_vec();
    let rest = String::from_utf8_lossy(&stat[close + 1..]);
    Ok((comm, rest.split_whitespace().map(str::to_string).collect()))
}

fn field<T: std::str::FromStr>(f: &[String], i: usize, what: &str) -> Result<T, String> {
    f.get(i)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("stat field {what} missing or bad"))
}

/// NUL-separated strings; one trailing NUL ends the list (empty strings kept).
fn split_nul(b: &[u8]) -> Vec<Vec<u8>> {
    if b.is_empty() {
        return Vec::new();
    }
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    b.split(|&c| c == 0).map(<[u8]>::to_vec).collect()
}

fn status_id(status: &str, key: &str) -> Result<u32, String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("status has no {key}"))
}

fn strip_nl(mut b: Vec<u8>) -> Vec<u8> {
    if b.last() == Some(&b'\n') {
        b.pop();
    }
    b
}

fn parse_truth(raw: &[u8]) -> Result<Truth, String> {
    let text = String::from_utf8_lossy(raw);
    let lines: Vec<&str> = text.lines().collect();
    if lines.first() != Some(&"KVM-LAB-TRUTH 1") {
        return Err("truth.txt does not start with KVM-LAB-TRUTH 1".into());
    }
    if lines.last() != Some(&"END") {
        return Err("truth.txt is cut short (no END)".into());
    }
    /// A process or thread as files, while reading.
    #[derive(Default)]
    struct Rec {
        id: u32,
        files: HashMap<String, Option<Vec<u8>>>,
        threads: Vec<Rec>,
    }
    let mut t = Truth::default();
    let mut global: HashMap<String, Option<Vec<u8>>> = HashMap::new();
    let mut recs: Vec<Rec> = Vec::new();
    let mut i = 1;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        if let Some(r) = l.strip_prefix("U ") {
            t.release = r.trim().to_string();
        } else if let Some(p) = l.strip_prefix("P ") {
            let id = p
                .trim()
                .parse()
                .map_err(|_| format!("bad pid line {l:?}"))?;
            recs.push(Rec {
                id,
                ..Rec::default()
            });
        } else if let Some(p) = l.strip_prefix("T ") {
            let id = p
                .trim()
                .parse()
                .map_err(|_| format!("bad tid line {l:?}"))?;
            recs.last_mut()
                .ok_or("thread before any process")?
                .threads
                .push(Rec {
                    id,
                    ..Rec::default()
                });
        } else if let Some(name) = l.strip_prefix("F ") {
            let start = i;
            while i < lines.len() && lines[i] != "." && lines[i] != "!" {
                i += 1;
            }
            let ok = lines.get(i) == Some(&".");
            let data = if ok {
                Some(unhex(&lines[start..i])?)
            } else {
                None
            };
            i += 1;
            let target = match recs.last_mut() {
                None => &mut global,
                Some(r) => match r.threads.last_mut() {
                    Some(th) => &mut th.files,
                    None => &mut r.files,
                },
            };
            target.insert(name.to_string(), data);
        } else if l == "END" {
            break;
        } else {
            return Err(format!("unexpected line in truth.txt: {l:?}"));
        }
    }
    let g = |k: &str| -> Result<Vec<u8>, String> {
        global
            .get(k)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("truth.txt has no /proc/{k}"))
    };
    t.version = strip_nl(g("version")?);
    t.cmdline = strip_nl(g("cmdline")?);

    let mut unreadable: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for r in recs {
        let need = |k: &str| r.files.get(k).cloned().flatten();
        let (Some(stat), Some(status), Some(comm)) = (need("stat"), need("status"), need("comm"))
        else {
            t.notes.push(format!(
                "pid {} went away while the ground truth was read; left out",
                r.id
            ));
            continue;
        };
        // Newer kernels (seen on 6.12) fail reads of cmdline/environ of
        // tasks without an mm (kernel threads, zombies): that is "none".
        let mut no_mm = |k: &str| {
            need(k).unwrap_or_else(|| {
                unreadable.entry(k.to_string()).or_default().push(r.id);
                Vec::new()
            })
        };
        let (cmdline, environ) = (no_mm("cmdline"), no_mm("environ"));
        let ctx = |e: String| format!("pid {}: {e}", r.id);
        let (kcomm, f) = split_stat(&stat).map_err(ctx)?;
        let status = String::from_utf8_lossy(&status);
        let mut p = Proc {
            pid: r.id,
            state: f
                .first()
                .and_then(|s| s.chars().next())
                .ok_or_else(|| ctx("no state".into()))?,
            ppid: field(&f, 1, "ppid").map_err(ctx)?,
            pgid: field(&f, 2, "pgrp").map_err(ctx)?,
            sid: field(&f, 3, "session").map_err(ctx)?,
            flags: field(&f, 6, "flags").map_err(ctx)?,
            uid: status_id(&status, "Uid:").map_err(ctx)?,
            gid: status_id(&status, "Gid:").map_err(ctx)?,
            comm: kcomm,
            proc_comm: strip_nl(comm),
            argv: split_nul(&cmdline),
            envv: split_nul(&environ),
            threads: Vec::new(),
        };
        for th in r.threads {
            let (Some(stat), Some(comm)) = (
                th.files.get("stat").cloned().flatten(),
                th.files.get("comm").cloned().flatten(),
            ) else {
                t.notes.push(format!(
                    "thread {} of pid {} went away while the ground truth was read; left out",
                    th.id, r.id
                ));
                continue;
            };
            let (name, f) = split_stat(&stat).map_err(|e| format!("tid {}: {e}", th.id))?;
            p.threads.push(Thread {
                tid: th.id,
                name,
                proc_comm: strip_nl(comm),
                state: f.first().and_then(|s| s.chars().next()).unwrap_or('?'),
            });
        }
        t.procs.push(p);
    }
    t.procs.sort_by_key(|p| p.pid);
    for (file, mut pids) in unreadable {
        pids.sort_unstable();
        let kinds: Vec<String> = pids
            .iter()
            .filter_map(|pid| t.procs.iter().find(|p| p.pid == *pid))
            .map(|p| {
                if p.flags & PF_KTHREAD != 0 {
                    "kernel thread".to_string()
                } else {
                    format!("state {}", p.state)
                }
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        t.notes.push(format!(
            "/proc/PID/{file} could not be read for {} processes ({}), written as []: pids {:?}",
            pids.len(),
            kinds.join(", "),
            pids
        ));
    }
    if t.procs.is_empty() {
        return Err("truth.txt lists no processes".into());
    }
    Ok(t)
}

// ---------------------------------------------------------------------------
// truth.json, written by hand

/// A JSON string literal: `"`, `\` and control characters escaped (`\u00XX`).
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(o, "\\u{:04x}", u32::from(c));
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes as a JSON string; bytes that are not UTF-8 become U+FFFD, and a
/// note (with the exact bytes in hex) says so.
fn json_bytes(b: &[u8], what: &dyn Fn() -> String, notes: &mut Vec<String>) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => json_str(s),
        Err(_) => {
            notes.push(format!(
                "{} is not valid UTF-8: written with U+FFFD replacements (lossy); exact bytes (hex): {}",
                what(),
                hex(b)
            ));
            json_str(&String::from_utf8_lossy(b))
        }
    }
}

fn json_list(v: &[Vec<u8>], what: &dyn Fn(usize) -> String, notes: &mut Vec<String>) -> String {
    let items: Vec<String> = v
        .iter()
        .enumerate()
        .map(|(i, s)| json_bytes(s, &|| what(i), notes))
        .collect();
    format!("[{}]", items.join(", "))
}

#[allow(clippy::too_many_arguments)]
fn truth_json(
    spec: &SetSpec,
    g: &Guest,
    t: &Truth,
    loadavg_line: &str,
    offset: &str,
    dumps: &[(&str, &str)],
    notes: &mut Vec<String>,
) -> Result<String, String> {
    let la: Vec<&str> = loadavg_line.split_whitespace().take(3).collect();
    if la.len() != 3 || la.iter().any(|v| v.parse::<f64>().is_err()) {
        return Err(format!(
            "bad load average line from the guest: {loadavg_line:?}"
        ));
    }
    let mut o = String::new();
    o.push_str("{\n");
    let _ = writeln!(o, "  \"set\": {},", json_str(spec.name));
    let _ = writeln!(o, "  \"arch\": {},", json_str(spec.arch.uname()));
    let _ = writeln!(o, "  \"kernel_package\": {},", json_str(&g.kernel_package));
    let _ = writeln!(
        o,
        "  \"kernel_package_version\": {},",
        json_str(&g.kernel_version)
    );
    let _ = writeln!(o, "  \"release\": {},", json_str(&t.release));
    let _ = writeln!(
        o,
        "  \"version\": {},",
        json_bytes(&t.version, &|| "/proc/version".into(), notes)
    );
    let _ = writeln!(
        o,
        "  \"cmdline\": {},",
        json_bytes(&t.cmdline, &|| "/proc/cmdline".into(), notes)
    );
    let _ = writeln!(o, "  \"kaslr\": {},", spec.kaslr);
    let _ = writeln!(o, "  \"kaslr_offset\": {},", json_str(offset));
    let _ = writeln!(o, "  \"loadavg\": [{}],", la.join(", "));
    o.push_str("  \"processes\": [\n");
    for (n, p) in t.procs.iter().enumerate() {
        let pid = p.pid;
        let _ = writeln!(o, "    {{");
        let _ = writeln!(o, "      \"pid\": {pid},");
        let _ = writeln!(o, "      \"ppid\": {},", p.ppid);
        let _ = writeln!(o, "      \"uid\": {},", p.uid);
        let _ = writeln!(o, "      \"gid\": {},", p.gid);
        let _ = writeln!(o, "      \"state\": {},", json_str(&p.state.to_string()));
        let _ = writeln!(
            o,
            "      \"comm\": {},",
            json_bytes(&p.comm, &|| format!("pid {pid} comm"), notes)
        );
        let _ = writeln!(
            o,
            "      \"proc_comm\": {},",
            json_bytes(&p.proc_comm, &|| format!("pid {pid} /proc comm"), notes)
        );
        let _ = writeln!(o, "      \"kthread\": {},", p.flags & PF_KTHREAD != 0);
        let _ = writeln!(o, "      \"pgid\": {},", p.pgid);
        let _ = writeln!(o, "      \"sid\": {},", p.sid);
        let _ = writeln!(
            o,
            "      \"flags\": {},",
            json_str(&format!("{:#x}", p.flags))
        );
        let _ = writeln!(
            o,
            "      \"argv\": {},",
            json_list(&p.argv, &|i| format!("pid {pid} argv[{i}]"), notes)
        );
        let _ = writeln!(
            o,
            "      \"envv\": {},",
            json_list(&p.envv, &|i| format!("pid {pid} envv[{i}]"), notes)
        );
        let threads: Vec<String> = p
            .threads
            .iter()
            .map(|th| {
                let tid = th.tid;
                format!(
                    "{{\"tid\": {tid}, \"name\": {}, \"proc_comm\": {}, \"state\": {}}}",
                    json_bytes(&th.name, &|| format!("tid {tid} name"), notes),
                    json_bytes(&th.proc_comm, &|| format!("tid {tid} /proc comm"), notes),
                    json_str(&th.state.to_string())
                )
            })
            .collect();
        let _ = writeln!(o, "      \"threads\": [{}]", threads.join(", "));
        let comma = if n + 1 < t.procs.len() { "," } else { "" };
        let _ = writeln!(o, "    }}{comma}");
    }
    o.push_str("  ],\n");
    let d: Vec<String> = dumps
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
        .collect();
    let _ = writeln!(o, "  \"dumps\": {{{}}},", d.join(", "));
    let mut all = vec![
        "ground truth read by the guest from /proc right before the host stopped the VM \
         (xtask/guest/capture.sh); the capturing shell itself is left out"
            .to_string(),
        "comm is the kernel's task comm (/proc/PID/stat field 2, at most 15 bytes); proc_comm is \
         /proc/PID/comm, longer for some kernel threads (workqueue names)"
            .to_string(),
        "uid/gid are the real ids (first field of Uid:/Gid: in /proc/PID/status); kthread is \
         PF_KTHREAD (0x00200000) in the stat flags; pgid, sid, flags, proc_comm and \
         kernel_package_version are extras beyond the kvm ps contract"
            .to_string(),
        "states of kernel threads may change between the capture and the stop; compare states \
         of user processes"
            .to_string(),
        format!(
            "loadavg: /proc/loadavg as the guest read it just after the kernel updated it (the \
             kernel updates it every 5 s; the stop follows within a second): {loadavg_line}"
        ),
        "init's argv/envv include what the kernel passed (unknown command-line words go to init)"
            .to_string(),
        format!("guest userland: {}", g.busybox_version),
    ];
    all.append(notes);
    let n: Vec<String> = all.iter().map(|s| format!("    {}", json_str(s))).collect();
    let _ = writeln!(o, "  \"notes\": [\n{}\n  ]", n.join(",\n"));
    o.push_str("}\n");
    *notes = all;
    Ok(o)
}

/// Checks that the workload's hard cases are all there, so a broken guest
/// fails loudly instead of producing thin fixtures.
fn validate(t: &Truth, loadavg: &str) -> Result<Vec<String>, String> {
    let mut ok = Vec::new();
    let marker = |n: u32| -> Result<&Proc, String> {
        let want = format!("KVM_MARKER_{n}=");
        let has = |p: &Proc| p.envv.iter().any(|e| e.starts_with(want.as_bytes()));
        // Children inherit the marker: take the processes whose parent lacks it.
        let found: Vec<&Proc> = t
            .procs
            .iter()
            .filter(|p| has(p) && !t.procs.iter().any(|q| q.pid == p.ppid && has(q)))
            .collect();
        match found.as_slice() {
            [p] => Ok(p),
            [] => Err(format!("no process carries KVM_MARKER_{n}")),
            _ => Err(format!("several processes carry KVM_MARKER_{n}")),
        }
    };
    let check = |c: bool, what: String, ok: &mut Vec<String>| {
        if c {
            ok.push(what);
            Ok(())
        } else {
            Err(format!("ground truth check failed: {what}"))
        }
    };
    for n in 1..=14 {
        marker(n)?;
    }
    ok.push("all 14 KVM_MARKER_<n> processes present".into());
    let p = marker(2)?;
    check(
        p.argv.len() > 400,
        format!("pid {} has {} arguments", p.pid, p.argv.len()),
        &mut ok,
    )?;
    let p = marker(3)?;
    let len: usize = p.argv.iter().map(|a| a.len() + 1).sum();
    check(
        len > 4096,
        format!("pid {} has {len} bytes of argv (> a page)", p.pid),
        &mut ok,
    )?;
    let p = marker(4)?;
    let long = p.envv.iter().map(Vec::len).max().unwrap_or(0);
    check(
        long > 4096,
        format!("pid {} has a {long}-byte environment string", p.pid),
        &mut ok,
    )?;
    let p = marker(5)?;
    check(
        p.uid == 1000 && p.gid == 1000,
        format!("pid {} runs as uid {} gid {}", p.pid, p.uid, p.gid),
        &mut ok,
    )?;
    let parent = marker(6)?;
    let z = t
        .procs
        .iter()
        .find(|c| c.ppid == parent.pid && c.state == 'Z');
    check(
        z.is_some(),
        format!(
            "pid {} is a zombie child of pid {}",
            z.map_or(0, |z| z.pid),
            parent.pid
        ),
        &mut ok,
    )?;
    let p = marker(7)?;
    check(
        p.state == 'T',
        format!("pid {} is stopped (state {})", p.pid, p.state),
        &mut ok,
    )?;
    let p = marker(8)?;
    check(
        p.sid == p.pid,
        format!("pid {} leads session {}", p.pid, p.sid),
        &mut ok,
    )?;
    let p = marker(9)?;
    check(
        p.argv.first().map(Vec::as_slice) == Some(b"sleep".as_slice())
            && p.comm == b"kvm-lab-argv0-d",
        format!(
            "pid {}: argv[0] {:?}, comm {:?}",
            p.pid,
            String::from_utf8_lossy(p.argv.first().map_or(&[][..], Vec::as_slice)),
            String::from_utf8_lossy(&p.comm)
        ),
        &mut ok,
    )?;
    let p = marker(10)?;
    check(
        p.comm == b"kvm-lab-long-sc",
        format!(
            "pid {} has comm {:?}",
            p.pid,
            String::from_utf8_lossy(&p.comm)
        ),
        &mut ok,
    )?;
    let p = marker(11)?;
    check(
        p.comm == b"kvm) odd (name",
        format!(
            "pid {} has comm {:?}",
            p.pid,
            String::from_utf8_lossy(&p.comm)
        ),
        &mut ok,
    )?;
    let p = marker(12)?;
    let names: Vec<String> = p
        .threads
        .iter()
        .map(|t| String::from_utf8_lossy(&t.name).into_owned())
        .collect();
    check(
        p.threads.len() == 3
            && names.iter().any(|n| n == "kvm-thread-a")
            && names.iter().any(|n| n == "kvm-thread-b"),
        format!("pid {} has threads {names:?}", p.pid),
        &mut ok,
    )?;
    let p = marker(13)?;
    check(
        p.argv.iter().any(|a| a.as_slice() == b"bad-\xff-byte") && p.argv.iter().any(Vec::is_empty),
        format!("pid {} has a non-UTF-8 and an empty argument", p.pid),
        &mut ok,
    )?;
    let p = marker(14)?;
    check(
        p.state == 'R',
        format!("pid {} (CPU burner) is running (state {})", p.pid, p.state),
        &mut ok,
    )?;
    let kthreads = t.procs.iter().filter(|p| p.flags & PF_KTHREAD != 0).count();
    check(
        kthreads >= 10,
        format!("{kthreads} kernel threads"),
        &mut ok,
    )?;
    let one: f64 = loadavg
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    check(one > 0.1, format!("1-minute load average {one}"), &mut ok)?;
    Ok(ok)
}

// ---------------------------------------------------------------------------
// Summary

fn print_summary(lab: &Path, results: &[(&&SetSpec, Facts)]) -> Result<(), String> {
    for (spec, f) in results {
        let dir = lab.join("sets").join(spec.name);
        eprintln!("\n{}  ({})", spec.name, dir.display());
        eprintln!("  arch            {}", f.get("arch"));
        eprintln!("  kernel package  {}", f.get("kernel_package"));
        eprintln!("  release         {}", f.get("release"));
        eprintln!(
            "  KASLR           {} (KERNELOFFSET {})",
            f.get("kaslr"),
            f.get("kaslr_offset")
        );
        eprintln!(
            "  processes       {} ({} threads), loadavg {}, {} kallsyms lines, booted {}x",
            f.get("processes"),
            f.get("threads"),
            f.get("loadavg"),
            f.get("kallsyms_lines"),
            f.get("boots")
        );
        let mut files: Vec<String> = f.get("dumps").split(',').map(str::to_string).collect();
        files.extend(
            [
                "truth.json",
                "kallsyms.txt",
                "console.log",
                "System.map",
                "dwarf-offsets.json",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        for name in files {
            let p = dir.join(&name);
            if !p.is_file() {
                return Err(format!(
                    "{} is missing: remove {} and run again",
                    p.display(),
                    dir.join(".complete").display()
                ));
            }
            eprintln!("  {name:<30} {:>12}", human(file_size(&p)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            json_str("t\tn\n\u{1}\u{7f}é"),
            "\"t\\u0009n\\u000a\\u0001\\u007fé\""
        );
        let mut notes = Vec::new();
        assert_eq!(json_bytes(b"ok", &|| "x".into(), &mut notes), "\"ok\"");
        assert!(notes.is_empty());
        assert_eq!(
            json_bytes(b"a\xffb", &|| "x".into(), &mut notes),
            "\"a\u{fffd}b\""
        );
        assert!(notes[0].contains("61ff62"));
    }

    #[test]
    fn nul_lists_keep_empty_strings() {
        assert!(split_nul(b"").is_empty());
        assert_eq!(
            split_nul(b"a\0\0b\0"),
            vec![b"a".to_vec(), vec![], b"b".to_vec()]
        );
        assert_eq!(split_nul(b"a\0\0"), vec![b"a".to_vec(), vec![]]);
        assert_eq!(split_nul(b"no-nul"), vec![b"no-nul".to_vec()]);
    }

    #[test]
    fn stat_comm_is_between_first_open_and_last_close() {
        let (comm, f) = split_stat(b"113 (kvm) odd (name) S 1 0 0 0 -1 4194304 1\n").unwrap();
        assert_eq!(comm, b"kvm) odd (name");
        assert_eq!(f[0], "S");
        assert_eq!(field::<u64>(&f, 6, "flags").unwrap(), 4_194_304);
    }

    #[test]
    fn truth_text_parses() {
        let hex = |s: &[u8]| s.iter().map(|b| format!(" {b:02x}")).collect::<String>();
        let text = format!(
            "KVM-LAB-TRUTH 1\nU 6.1.0\nF version\n{}\n.\nF cmdline\n{}\n.\nP 7\nF stat\n{}\n.\n\
             F status\n{}\n.\nF comm\n{}\n.\nF cmdline\n{}\n.\nF environ\n\n.\nT 7\nF stat\n{}\n.\n\
             F comm\n{}\n.\nP 8\nF stat\n!\nEND\n",
            hex(b"Linux version 6.1.0\n"),
            hex(b"console=ttyS0\n"),
            hex(b"7 (sleep) T 1 7 7 0 -1 4194560 0"),
            hex(b"Name:\tsleep\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n"),
            hex(b"sleep\n"),
            hex(b"sleep\x00100\x00"),
            hex(b"7 (sleep) T 1 7 7 0 -1 4194560 0"),
            hex(b"sleep\n"),
        );
        let t = parse_truth(text.as_bytes()).unwrap();
        assert_eq!(t.release, "6.1.0");
        assert_eq!(t.cmdline, b"console=ttyS0");
        assert_eq!(t.procs.len(), 1);
        let p = &t.procs[0];
        assert_eq!(
            (p.pid, p.ppid, p.uid, p.gid, p.state),
            (7, 1, 1000, 100, 'T')
        );
        assert_eq!((p.pgid, p.sid), (7, 7));
        assert_eq!(p.argv, vec![b"sleep".to_vec(), b"100".to_vec()]);
        assert!(p.envv.is_empty());
        assert_eq!(p.threads.len(), 1);
        assert!(t.notes[0].contains("pid 8"));
    }

    #[test]
    fn cpio_and_tar_framing() {
        let mut c = Cpio::default();
        c.file("init", 0o755, b"#!/bin/sh\n");
        let a = c.finish();
        assert!(a.starts_with(b"070701"));
        assert_eq!(a.len() % 512, 0);
        assert!(find(&a, b"TRAILER!!!").is_some());

        let mut tar = vec![0u8; 512];
        tar[..9].copy_from_slice(b"truth.txt");
        tar[124..135].copy_from_slice(b"00000000005");
        tar[156] = b'0';
        tar.extend_from_slice(b"hello");
        tar.resize(2048, 0);
        assert_eq!(
            untar(&tar).unwrap(),
            vec![("truth.txt".to_string(), b"hello".to_vec())]
        );
    }

    #[test]
    fn threads_programs_are_elf_executables() {
        for (arch, machine) in [(Arch::Amd64, 62u16), (Arch::Arm64, 183)] {
            let e = threads_elf(arch);
            assert_eq!(&e[..4], b"\x7fELF");
            assert_eq!(le16(&e, 18), Some(machine));
            assert_eq!(le64(&e, 24), Some(0x40_0000 + 120));
            assert_eq!(le64(&e, 64 + 32), Some(e.len() as u64));
            assert!(find(&e, b"kvm-thread-b\0").is_some());
        }
    }

    #[test]
    fn elf_rewrite_moves_program_headers_to_64() {
        // QEMU 7.2's layout: ELF header, 1 section header, 1 program header, note data.
        let mut e = vec![0u8; 64];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x20..0x28].copy_from_slice(&128u64.to_le_bytes()); // phoff
        e[0x28..0x30].copy_from_slice(&64u64.to_le_bytes()); // shoff
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        e[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        e[0x3c..0x3e].copy_from_slice(&1u16.to_le_bytes());
        e.extend_from_slice(&[0u8; 64]); // SHT_NULL section header
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        ph[8..16].copy_from_slice(&184u64.to_le_bytes());
        ph[32..40].copy_from_slice(&40u64.to_le_bytes());
        e.extend_from_slice(&ph);
        let note = b"OSRELEASE=6.1.0\nKERNELOFFSET=1a600000\n\0";
        e.extend_from_slice(note);
        e.resize(184 + 40, 0);
        let dir = std::env::temp_dir().join(format!("kvm-lab-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (src, dst) = (dir.join("in.elf"), dir.join("out.elf"));
        fs::write(&src, &e).unwrap();
        rewrite_elf_phdrs_first(&src, &dst).unwrap();
        let o = fs::read(&dst).unwrap();
        assert_eq!(o.len(), e.len());
        assert_eq!(le64(&o, 0x20), Some(64));
        assert_eq!(le64(&o, 0x28), Some(120));
        assert_eq!(&o[64..120], &ph[..]);
        assert_eq!(&o[184..], &e[184..]);
        let info = elf_vmcoreinfo(&dst).unwrap();
        assert_eq!(vmcoreinfo_value(&info, "KERNELOFFSET"), Some("1a600000"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
