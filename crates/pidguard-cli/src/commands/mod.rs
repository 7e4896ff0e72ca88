//! One file per command.

pub mod gate;
pub mod path;
pub mod pid;
pub mod run;
pub mod status;

use std::path::PathBuf;

use pidguard::Pidfile;

use crate::cli::FileArgs;
use crate::exit::Failure;

/// The library builder for the file a command names.
pub fn pidfile(args: &FileArgs) -> Pidfile {
    let mut pf = match (&args.target.pidfile, &args.target.name) {
        (Some(p), _) => Pidfile::new(p),
        (None, Some(n)) => Pidfile::named(n),
        (None, None) => unreachable!("clap requires --pidfile or --name"),
    };
    if let Some(key) = &args.instance {
        pf.instance(key);
    }
    pf
}

/// The resolved path of the file a command names.
pub fn resolved_path(args: &FileArgs) -> Result<PathBuf, Failure> {
    Ok(pidfile(args).path()?)
}
