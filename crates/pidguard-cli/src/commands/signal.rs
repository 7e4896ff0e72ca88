//! `pidguard signal`: send one signal to the file's owner, or probe it.

use crate::cli::{SignalArg, SignalArgs};
use crate::commands::{filters, pidfile, signalling_failure};
use crate::exit::{self, Exit, Failure};
use crate::output::print_json;
use crate::output::{print_report, report_json, Doing};

pub fn run(args: SignalArgs) -> Result<Exit, Failure> {
    if let SignalArg::Send(sig) = args.signal {
        if let Some(why) = crate::sys::unsendable(sig) {
            return Err(Failure::new(Exit::Unavailable, why));
        }
    }
    let path = pidfile(&args.file).path()?;
    let filters = filters(&args.filters)?;
    let (report, did, name) = match args.signal {
        SignalArg::Send(sig) => (
            pidguard::send_signal(&path, sig, &filters),
            format!("sent SIG{sig} to"),
            sig.name(),
        ),
        // Signal 0: the same checks, nothing sent.
        SignalArg::Probe => (
            pidguard::probe_signal(&path, &filters),
            "could signal (signal 0: nothing was sent)".to_owned(),
            "0".to_owned(),
        ),
    };
    let report = report.map_err(signalling_failure)?;
    if args.file.json {
        let obj = report_json(&path, &report).set("signal", name);
        let obj = match args.signal {
            SignalArg::Probe => obj.set("probe", true),
            SignalArg::Send(_) => obj.set("probe", false),
        };
        print_json(&obj.value());
    } else {
        print_report(&path, &report, false, Doing::Signal(&did));
    }
    Ok(exit::of_signal(report.outcome))
}
