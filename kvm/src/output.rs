//! Files kvm writes (`kvm convert -o`): never the input (the same file by
//! another name or through a symlink), never a device or FIFO, written
//! under a temporary name beside the output and renamed into place only
//! when complete; a failed or abandoned write leaves nothing behind and
//! the old output, if any, untouched.

use crate::Error;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An output being written; dropped without [`Output::commit`], its
/// temporary file is removed.
#[derive(Debug)]
pub(crate) struct Output {
    path: PathBuf,
    tmp: PathBuf,
    failed: Arc<AtomicBool>,
    committed: bool,
}

/// The output's file, remembering whether a write to it failed (so that
/// an error is blamed on the right file).
#[derive(Debug)]
pub(crate) struct Watched {
    file: File,
    failed: Arc<AtomicBool>,
}

fn refuse(path: &Path, why: &str) -> Error {
    Error::io(
        Some(path.to_path_buf()),
        std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
    )
}

impl Output {
    /// Starts writing `path`, which must not be `input`.
    pub fn create(path: &Path, input: &Path) -> Result<(Output, Watched), Error> {
        if let Ok(out) = std::fs::metadata(path) {
            if let Ok(inp) = std::fs::metadata(input) {
                if (out.dev(), out.ino()) == (inp.dev(), inp.ino()) {
                    return Err(refuse(
                        path,
                        &format!("is the input {} (it would be destroyed)", input.display()),
                    ));
                }
            }
            if !out.file_type().is_file() {
                return Err(refuse(path, "exists and is not a regular file"));
            }
        }
        let name = path
            .file_name()
            .ok_or_else(|| refuse(path, "names no file"))?
            .to_string_lossy();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = dir.join(format!(".{name}.kvm-{}.tmp", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(Some(tmp.clone()), e))?;
        let failed = Arc::new(AtomicBool::new(false));
        let out = Output {
            path: path.to_path_buf(),
            tmp,
            failed: Arc::clone(&failed),
            committed: false,
        };
        Ok((out, Watched { file, failed }))
    }

    /// Whether a write to the output failed (else a failure was the
    /// input's).
    pub fn write_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Puts the complete file in place.
    pub fn commit(mut self) -> Result<(), Error> {
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| Error::io(Some(self.path.clone()), e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Watched {
    fn watch<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if r.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        r
    }

    /// The file's size so far.
    pub fn len(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }
}

impl Write for Watched {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let r = self.file.write(b);
        self.watch(r)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.file.flush();
        self.watch(r)
    }
}

impl Seek for Watched {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let r = self.file.seek(pos);
        self.watch(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kvm-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_input_is_never_the_output() {
        let d = dir("same");
        let input = d.join("vmcore");
        std::fs::write(&input, b"dump").unwrap();
        std::os::unix::fs::symlink(&input, d.join("link")).unwrap();
        std::fs::hard_link(&input, d.join("hard")).unwrap();
        for out in [
            input.clone(),
            d.join("link"),
            d.join("hard"),
            d.join("./vmcore"),
        ] {
            let e = Output::create(&out, &input).unwrap_err();
            assert!(e.to_string().contains("is the input"), "{e}");
        }
        assert_eq!(std::fs::read(&input).unwrap(), b"dump");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            3,
            "no temporary file left"
        );
    }

    #[test]
    fn special_files_are_refused() {
        let e = Output::create(Path::new("/dev/null"), Path::new("/nonexistent")).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn written_on_commit_removed_on_drop() {
        let d = dir("commit");
        let out = d.join("new.kdump");
        std::fs::write(&out, b"old").unwrap();
        let (o, mut w) = Output::create(&out, Path::new("/nonexistent")).unwrap();
        w.write_all(b"partial").unwrap();
        drop((o, w));
        assert_eq!(
            std::fs::read(&out).unwrap(),
            b"old",
            "a failed write keeps the old file"
        );
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        let (o, mut w) = Output::create(&out, Path::new("/nonexistent")).unwrap();
        w.write_all(b"whole").unwrap();
        assert!(!o.write_failed());
        o.commit().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }
}
