//! The libkdumpfile vectors under test: where their files are, and per
//! case the driver's options and what the LINEAR ranges must hold.

pub(super) const DATA_DIR: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/libkdumpfile-xlat");

// ---------------------------------------------------------------------------
// Per-case parameters.
// ---------------------------------------------------------------------------

/// The options libkdumpfile's driver script passes to `xlat-os` for a case,
/// copied from the options table in SOURCE.md (fields not needed here, such
/// as `ostype=linux` and aarch64-5.8-va48's `osver`, are left out).
#[derive(Clone, Copy, Debug)]
pub(super) enum Opts {
    /// `arch=x86_64 phys_base=…`: a KVADDR root is in the kernel-text
    /// mapping, `pa = va - __START_KERNEL_map + phys_base`.
    X86_64 { phys_base: u64 },
    /// `arch=aarch64 page_shift=…`.
    Aarch64 { page_shift: u32 },
    /// `arch=ia32 rootpgt=MACHPHYSADDR:…`.
    Ia32 { rootpgt_machphys: u64 },
}

/// x86-64 `__START_KERNEL_map`: the base of the kernel-text mapping.
pub(super) const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// What one LINEAR range is expected to hold, in kernel-virtual addresses:
/// `(page size, number of pages)` translated inside `[lo, hi]`.
#[derive(Debug)]
pub(super) struct LinearExpect {
    pub(super) lo: u64,
    pub(super) hi: u64,
    pub(super) pages: &'static [(u64, u64)],
}

#[derive(Debug)]
pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) opts: Opts,
    /// Translator variants to run: arm64 with 52-bit output addresses off and
    /// on (only where the descriptor format allows both readings).
    pub(super) pa52: &'static [bool],
    pub(super) linear: &'static [LinearExpect],
    /// Pages just outside a LINEAR range that the data maps linearly on
    /// purpose.
    pub(super) extends: &'static [u64],
    /// Minimum number of checked translations (per variant).
    pub(super) min_checks: u64,
}

const K4: u64 = 0x1000;
const K64: u64 = 0x1_0000;
const M2: u64 = 0x20_0000;
const G1: u64 = 0x4000_0000;

