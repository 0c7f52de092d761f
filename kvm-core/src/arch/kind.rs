//! Which machine a kernel runs on: the one architecture type of the
//! workspace (dump headers, walkers, the CLI all speak it).

/// A machine architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Arch {
    /// x86-64 (amd64).
    X86_64,
    /// 64-bit Arm (arm64).
    Aarch64,
    /// 32-bit x86.
    I386,
    /// Another architecture; the value is its ELF `e_machine`.
    Other(u16),
}

impl Arch {
    /// From an ELF `e_machine` value (`EM_X86_64` 62, `EM_AARCH64` 183,
    /// `EM_386` 3).
    pub fn from_elf_machine(m: u16) -> Arch {
        match m {
            62 => Arch::X86_64,
            183 => Arch::Aarch64,
            3 => Arch::I386,
            other => Arch::Other(other),
        }
    }

    /// The ELF `e_machine` value (the inverse of [`Arch::from_elf_machine`]).
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
            Arch::I386 => 3,
            Arch::Other(m) => m,
        }
    }

    /// From a `utsname.machine` string ("x86_64", "aarch64", "i686", …).
    pub fn from_uname(m: &str) -> Option<Arch> {
        match m {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            "i386" | "i486" | "i586" | "i686" => Some(Arch::I386),
            _ => None,
        }
    }

    /// The name `uname -m` prints.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::I386 => "i386",
            Arch::Other(_) => "unknown",
        }
    }

    /// Bytes in a kernel pointer.
    pub fn pointer_size(self) -> Option<u64> {
        match self {
            Arch::X86_64 | Arch::Aarch64 => Some(8),
            Arch::I386 => Some(4),
            Arch::Other(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Arch;

    #[test]
    fn elf_machine_round_trips() {
        for a in [Arch::X86_64, Arch::Aarch64, Arch::I386, Arch::Other(40)] {
            assert_eq!(Arch::from_elf_machine(a.elf_machine()), a);
        }
        assert_eq!(Arch::from_uname("i686"), Some(Arch::I386));
        assert_eq!(Arch::from_uname("riscv64"), None);
    }
}
