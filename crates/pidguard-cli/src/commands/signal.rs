//! `pidguard signal`: send one signal to the file's owner.

use pidguard::Outcome;

use crate::cli::SignalArgs;
use crate::commands::{filters, pidfile, print_report, signalling_failure};
use crate::exit::{Exit, Failure};

pub fn run(args: SignalArgs) -> Result<Exit, Failure> {
    let path = pidfile(&args.file).path()?;
    let filters = filters(&args.filters)?;
    let report = pidguard::send_signal(&path, args.signal, &filters).map_err(signalling_failure)?;
    let did = format!("sent SIG{} to", args.signal);
    print_report(&path, &report, args.file.json, &did);
    Ok(match report.outcome {
        Outcome::Signalled => Exit::Success,
        Outcome::NotRunning => Exit::NotRunning,
        _ => Exit::Stale,
    })
}
