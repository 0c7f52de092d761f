//! Entry points for the fuzz targets in `fuzz/`: the text the live doors
//! parse (`/proc/iomem`, a QEMU's command line and `/proc/PID/maps`),
//! kept in the library so that regressions replay as ordinary tests.

/// `data` as `/proc/iomem`, and as a NUL-separated QEMU command line
/// (with its layout) and `/proc/PID/maps`. Must never panic.
pub fn live_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::iomem::system_ram(&text);
    let maps = crate::qemu::parse_maps(&text);
    let argv: Vec<String> = data
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if let Ok(g) = crate::qemu::parse_cmdline(&argv) {
        let layout = crate::qemu::layout(g.arch, &g.machine, g.ram);
        assert!(layout.iter().map(|r| r.len).sum::<u64>() == g.ram);
        let _ = crate::qemu::ram_candidates(&maps, g.ram);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostile_texts_do_not_panic() {
        for t in [
            &b""[..],
            b"ffffffffffffffff-0 : System RAM\n",
            b"0-ffffffffffffffff : System RAM\n",
            b"qemu-system-x86_64\0-m\0",
            b"qemu-system-x86_64\0-m\x0099999999999999999T\0",
            b"qemu-system-aarch64\0-M\0,,,=\0-m\0size=\0",
            b"qemu-system-x86_64\0-machine\0q35\0-m\x00184467440737G\0",
            b"1-0 rw-p 0 0:0 x\n0-1 rw 0 0 0 a b c\n",
        ] {
            super::live_text(t);
        }
    }
}
