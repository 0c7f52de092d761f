//! The dump-device layout (leader, body, trailer) around the real bodies,
//! and damaged `kerneldumpheader`s.

use super::data::{unpack, AMD64_FULL, AMD64_MINI, ARM64_MINI};
use kvm_core::{Error, PhysAddr, PhysReadExt, VirtAddr};
use kvm_core_file::freebsd::dumpheader::{parity, wrap, HEADER_SIZE};
use kvm_core_file::freebsd::{DeviceDump, DumpMagic, KernelDumpHeader};
use kvm_core_file::{FileReader, ReadAt, Result, Source};

/// Bytes before, a file, bytes after: a dump-device image without
/// copying a 100 MB body.
#[derive(Debug)]
struct Concat {
    head: Vec<u8>,
    body: FileReader,
    tail: Vec<u8>,
}

impl ReadAt for Concat {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let (h, b) = (self.head.len() as u64, self.body.size());
        if off < h {
            let n = buf.len().min((h - off) as usize);
            buf[..n].copy_from_slice(&self.head[off as usize..off as usize + n]);
            return Ok(n);
        }
        if off - h < b {
            return self.body.read_at(off - h, buf);
        }
        let t = (off - h - b) as usize;
        let src = self.tail.get(t..).unwrap_or_default();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.head.len() as u64 + self.body.size() + self.tail.len() as u64
    }
}

fn image(dump: (&str, u64), arch: &str, archver: u32, block: u32) -> (Concat, KernelDumpHeader) {
    let mut h = KernelDumpHeader::new(DumpMagic::KernelDump, arch, archver, dump.1, block);
    h.hostname = "lldb-test".into();
    h.panic_string = "sysctl debug.kdb.panic".into();
    let c = Concat {
        head: h.encode_block(),
        body: FileReader::open(unpack(dump)).unwrap(),
        tail: h.encode_block(),
    };
    (c, h)
}

fn hz(src: &dyn Source, va: u64) -> i32 {
    let t = src
        .translator()
        .unwrap()
        .translate(src, VirtAddr(va))
        .unwrap();
    let mut b = [0u8; 4];
    src.read_phys_exact(t.pa, &mut b).unwrap();
    i32::from_le_bytes(b)
}

#[test]
fn real_minidumps_open_from_a_device_image() {
    for (dump, arch, archver, block, va, want) in [
        (AMD64_MINI, "amd64", 2, 512, 0xffff_ffff_81cd_4c0c, 100),
        (ARM64_MINI, "aarch64", 1, 4096, 0xffff_0000_00e2_651c, 1000),
    ] {
        let (img, h) = image(dump, arch, archver, block);
        let d = kvm_core_file::open(img).unwrap();
        assert_eq!(d.info().format, "freebsd-minidump");
        assert!(d.info().remarks.iter().any(|r| r.contains("lldb-test")));
        assert_eq!(hz(&*d, va), want);
        // The same through DeviceDump itself.
        let (img, _) = image(dump, arch, archver, block);
        let dev = DeviceDump::open(img).unwrap();
        assert_eq!(dev.header(), &h);
        assert_eq!(dev.ranges(), dev.body().ranges());
    }
}

#[test]
fn real_full_dump_opens_from_a_device_image() {
    let (img, _) = image(AMD64_FULL, "amd64", 2, 512);
    let d = kvm_core_file::open(img).unwrap();
    assert_eq!(d.info().format, "elf");
    assert!(d.kernel_virt().is_none());
    // KPML4phys, read through the window: page aligned.
    let root = d.read_u64_le(PhysAddr(0x1d4_7eb8)).unwrap();
    assert_eq!(root % 4096, 0);
}

/// A small body (a synthetic minidump) wrapped whole.
fn small() -> (Vec<u8>, KernelDumpHeader) {
    let mut m = super::writer::Minidump::i386(false, 2, 0x80_0000);
    m.avail = Some(vec![(0, 0x10_0000)]);
    m.pmap = (0x5000u32 | 1).to_le_bytes().to_vec();
    m.pmap.resize(4096, 0);
    m.pages = vec![(0x5000, vec![0xab; 4096])];
    let body = m.write();
    let h = KernelDumpHeader::new(DumpMagic::KernelDump, "i386", 2, body.len() as u64, 512);
    (wrap(&h, &body), h)
}

fn reseal(img: &mut [u8], at: usize) {
    img[at + 508..at + 512].fill(0);
    let mut b = [0u8; HEADER_SIZE];
    b.copy_from_slice(&img[at..at + HEADER_SIZE]);
    let p = parity(&b);
    img[at + 508..at + 512].copy_from_slice(&p.to_be_bytes());
}

fn err(img: Vec<u8>) -> Error {
    DeviceDump::open(img).map(|_| ()).unwrap_err()
}

