//! `pidguard run`: take the lock and run a command under it.

use crate::cli::RunArgs;
use crate::commands;
use crate::exit::{Exit, Failure};
use crate::output::{print_json, Obj};
use crate::supervise::{self, daemon, foreground};

pub fn run(args: RunArgs) -> Result<Exit, Failure> {
    // What this platform does not have, refused before any file is touched.
    supervise::check_run(&args)?;
    if let Some(url) = &args.backend.backend {
        return supervise::etcd::run(&args, url);
    }
    let mut pf = commands::pidfile(&args.file);
    pf.fsync(args.fsync);
    commands::creation(&mut pf, &args.create)?;
    if args.exec {
        supervise::exec_in_place(&pf, &args.command, args.wait)
    } else if args.daemon {
        let pid = daemon::start(pf, &args.command, &args.detach, args.wait, None)?;
        if args.file.json {
            print_json(&Obj::new().set("pid", pid.get()).value());
        }
        Ok(Exit::Success)
    } else {
        foreground::supervise(pf, &args.command, args.wait)
    }
}
