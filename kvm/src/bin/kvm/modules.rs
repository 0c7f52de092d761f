//! `kvm modules`: the loaded kernel modules, as `/proc/modules` lists
//! their name, size and address, or as JSON.

use crate::escape::printable;
use crate::{Query, Result};
use std::io::Write;

pub fn run(a: Query) -> Result {
    let mods = a.src.open()?.modules()?;
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.json {
        let v: Vec<serde_json::Value> = mods
            .iter()
            .map(|m| serde_json::json!({"name": m.name, "size": m.size, "addr": format!("{:#x}", m.addr)}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for m in &mods {
            writeln!(out, "{} {} {:#018x}", printable(&m.name), m.size, m.addr)?;
        }
    }
    Ok(())
}
