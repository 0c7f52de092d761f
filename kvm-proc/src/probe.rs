//! Which OS layer takes a source: the table of OS layers, tried in order,
//! each saying why it does not apply; and the paging of a source none
//! takes.

use crate::os::Os;
use crate::paging::KernelPaging;
use alloc::boxed::Box;
use alloc::vec::Vec;
use kvm_core::{Result, Source};

/// An OS layer's test of a source: the OS, or why it does not apply.
pub type Probe = fn(&dyn Source) -> core::result::Result<Box<dyn Os>, &'static str>;

/// The OS layers, tried in order.
pub const PROBES: &[(&str, Probe)] = &[
    ("linux", crate::linux::probe),
    ("freebsd", crate::freebsd::probe),
    ("openbsd", crate::openbsd::probe),
];

/// Why no OS layer took a source: each layer's name and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoOs(pub Vec<(&'static str, &'static str)>);

impl core::fmt::Display for NoOs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("no OS layer recognises the kernel")?;
        for (i, (os, why)) in self.0.iter().enumerate() {
            write!(f, "{}{os}: {why}", if i == 0 { " (" } else { "; " })?;
        }
        if !self.0.is_empty() {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The first OS layer of [`PROBES`] that takes `source`.
pub fn probe(source: &dyn Source) -> core::result::Result<Box<dyn Os>, NoOs> {
    let mut why = Vec::new();
    for (name, p) in PROBES {
        match p(source) {
            Ok(os) => return Ok(os),
            Err(e) => why.push((*name, e)),
        }
    }
    Err(NoOs(why))
}

/// The kernel's paging when no OS layer took the source (a QEMU dump of
/// an unknown kernel still has its CPUs' CR3), or the error saying why
/// there is none.
pub fn paging_from_cpus(source: &dyn Source) -> Result<KernelPaging> {
    crate::paging::from_cpu_notes(source.info())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use kvm_core::{Endian, MapRange, OsHint, PhysAddr, PhysRead, SourceInfo, VmCoreInfo};

    #[derive(Debug)]
    struct Facts(SourceInfo);

    impl PhysRead for Facts {
        fn read_phys(&self, pa: PhysAddr, _: &mut [u8]) -> Result<usize> {
            Err(kvm_core::Error::NotInMemory { pa: pa.0 })
        }
    }

    impl Source for Facts {
        fn info(&self) -> &SourceInfo {
            &self.0
        }
        fn ranges(&self) -> &[MapRange] {
            &[]
        }
    }

    #[test]
    fn each_layer_says_why_not() {
        let mut info = SourceInfo::new("test", Endian::Little);
        let no = probe(&Facts(info.clone())).unwrap_err();
        assert_eq!(
            no,
            NoOs(alloc::vec![
                ("linux", "the dump has no VMCOREINFO"),
                ("freebsd", "the source does not say it is FreeBSD"),
                ("openbsd", "the source does not say it is OpenBSD"),
            ])
        );
        assert_eq!(
            no.to_string(),
            "no OS layer recognises the kernel (linux: the dump has no VMCOREINFO; \
             freebsd: the source does not say it is FreeBSD; \
             openbsd: the source does not say it is OpenBSD)"
        );
        info.vmcoreinfo = Some(VmCoreInfo::parse(b"OSRELEASE=6.1.0\n").unwrap());
        assert_eq!(probe(&Facts(info.clone())).unwrap().name(), "linux");
        // A hint for another OS wins over VMCOREINFO.
        for (hint, name) in [(OsHint::FreeBsd, "freebsd"), (OsHint::OpenBsd, "openbsd")] {
            info.os = Some(hint);
            assert_eq!(probe(&Facts(info.clone())).unwrap().name(), name);
        }
        info.os = Some(OsHint::Linux);
        info.vmcoreinfo = None;
        assert_eq!(
            probe(&Facts(info)).unwrap_err().0,
            [
                ("linux", "the dump has no VMCOREINFO"),
                ("freebsd", "the source names another OS"),
                ("openbsd", "the source names another OS"),
            ]
        );
        assert_eq!(
            NoOs(alloc::vec![]).to_string(),
            "no OS layer recognises the kernel"
        );
    }
}
