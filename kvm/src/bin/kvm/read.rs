//! `kvm read`: raw bytes of kernel virtual or physical memory, or a hex
//! dump of them.

use crate::util::{address, parse_u64};
use crate::{Result, Source};
use std::io::Write;

/// Bytes read (and written out) at a time: a multiple of a hex-dump line.
const CHUNK: u64 = 1 << 20;

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
    /// Print JSON: `{"addr": "0x…", "len": N, "hex": "…"}` (the bytes
    /// read, as one hex string; on a short read `len` is what was read,
    /// and the exit status 1 says why).
    #[arg(long, conflicts_with = "hex")]
    json: bool,
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
    let addr = address(&kd, &a.addr, a.phys)?;
    let read = |at: u64, buf: &mut [u8]| {
        if a.phys {
            kd.read_phys(at, buf)
        } else {
            kd.read(at, buf)
        }
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    // Streamed a chunk at a time: a long range costs no more memory than
    // a short one.
    let mut buf = vec![0u8; CHUNK.min(len) as usize];
    let mut done = 0u64;
    if a.json {
        write!(out, "{{\"addr\": \"{addr:#x}\", \"hex\": \"")?;
    }
    while done < len {
        let want = (len - done).min(CHUNK) as usize;
        let at = addr.wrapping_add(done);
        let n = match read(at, &mut buf[..want]) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e.into()),
            Err(_) => 0,
        };
        if a.json {
            for b in &buf[..n] {
                write!(out, "{b:02x}")?;
            }
        } else if a.hex {
            hex(&mut out, at, &buf[..n])?;
        } else {
            out.write_all(&buf[..n])?;
        }
        done += n as u64;
        if n < want {
            break;
        }
    }
    if a.json {
        writeln!(out, "\", \"len\": {done}}}")?;
    }
    out.flush()?;
    if done < len {
        // Why the next byte cannot be read.
        let why = match read(addr.wrapping_add(done), &mut [0u8; 1]) {
            Err(e) => e.to_string(),
            Ok(_) => "a short read".to_owned(),
        };
        return Err(format!("read stopped after {done} of {len} bytes: {why}").into());
    }
    Ok(())
}

/// `bytes` at `addr` as a hex dump, 16 to a line.
fn hex(out: &mut impl Write, addr: u64, bytes: &[u8]) -> std::io::Result<()> {
    for (i, line) in bytes.chunks(16).enumerate() {
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
    Ok(())
}
