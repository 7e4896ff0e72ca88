//! `pidguard ensure`: make sure a daemon runs, starting it if needed.

use pidguard::ensure::{EnsureOptions, Ensured};

use crate::cli::EnsureArgs;
use crate::commands::{daemon, pidfile};
use crate::exit::{Exit, Failure};

pub fn run(args: EnsureArgs) -> Result<Exit, Failure> {
    let pf = pidfile(&args.file);
    let mut options = EnsureOptions::new();
    options.ready_timeout(args.detach.ready_timeout());
    if let Some(s) = &args.socket {
        options.socket(s);
    }
    let found = pidguard::ensure::ensure(&pf, &options, || {
        daemon::start(pf.clone(), &args.command, &args.detach, None)
    })?;
    if args.file.json {
        let started = matches!(found, Ensured::Started(_));
        println!(
            "{}",
            serde_json::json!({ "pid": found.pid().get(), "started": started })
        );
    } else {
        println!("{}", found.pid());
    }
    Ok(Exit::Success)
}
