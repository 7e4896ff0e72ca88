//! `pidguard stop`: stop the file's owner with a schedule.

use std::time::Duration;

use pidguard::{Schedule, Signal, Step};

use crate::cli::{StopArgs, StopSchedule};
use crate::commands::{filters, pidfile, signalling_failure};
use crate::exit::{self, Exit, Failure};
use crate::output::{print_report, Doing};

/// The default: TERM, 10 s, KILL, 5 s.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(args: StopArgs) -> Result<Exit, Failure> {
    let signal = args.signal.unwrap_or(Signal::TERM);
    let schedule = match (&args.schedule, args.timeout) {
        (Some(StopSchedule::Retry(d)), _) => Schedule::retry(signal, *d),
        (Some(StopSchedule::Full(_)), _) if args.signal.is_some() => {
            return Err(Failure::new(
                Exit::Usage,
                "--signal cannot be combined with a full --schedule (SIG/TIME/…), which \
                 names its own signals; put the signal first in the schedule, or give \
                 --schedule N for SIG/N/KILL/N",
            ))
        }
        (Some(StopSchedule::Full(s)), _) => s.clone(),
        (None, t) => Schedule::timeout(signal, t.unwrap_or(DEFAULT_TIMEOUT)),
    };
    for step in schedule.steps() {
        if let Step::Signal(sig) = step {
            if let Some(why) = crate::sys::unschedulable(*sig) {
                return Err(Failure::new(Exit::Unavailable, format!("stop: {why}")));
            }
        }
    }
    if let Some(url) = &args.backend.backend {
        return crate::supervise::etcd::stop(&args, url, &schedule);
    }
    let path = pidfile(&args.file).path()?;
    let filters = filters(&args.filters)?;
    let report = pidguard::stop(&path, &schedule, &filters).map_err(signalling_failure)?;
    print_report(&path, &report, args.file.json, Doing::Stop);
    Ok(exit::of_stop(report.outcome))
}
