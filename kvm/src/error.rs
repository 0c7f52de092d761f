//! The facade's error: what failed, on which file, and why.

use std::fmt;
use std::path::PathBuf;

/// An error of the facade: the core error or an I/O error, with the file
/// it concerns. `Display` gives the one-line `kvm_geterr` text.
#[derive(Debug)]
pub struct Error {
    path: Option<PathBuf>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Core(kvm_core::Error),
    Io(std::io::Error),
}

impl Error {
    pub(crate) fn core(path: Option<PathBuf>, e: kvm_core::Error) -> Self {
        Error {
            path,
            kind: Kind::Core(e),
        }
    }
    pub(crate) fn io(path: Option<PathBuf>, e: std::io::Error) -> Self {
        Error {
            path,
            kind: Kind::Io(e),
        }
    }

    /// The core error, when this is one (what failed and at which address).
    pub fn core_error(&self) -> Option<kvm_core::Error> {
        match self.kind {
            Kind::Core(e) => Some(e),
            _ => None,
        }
    }

    /// The kind of I/O error, when this is one.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match &self.kind {
            Kind::Io(e) => Some(e.kind()),
            _ => None,
        }
    }

    /// The file the error concerns.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        match &self.kind {
            // The system's message for an errno (the core crates have no
            // strerror).
            Kind::Core(kvm_core::Error::Io { errno }) if *errno > 0 => {
                io_message(&std::io::Error::from_raw_os_error(*errno), f)
            }
            Kind::Core(e) => write!(f, "{e}"),
            Kind::Io(e) => io_message(e, f),
        }
    }
}

/// An I/O error as BSD tools print one: the system's message, without
/// Rust's ` (os error N)`.
fn io_message(e: &std::io::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let text = e.to_string();
    let plain = e
        .raw_os_error()
        .and_then(|code| text.strip_suffix(&format!(" (os error {code})")));
    f.write_str(plain.unwrap_or(&text))
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Core(e) => Some(e),
            Kind::Io(e) => Some(e),
        }
    }
}
