//! `pidguard ensure`: make sure a daemon runs, starting it if needed.

use pidguard::ensure::{EnsureOptions, Ensured};

use crate::cli::EnsureArgs;
use crate::commands::{creation, pidfile};
use crate::exit::{Exit, Failure};
use crate::output::{print_json, Obj};
use crate::supervise::daemon;

pub fn run(args: EnsureArgs) -> Result<Exit, Failure> {
    let mut pf = pidfile(&args.file);
    creation(&mut pf, &args.create)?;
    let mut options = EnsureOptions::new();
    options.ready_timeout(args.detach.ready_timeout());
    if let Some(s) = &args.socket {
        options.socket(s);
    }
    let found = pidguard::ensure::ensure(&pf, &options, || {
        daemon::start(
            pf.clone(),
            &args.command,
            &args.detach,
            None,
            args.socket.as_deref(),
        )
        .map_err(Failed::Start)
    })
    .map_err(|f| match f {
        Failed::Start(f) => f,
        // A daemon that never accepted a connection was stopped and its
        // file removed: as with --notify's timeout, exit 1.
        Failed::Ensure(e)
            if e.io_error().map(|io| io.kind()) == Some(std::io::ErrorKind::TimedOut) =>
        {
            Failure::new(Exit::Stale, Failure::from(e).message)
        }
        Failed::Ensure(e) => e.into(),
    })?;
    if args.file.json {
        let started = matches!(found, Ensured::Started(_));
        let obj = Obj::new()
            .set("pid", found.pid().get())
            .set("started", started);
        let obj = match pf.path() {
            Ok(p) => obj.path("path", &p),
            Err(_) => obj,
        };
        print_json(&obj.value());
    } else {
        println!("{}", found.pid());
    }
    Ok(Exit::Success)
}

/// Why `ensure` failed: starting the daemon, or the library's part.
enum Failed {
    Start(Failure),
    Ensure(pidguard::Error),
}

impl From<pidguard::Error> for Failed {
    fn from(e: pidguard::Error) -> Failed {
        Failed::Ensure(e)
    }
}