pub(super) const CASES: &[Case] = &[
    Case {
        name: "x86_64-4.13-kaslr",
        opts: Opts::X86_64 {
            phys_base: 0x1300_0000,
        },
        pa52: &[false],
        linear: &[
            // Direct map, PML4[305] -> PDPT 0x263cb000 [337], [338]:
            // [337] = PD 0x263cc000: PT 0x263cd000 (512 x 4K), 511 x 2M;
            // [338] = PD 0x263cf000: 2M runs 57+3+42+8+2+6+4+1+2+15+86 = 226,
            // PTs 3+1+2+2+2+6+9+2+1+1 = 29 full (14848 x 4K) and PT
            // 0x263d0000 with 480 x 4K: 737 x 2M, 512+14848+480 = 15840 x 4K
            // = 0x5ffe0000 bytes, the whole range.
            LinearExpect {
                lo: 0xffff_98d4_4000_0000,
                hi: 0xffff_98d4_9ffd_ffff,
                pages: &[(K4, 15840), (M2, 737)],
            },
            // Kernel text, PD 0x25c0d000 [144..=153]: 7 x 2M and PTs
            // 0x5296a000, 0x36e3c000, 0x53048000 (3 x 512 x 4K) = 20 MiB.
            LinearExpect {
                lo: 0xffff_ffff_9200_0000,
                hi: 0xffff_ffff_933f_ffff,
                pages: &[(K4, 1536), (M2, 7)],
            },
        ],
        extends: &[],
        min_checks: 400_000,
    },
    Case {
        name: "x86_64-5l",
        opts: Opts::X86_64 {
            phys_base: 0x13_5560_0000,
        },
        pa52: &[false],
        linear: &[
            // Direct map, PML5[307] -> P4D 0x1362002000 [340], [341].
            // P4D[340] = PUD 0x1362003000: [257] PD 0x1362004000 (PT of
            // 512 x 4K, 511 x 2M); [258] PD 0x1362009000 (254 x 2M, PT with
            // 371 x 4K, 124 empty, PT with 1 x 4K, 132 empty); [259], [260]
            // empty (the PCI hole); [261] PD 0x7f160ff000 (4 x 2M, PT of
            // 512 x 4K, 507 x 2M); [262..=511] 250 x 1G.
            // P4D[341] = PUD 0x1362008000: 258 x 1G, [258] PD 0x7f081c1000
            // (512 x 2M).
            // 4K: 512+371+1+512 = 1396; 2M: 511+254+4+507+512 = 1788;
            // 1G: 250+258 = 508.
            LinearExpect {
                lo: 0xff33_aa40_4000_0000,
                hi: 0xff33_aac0_bfff_ffff,
                pages: &[(K4, 1396), (M2, 1788), (G1, 508)],
            },
            // Kernel text, PD 0x1360a10000 [80..=101]: 16 x 2M and 6 PTs
            // (0x1361208000, 0x13603ff000, 0x1361fff000, 0x4081e96000,
            // 0x7f6db78000, 0x7f1f8c1000) of 512 x 4K = 44 MiB.
            LinearExpect {
                lo: 0xffff_ffff_8a00_0000,
                hi: 0xffff_ffff_8cbf_ffff,
                pages: &[(K4, 3072), (M2, 16)],
            },
        ],
        extends: &[],
        min_checks: 1_000_000,
    },
    Case {
        name: "x86_64-ktext-1G",
        opts: Opts::X86_64 { phys_base: 0 },
        pa52: &[false],
        linear: &[
            // Kernel text, PD 0x1e12000 [8..=511]: 504 x 2M.
            LinearExpect {
                lo: 0xffff_ffff_8100_0000,
                hi: 0xffff_ffff_bfff_ffff,
                pages: &[(M2, 504)],
            },
        ],
        // PDPT[511] -> PD 0x1e13000 [0] maps 0x40000000, continuing the
        // kernel-text offset; the .data file says "this page should be
        // ignored, although it extends the linear map".
        extends: &[0xffff_ffff_c000_0000],
        min_checks: 250_000,
    },
    Case {
        name: "aarch64-5.8-va48",
        opts: Opts::Aarch64 { page_shift: 12 },
        pa52: &[false],
        linear: &[
            // Direct map, L0[0] -> L1 0x6fff9000 [0] -> L2 0x6fff8000:
            // [0] L3 0x6fff7000 (512 x 4K), [1..=510] 510 x 2M blocks,
            // [511] L3 0x6fdfe000 (511 x 4K and one invalid descriptor).
            LinearExpect {
                lo: 0xffff_0000_0000_0000,
                hi: 0xffff_0000_3fff_efff,
                pages: &[(K4, 1023), (M2, 510)],
            },
        ],
        extends: &[],
        min_checks: 250_000,
    },
    Case {
        name: "aarch64-5.16-64k",
        opts: Opts::Aarch64 { page_shift: 16 },
        // Booted with 48-bit VAs on a 52-bit-VA kernel, which may use 52-bit
        // PAs (FEAT_LPA: OA[51:48] in bits 15:12, zero in this data): both
        // readings must give the same translations.
        pa52: &[false, true],
        linear: &[
            // Direct map, L1[8] -> L2 0xbffd0000 [7057..=7060] -> four L3
            // tables of 8192 x 64K.
            LinearExpect {
                lo: 0xffff_2372_2000_0000,
                hi: 0xffff_2372_9fff_ffff,
                pages: &[(K64, 32768)],
            },
        ],
        extends: &[],
        min_checks: 65_000,
    },
    Case {
        name: "ia32-pae",
        opts: Opts::Ia32 {
            rootpgt_machphys: 0x92_6000,
        },
        pa52: &[false],
        linear: &[
            // KPHYS -> DIRECT 0-3fffffff seen from the kernel space; the data
            // holds one page of it: PDPT[3] -> PD 0x923000 [0] -> PT 0xa28000
            // [0] maps 0xc0000000 to 0.
            LinearExpect {
                lo: 0xc000_0000,
                hi: 0xffff_ffff,
                pages: &[(K4, 1)],
            },
        ],
        extends: &[],
        min_checks: 250_000,
    },
];
