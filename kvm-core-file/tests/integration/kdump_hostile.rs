//! Damaged kdump files: truncation at every header and table boundary (and
//! every 512 bytes through headers, bitmaps and descriptors), and bit flips
//! in every header and sub-header field, plain and flattened. Opening and
//! reading must give errors, never panic or hang; the allocation caps are
//! exercised by the fuzz target.

use crate::common::{memory, x86_info};
use crate::kdump::{parts, write_flat, write_plain};
use kvm_core::{PhysAddr, PhysRead};
use kvm_core_file::codec::Compression;
use kvm_core_file::kdump::KdumpDump;
use kvm_core_file::write::kdump::KdumpOptions;
use kvm_core_file::Source;

/// Opens `bytes` and reads every saved page and a few holes; returns
/// whether it opened.
fn exercise(bytes: &[u8]) -> bool {
    exercise_some(bytes, 4096)
}

/// Like [`exercise`], reading at most `limit` saved pages.
fn exercise_some(bytes: &[u8], limit: usize) -> bool {
    let Ok(d) = KdumpDump::open(bytes) else {
        return false;
    };
    let _ = d.info();
    let _ = d.eraseinfo();
    let mut page = vec![0u8; d.block_size() as usize];
    let mut n = 0;
    for r in d.ranges() {
        let mut pa = r.start;
        while pa < r.end() && n < limit {
            let _ = d.read_phys(PhysAddr(pa), &mut page);
            pa += d.block_size();
            n += 1;
        }
    }
    for pfn in 0..d.max_pfn().min(limit as u64 * 2) {
        let _ = d.read_phys(PhysAddr(pfn * d.block_size() + 100), &mut page[..50]);
    }
    let _ = d.memory_ranges();
    true
}

fn sample() -> Vec<u8> {
    let m = memory(4096, 48, 3, x86_info());
    write_plain(&m, &KdumpOptions::new(Compression::Zlib)).0
}

#[test]
fn truncation_at_every_boundary() {
    let bytes = sample();
    let p = parts(&bytes);
    let mut cuts: Vec<u64> = vec![0, 1, 7, 8, 12, 16, 100, 404, 412, 424, 428, 452, 464];
    cuts.extend([p.bs - 1, p.bs, p.bs + 8, p.bs + 104, p.bs + 200]);
    cuts.extend([
        p.bitmap_start,
        p.bitmap_start + 1,
        p.data_offset - 1,
        p.data_offset,
    ]);
    cuts.extend((0..p.table_end).step_by(512));
    cuts.extend((p.data_offset..p.table_end).step_by(24));
    cuts.extend((p.table_end..bytes.len() as u64).step_by(997));
    cuts.push(bytes.len() as u64 - 1);
    for &cut in &cuts {
        let t = &bytes[..cut as usize];
        let opened = exercise(t);
        // Cut in the headers or bitmaps: refused; later: opened, marked
        // truncated (the test below checks what it then reads).
        assert_eq!(opened, cut >= p.data_offset, "cut at {cut}");
    }
    // The same through the flattened form: cut the stream anywhere.
    let m = memory(4096, 48, 3, x86_info());
    let (flat, _) = write_flat(&m, &KdumpOptions::new(Compression::Lzo));
    for cut in (0..flat.len())
        .step_by(509)
        .chain([flat.len() - 16, flat.len() - 1])
    {
        exercise(&flat[..cut]);
    }
    assert!(exercise(&flat));
}

#[test]
fn bit_flips_in_every_header_field() {
    let bytes = sample();
    let p = parts(&bytes);
    let mut offsets: Vec<usize> = (0..464).collect();
    offsets.extend(p.bs as usize..p.bs as usize + 104);
    // A few bits of the notes, the bitmaps and the descriptors too.
    offsets.extend((p.bs as usize + 104..p.bs as usize + 1200).step_by(7));
    offsets.extend((p.bitmap_start as usize..p.data_offset as usize).step_by(61));
    offsets.extend((p.data_offset as usize..p.table_end as usize).step_by(5));
    let mut opened = 0;
    let mut b = bytes.clone();
    for &o in &offsets {
        for bit in 0..8 {
            b[o] ^= 1 << bit;
            opened += usize::from(exercise_some(&b, 3));
            b[o] ^= 1 << bit;
        }
        // Whole-field garbage: all ones, all zeros.
        let keep = b[o];
        for v in [0x00, 0xff, 0x80] {
            b[o] = v;
            exercise_some(&b, 3);
        }
        b[o] = keep;
    }
    assert!(opened > 0);
    // Every 32-bit field of both headers set to extreme values.
    for o in (400..464)
        .step_by(4)
        .chain((p.bs as usize..p.bs as usize + 104).step_by(4))
    {
        for v in [0u32, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX, 4096, 1 << 20] {
            let mut b = bytes.clone();
            b[o..o + 4].copy_from_slice(&v.to_le_bytes());
            exercise_some(&b, 3);
        }
    }
}

