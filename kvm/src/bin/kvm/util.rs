//! Helpers shared by the commands: number arguments, JSON hex, terminal
//! width.

/// A number, `0x…` hex or decimal.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("`{s}` is not a number: {e}"))
}

/// The address argument of `read` and `write`: a number, or (for kernel
/// virtual addresses, not `--phys`) a kernel symbol's name.
pub fn address(kd: &kvm::Kvm, addr: &str, phys: bool) -> crate::Result<u64> {
    match parse_u64(addr) {
        Ok(v) => Ok(v),
        Err(_) if !phys => {
            Ok(kd.nlist(&[addr])?[0].ok_or_else(|| format!("{addr}: no such kernel symbol"))?)
        }
        Err(e) => Err(e.into()),
    }
}

/// `START:LEN`, each as [`parse_u64`] takes it.
pub fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not START:LEN"))?;
    Ok((parse_u64(a)?, parse_u64(b)?))
}

/// `"0x…"` in JSON, `null` when unknown.
pub fn hex_opt(v: Option<u64>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |v| format!("{v:#x}").into())
}

/// Columns for human output: the terminal's width (long command lines are
/// cut, as BSD ps does), `$COLUMNS` when set, unlimited into a pipe.
pub fn terminal_width() -> usize {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return c;
    }
    match terminal_size::terminal_size_of(std::io::stdout()) {
        Some((terminal_size::Width(w), _)) => usize::from(w),
        None => usize::MAX,
    }
}
