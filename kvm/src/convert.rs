//! `kvm convert`'s policy: which memory of an open source goes into a new
//! dump (its ranges, clipped to the ranges asked for; the pages a command
//! reads), and writing it as an ELF core, a kdump file, an OpenBSD
//! savecore file, a LiME or a raw image.

use crate::output::{Output, Watched};
use crate::record::{PageSet, Recording};
use crate::{Error, Kvm, ProcOp};
use kvm_core::{MapRange, PhysAddr, PhysRead};
use kvm_core_file::codec::Compression;
use kvm_core_file::write::openbsd::{self, KcoreHeader};
use kvm_core_file::write::{elf, kdump as kw, lime, raw, IoSink};
use std::collections::BTreeSet;
use std::path::Path;

/// The format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// An ELF core (QEMU's layout: one PT_LOAD per range).
    Elf,
    /// A kdump-compressed file, plain or flattened (`makedumpfile -F`).
    Kdump {
        /// Page compression.
        compression: Compression,
        /// Write the flattened stream.
        flat: bool,
    },
    /// An OpenBSD savecore file (amd64 and i386 kernels only), its header
    /// made by [`Kvm::dump_mkheader`].
    OpenBsd,
    /// A LiME image: the ranges, no other metadata.
    Lime,
    /// A raw image as QEMU's `pmemsave` writes one: memory from the first
    /// range's start, gaps as zeros, no metadata.
    Raw,
}

/// What to keep: everything when both are empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keep {
    /// Physical ranges (start, length).
    pub ranges: Vec<(u64, u64)>,
    /// 4 KiB frames (physical address >> 12), as [`pages_read_by_ps`]
    /// gives them.
    pub frames: Option<BTreeSet<u64>>,
}

impl Keep {
    /// Keeps `frames` and `ranges`.
    pub fn new(ranges: Vec<(u64, u64)>, frames: Option<BTreeSet<u64>>) -> Self {
        Keep { ranges, frames }
    }

    fn is_all(&self) -> bool {
        self.ranges.is_empty() && self.frames.is_none()
    }

    /// Whether the page of `page_size` bytes at `pa` is kept.
    pub fn page(&self, pa: u64, page_size: u64) -> bool {
        if self.is_all() {
            return true;
        }
        let end = pa.saturating_add(page_size);
        let by_frame = self
            .frames
            .as_ref()
            .is_some_and(|f| f.range(pa >> 12..end.div_ceil(4096)).next().is_some());
        let by_range = self
            .ranges
            .iter()
            .any(|&(s, l)| pa < s.saturating_add(l) && end > s);
        by_frame || by_range
    }

    /// `ranges` (sorted) clipped to the kept ranges; all of them without
    /// any.
    pub fn clip(&self, ranges: &[MapRange]) -> Vec<MapRange> {
        let mut out = Vec::new();
        for r in ranges {
            if self.ranges.is_empty() {
                out.push(MapRange { value: 0, ..*r });
                continue;
            }
            for &(ks, kl) in &self.ranges {
                let (s, e) = (r.start.max(ks), r.end().min(ks.saturating_add(kl)));
                if s < e {
                    out.push(MapRange {
                        start: s,
                        len: e - s,
                        value: 0,
                    });
                }
            }
        }
        out.sort_by_key(|r| r.start);
        out
    }
}

/// What was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Bytes of memory (ELF, OpenBSD) or pages (kdump) written.
    pub written: u64,
    /// Pages marked excluded (kdump); bytes written as zeros because the
    /// source could not give them or they were not kept (OpenBSD).
    pub excluded: u64,
    /// Size of the output.
    pub file_size: u64,
}

/// Progress: (done, total) in bytes (ELF, OpenBSD) or pages (kdump).
pub type Progress = Box<dyn Fn(u64, u64) + Send + Sync>;

/// Opens the dump at `core` (with the kernel file `exec`) and runs what
/// `kvm ps --json`, `loadavg`, `info` and a read of `linux_banner` read,
/// recording the 4 KiB frames they touch: how the committed fixtures are
/// cut down. Returns the handle (to convert from) and the frames.
pub fn pages_read_by_ps(core: &Path, exec: Option<&Path>) -> Result<(Kvm, BTreeSet<u64>), Error> {
    let pages = PageSet::default();
    let p = pages.clone();
    let kd = Kvm::open_dump_with(core, |d| Box::new(Recording::new(d, p)))?;
    if let Some(k) = exec {
        kd.set_kernel_file(k)?;
    }
    let _ = kd.info();
    let _ = kd.uts_release()?;
    for p in kd.getprocs(ProcOp::All)? {
        let _ = kd.getargv(&p);
        let _ = kd.getenvv(&p);
    }
    let _ = kd.getloadavg()?;
    // The banner, as `kvm read` of linux_banner shows it.
    if let Some(Some(banner)) = kd.nlist(&["linux_banner"])?.first() {
        let mut b = [0u8; 512];
        let _ = kd.read(*banner, &mut b);
    }
    let set = pages.lock().map(|p| p.clone()).unwrap_or_default();
    Ok((kd, set))
}

/// Writes the memory of `kd` that `keep` selects to `output` as `to`.
pub fn convert(
    kd: &Kvm,
    to: Target,
    keep: &Keep,
    output: &Path,
    progress: Option<Progress>,
) -> Result<Summary, Error> {
    let (out, file) = Output::create(output, kd.path())?;
    // A failure is the output's when writing it failed, else the input's.
    let at = |e: kvm_core::Error| {
        let blamed = if out.write_failed() {
            output
        } else {
            kd.path()
        };
        Error::core(Some(blamed.to_path_buf()), e)
    };
    let summary = write(kd, to, keep, file, progress, &at)?;
    out.commit()?;
    Ok(summary)
}

