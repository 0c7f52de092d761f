//! The strict loader of the libkdumpfile notations (`.data`, `.sym`,
//! `.expect`), and its tests.

use std::collections::BTreeMap;

// ---------------------------------------------------------------------------
// The loader: `.data`, `.sym`, `.expect`. Errors say which line.
// ---------------------------------------------------------------------------

/// Bytes to store at a physical address.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Chunk {
    pub(super) addr: u64,
    pub(super) bytes: Vec<u8>,
    /// Line of the `@ADDR` header.
    pub(super) line: usize,
}

fn parse_hex(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// `0x`-prefixed hex.
fn parse_0x(s: &str) -> Option<u64> {
    parse_hex(s.strip_prefix("0x")?)
}

/// A repeat count: decimal (no leading zero, as C's `strtoul(…, 0)` would
/// read it as octal) or `0x` hex; at least 1.
fn parse_count(s: &str) -> Option<u64> {
    let n = if s.starts_with("0x") {
        parse_0x(s)?
    } else if !s.is_empty() && !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()?
    } else {
        return None;
    };
    (n >= 1).then_some(n)
}

/// One value token: `HEX`, `HEX*N`, `HEX*N+STEP`, `HEX*N-STEP`.
fn push_value(tok: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let (hex, rep) = match tok.split_once('*') {
        Some((h, r)) => (h, Some(r)),
        None => (tok, None),
    };
    if hex.len() % 2 != 0 {
        return Err(format!("odd digit count in {tok:?}"));
    }
    let v = parse_hex(hex).ok_or_else(|| format!("bad value {tok:?}"))?;
    let width = hex.len() / 2;
    let mask = if width == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    let (count, step, add) = match rep {
        None => (1, 0, true),
        Some(r) => {
            let (n, step, add) = match r.find(['+', '-']) {
                Some(i) => {
                    let step =
                        parse_hex(&r[i + 1..]).ok_or_else(|| format!("bad step in {tok:?}"))?;
                    (&r[..i], step, r.as_bytes()[i] == b'+')
                }
                None => (r, 0, true),
            };
            let n = parse_count(n).ok_or_else(|| format!("bad repeat count in {tok:?}"))?;
            (n, step, add)
        }
    };
    if count > 1 << 20 {
        return Err(format!("repeat count too large in {tok:?}"));
    }
    let mut v = v;
    for _ in 0..count {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
        v = if add {
            v.wrapping_add(step)
        } else {
            v.wrapping_sub(step)
        } & mask;
    }
    Ok(())
}

/// Parses a `.data` file (little-endian values).
pub(super) fn parse_data(text: &str) -> Result<Vec<Chunk>, String> {
    let mut chunks: Vec<Chunk> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |m: String| format!("line {line}: {m}");
        let mut rest = raw.trim_start();
        if let Some(addr) = rest.strip_prefix('@') {
            let addr = addr.split('#').next().unwrap_or_default().trim();
            let addr = parse_0x(addr).ok_or_else(|| err(format!("bad address {raw:?}")))?;
            chunks.push(Chunk {
                addr,
                bytes: Vec::new(),
                line,
            });
            continue;
        }
        loop {
            rest = rest.trim_start();
            if rest.is_empty() || rest.starts_with('#') {
                break;
            }
            let chunk = chunks
                .last_mut()
                .ok_or_else(|| err("data before any @ADDR".into()))?;
            if let Some(s) = rest.strip_prefix('"') {
                let end = s
                    .find('"')
                    .ok_or_else(|| err("unterminated string".into()))?;
                let body = &s[..end];
                if body.contains('\\') {
                    return Err(err("escapes in strings are not supported".into()));
                }
                chunk.bytes.extend_from_slice(body.as_bytes());
                rest = &s[end + 1..];
                if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
                    return Err(err("text after a string".into()));
                }
            } else {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                push_value(&rest[..end], &mut chunk.bytes).map_err(err)?;
                rest = &rest[end..];
            }
        }
    }
    // Chunks must not overlap (an overlap means a miscount somewhere).
    let mut spans: Vec<(u64, u64, usize)> = Vec::new();
    for c in &chunks {
        let len = u64::try_from(c.bytes.len()).map_err(|e| e.to_string())?;
        let end = c
            .addr
            .checked_add(len)
            .ok_or_else(|| format!("line {}: chunk wraps", c.line))?;
        spans.push((c.addr, end, c.line));
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(format!(
                "line {}: overlaps the chunk of line {}",
                w[1].2, w[0].2
            ));
        }
    }
    Ok(chunks)
}

