//! A mapping of a process's address space, as `/proc/PID/maps` lists it.

use alloc::format;
use alloc::vec::Vec;

/// One VMA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Shared (`VM_MAYSHARE`: `s`), else private (`p`).
    pub shared: bool,
    /// Offset into the file (0 for anonymous memory).
    pub offset: u64,
    /// The file's device, major and minor (0:0 for anonymous memory).
    pub major: u32,
    /// See `major`.
    pub minor: u32,
    /// The file's inode number (0 for anonymous memory).
    pub inode: u64,
    /// The file's path, or `[heap]`, `[stack]`, `[vdso]`, …; `None` for
    /// anonymous memory without a name.
    pub name: Option<Vec<u8>>,
}

impl Mapping {
    /// The line `/proc/PID/maps` prints, without its newline: `start-end
    /// perms offset major:minor inode`, then the name padded to column
    /// 73 (a newline in a path as `\012`).
    pub fn proc_line(&self) -> Vec<u8> {
        let flag = |b: bool, c: u8| if b { c } else { b'-' };
        let mut l = format!(
            "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
            self.start,
            self.end,
            flag(self.read, b'r') as char,
            flag(self.write, b'w') as char,
            flag(self.exec, b'x') as char,
            if self.shared { 's' } else { 'p' },
            self.offset,
            self.major,
            self.minor,
            self.inode
        )
        .into_bytes();
        if let Some(name) = &self.name {
            // seq_setwidth(25 + 6 pointer widths - 1), then seq_pad:
            // spaces to that width, and one more.
            const WIDTH: usize = 25 + 6 * 8 - 1;
            while l.len() < WIDTH {
                l.push(b' ');
            }
            l.push(b' ');
            for &c in name {
                if c == b'\n' {
                    l.extend_from_slice(b"\\012");
                } else {
                    l.push(c);
                }
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_proc_prints_them() {
        let mut m = Mapping {
            start: 0x400000,
            end: 0x401000,
            read: true,
            write: false,
            exec: true,
            shared: false,
            offset: 0x1000,
            major: 0,
            minor: 0x1a,
            inode: 4242,
            name: Some(b"/bin/busybox".to_vec()),
        };
        let l = m.proc_line();
        assert!(l.starts_with(b"00400000-00401000 r-xp 00001000 00:1a 4242 "));
        assert_eq!(&l[73..], b"/bin/busybox");
        assert!(l[43..73].iter().all(|&c| c == b' '));
        m.name = None;
        assert_eq!(
            m.proc_line(),
            b"00400000-00401000 r-xp 00001000 00:1a 4242 "
        );
        m.name = Some(b"/tmp/a\nb".to_vec());
        assert!(m.proc_line().ends_with(b" /tmp/a\\012b"));
    }
}
