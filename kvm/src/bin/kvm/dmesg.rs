//! `kvm dmesg`: the kernel log, oldest record first, as `makedumpfile
//! --dump-dmesg` prints it, or as JSON.

use crate::escape::push_char;
use crate::{Query, Result};
use kvm::LogRecord;
use std::io::Write;

pub fn run(a: Query) -> Result {
    let log = a.src.open()?.kernel_log()?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.json {
        let v: Vec<serde_json::Value> = log
            .records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "seq": r.seq, "level": r.level, "time_ns": r.time_ns,
                    "text": String::from_utf8_lossy(&r.text),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for r in &log.records {
            human(&mut out, r)?;
        }
    }
    out.flush()?;
    if log.unreadable > 0 {
        let why = log
            .first_error
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(format!(
            "{} records of the log could not be read (the first{why})",
            log.unreadable
        )
        .into());
    }
    Ok(())
}

/// One record: `[seconds.micros] text`, a record's further lines indented
/// under its first; bytes that are not printable (or valid UTF-8) as
/// `\xNN`, so a log line cannot drive the terminal.
fn human(out: &mut impl Write, r: &LogRecord) -> std::io::Result<()> {
    let stamp = format!(
        "[{:5}.{:06}] ",
        r.time_ns / 1_000_000_000,
        r.time_ns % 1_000_000_000 / 1000
    );
    let mut line = stamp.clone();
    for chunk in r.text.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => {
                    line.push('\n');
                    line.extend(std::iter::repeat_n(' ', stamp.len()));
                }
                '\t' => line.push(c),
                c => push_char(&mut line, c),
            }
        }
        for b in chunk.invalid() {
            line.push_str(&format!("\\x{b:02x}"));
        }
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &[u8], time_ns: u64) -> String {
        let r = LogRecord {
            seq: Some(1),
            level: Some(6),
            facility: Some(0),
            time_ns,
            text: text.to_vec(),
        };
        let mut v = Vec::new();
        human(&mut v, &r).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn records_print_as_makedumpfile_prints_them() {
        assert_eq!(
            shown(b"Linux version", 1_234_567_890),
            "[    1.234567] Linux version\n"
        );
        assert_eq!(shown(b"a\nb", 0), "[    0.000000] a\n               b\n");
        assert_eq!(shown(b"", 12_345_000_000_000), "[12345.000000] \n");
    }

    #[test]
    fn control_and_invalid_bytes_are_escaped() {
        assert_eq!(
            shown(b"\x1b[31mred\x7f", 0),
            "[    0.000000] \\x1b[31mred\\x7f\n"
        );
        assert_eq!(
            shown(b"caf\xc3\xa9 \xff", 0),
            "[    0.000000] caf\u{e9} \\xff\n"
        );
    }
}
