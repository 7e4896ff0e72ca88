//! One file per command.

pub mod completions;
pub mod daemon;
pub mod ensure;
pub mod etcd;
pub mod gate;
pub mod list;
pub mod man;
pub mod path;
pub mod pid;
pub mod run;
pub mod signal;
pub mod status;
pub mod stop;
pub mod sweep;
pub mod tree;
pub mod wait;

use std::path::PathBuf;

use pidguard::{ErrorKind, Filters, Outcome, Pidfile, Report};
use serde_json::json;

use crate::cli::{FileArgs, FilterArgs};
use crate::exit::{Exit, Failure};

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

/// The library's filters from the command line.
pub fn filters(args: &FilterArgs) -> Result<Filters, Failure> {
    let user = match &args.user {
        None => None,
        Some(u) => Some(resolve_user(u)?),
    };
    if let Some(exe) = &args.exe {
        if let Err(e) = std::fs::metadata(exe) {
            return Err(Failure::new(
                Exit::Usage,
                format!(
                    "--exe {}: {e}; give the path of the daemon's executable \
                     (as /proc/PID/exe shows it)",
                    exe.display()
                ),
            ));
        }
    }
    Ok(Filters {
        exe: args.exe.clone(),
        user,
        name: args.comm.clone(),
    })
}

/// A user name or numeric UID, looked up in /etc/passwd.
fn resolve_user(user: &str) -> Result<u32, Failure> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok(uid);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse::<u32>().ok()?;
            (name == user).then_some(uid)
        })
        .next()
        .ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                format!("unknown user {user:?}: give a name from /etc/passwd or a numeric UID"),
            )
        })
}

/// The exit code for an error from `stop`, `signal` or `wait`: they refuse
/// (77) what they must not signal.
pub fn signalling_failure(e: pidguard::Error) -> Failure {
    let exit = match e.kind() {
        ErrorKind::InvalidContents => Exit::DataErr,
        ErrorKind::PermissionDenied
        | ErrorKind::Untrusted
        | ErrorKind::Unproved
        | ErrorKind::UnsafeFile => Exit::NoPerm,
        _ => Exit::for_error(&e),
    };
    Failure::new(exit, e.to_string())
}

/// One line (or one JSON object) saying what `stop`, `signal` or `wait`
/// found and did.
pub fn print_report(path: &std::path::Path, report: &Report, json_out: bool, did: &str) {
    if json_out {
        let outcome = match report.outcome {
            Outcome::NotRunning => "not-running",
            Outcome::Starting => "starting",
            Outcome::Stale => "stale",
            Outcome::Mismatched => "mismatched",
            Outcome::Stopped => "stopped",
            Outcome::StillRunning => "still-running",
            Outcome::Signalled => "signalled",
            _ => "other",
        };
        let v = json!({
            "path": path,
            "outcome": outcome,
            "pid": report.pid.map(|p| p.get()),
            "identity": report.identity.as_ref().map(|i| i.name()),
            "reason": report.identity.as_ref().map(|i| i.to_string()),
            "file_gone": report.file_gone,
        });
        println!("{v}");
        return;
    }
    let p = path.display();
    let pid = report.pid.map(|p| p.to_string()).unwrap_or_default();
    let id = report
        .identity
        .as_ref()
        .map(|i| format!(" ({i})"))
        .unwrap_or_default();
    let file = if report.file_gone {
        "; the file is gone"
    } else {
        "; the file is kept"
    };
    match report.outcome {
        Outcome::NotRunning => println!("{p}: not running (no PID file)"),
        Outcome::Starting => println!("{p}: starting (locked, no PID yet): nothing to signal"),
        Outcome::Stale => println!("{p}: stale: PID {pid}{id} was not signalled{file}"),
        Outcome::Mismatched => println!(
            "{p}: PID {pid} is running but is not proved to be the file's owner{id}: \
             nothing was signalled{file}"
        ),
        Outcome::Stopped => println!("{p}: PID {pid}{id} {did}{file}"),
        Outcome::StillRunning => println!("{p}: PID {pid}{id} is still running{file}"),
        Outcome::Signalled => println!("{p}: {did} PID {pid}{id}"),
        _ => println!("{p}: {report:?}"),
    }
}

/// `pid` for rustix's system calls (the library keeps rustix's types out of
/// its API).
pub(crate) fn rustix_pid(pid: pidguard::Pid) -> rustix::process::Pid {
    rustix::process::Pid::from_raw(pid.get()).expect("a Pid is in 1..=i32::MAX")
}
