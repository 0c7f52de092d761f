//! The `kvm` commands on real FreeBSD dumps (LLDB's test data, see
//! kvm-core-file/tests/data/freebsd/SOURCE.md): `hz`, the threads of
//! `allproc`, the crashed thread and the registers each thread was saved
//! with, as LLDB's own test of these files expects them.

#[path = "common/sparse.rs"]
mod sparse;

use serde_json::Value;
use sparse::sparse_copy;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../kvm-core-file/tests/data/freebsd"
);
const KERNELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../kvm-elf/tests/data");

/// `name` unpacked (once per target directory, sparsely: the dumps are
/// mostly zero-filled holes).
fn unpack(name: &str, compressed: &Path, gzip: bool) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("freebsd");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let done = dir.join(format!("{name}.done"));
    if done.exists() {
        return out;
    }
    let f = std::fs::File::open(compressed).unwrap();
    let r: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(bzip2::read::BzDecoder::new(f))
    };
    // A unique name, then a rename: tests running at once never see a
    // half-written file.
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{name}.{}.{n}.part", std::process::id()));
    sparse_copy(r, &tmp);
    std::fs::rename(&tmp, &out).unwrap();
    std::fs::write(&done, b"").unwrap();
    out
}

/// A dump and its kernel file.
fn dump(arch: &str, kind: &str) -> (PathBuf, PathBuf) {
    let core = format!("vmcore-{arch}-{kind}");
    let core = unpack(&core, &Path::new(DATA).join(format!("{core}.bz2")), false);
    let kernel = format!("kernel-{arch}.elf");
    let kernel = unpack(
        &kernel,
        &Path::new(KERNELS).join(format!("{kernel}.gz")),
        true,
    );
    (core, kernel)
}

/// Runs `kvm` with `args`; its stdout, or its stderr when it fails.
fn kvm(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `kvm ps --threads --json` of a dump.
fn threads(core: &Path, kernel: &Path) -> Vec<Value> {
    let out = kvm(&["ps", "-M", s(core), "-N", s(kernel), "--threads", "--json"]).unwrap();
    serde_json::from_slice(&out).unwrap()
}

/// The thread named `name` of process `pid`.
fn thread<'a>(procs: &'a [Value], pid: u64, name: &str) -> &'a Value {
    procs
        .iter()
        .filter(|p| p["pid"] == pid)
        .flat_map(|p| p["threads"].as_array().unwrap())
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no thread {name} in pid {pid}"))
}

