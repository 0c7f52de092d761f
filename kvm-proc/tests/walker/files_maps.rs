//! Open files and memory maps on the fake kernel: a file table, dentries
//! across two mounts and a maple tree written by hand, then hostile ones
//! (a dentry chain that loops, an fd table larger than the kernel allows,
//! a maple node that is its own child), each with its bounded error.

use crate::fake::{FakeKernel, Layout, Mm, Task};
use kvm_core::Error;
use kvm_proc::linux::Linux;
use kvm_proc::{Mapping, OpenFile};

/// A task with a root mount, a file table and an mm, and the helpers to
/// hang dentries, files and VMAs on them.
struct Fs {
    k: FakeKernel,
    task: u64,
    /// The root mount's `struct mount` and its root dentry.
    mount: u64,
    root: u64,
    /// The fd array and the close-on-exec word.
    fds: u64,
    cloexec: u64,
    fdt: u64,
    sb: u64,
}

const DEV: u32 = 2; // 00:02
const S_IFREG: u16 = 0o100_000;
const S_IFCHR: u16 = 0o020_000;

impl Fs {
    fn new() -> Fs {
        let mut k = FakeKernel::with_layout(Layout::compact_with_files());
        let task = k.add_task(&Task {
            pid: 60,
            comm: "files",
            mm: Some(Mm {
                argv: &["files"],
                envv: &[],
                rss: [0; 4],
            }),
            ..Task::default()
        });
        let sb = k.alloc(0x40);
        k.poke_u32(k.member(sb, "super_block.s_dev"), DEV);
        let mut fs = Fs {
            k,
            task,
            mount: 0,
            root: 0,
            fds: 0,
            cloexec: 0,
            fdt: 0,
            sb,
        };
        let root = fs.dentry(None, "/", 1, 0o040_000);
        let mount = fs.mount(root, None);
        fs.root = root;
        fs.mount = mount;
        let k = &mut fs.k;
        let fsst = k.alloc(0x40);
        let at = k.member(fsst, "fs_struct.root");
        k.poke_u64(at, mount + 0x20);
        k.poke_u64(at + 8, root);
        k.poke_u64(k.member(task, "task_struct.fs"), fsst);
        let files = k.alloc(0x40);
        let fdt = k.alloc(0x20);
        let fds = k.alloc(8 * 64);
        let cloexec = k.alloc(8);
        k.poke_u32(k.member(fdt, "fdtable.max_fds"), 64);
        k.poke_u64(k.member(fdt, "fdtable.fd"), fds);
        k.poke_u64(k.member(fdt, "fdtable.close_on_exec"), cloexec);
        k.poke_u64(k.member(files, "files_struct.fdt"), fdt);
        k.poke_u64(k.member(task, "task_struct.files"), files);
        fs.fds = fds;
        fs.cloexec = cloexec;
        fs.fdt = fdt;
        fs
    }

    /// A hashed dentry `name` under `parent` (itself when `None`: a
    /// root), with an inode of `mode` numbered `ino`.
    fn dentry(&mut self, parent: Option<u64>, name: &str, ino: u64, mode: u16) -> u64 {
        let k = &mut self.k;
        let d = k.alloc(0x100);
        let s = k.alloc(64);
        k.poke(s, name.as_bytes());
        k.poke_u64(k.member(d, "dentry.d_name.name"), s);
        k.poke_u32(k.member(d, "dentry.d_name.len"), name.len() as u32);
        k.poke_u64(k.member(d, "dentry.d_parent"), parent.unwrap_or(d));
        k.poke_u64(k.member(d, "dentry.d_hash.pprev"), d); // hashed
        let inode = k.alloc(0x100);
        k.poke(k.member(inode, "inode.i_mode"), &mode.to_le_bytes());
        k.poke_u64(k.member(inode, "inode.i_ino"), ino);
        k.poke_u64(k.member(inode, "inode.i_sb"), self.sb);
        k.poke_u64(k.member(d, "dentry.d_inode"), inode);
        d
    }

    /// A mount of a filesystem whose root is `root`, on `on` (parent
    /// mount, mount point), or the namespace's root mount.
    fn mount(&mut self, root: u64, on: Option<(u64, u64)>) -> u64 {
        let k = &mut self.k;
        let m = k.alloc(0x100);
        k.poke_u64(m + 0x20, root); // mnt.mnt_root
        let (parent, point) = on.unwrap_or((m, root));
        k.poke_u64(k.member(m, "mount.mnt_parent"), parent);
        k.poke_u64(k.member(m, "mount.mnt_mountpoint"), point);
        m
    }

    /// A file opened on (`mount`, `dentry`) with `flags` at `pos`.
    fn file(&mut self, mount: u64, dentry: u64, flags: u32, pos: u64) -> u64 {
        let k = &mut self.k;
        let f = k.alloc(0x100);
        let p = k.member(f, "file.f_path");
        k.poke_u64(p, mount + 0x20);
        k.poke_u64(p + 8, dentry);
        k.poke_u32(k.member(f, "file.f_flags"), flags);
        k.poke_u64(k.member(f, "file.f_pos"), pos);
        let inode = k.peek_u64(k.member(dentry, "dentry.d_inode"));
        k.poke_u64(k.member(f, "file.f_inode"), inode);
        f
    }

