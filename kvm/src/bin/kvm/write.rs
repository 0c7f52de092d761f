//! `kvm write`: write bytes to kernel virtual or physical memory of a
//! source opened read-write (a running VM's RAM file, a QEMU process,
//! `/dev/mem`); dumps refuse.

use crate::util::address;
use crate::{Result, Source};

// Its help is the doc comment of `Cmd::Write`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: Source,
    /// Write physical memory instead of kernel virtual memory.
    #[arg(long)]
    phys: bool,
    /// Print JSON: `{"written": N}`.
    #[arg(long)]
    json: bool,
    /// Start address (0x… hex or decimal), or a kernel symbol's name.
    addr: String,
    /// The bytes, in hex (`6b766d00`, spaces and a `0x` prefix allowed).
    #[arg(value_parser = parse_hex_bytes)]
    bytes: HexBytes,
}

/// Bytes given in hex (one argument: clap takes a `Vec` for many).
#[derive(Clone, Debug)]
struct HexBytes(Vec<u8>);

/// `"6b 76 6d"`, `"0x6b766d"` as bytes.
fn parse_hex_bytes(s: &str) -> std::result::Result<HexBytes, String> {
    let digits: String = s
        .strip_prefix("0x")
        .unwrap_or(s)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(format!("{s:?}: an even number of hex digits, at least two"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("{s:?}: {:?} is not a hex byte", &digits[i..i + 2]))
        })
        .collect::<std::result::Result<_, _>>()
        .map(HexBytes)
}

pub fn run(a: Args) -> Result {
    let kd = a.src.open_with(kvm::OpenFlags::ReadWrite)?;
    // A dump says so before a symbol is looked up.
    kd.check_writable()?;
    let addr = address(&kd, &a.addr, a.phys)?;
    let bytes = &a.bytes.0;
    let n = if a.phys {
        kd.write_phys(addr, bytes)?
    } else {
        kd.write(addr, bytes)?
    };
    if a.json {
        println!("{}", serde_json::json!({ "written": n }));
    } else {
        println!("{n}");
    }
    if n < bytes.len() {
        return Err(format!("write stopped after {n} of {} bytes", bytes.len()).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_hex_bytes;

    #[test]
    fn hex_bytes() {
        assert_eq!(
            parse_hex_bytes("6b766d00").unwrap().0,
            [0x6b, 0x76, 0x6d, 0]
        );
        assert_eq!(parse_hex_bytes("0x6b 76").unwrap().0, [0x6b, 0x76]);
        assert!(parse_hex_bytes("abc").unwrap_err().contains("even number"));
        assert!(parse_hex_bytes("zz")
            .unwrap_err()
            .contains("not a hex byte"));
        assert!(parse_hex_bytes("").unwrap_err().contains("at least two"));
    }
}
