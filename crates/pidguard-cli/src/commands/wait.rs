//! `pidguard wait`: wait for the file's owner to exit.

use crate::cli::WaitArgs;
use crate::commands::{filters, pidfile, signalling_failure};
use crate::exit::{self, Exit, Failure};
use crate::output::{print_report, Doing};

pub fn run(args: WaitArgs) -> Result<Exit, Failure> {
    let path = pidfile(&args.file).path()?;
    let filters = filters(&args.filters)?;
    let report = pidguard::wait(&path, args.timeout, &filters).map_err(signalling_failure)?;
    print_report(&path, &report, args.file.json, Doing::Wait);
    Ok(exit::of_wait(report.outcome))
}