/// The one crashed thread's process pid, comm and registers.
fn crashed(procs: &[Value]) -> (u64, String, Value) {
    let mut found = procs.iter().flat_map(|p| {
        p["threads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["crashed"] == true)
            .map(move |t| {
                (
                    p["pid"].as_u64().unwrap(),
                    p["comm"].as_str().unwrap().to_owned(),
                    t["registers"].clone(),
                )
            })
    });
    let one = found.next().expect("a crashed thread");
    assert!(found.next().is_none(), "one crashed thread");
    one
}

fn count(procs: &[Value]) -> usize {
    procs
        .iter()
        .map(|p| p["threads"].as_array().unwrap().len())
        .sum()
}

/// `hz`, read as kvm_read reads it: the symbol's address from the
/// kernel file, its bytes from the dump.
fn hz(core: &Path, kernel: &Path) -> i32 {
    let b = kvm(&["read", "-M", s(core), "-N", s(kernel), "hz", "4"]).unwrap();
    i32::from_le_bytes(b.try_into().unwrap())
}

#[test]
fn amd64_full_dump() {
    let (core, kernel) = dump("amd64", "full");
    assert_eq!(hz(&core, &kernel), 100);
    let procs = threads(&core, &kernel);
    assert_eq!(count(&procs), 13);
    let (pid, comm, regs) = crashed(&procs);
    assert_eq!((pid, comm.as_str()), (806, "sysctl"));
    assert_eq!(regs["rbp"], "0xfffffe0085cb2760");
    assert_eq!(regs["rsp"], "0xfffffe0085cb2748");
    assert_eq!(regs["rip"], "0xffffffff80c09ade");
    // On CPU 0: its registers from stoppcbs[0].
    let cpu0 = thread(&procs, 11, "idle: cpu0");
    assert_eq!(
        (&cpu0["oncpu"], &cpu0["cpu"]),
        (&Value::Bool(true), &Value::from(0))
    );
    assert_eq!(cpu0["registers"]["rip"], "0xffffffff81057988");
    assert_eq!(cpu0["registers"]["rbx"], "0xffffffff81d43950");
    // Not on a CPU: from its own pcb.
    let cpu9 = thread(&procs, 11, "idle: cpu9");
    assert_eq!(
        (&cpu9["oncpu"], &cpu9["cpu"]),
        (&Value::Bool(false), &Value::Null)
    );
    assert_eq!(cpu9["registers"]["rip"], "0xffffffff80c3c8c8");
    assert_eq!(cpu9["registers"]["rsp"], "0xfffffe00007a4a08");
    // What the exported offsets do not reach is unavailable, not made up.
    for field in ["ppid", "uid", "state", "argv"] {
        assert_eq!(procs[0][field], Value::Null, "{field}");
    }
    let info: Value = serde_json::from_slice(
        &kvm(&["info", "-M", s(&core), "-N", s(&kernel), "--json"]).unwrap(),
    )
    .unwrap();
    assert_eq!(info["os"], "freebsd");
    assert_eq!(info["paging"], "KPML4phys");
    assert_eq!(info["incomplete"], true, "the minimised dump lost its tail");
}

#[test]
fn amd64_minidump() {
    let (core, kernel) = dump("amd64", "minidump");
    assert_eq!(hz(&core, &kernel), 100);
    let procs = threads(&core, &kernel);
    assert_eq!(count(&procs), 16);
    let (pid, comm, regs) = crashed(&procs);
    assert_eq!((pid, comm.as_str()), (800, "sysctl"));
    assert_eq!(regs["rbp"], "0xfffffe00798c4760");
    assert_eq!(regs["rsp"], "0xfffffe00798c4748");
    assert_eq!(regs["rip"], "0xffffffff80c09ade");
    let dom0 = thread(&procs, 28, "dom0");
    assert_eq!(dom0["cpu"], 4);
    assert_eq!(dom0["registers"]["rbx"], "0xfffffe00008e2f30");
    let laundry = thread(&procs, 28, "laundry: dom0");
    assert_eq!(laundry["oncpu"], false);
    assert_eq!(laundry["registers"]["rsp"], "0xfffffe00527dd7c8");
}

#[test]
fn arm64_minidump() {
    let (core, kernel) = dump("arm64", "minidump");
    assert_eq!(hz(&core, &kernel), 1000);
    let procs = threads(&core, &kernel);
    assert_eq!(count(&procs), 10);
    let (pid, comm, regs) = crashed(&procs);
    assert_eq!((pid, comm.as_str()), (939, "sysctl"));
    assert_eq!(regs["fp"], "0xffff0000d58f23b0");
    assert_eq!(regs["sp"], "0xffff0000d58f23b0");
    assert_eq!(regs["pc"], "0xffff0000004b6e78");
    assert_eq!(regs["x8"], "0xffffa00001548700");
    let syncer = thread(&procs, 21, "syncer");
    assert_eq!(syncer["cpu"], 6);
    assert_eq!(syncer["registers"]["pc"], "0xffff000000811370");
    let idle = thread(&procs, 11, "idle: cpu2");
    assert_eq!(idle["registers"]["pc"], "0xffff0000004ee99c");
}

#[test]
fn without_the_kernel_file_the_error_says_to_give_it() {
    let (core, _) = dump("amd64", "minidump");
    let e = kvm(&["ps", "-M", s(&core)]).unwrap_err();
    assert!(
        e.contains("BSD dumps carry no symbol table: give the kernel file with -N"),
        "{e}"
    );
    let (core, _) = dump("amd64", "full");
    let e = kvm(&["nlist", "-M", s(&core), "hz"]).unwrap_err();
    assert!(
        e.contains("FreeBSD full dumps need the kernel file (-N) to find the page tables"),
        "{e}"
    );
}
