//! What supervision shares on every platform: taking the lock, and the
//! failure of a command that could not be started.

use std::ffi::OsString;

use pidguard::{Guard, Pidfile};

use crate::exit::{Exit, Failure};

/// Takes the lock, waiting up to `wait` if given.
pub fn acquire(pf: &Pidfile, wait: Option<std::time::Duration>) -> Result<Guard, Failure> {
    let guard = match wait {
        Some(d) => pf.acquire_timeout(d)?,
        None => pf.acquire()?,
    };
    if let Some(fs) = guard.network_fs() {
        eprintln!(
            "pidguard: warning: {} is on {fs}, where flock may be emulated or hold only on \
             this host; prefer a local directory such as /run",
            guard.path().display()
        );
    }
    Ok(guard)
}

pub(crate) fn exec_failure(program: &OsString, err: &std::io::Error) -> Failure {
    let name = program.to_string_lossy();
    if err.kind() == std::io::ErrorKind::NotFound {
        Failure::new(Exit::NotFound, format!("command not found: {name}: {err}"))
    } else {
        Failure::new(Exit::CannotExecute, format!("cannot execute {name}: {err}"))
    }
}
