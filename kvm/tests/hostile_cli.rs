//! The CLI given what a hostile or careless user gives it: the input as
//! the output, special files, directories. Each must fail at once with a
//! one-line error naming the file, and destroy nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/amd64-kaslr/vmcore.kdump.xz")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kvm-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs kvm; fails the test if it has not ended within 20 s (a hang).
fn kvm(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("kvm {args:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The one-line error of a failed run.
fn error(args: &[&str]) -> String {
    let out = kvm(args);
    assert_eq!(out.status.code(), Some(1), "kvm {args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn convert_never_overwrites_its_input() {
    let d = scratch("convert");
    let input = d.join("vmcore.xz");
    std::fs::copy(fixture(), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    std::os::unix::fs::symlink(&input, d.join("link")).unwrap();
    std::fs::hard_link(&input, d.join("hard")).unwrap();
    let i = input.to_str().unwrap();
    for out in [
        i.to_owned(),
        format!("{}/link", d.display()),
        format!("{}/hard", d.display()),
    ] {
        let err = error(&["convert", "-M", i, "--to", "elf", "-o", &out]);
        assert!(err.contains("is the input"), "{err}");
        assert_eq!(std::fs::read(&input).unwrap(), before, "{out}");
    }
    // Nothing else was left in the directory.
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 3);
    // A good conversion leaves just its output.
    let out = d.join("out.elf");
    let ok = kvm(&[
        "convert",
        "-M",
        i,
        "--to",
        "elf",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 4);
}

#[test]
fn special_files_are_refused_at_once() {
    let d = scratch("special");
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let f = fifo.to_str().unwrap();
    let core = fixture();
    let core = core.to_str().unwrap();
    let dir = d.to_str().unwrap();
    for (args, want) in [
        (vec!["info", "-M", f], "is a FIFO"),
        (vec!["ps", "-M", core, "-N", f], "is a FIFO"),
        (vec!["info", "-M", dir], "is a directory"),
        (vec!["ps", "-M", core, "-N", dir], "is a directory"),
        (vec!["info", "-M", "/dev/zero"], "is a character device"),
        (
            vec!["ps", "-M", core, "-N", "/dev/zero"],
            "is a character device",
        ),
        (
            vec!["convert", "-M", core, "--to", "elf", "-o", "/dev/full"],
            "not a regular file",
        ),
    ] {
        let err = error(&args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// Another kernel's symbol file is refused, not used to answer wrongly:
/// the amd64 fixture's System.map-format symbols given with the arm64 dump.
#[test]
fn another_kernels_symbols_are_refused() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let arm = data.join("arm64-kaslr/vmcore.kdump.xz");
    let amd_map = data.join("amd64-kaslr/kallsyms-subset.txt");
    let err = error(&[
        "nlist",
        "-M",
        arm.to_str().unwrap(),
        "-N",
        amd_map.to_str().unwrap(),
        "init_task",
    ]);
    assert!(err.contains("not this dump's kernel"), "{err}");
}

/// A read that runs into a page the dump lacks writes what it read and
/// says why it stopped; a type lookup that finds nothing fails (human
/// output; JSON says null).
#[test]
fn short_reads_and_missing_types_say_why() {
    let core = fixture();
    let core = core.to_str().unwrap();
    let out = kvm(&["read", "-M", core, "linux_banner", "3000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.starts_with(b"Linux version") && out.stdout.len() < 3_000_000);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "read stopped after {} of 3000000 bytes",
            out.stdout.len()
        )) && err.contains("excluded from the dump"),
        "{err}"
    );
    // read --json (finding 7: read and convert had none): the bytes
    // read, and exit 1 on the short read.
    let out = kvm(&["read", "--json", "-M", core, "linux_banner", "3000000"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = v["len"].as_u64().unwrap();
    assert!(n > 0 && n < 3_000_000, "{n}");
    assert_eq!(v["hex"].as_str().unwrap().len() as u64, 2 * n);
    assert!(v["hex"].as_str().unwrap().starts_with("4c696e7578")); // "Linux"
    let d = scratch("convert-json");
    let o = d.join("out.elf");
    let out = kvm(&[
        "convert",
        "--json",
        "-M",
        core,
        "--to",
        "elf",
        "-o",
        o.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "elf");
    assert_eq!(v["file_size"], std::fs::metadata(&o).unwrap().len());
    std::fs::remove_dir_all(&d).unwrap();
    let err = error(&["types", "-M", core, "task_struct.no_such_member"]);
    assert!(err.contains("1 of 1 not found"), "{err}");
    // With --json too: null for the missing, and exit status 1 (finding
    // 7: nlist and types exited 0 with --json).
    for args in [
        ["types", "-M", core, "--json", "task_struct.no_such_member"],
        ["nlist", "-M", core, "--json", "no_such_symbol"],
    ] {
        let out = kvm(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v[args[4]].is_null(), "{v}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("1 of 1"), "{err}");
    }
}

#[test]
fn write_is_refused_on_every_dump_format_and_changes_no_byte() {
    let d = scratch("write");
    let input = d.join("vmcore.xz");
    std::fs::copy(fixture(), &input).unwrap();
    let i = input.to_str().unwrap();
    let mut files = vec![input.clone()];
    for (to, flat) in [
        ("elf", false),
        ("kdump-zlib", false),
        ("kdump-lzo", true),
        ("kdump-zstd", false),
        ("lime", false),
        ("openbsd", false),
    ] {
        let out = d.join(format!("out.{to}{}", if flat { ".flat" } else { "" }));
        let mut args = vec!["convert", "-M", i, "--to", to, "-o", out.to_str().unwrap()];
        if flat {
            args.push("--flat");
        }
        let o = kvm(&args);
        assert!(
            o.status.success(),
            "{to}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        files.push(out);
    }
    for f in &files {
        let p = f.to_str().unwrap();
        let before = std::fs::read(f).unwrap();
        // Physical and kernel virtual (a symbol the dump has): both refused.
        for args in [
            vec!["write", "-M", p, "--phys", "0x1000", "00"],
            vec!["write", "-M", p, "init_uts_ns", "41"],
            vec!["write", "-M", p, "--json", "init_uts_ns", "4142"],
        ] {
            let err = error(&args);
            assert!(
                err.starts_with(&format!(
                    "kvm: {p}: the source is read-only (a dump is never written"
                )),
                "{args:?}: {err}"
            );
        }
        assert_eq!(std::fs::read(f).unwrap(), before, "{p} changed");
    }
}

#[test]
fn live_doors_that_are_not_there_say_so() {
    // A process that is not QEMU, and one that does not exist.
    let me = std::process::id();
    let err = error(&["ps", "-M", &format!("qemu:{me}")]);
    assert!(
        err.starts_with(&format!(
            "kvm: qemu:{me}: process {me} is not a QEMU process (its command is "
        )),
        "{err}"
    );
    let err = error(&["ps", "-M", "qemu:4000000000"]);
    assert_eq!(err, "kvm: qemu:4000000000: no process 4000000000\n");
    // No live kernel: the door's message says what to do instead.
    let out = Command::new(env!("CARGO_BIN_EXE_kvm"))
        .args(["ps"])
        .env("KVM_KCORE", "/nonexistent/kcore")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "kvm: /nonexistent/kcore: no such file: no live kernel memory here (open a crash dump instead: -M CORE)\n"
    );
}

#[test]
fn a_live_kernel_the_user_may_not_read_says_what_it_needs() {
    // An ELF stand-in for /proc/kcore that this user cannot read: as root,
    // kvm runs as nobody (setpriv); otherwise the owner lacks the right.
    let d = scratch("kcore");
    let kcore = d.join("kcore");
    let o = kvm(&[
        "convert",
        "-M",
        fixture().to_str().unwrap(),
        "--to",
        "elf",
        "-o",
        kcore.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kcore, std::fs::Permissions::from_mode(0o000)).unwrap();
    let uid = Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    let mut c = if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ]);
        c.arg(env!("CARGO_BIN_EXE_kvm"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_kvm"))
    };
    let out = c.args(["ps"]).env("KVM_KCORE", &kcore).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "kvm: {}: permission denied: reading the live kernel needs root (CAP_SYS_RAWIO), and a kernel in lockdown refuses it\n",
            kcore.display()
        )
    );
}

#[test]
fn a_file_that_is_no_memory_image_is_refused_by_name() {
    let d = scratch("raw");
    // Bytes with no format's header and no kernel in them, of a size no
    // RAM has; and an empty file.
    let junk = d.join("junk.bin");
    std::fs::write(&junk, vec![0x5au8; 12_345]).unwrap();
    let j = junk.to_str().unwrap();
    let err = error(&["ps", "-M", j]);
    assert_eq!(
        err,
        format!(
            "kvm: {j}: unsupported: unknown dump format (not ELF, kdump, flattened kdump, LiME, FreeBSD minidump or OpenBSD kcore), \
             and no kernel's VMCOREINFO in it read as raw memory\n"
        )
    );
    let empty = d.join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let e = empty.to_str().unwrap();
    let err = error(&["info", "-M", e]);
    assert!(err.starts_with(&format!("kvm: {e}: ")), "{err}");
}

/// The committed fixture is cut to the pages `ps` reads: stacks, file
/// tables and VMAs are not in it. `bt`, `files` and `maps` say so, each
/// with exit status 1 (`files` after the processes it could list, none
/// here), never an empty answer with status 0.
#[test]
fn what_a_cut_dump_lacks_is_said() {
    let core = fixture();
    let core = core.to_str().unwrap();
    let e = error(&["files", "-M", core]);
    assert!(
        e.contains("open files of 71 processes could not be read"),
        "{e}"
    );
    assert!(e.contains("was excluded from the dump"), "{e}");
    let e = error(&["maps", "--pid", "1", "-M", core]);
    assert!(e.contains("excluded from the dump"), "{e}");
    // Every process's: those whose maps are cut out are named.
    let e = error(&["maps", "-M", core]);
    assert!(
        e.contains("the maps of 19 processes could not be read"),
        "{e}"
    );
    let e = error(&["maps", "--pid", "99999", "-M", core]);
    assert!(e.contains("no process 99999"), "{e}");
    // amd64: the BTF pages naming the ORC entry's layout are not in it.
    let e = error(&["bt", "--pid", "1", "-M", core]);
    assert!(e.contains("excluded from the dump"), "{e}");
    // arm64 reads the saved context, but the kernel's own text bounds
    // are not in the cut dump: no frame is named by guesswork.
    let arm = fixture()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("arm64-kaslr/vmcore.kdump.xz");
    let out = kvm(&["bt", "--pid", "1", "--json", "-M", arm.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["end"], "broken", "{v}");
    let why = v[0]["error"].as_str().unwrap();
    assert!(why.contains("kernel's text is not known"), "{v}");
    assert_eq!(v[0]["frames"].as_array().unwrap().len(), 0, "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 1 backtraces end before"));
}

/// Finding 8 on the committed fixture: a kdump that lost one process's
/// `task_struct` pages lists every other process, marks the lost one's
/// row with why (human and JSON alike), and exits 1 saying how many
/// could not be read. The fixture holds only the pages an intact `ps`
/// reads, so not the pid namespace's idr: the task list is read from
/// both ends, and the lost task is known by its address, its pid `?`
/// (the lab test `holes` has the idr, and the pids).
#[test]
fn a_lost_task_struct_is_a_marked_row_not_a_failed_list() {
    use kvm::convert::{convert, Keep, Target};
    let d = scratch("lost-task");
    let kd = kvm::Kvm::open_dump(fixture()).unwrap();
    let procs = kd.getprocs(kvm::ProcOp::All).unwrap();
    let victim = &procs[20];
    let size = kd.type_info("task_struct").unwrap().unwrap().1;
    let lost: std::collections::BTreeSet<u64> = (victim.task..victim.task + size)
        .step_by(4096)
        .chain([victim.task + size - 1])
        .map(|va| kd.translate(va).unwrap().pa.0 >> 12)
        .collect();
    let mut keep = std::collections::BTreeSet::new();
    for r in kd.source().ranges() {
        keep.extend((r.start >> 12..r.end().div_ceil(4096)).filter(|f| !lost.contains(f)));
    }
    let out = d.join("holed.kdump");
    let to = Target::Kdump {
        compression: kvm_core_file::codec::Compression::Zstd,
        flat: false,
    };
    convert(&kd, to, &Keep::new(Vec::new(), Some(keep)), &out, None).unwrap();
    let holed = out.to_str().unwrap();

    let human = kvm(&["ps", "-M", holed]);
    assert_eq!(human.status.code(), Some(1));
    let stdout = String::from_utf8(human.stdout).unwrap();
    // Every process has its row: the header, then as many as before.
    assert_eq!(stdout.lines().count(), procs.len() + 1, "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.contains("<unavailable:"))
        .unwrap_or_else(|| panic!("no marked row: {stdout}"));
    assert!(row.trim_start().starts_with('?'), "{row}");
    assert!(row.contains("was excluded from the dump"), "{row}");
    let stderr = String::from_utf8(human.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "1 of {} processes could not be read (task {:#x}:",
            procs.len(),
            victim.task
        )),
        "{stderr}"
    );

    let json = kvm(&["ps", "--json", "-M", holed]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let v = v.as_array().unwrap();
    assert_eq!(v.len(), procs.len());
    let lost: Vec<_> = v
        .iter()
        .filter(|p| p.get("unavailable").is_some())
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["pid"], serde_json::Value::Null);
    assert_eq!(lost[0]["task"], format!("{:#x}", victim.task));
    // The others, exactly as from the whole fixture.
    let whole = kvm(&["ps", "--json", "-M", fixture().to_str().unwrap()]);
    let whole: serde_json::Value = serde_json::from_slice(&whole.stdout).unwrap();
    let others: Vec<_> = v
        .iter()
        .filter(|p| p.get("unavailable").is_none())
        .collect();
    let want: Vec<_> = whole
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["pid"] != victim.pid)
        .map(|p| {
            let mut p = p.clone();
            // The children of the lost task cannot read their ppid.
            if p["ppid"] == victim.pid {
                p["ppid"] = serde_json::Value::Null;
            }
            p
        })
        .collect();
    assert_eq!(others, want.iter().collect::<Vec<_>>());
    std::fs::remove_dir_all(&d).unwrap();
}

/// Issue 16, finding 3: VMCOREINFO's OSRELEASE was echoed unchecked.
/// A kdump whose VMCOREINFO names another release than the kernel's
/// memory (`init_uts_ns`) holds gets a remark saying both.
#[test]
fn a_release_the_memory_contradicts_is_remarked() {
    let d = scratch("osrelease");
    let mut bytes = Vec::new();
    lzma_rs::xz_decompress(
        &mut std::io::BufReader::new(std::fs::File::open(fixture()).unwrap()),
        &mut bytes,
    )
    .unwrap();
    let key = b"OSRELEASE=";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("VMCOREINFO in the sub header")
        + key.len();
    let release: Vec<u8> = bytes[at..]
        .iter()
        .take_while(|&&b| b != b'\n')
        .copied()
        .collect();
    let release = String::from_utf8(release).unwrap();
    // Same length, one digit changed: 6.1.0-… becomes 7.1.0-….
    bytes[at] = if bytes[at] == b'7' { b'8' } else { b'7' };
    let edited = d.join("edited.kdump");
    std::fs::write(&edited, &bytes).unwrap();
    let out = kvm(&["info", "--json", "-M", edited.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let remarks = v["remarks"].to_string();
    assert!(
        remarks.contains(&format!("(init_uts_ns) {release}")),
        "{remarks}"
    );
    assert!(
        remarks.contains("VMCOREINFO says release 7")
            || remarks.contains("VMCOREINFO says release 8"),
        "{remarks}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
