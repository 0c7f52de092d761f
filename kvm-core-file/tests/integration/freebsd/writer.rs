//! A minidump writer for the tests (FORMATS.md §3.3–3.4): header page,
//! msgbuf, dump_avail, bitmap, page-table section, then the pages in bit
//! order.

use kvm_core::Arch;

/// What a minidump holds.
#[derive(Clone, Debug)]
pub struct Minidump {
    pub arch: Arch,
    pub version: u32,
    pub page: u64,
    pub kernbase: u64,
    pub dmapphys: u64,
    pub dmapbase: u64,
    pub dmapend: u64,
    /// arm64 v3 flags.
    pub flags: u32,
    pub pae: bool,
    pub msgbuf: Vec<u8>,
    /// dump_avail (start, end) pairs; `None` for versions without it.
    pub avail: Option<Vec<(u64, u64)>>,
    /// The page-table section.
    pub pmap: Vec<u8>,
    /// Dumped pages (page-aligned PA, content), ascending.
    pub pages: Vec<(u64, Vec<u8>)>,
    /// Bytes of bitmap (rounded up to 8).
    pub bitmap_bytes: usize,
}

fn round(x: usize, page: u64) -> usize {
    x.next_multiple_of(page as usize)
}

impl Minidump {
    /// An empty i386 minidump.
    pub fn i386(pae: bool, version: u32, kernbase: u64) -> Self {
        Minidump {
            arch: Arch::I386,
            version,
            page: 4096,
            kernbase,
            dmapphys: 0,
            dmapbase: 0,
            dmapend: 0,
            flags: 0,
            pae,
            msgbuf: b"msgbuf".to_vec(),
            avail: None,
            pmap: Vec::new(),
            pages: Vec::new(),
            bitmap_bytes: 8,
        }
    }

    /// The bit of page `pa` (dump_avail or pa / PAGE).
    fn bit(&self, pa: u64) -> u64 {
        match &self.avail {
            None => pa / self.page,
            Some(av) => {
                let mut adj = 0;
                for &(s, e) in av {
                    if pa >= s && pa < e {
                        return pa / self.page - s / self.page + adj;
                    }
                    adj += e.div_ceil(self.page) - s / self.page;
                }
                panic!("page {pa:#x} outside dump_avail")
            }
        }
    }

    /// The header's 80 bytes.
    pub fn header(&self) -> Vec<u8> {
        let mut b = vec![0u8; 80];
        let magic: &[u8] = match self.arch {
            Arch::X86_64 => b"minidump FreeBSD/amd64",
            Arch::Aarch64 => b"minidump FreeBSD/arm64",
            _ => b"minidump FreeBSD/i386",
        };
        b[..magic.len()].copy_from_slice(magic);
        let avail = self.avail_bytes().len() as u32;
        let p32 = |b: &mut [u8], o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
        let p64 = |b: &mut [u8], o: usize, v: u64| b[o..o + 8].copy_from_slice(&v.to_le_bytes());
        p32(&mut b, 24, self.version);
        p32(&mut b, 28, self.msgbuf.len() as u32);
        p32(&mut b, 32, self.bitmap_bytes.next_multiple_of(8) as u32);
        p32(&mut b, 36, self.pmap.len() as u32);
        match self.arch {
            Arch::X86_64 => {
                p64(&mut b, 40, self.kernbase);
                p64(&mut b, 48, self.dmapbase);
                p64(&mut b, 56, self.dmapend);
                p32(&mut b, 64, avail);
            }
            Arch::Aarch64 => {
                p64(&mut b, 40, self.kernbase);
                p64(&mut b, 48, self.dmapphys);
                p64(&mut b, 56, self.dmapbase);
                p64(&mut b, 64, self.dmapend);
                p32(&mut b, 72, avail);
                p32(&mut b, 76, self.flags);
            }
            _ => {
                p32(&mut b, 40, self.kernbase as u32);
                p32(&mut b, 44, u32::from(self.pae));
                p32(&mut b, 48, avail);
            }
        }
        b
    }

    fn avail_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        if let Some(av) = &self.avail {
            for &(s, e) in av {
                v.extend_from_slice(&s.to_le_bytes());
                v.extend_from_slice(&e.to_le_bytes());
            }
            v.extend_from_slice(&[0; 16]);
        }
        v
    }

    /// The file.
    pub fn write(&self) -> Vec<u8> {
        let page = self.page;
        let mut bits = vec![0u8; self.bitmap_bytes.next_multiple_of(8)];
        let mut order: Vec<(u64, &Vec<u8>)> = self
            .pages
            .iter()
            .map(|(pa, d)| (self.bit(*pa), d))
            .collect();
        order.sort_by_key(|p| p.0);
        for &(bit, _) in &order {
            bits[(bit / 8) as usize] |= 1 << (bit % 8);
        }
        let mut f = self.header();
        f.resize(page as usize, 0);
        let section = |f: &mut Vec<u8>, b: &[u8]| {
            f.extend_from_slice(b);
            f.resize(round(f.len(), page), 0);
        };
        section(&mut f, &self.msgbuf);
        section(&mut f, &self.avail_bytes());
        section(&mut f, &bits);
        section(&mut f, &self.pmap);
        for (_, d) in order {
            let mut d = d.clone();
            d.resize(page as usize, 0);
            f.extend_from_slice(&d);
        }
        f
    }
}
