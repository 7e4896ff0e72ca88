//! `pidguard ensure`: make sure a daemon runs, starting it if needed.

use crate::cli::EnsureArgs;
use crate::commands::{creation, pidfile};
use crate::exit::{Exit, Failure};
use crate::output::{print_json, Obj};
use crate::supervise::daemon;

pub fn run(args: EnsureArgs) -> Result<Exit, Failure> {
    let mut pf = pidfile(&args.file);
    creation(&mut pf, &args.create)?;
    let (pid, started) = daemon::ensure(&pf, &args)?;
    if args.file.json {
        let obj = Obj::new().set("pid", pid.get()).set("started", started);
        let obj = match pf.path() {
            Ok(p) => obj.path("path", &p),
            Err(_) => obj,
        };
        print_json(&obj.value());
    } else {
        println!("{pid}");
    }
    Ok(Exit::Success)
}
