//! `kvm info`: facts about the dump (format, architecture, release,
//! paging).

use crate::util::hex_opt;
use crate::{Query, Result};

pub fn run(a: Query) -> Result {
    let kd = a.src.open()?;
    let i = kd.info();
    if a.json {
        let v = serde_json::json!({
            "format": i.format,
            "arch": i.arch,
            "os": i.os,
            "release": i.release,
            "page_size": i.page_size,
            "kaslr_offset": hex_opt(i.kaslr_offset),
            "root": hex_opt(i.root),
            "paging": i.paging,
            "ranges": i.ranges.0,
            "memory_bytes": i.ranges.1,
            "incomplete": i.incomplete,
            "remarks": i.remarks,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let or = |s: Option<String>| s.unwrap_or_else(|| "unknown".into());
    println!("file:         {}", kd.path().display());
    println!("format:       {}", i.format);
    println!("arch:         {}", or(i.arch.map(str::to_owned)));
    println!("os:           {}", or(i.os.map(str::to_owned)));
    println!("release:      {}", or(i.release));
    println!("page size:    {}", or(i.page_size.map(|p| p.to_string())));
    println!(
        "kaslr offset: {}",
        or(i.kaslr_offset.map(|o| format!("{o:#x}")))
    );
    println!("paging:       {}", i.paging);
    if let Some(r) = i.root {
        println!("root table:   {r:#x}");
    }
    println!(
        "memory:       {} ranges, {} MiB",
        i.ranges.0,
        i.ranges.1 >> 20
    );
    if i.incomplete {
        println!("incomplete:   yes: memory is missing from the dump (the notes say what)");
    }
    for r in i.remarks {
        println!("note:         {r}");
    }
    Ok(())
}
