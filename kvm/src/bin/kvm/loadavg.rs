//! `kvm loadavg`: the 1, 5 and 15-minute load averages.

use crate::{Query, Result};

pub fn run(a: Query) -> Result {
    let l = a.src.open()?.getloadavg()?;
    if a.json {
        println!("{}", serde_json::to_string(&l)?);
    } else {
        println!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
    }
    Ok(())
}
