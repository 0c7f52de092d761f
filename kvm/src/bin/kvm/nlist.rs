//! `kvm nlist`: kernel symbol addresses (kvm_nlist).

use crate::util::hex_opt;
use crate::{Query, Result};

// Its help is the doc comment of `Cmd::Nlist`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    q: Query,
    /// Symbol names.
    #[arg(required = true)]
    names: Vec<String>,
}

pub fn run(a: Args) -> Result {
    let kd = a.q.src.open()?;
    let names = &a.names;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let found = kd.nlist(&refs)?;
    if a.q.json {
        let m: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(&found)
            .map(|(n, a)| (n.clone(), hex_opt(*a)))
            .collect();
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        for (n, a) in names.iter().zip(&found) {
            match a {
                Some(a) => println!("{a:016x} {n}"),
                None => println!("{:>16} {n}", "-"),
            }
        }
    }
    // A name not found is an error either way (the JSON says which:
    // null), as kvm_nlist counts them.
    if found.iter().any(Option::is_none) {
        return Err(format!(
            "{}: {} of {} symbols not found",
            kd.path().display(),
            found.iter().filter(|a| a.is_none()).count(),
            names.len()
        )
        .into());
    }
    Ok(())
}