/// Parses a `.sym` file: `@VALUE(name)` or `@NUMBER(name)`, then a hex value
/// on the next line.
pub(super) fn parse_sym(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    let mut pending: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match pending.take() {
            None => {
                let name = t
                    .strip_prefix("@VALUE(")
                    .or_else(|| t.strip_prefix("@NUMBER("))
                    .and_then(|r| r.strip_suffix(')'))
                    .filter(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    })
                    .ok_or_else(|| {
                        format!("line {line}: expected @VALUE(name) or @NUMBER(name)")
                    })?;
                pending = Some((name.to_owned(), line));
            }
            Some((name, _)) => {
                let v = parse_hex(t).ok_or_else(|| format!("line {line}: bad value {t:?}"))?;
                if out.insert(name.clone(), v).is_some() {
                    return Err(format!("line {line}: {name} given twice"));
                }
            }
        }
    }
    if let Some((name, line)) = pending {
        return Err(format!("line {line}: {name} has no value"));
    }
    Ok(out)
}

/// An address space of the `.expect` notation: `KVADDR`, `KPHYSADDR`,
/// `MACHPHYSADDR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AddrSpace {
    KVirt,
    KPhys,
    MachPhys,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    NoAddr,
    Addr(AddrSpace, u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Method {
    Pgt {
        target_as: AddrSpace,
        root: Root,
        pte_mask: u64,
        pte_format: String,
        fields: Vec<u32>,
    },
    Linear {
        target_as: AddrSpace,
        off: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    None,
    Method(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Range {
    pub(super) lo: u64,
    pub(super) hi: u64,
    pub(super) target: Target,
}

#[derive(Debug, Default)]
pub(super) struct Expect {
    pub(super) methods: BTreeMap<String, Method>,
    pub(super) maps: BTreeMap<String, Vec<Range>>,
}

impl Expect {
    /// The offset of the LINEAR method that `map` uses at `addr`.
    pub(super) fn linear_off(&self, map: &str, addr: u64) -> Result<u64, String> {
        let rg = self
            .maps
            .get(map)
            .ok_or_else(|| format!("no {map} map"))?
            .iter()
            .find(|r| r.lo <= addr && addr <= r.hi)
            .ok_or_else(|| format!("{map} does not cover {addr:#x}"))?;
        match &rg.target {
            Target::Method(m) => match self.methods.get(m) {
                Some(Method::Linear { off, .. }) => Ok(*off),
                _ => Err(format!("{map} at {addr:#x} is not LINEAR")),
            },
            Target::None => Err(format!("{map} at {addr:#x} is NONE")),
        }
    }
}

const MAPS: [&str; 5] = [
    "KV -> HW",
    "KV -> PHYS",
    "KPHYS -> DIRECT",
    "MACHPHYS -> KPHYS",
    "KPHYS -> MACHPHYS",
];

fn parse_space(s: &str) -> Option<AddrSpace> {
    match s {
        "KVADDR" => Some(AddrSpace::KVirt),
        "KPHYSADDR" => Some(AddrSpace::KPhys),
        "MACHPHYSADDR" => Some(AddrSpace::MachPhys),
        _ => None,
    }
}

fn build_method(kind: &str, keys: &BTreeMap<String, String>) -> Result<Method, String> {
    let get = |k: &str| {
        keys.get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("{kind}: no {k}="))
    };
    let space = |k: &str| -> Result<AddrSpace, String> {
        let v = get(k)?;
        parse_space(v).ok_or_else(|| format!("bad {k}={v}"))
    };
    let allowed: &[&str] = match kind {
        "PGT" => &["target_as", "root", "pte_mask", "pte_format", "fields"],
        "LINEAR" => &["target_as", "off"],
        _ => return Err(format!("unknown method kind {kind}")),
    };
    if let Some(k) = keys.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("{kind}: unknown key {k}"));
    }
    Ok(match kind {
        "PGT" => {
            let root = match get("root")? {
                "NOADDR" => Root::NoAddr,
                r => {
                    let (s, a) = r.split_once(':').ok_or_else(|| format!("bad root={r}"))?;
                    let s = parse_space(s).ok_or_else(|| format!("bad root={r}"))?;
                    Root::Addr(s, parse_0x(a).ok_or_else(|| format!("bad root={r}"))?)
                }
            };
            let fields = get("fields")?
                .split(',')
                .map(|f| f.parse::<u32>().ok().filter(|&n| (1..=20).contains(&n)))
                .collect::<Option<Vec<u32>>>()
                .ok_or("bad fields=")?;
            Method::Pgt {
                target_as: space("target_as")?,
                root,
                pte_mask: parse_0x(get("pte_mask")?).ok_or("bad pte_mask=")?,
                pte_format: get("pte_format")?.to_owned(),
                fields,
            }
        }
        _ => Method::Linear {
            target_as: space("target_as")?,
            off: parse_0x(get("off")?).ok_or("bad off=")?,
        },
    })
}

/// Parses an `.expect` file: methods (`@name: KIND` and indented `key=value`
/// lines), then maps (`A -> B:` and `LO-HI: @method|NONE` lines).
pub(super) fn parse_expect(text: &str) -> Result<Expect, String> {
    let mut e = Expect::default();
    // The method being read: name, kind, keys.
    let mut method: Option<(String, String, BTreeMap<String, String>)> = None;
    let mut map: Option<String> = None;
    let finish = |e: &mut Expect, m: Option<(String, String, BTreeMap<String, String>)>| {
        if let Some((name, kind, keys)) = m {
            let built = build_method(&kind, &keys).map_err(|x| format!("@{name}: {x}"))?;
            if e.methods.insert(name.clone(), built).is_some() {
                return Err(format!("@{name} defined twice"));
            }
        }
        Ok::<(), String>(())
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |m: &str| format!("line {line}: {m}: {raw:?}");
        let t = raw.trim_end();
        if t.trim_start().starts_with('#') {
            continue;
        }
        if t.is_empty() {
            finish(&mut e, method.take()).map_err(|m| err(&m))?;
            continue;
        }
        if t.starts_with(char::is_whitespace) {
            let (_, _, keys) = method.as_mut().ok_or_else(|| err("key outside a method"))?;
            let (k, v) = t
                .trim_start()
                .split_once('=')
                .ok_or_else(|| err("expected key=value"))?;
            if keys.insert(k.to_owned(), v.to_owned()).is_some() {
                return Err(err("key given twice"));
            }
            continue;
        }
        finish(&mut e, method.take()).map_err(|m| err(&m))?;
        if let Some(h) = t.strip_prefix('@') {
            if map.is_some() {
                return Err(err("method after the maps"));
            }
            let (name, kind) = h
                .split_once(": ")
                .ok_or_else(|| err("expected @name: KIND"))?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(err("bad method name"));
            }
            method = Some((name.to_owned(), kind.to_owned(), BTreeMap::new()));
        } else if let Some(name) = t.strip_suffix(':').filter(|n| n.contains(" -> ")) {
            if !MAPS.contains(&name) {
                return Err(err("unknown map"));
            }
            if e.maps.insert(name.to_owned(), Vec::new()).is_some() {
                return Err(err("map given twice"));
            }
            map = Some(name.to_owned());
        } else {
            let name = map.as_ref().ok_or_else(|| err("range outside a map"))?;
            let (span, target) = t
                .split_once(": ")
                .ok_or_else(|| err("expected LO-HI: TARGET"))?;
            let (lo, hi) = span.split_once('-').ok_or_else(|| err("expected LO-HI"))?;
            let (lo, hi) = match (parse_hex(lo), parse_hex(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
                _ => return Err(err("bad range")),
            };
            let target = match target {
                "NONE" => Target::None,
                m => Target::Method(
                    m.strip_prefix('@')
                        .filter(|n| !n.is_empty())
                        .ok_or_else(|| err("expected @method or NONE"))?
                        .to_owned(),
                ),
            };
            let ranges = e.maps.get_mut(name).expect("map inserted above");
            let next = match ranges.last() {
                None => Some(0),
                Some(r) => r.hi.checked_add(1),
            };
            if next != Some(lo) {
                return Err(err("ranges must be contiguous from 0"));
            }
            ranges.push(Range { lo, hi, target });
        }
    }
    finish(&mut e, method.take())?;
    for (name, ranges) in &e.maps {
        if let Some(r) = ranges.last() {
            if r.hi != u64::MAX {
                return Err(format!("{name} does not reach the end of the space"));
            }
        }
        for r in ranges {
            if let Target::Method(m) = &r.target {
                if !e.methods.contains_key(m) {
                    return Err(format!("{name}: unknown method @{m}"));
                }
            }
        }
    }
    if let Some(missing) = MAPS.iter().find(|m| !e.maps.contains_key(**m)) {
        return Err(format!("no {missing} map"));
    }
    Ok(e)
}

// ---------------------------------------------------------------------------
// The loader itself: malformed input is an error, never skipped.
// ---------------------------------------------------------------------------

#[test]
fn loader_data_notation() {
    let d = parse_data(
        "# comment\n@0x1000\n0102 03 # tail\n00000010*3+10\n\"ab\"\n@0x2000\nffff*2-1\n",
    )
    .unwrap();
    assert_eq!(
        d,
        vec![
            Chunk {
                addr: 0x1000,
                bytes: vec![2, 1, 3, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0x30, 0, 0, 0, b'a', b'b'],
                line: 2,
            },
            Chunk {
                addr: 0x2000,
                bytes: vec![0xff, 0xff, 0xfe, 0xff],
                line: 6,
            },
        ]
    );
    // Values wrap within their width.
    assert_eq!(
        parse_data("@0x0\nff*2+1\n").unwrap()[0].bytes,
        vec![0xff, 0]
    );
    for bad in [
        "0000\n",                          // no @ADDR yet
        "@1000\n",                         // address without 0x
        "@0x1000\n123\n",                  // odd digit count
        "@0x1000\n00*0\n",                 // zero repeat
        "@0x1000\n00*010\n",               // octal-looking repeat
        "@0x1000\n00*2+\n",                // empty step
        "@0x1000\n00*2+1+1\n",             // trailing junk
        "@0x1000\n0g\n",                   // not hex
        "@0x1000\n\"ab\n",                 // unterminated string
        "@0x1000\n0000*2\n@0x1002\n00\n",  // overlap
        "@0x1000\n00000000000000000000\n", // wider than 8 bytes
    ] {
        assert!(parse_data(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn loader_sym_notation() {
    let s = parse_sym("@VALUE(a_b)\nffff0000\n# c\n@NUMBER(N)\n30\n").unwrap();
    assert_eq!(s.get("a_b"), Some(&0xffff_0000));
    assert_eq!(s.get("N"), Some(&0x30));
    for bad in [
        "@VALUE(a)\n",
        "@VALUE(a)\n0x10\n",
        "@SIZE(a)\n10\n",
        "VALUE(a)\n10\n",
        "@VALUE(a)\n1\n@VALUE(a)\n2\n",
    ] {
        assert!(parse_sym(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn loader_expect_notation() {
    let maps =
        "KV -> HW:\n0-ffffffffffffffff: @p\n\nKV -> PHYS:\n0-f: @l\n10-ffffffffffffffff: NONE\n\n\
                KPHYS -> DIRECT:\n\nMACHPHYS -> KPHYS:\n0-ffffffffffffffff: @l\n\n\
                KPHYS -> MACHPHYS:\n0-ffffffffffffffff: @l\n";
    let methods = "@p: PGT\n  target_as=MACHPHYSADDR\n  root=KPHYSADDR:0x1000\n  pte_mask=0x0\n  \
                   pte_format=x86_64\n  fields=12,9,9,9,9\n\n@l: LINEAR\n  target_as=KPHYSADDR\n  off=0x10\n\n";
    let e = parse_expect(&format!("{methods}{maps}")).unwrap();
    assert_eq!(
        e.methods["l"],
        Method::Linear {
            target_as: AddrSpace::KPhys,
            off: 0x10
        }
    );
    assert_eq!(e.maps["KPHYS -> DIRECT"], vec![]);
    assert_eq!(e.linear_off("KV -> PHYS", 5), Ok(0x10));
    for (from, to) in [
        ("off=0x10", "off=10"),        // offset without 0x
        ("off=0x10", "offset=0x10"),   // unknown key
        ("@l: LINEAR", "@l: LINEAR2"), // unknown kind
        ("  pte_mask=0x0\n", ""),      // missing key
        ("0-f: @l", "0-e: @l"),        // gap
        ("0-f: @l", "0-f: @nothere"),  // unknown method
        ("0-f: @l", "0-f @l"),         // no colon
        ("10-ffffffffffffffff: NONE", "10-fffffffffffffffe: NONE"), // short
        ("KV -> HW:", "KV -> XX:"),    // unknown map
        ("fields=12,9,9,9,9", "fields=12,9,,9"), // empty field
    ] {
        let text = format!("{methods}{maps}").replacen(from, to, 1);
        assert_ne!(text, format!("{methods}{maps}"), "{from} not found");
        assert!(parse_expect(&text).is_err(), "accepted {to:?}");
    }
}