    fn install(&mut self, fd: u32, file: u64, cloexec: bool) {
        self.k.poke_u64(self.fds + 8 * u64::from(fd), file);
        if cloexec {
            let w = self.k.peek_u64(self.cloexec) | 1 << fd;
            self.k.poke_u64(self.cloexec, w);
        }
    }
}

/// `/tmp/x` read-write at 7 with close-on-exec, `/dev/null` on a second
/// mount, a deleted file, as `/proc/PID/fd` and fdinfo show them.
#[test]
fn files_across_mounts() {
    let mut fs = Fs::new();
    let (root, mount) = (fs.root, fs.mount);
    let tmp = fs.dentry(Some(root), "tmp", 2, 0o040_000);
    let x = fs.dentry(Some(tmp), "x", 3, S_IFREG);
    let gone = fs.dentry(Some(tmp), "gone", 4, S_IFREG);
    fs.k.poke_u64(fs.k.member(gone, "dentry.d_hash.pprev"), 0); // unhashed
    let dev = fs.dentry(Some(root), "dev", 5, 0o040_000);
    let dev_root = fs.dentry(None, "/", 1, 0o040_000);
    let null = fs.dentry(Some(dev_root), "null", 6, S_IFCHR);
    let devfs = fs.mount(dev_root, Some((mount, dev)));
    let f = fs.file(mount, x, 0o100_002, 7);
    fs.install(3, f, true);
    let f = fs.file(devfs, null, 0o100_001, 0);
    fs.install(0, f, false);
    let f = fs.file(mount, gone, 0o100_000, 0);
    fs.install(9, f, false);
    let linux = Linux::new(&fs.k).unwrap();
    let got = linux.files(fs.task).unwrap();
    let want = [
        (0, &b"/dev/null"[..], 0o100_001, 0, "char", S_IFCHR, 6),
        (3, b"/tmp/x", 0o2_100_002, 7, "file", S_IFREG, 3),
        (9, b"/tmp/gone (deleted)", 0o100_000, 0, "file", S_IFREG, 4),
    ];
    assert_eq!(got.len(), want.len());
    for (g, (fd, path, flags, pos, kind, mode, inode)) in got.iter().zip(want) {
        let w = OpenFile {
            fd,
            path: path.to_vec(),
            flags,
            pos,
            kind,
            mode,
            inode,
            file: g.file,
        };
        assert_eq!(g, &w);
        assert_eq!(fs.k.peek_u64(fs.fds + 8 * u64::from(fd)), g.file);
    }
}

#[test]
fn hostile_file_tables() {
    // A dentry chain that loops (a → b → a, neither a root).
    let mut fs = Fs::new();
    let a = fs.dentry(Some(fs.root), "a", 2, S_IFREG);
    let b = fs.dentry(Some(a), "b", 3, S_IFREG);
    fs.k.poke_u64(fs.k.member(a, "dentry.d_parent"), b);
    let f = fs.file(fs.mount, b, 0, 0);
    fs.install(1, f, false);
    let linux = Linux::new(&fs.k).unwrap();
    assert_eq!(
        linux.files(fs.task),
        Err(Error::Malformed(
            "a dentry chain does not reach its root (corrupt or cyclic)"
        ))
    );
    // A table claiming 2^30 slots.
    let mut fs = Fs::new();
    fs.k.poke_u32(fs.k.member(fs.fdt, "fdtable.max_fds"), 1 << 30);
    let linux = Linux::new(&fs.k).unwrap();
    assert_eq!(
        linux.files(fs.task),
        Err(Error::Malformed(
            "an fd table with more slots than the kernel allows (NR_OPEN)"
        ))
    );
    // A file whose path points nowhere.
    let mut fs = Fs::new();
    let f = fs.k.alloc(0x100);
    fs.k.poke_u64(fs.k.member(f, "file.f_path") + 8, 0xffff_c900_0000_0000);
    fs.k.poke_u64(fs.k.member(f, "file.f_path"), fs.mount + 0x20);
    fs.install(2, f, false);
    let linux = Linux::new(&fs.k).unwrap();
    assert!(matches!(linux.files(fs.task), Err(Error::Unmapped { .. })));
}

/// A maple leaf (type 1) at `node` with `vmas` in its first slots.
fn leaf(k: &mut FakeKernel, vmas: &[(u64, u64)]) -> u64 {
    let raw = k.alloc(0x200);
    let node = (raw + 0xff) & !0xff;
    for (i, &(vma, last)) in vmas.iter().enumerate() {
        k.poke_u64(node + 0x08 + 8 * i as u64, last); // pivot
        k.poke_u64(node + 0x80 + 8 * i as u64, vma); // slot
    }
    k.poke(node + 0xf8, &[vmas.len() as u8 - 1]); // meta.end
    node | 1 << 3 | 2
}

