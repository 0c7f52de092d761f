//! `kvm types`: member offsets and type sizes from the kernel's BTF.

use crate::{Query, Result};

// Its help is the doc comment of `Cmd::Types`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    q: Query,
    /// Member paths (`struct.member[.member…]`) or type names.
    #[arg(required = true)]
    paths: Vec<String>,
}

pub fn run(a: Args) -> Result {
    let kd = a.q.src.open()?;
    let mut m = serde_json::Map::new();
    for p in &a.paths {
        let found = kd.type_info(p)?;
        if !a.q.json {
            match found {
                Some((Some(o), s)) => println!("{p}: offset {o} size {s}"),
                Some((None, s)) => println!("{p}: size {s}"),
                None => println!("{p}: not found"),
            }
        }
        let v = match found {
            Some((off, size)) => serde_json::json!({"offset": off, "size": size}),
            None => serde_json::Value::Null,
        };
        m.insert(p.clone(), v);
    }
    if a.q.json {
        // JSON says null for what is not found, as nlist --json does;
        // the exit status says whether anything was, either way.
        println!("{}", serde_json::to_string_pretty(&m)?);
    }
    let missing = m.values().filter(|v| v.is_null()).count();
    if missing > 0 {
        return Err(format!(
            "{}: {missing} of {} not found in the kernel's types",
            kd.path().display(),
            m.len()
        )
        .into());
    }
    Ok(())
}
