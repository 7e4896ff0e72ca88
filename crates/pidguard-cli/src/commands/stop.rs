//! `pidguard stop`: stop the file's owner with a schedule.

use std::time::Duration;

use pidguard::{Outcome, Schedule, Signal};

use crate::cli::StopArgs;
use crate::commands::{filters, pidfile, print_report, signalling_failure, Doing};
use crate::exit::{Exit, Failure};

/// The default: TERM, 10 s, KILL, 5 s.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(args: StopArgs) -> Result<Exit, Failure> {
    let schedule = match (&args.schedule, args.timeout) {
        (Some(s), _) => s.clone(),
        (None, t) => Schedule::timeout(
            args.signal.unwrap_or(Signal::TERM),
            t.unwrap_or(DEFAULT_TIMEOUT),
        ),
    };
    if let Some(url) = &args.backend.backend {
        return crate::commands::etcd::stop(&args, url, &schedule);
    }
    let path = pidfile(&args.file).path()?;
    let filters = filters(&args.filters)?;
    let report = pidguard::stop(&path, &schedule, &filters).map_err(signalling_failure)?;
    print_report(&path, &report, args.file.json, Doing::Stop);
    Ok(match report.outcome {
        Outcome::StillRunning | Outcome::Starting => Exit::Stale,
        _ => Exit::Success,
    })
}