/// Writes the memory of `kd` that `keep` selects to `file` as `to`;
/// `at` names the file a failure concerns.
fn write(
    kd: &Kvm,
    to: Target,
    keep: &Keep,
    file: Watched,
    progress: Option<Progress>,
    at: &dyn Fn(kvm_core::Error) -> Error,
) -> Result<Summary, Error> {
    let source = kd.source();
    let info = source.info();
    let io = |e: std::io::Error| {
        at(kvm_core::Error::Io {
            errno: e.raw_os_error().unwrap_or(0),
        })
    };
    match to {
        Target::Elf | Target::Lime | Target::Raw => {
            let ranges = keep.clip(source.ranges());
            let total: u64 = ranges.iter().map(|r| r.len).sum();
            let mut sink = IoSink(std::io::BufWriter::with_capacity(1 << 20, file));
            let mut report = |done| {
                if let Some(p) = &progress {
                    p(done, total);
                }
            };
            match to {
                Target::Elf => {
                    // The same notes the kdump writer stores: CPU states and VMCOREINFO.
                    let notes = kw::notes_for(info, info.endian);
                    let opts = elf::ElfOptions {
                        is64: true,
                        endian: info.endian,
                        // EM_NONE when the source does not say.
                        machine: info.arch.map_or(0, kvm_core::Arch::elf_machine),
                    };
                    elf::write_elf(&mut sink, opts, source, &ranges, &notes, &mut report)
                }
                Target::Lime => lime::write_lime(&mut sink, source, &ranges, &mut report),
                _ => raw::write_raw(&mut sink, source, &ranges, &mut report),
            }
            .map_err(at)?;
            let f = sink.0.into_inner().map_err(|e| io(e.into_error()))?;
            let file_size = f.len();
            Ok(Summary {
                written: total,
                excluded: 0,
                file_size,
            })
        }
        Target::Kdump { compression, flat } => {
            let mut opts = kw::KdumpOptions::new(compression);
            opts.progress = progress;
            if !keep.is_all() {
                let keep = keep.clone();
                let page = info.page_size.unwrap_or(4096);
                opts.keep = Some(Box::new(move |pfn: u64| keep.page(pfn * page, page)));
            }
            let s = if flat {
                kw::write_flattened(source, &opts, file)
            } else {
                kw::write(source, &opts, file)
            }
            .map_err(at)?;
            Ok(Summary {
                written: s.pages,
                excluded: s.excluded,
                file_size: s.file_size,
            })
        }
        Target::OpenBsd => {
            let ranges = keep.clip(source.ranges());
            let hdr = kd.dump_mkheader()?;
            // The kept ranges, with the root and mode of the whole dump's.
            let hdr =
                KcoreHeader::new(hdr.arch(), hdr.ptdpaddr(), hdr.pae(), &ranges).map_err(at)?;
            let mut sink = IoSink(std::io::BufWriter::with_capacity(1 << 20, file));
            let mut report = |done, total| {
                if let Some(p) = &progress {
                    p(done, total);
                }
            };
            // Pages the frames do not keep read as excluded: zeros.
            let kept = Kept { source, keep };
            let mem: &dyn PhysRead = if keep.frames.is_some() { &kept } else { source };
            let s = openbsd::write_kcore(&mut sink, &hdr, mem, &mut report).map_err(at)?;
            sink.0.into_inner().map_err(|e| io(e.into_error()))?;
            Ok(Summary {
                written: s.memory,
                // Bytes the source could not give, written as zeros.
                excluded: s.zero_filled,
                file_size: s.file_size,
            })
        }
    }
}

/// A source seen through [`Keep`]: pages it does not keep are excluded.
struct Kept<'a> {
    source: &'a dyn kvm_core::Source,
    keep: &'a Keep,
}

impl PhysRead for Kept<'_> {
    fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> kvm_core::Result<usize> {
        let page = pa.0 & !0xfff;
        if !self.keep.page(page, 0x1000) {
            return Err(kvm_core::Error::Excluded { pa: pa.0 });
        }
        // One page at a time: the next one may not be kept.
        let n = usize::try_from(page + 0x1000 - pa.0)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        self.source.read_phys(pa, &mut buf[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_ranges_to_the_kept_ones() {
        let r = |start, len| MapRange {
            start,
            len,
            value: 7,
        };
        let keep = Keep::new(vec![(0x1800, 0x1000), (0x9000, 0x10)], None);
        assert_eq!(
            keep.clip(&[r(0x1000, 0x2000), r(0x8000, 0x2000)]),
            [
                MapRange {
                    start: 0x1800,
                    len: 0x1000,
                    value: 0
                },
                MapRange {
                    start: 0x9000,
                    len: 0x10,
                    value: 0
                },
            ]
        );
        assert_eq!(
            Keep::default().clip(&[r(0, 10)]),
            [MapRange {
                start: 0,
                len: 10,
                value: 0
            }]
        );
    }

    #[test]
    fn pages_kept_by_frame_or_range() {
        let keep = Keep::new(vec![(0x10_0000, 1)], Some([3u64, 20].into_iter().collect()));
        assert!(keep.page(0x3000, 4096));
        assert!(!keep.page(0x4000, 4096));
        // A 64 KiB block holding frame 20 (0x14000) is kept.
        assert!(keep.page(0x10000, 0x10000));
        assert!(keep.page(0x10_0000, 4096));
        assert!(!keep.page(0x10_1000, 4096));
        assert!(Keep::default().page(0x1234_5000, 4096));
    }
}