fn vma(fs: &mut Fs, start: u64, end: u64, flags: u64, file: u64) -> u64 {
    let k = &mut fs.k;
    let v = k.alloc(0x100);
    k.poke_u64(k.member(v, "vm_area_struct.vm_start"), start);
    k.poke_u64(k.member(v, "vm_area_struct.vm_end"), end);
    k.poke_u64(k.member(v, "vm_area_struct.vm_flags"), flags);
    k.poke_u64(k.member(v, "vm_area_struct.vm_pgoff"), 1);
    k.poke_u64(k.member(v, "vm_area_struct.vm_file"), file);
    v
}

#[test]
fn maps_from_a_maple_leaf() {
    let mut fs = Fs::new();
    let bin = fs.dentry(Some(fs.root), "prog", 15, S_IFREG);
    let f = fs.file(fs.mount, bin, 0, 0);
    let text = vma(&mut fs, 0x40_0000, 0x40_1000, 0x5, f); // r-x
    let heap = vma(&mut fs, 0x100_0000, 0x102_0000, 0x3, 0); // rw-
    let mm = fs.k.mm_of(fs.task);
    fs.k.poke_u64(fs.k.member(mm, "mm_struct.start_brk"), 0x100_0000);
    fs.k.poke_u64(fs.k.member(mm, "mm_struct.brk"), 0x101_0000);
    let root = leaf(&mut fs.k, &[(text, 0x40_0fff), (heap, u64::MAX)]);
    fs.k.poke_u64(fs.k.member(mm, "mm_struct.mm_mt.ma_root"), root);
    let linux = Linux::new(&fs.k).unwrap();
    let got: Vec<Mapping> = linux.maps(fs.task, 4096).unwrap();
    let lines: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8(m.proc_line()).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("00400000-00401000 r-xp 00001000 00:02 15 "),
        "{lines:?}"
    );
    assert!(lines[0].ends_with(" /prog"));
    assert!(lines[1].starts_with("01000000-01020000 rw-p 00000000 00:00 0 "));
    assert!(lines[1].ends_with(" [heap]"));
}

#[test]
fn maple_node_that_is_its_own_child() {
    let mut fs = Fs::new();
    let raw = fs.k.alloc(0x200);
    let node = (raw + 0xff) & !0xff;
    let enode = node | 2 << 3 | 2; // maple_range_64
    fs.k.poke_u64(node + 0x80, enode); // slot 0: itself
    let mm = fs.k.mm_of(fs.task);
    fs.k.poke_u64(fs.k.member(mm, "mm_struct.mm_mt.ma_root"), enode);
    let linux = Linux::new(&fs.k).unwrap();
    assert_eq!(
        linux.maps(fs.task, 4096),
        Err(Error::Malformed(
            "the maple tree does not end (corrupt or cyclic)"
        ))
    );
}

/// Every 8-byte word of the kernel objects behind a file table and a map
/// (tasks, mm, dentries, mounts, files, VMAs, the maple leaf) replaced in
/// turn by values a corrupt kernel holds (0, all ones, a pointer to the
/// word itself, one into unmapped memory): each read ends, with its
/// answer or an error, never a panic or a hang.
#[test]
fn every_word_corrupted_in_turn() {
    let mut fs = Fs::new();
    let tmp = fs.dentry(Some(fs.root), "tmp", 2, 0o040_000);
    let x = fs.dentry(Some(tmp), "x", 3, S_IFREG);
    let f = fs.file(fs.mount, x, 0o2, 0);
    fs.install(3, f, true);
    let text = vma(&mut fs, 0x40_0000, 0x40_1000, 0x5, f);
    let heap = vma(&mut fs, 0x100_0000, 0x102_0000, 0x3, 0);
    let root = leaf(&mut fs.k, &[(text, 0x40_0fff), (heap, u64::MAX)]);
    let mm = fs.k.mm_of(fs.task);
    fs.k.poke_u64(fs.k.member(mm, "mm_struct.mm_mt.ma_root"), root);
    let (start, end) = fs.k.heap_range();
    let (mut ok, mut errors) = (0, 0);
    let began = std::time::Instant::now();
    for at in (start..end).step_by(8) {
        let old = fs.k.peek_u64(at);
        for bad in [0, u64::MAX, at, 0xffff_c900_0000_0000] {
            fs.k.poke_u64(at, bad);
            let linux = match Linux::new(&fs.k) {
                Ok(l) => l,
                Err(_) => {
                    errors += 1;
                    continue;
                }
            };
            for r in [
                linux.files(fs.task).map(|_| ()),
                linux.maps(fs.task, 4096).map(|_| ()),
            ] {
                match r {
                    Ok(()) => ok += 1,
                    Err(_) => errors += 1,
                }
            }
        }
        fs.k.poke_u64(at, old);
    }
    eprintln!(
        "{} words x 4 values: {ok} answers, {errors} errors in {:?}",
        (end - start) / 8,
        began.elapsed()
    );
    assert!(errors > 0 && ok > 0);
}