#[test]
fn flattened_record_damage() {
    let m = memory(4096, 24, 0, x86_info());
    let (flat, _) = write_flat(&m, &KdumpOptions::new(Compression::Snappy));
    // Flip bits in the flat header and in record headers found by walking
    // the stream.
    let mut heads = vec![16usize, 24];
    let mut pos = 4096usize;
    while pos + 16 <= flat.len() {
        let size = u64::from_be_bytes(flat[pos + 8..pos + 16].try_into().unwrap());
        if size == u64::MAX {
            break;
        }
        heads.push(pos);
        pos += 16 + size as usize;
    }
    for &h in &heads {
        for o in h..h + 16 {
            for v in [0x00u8, 0xff, 0x7f, 0x01] {
                let mut b = flat.clone();
                if o < b.len() {
                    b[o] = v;
                }
                exercise(&b);
            }
        }
    }
}

/// One bit set in the 2nd bitmap where the 1st has none shifts every later
/// descriptor by one: the pages before it still read right, those from it
/// on read as excluded (never as another page's bytes), and the dump says
/// why.
#[test]
fn a_saved_hole_in_bitmap2_never_shifts_pages() {
    let m = memory(4096, 48, 0, x86_info());
    let (mut bytes, _) = write_plain(&m, &KdumpOptions::new(Compression::Zstd));
    let p = parts(&bytes);
    let half = (p.data_offset - p.bitmap_start) / 2;
    // PFN 13 is in the hole between the first two ranges (12..19).
    let hole = 13u64;
    bytes[(p.bitmap_start + half + hole / 8) as usize] |= 1 << (hole % 8);
    let d = KdumpDump::open(&bytes[..]).unwrap();
    assert!(d.info().incomplete);
    assert!(
        d.info()
            .remarks
            .iter()
            .any(|r| r.contains("bitmaps disagree: PFN 0xd")),
        "{:?}",
        d.info().remarks
    );
    let mut page = vec![0u8; 4096];
    for pfn in 0..12 {
        d.read_phys(PhysAddr(pfn * 4096), &mut page).unwrap();
        assert_eq!(
            Some(&page),
            crate::common::expected_page(&m, pfn, 4096).as_ref(),
            "pfn {pfn}"
        );
    }
    for pfn in 19..30 {
        let e = d.read_phys(PhysAddr(pfn * 4096), &mut page).unwrap_err();
        assert!(
            matches!(e, kvm_core::Error::Excluded { .. }),
            "pfn {pfn}: {e:?}"
        );
    }
}

/// A kdump cut short (the disk filled up) opens, says so, keeps every page
/// it still holds and reads the lost ones as excluded: cut inside the page
/// data, and inside the descriptor table.
#[test]
fn a_truncated_kdump_keeps_what_it_holds() {
    let m = memory(4096, 48, 0, x86_info());
    let (bytes, _) = write_plain(&m, &KdumpOptions::new(Compression::None));
    let p = parts(&bytes);
    let whole = KdumpDump::open(&bytes[..]).unwrap();
    let saved: Vec<u64> = (0..whole.max_pfn())
        .filter(|&pfn| whole.read_phys(PhysAddr(pfn * 4096), &mut [0u8; 8]).is_ok())
        .collect();
    for (cut, what) in [
        (bytes.len() as u64 - 4096 * 5 - 100, "inside the page data"),
        (p.table_end - 24 * 3 - 5, "inside the page descriptor table"),
    ] {
        let d = KdumpDump::open(&bytes[..cut as usize]).unwrap();
        assert!(d.info().incomplete, "{what}");
        assert!(
            d.info()
                .remarks
                .iter()
                .any(|r| r.contains("truncated") && r.contains(what)),
            "{:?}",
            d.info().remarks
        );
        let (mut kept, mut lost) = (0, 0);
        let mut page = vec![0u8; 4096];
        for &pfn in &saved {
            match d.read_phys(PhysAddr(pfn * 4096), &mut page) {
                Ok(_) => {
                    assert_eq!(
                        Some(&page),
                        crate::common::expected_page(&m, pfn, 4096).as_ref()
                    );
                    kept += 1;
                }
                Err(e) => {
                    assert!(matches!(e, kvm_core::Error::Excluded { .. }), "{e:?}");
                    lost += 1;
                }
            }
        }
        // The page data follows the table: a cut in the table loses it all.
        let want_kept = if what.contains("table") {
            0..=0
        } else {
            30..=saved.len() - 3
        };
        assert!(
            want_kept.contains(&kept),
            "{what}: {kept} kept, {lost} lost"
        );
        assert_eq!(kept + lost, saved.len());
    }
}
