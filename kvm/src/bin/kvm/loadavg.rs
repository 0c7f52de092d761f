//! `kvm loadavg`: the 1, 5 and 15-minute load averages.

use crate::{Result, Source};

// Its help is the doc comment of `Cmd::Loadavg`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    src: Source,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result {
    let l = a.src.open()?.getloadavg()?;
    if a.json {
        println!("{}", serde_json::to_string(&l)?);
    } else {
        println!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
    }
    Ok(())
}