#[test]
fn a_small_image_round_trips() {
    let (img, h) = small();
    let d = DeviceDump::open(img.clone()).unwrap();
    assert_eq!(d.header(), &h);
    let t = d
        .translator()
        .unwrap()
        .translate(&d, VirtAddr(0x80_0010))
        .unwrap();
    assert_eq!(t.pa, PhysAddr(0x5010));
    assert_eq!(d.read_u8(t.pa), Ok(0xab));
    assert!(!d.info().incomplete);
    // Without the trailer: opens, with a remark.
    let cut = &img[..img.len() - 512];
    let d = DeviceDump::open(cut.to_vec()).unwrap();
    assert!(d.info().remarks.iter().any(|r| r.contains("no trailer")));
    // Body cut short: opens, incomplete.
    let d = DeviceDump::open(img[..img.len() - 4096].to_vec()).unwrap();
    assert!(d.info().incomplete);
    // A damaged trailer is a remark; a trailer of another dump an error.
    let mut bad = img.clone();
    let at = bad.len() - 512;
    bad[at + 100] ^= 1;
    let d = DeviceDump::open(bad).unwrap();
    assert!(d
        .info()
        .remarks
        .iter()
        .any(|r| r.contains("trailer header is damaged")));
    let mut other = img.clone();
    other[at + 48] ^= 1; // dumptime
    reseal(&mut other, at);
    assert_eq!(
        err(other),
        Error::Malformed("FreeBSD dump device: the trailer header is of another dump")
    );
}

#[test]
fn damaged_leaders_give_their_error() {
    let (img, h) = small();
    // Truncated at every 4-byte field boundary of the header.
    for cut in (0..HEADER_SIZE).step_by(4) {
        assert_eq!(
            err(img[..cut].to_vec()),
            Error::Malformed("FreeBSD dump header truncated"),
            "cut at {cut}"
        );
    }
    // Every flipped bit breaks the magic or the parity.
    for byte in 0..HEADER_SIZE {
        let mut f = img.clone();
        f[byte] ^= 0x10;
        let e = err(f);
        let want = if byte < 20 {
            Error::Malformed("FreeBSD dump header: unknown magic")
        } else {
            Error::Malformed("FreeBSD dump header: parity check failed")
        };
        assert_eq!(e, want, "byte {byte}");
    }
    // Fields changed and the parity recomputed.
    let with = |f: &dyn Fn(&mut KernelDumpHeader)| {
        let mut h = h.clone();
        f(&mut h);
        let mut i = img.clone();
        i[..512].copy_from_slice(&h.encode());
        err(i)
    };
    assert_eq!(
        with(&|h| h.version = 3),
        Error::Unsupported("FreeBSD dump header versions 2 and 3 (FreeBSD 12 development kernels)")
    );
    assert_eq!(
        with(&|h| h.version = 7),
        Error::Unsupported("FreeBSD dump header of an unknown version")
    );
    assert_eq!(
        with(&|h| h.block_size = 768),
        Error::Malformed("FreeBSD dump header: block size is not a power of two of at least 512")
    );
    assert_eq!(
        with(&|h| h.dump_key_size = 512),
        Error::Unsupported("encrypted FreeBSD dumps")
    );
    for c in [1, 2] {
        assert_eq!(
            with(&|h| h.compression = c),
            Error::Unsupported(
                "compressed FreeBSD dumps (gzip or zstd): extract the body with savecore and decompress it first"
            )
        );
    }
    assert_eq!(
        with(&|h| h.compression = 9),
        Error::Malformed("FreeBSD dump header: unknown compression")
    );
    assert_eq!(
        with(&|h| h.dump_length = h.dump_extent + 1),
        Error::Malformed("FreeBSD dump header: dumplength exceeds dumpextent")
    );
    assert_eq!(
        with(&|h| h.dump_extent = u64::MAX),
        Error::Malformed("FreeBSD dump header: dump extent overflows")
    );
    assert_eq!(
        with(&|h| h.magic = DumpMagic::TextDump),
        Error::Unsupported("FreeBSD text dumps (a tar of ddb output, no memory image)")
    );
    assert_eq!(
        with(&|h| h.magic = DumpMagic::Cleared),
        Error::Unsupported("FreeBSD dump device whose dump was cleared (savecore -c)")
    );
    // A body that is neither format.
    let mut i = img.clone();
    i[512..520].copy_from_slice(b"notadump");
    assert_eq!(
        err(i),
        Error::Malformed("FreeBSD dump device: the body is neither a minidump nor an ELF core")
    );
    // Version 1 (FreeBSD ≤ 11) headers open too.
    let mut v1 = h.clone();
    v1.version = 1;
    let mut i = img.clone();
    i[..512].copy_from_slice(&v1.encode());
    let at = i.len() - 512;
    i[at..].copy_from_slice(&v1.encode());
    let d = DeviceDump::open(i).unwrap();
    assert_eq!(d.header().version, 1);
}
