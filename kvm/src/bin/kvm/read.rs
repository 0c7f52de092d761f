//! `kvm read`: raw bytes of kernel virtual or physical memory, or a hex
//! dump of them.

use crate::util::parse_u64;
use crate::{Result, Source};
use std::io::Write;

/// Most bytes read at once.
const MAX: u64 = 1 << 30;

// Its help is the doc comment of `Cmd::Read`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: Source,
    /// Read physical memory instead of kernel virtual memory.
    #[arg(long)]
    phys: bool,
    /// Print a hex dump instead of raw bytes.
    #[arg(long)]
    hex: bool,
    /// Start address (0x… hex or decimal), or a kernel symbol's name
    /// (`hz`, `init_uts_ns`).
    addr: String,
    /// Number of bytes (0x… hex or decimal).
    #[arg(value_parser = parse_u64)]
    len: u64,
}

pub fn run(a: Args) -> Result {
    let kd = a.src.open()?;
    let len = a.len;
    let addr = match parse_u64(&a.addr) {
        Ok(v) => v,
        Err(_) if !a.phys => kd.nlist(&[a.addr.as_str()])?[0]
            .ok_or_else(|| format!("{}: no such kernel symbol", a.addr))?,
        Err(e) => return Err(e.into()),
    };
    if len > MAX {
        return Err(format!("refusing to read more than {MAX} bytes at once").into());
    }
    let mut buf = vec![0u8; len as usize];
    let n = if a.phys {
        kd.read_phys(addr, &mut buf)?
    } else {
        kd.read(addr, &mut buf)?
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.hex {
        for (i, line) in buf[..n].chunks(16).enumerate() {
            let a = addr + 16 * i as u64;
            let h: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
            let t: String = line
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            writeln!(out, "{a:016x}  {:<47}  |{t}|", h.join(" "))?;
        }
    } else {
        out.write_all(&buf[..n])?;
    }
    out.flush()?;
    if (n as u64) < len {
        return Err(format!(
            "{}: read stopped after {n} of {len} bytes: {}",
            kd.path().display(),
            kd.geterr()
        )
        .into());
    }
    Ok(())
}
