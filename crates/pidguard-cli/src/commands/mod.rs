//! One file per command.

pub mod completions;
pub mod ensure;
pub mod list;
pub mod man;
pub mod path;
pub mod pid;
pub mod signal;
pub mod status;
pub mod stop;
pub mod sweep;
pub mod wait;

use std::path::PathBuf;

use pidguard::{ErrorKind, Filters, Identity, Outcome, Pid, Pidfile, Report};

use crate::cli::{CreateArgs, FileArgs, FilterArgs};
use crate::exit::{Exit, Failure};
use crate::output::Obj;

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
    resolve_id(user, "/etc/passwd", "user", "UID")
}

/// A group name or numeric GID, looked up in /etc/group.
fn resolve_group(group: &str) -> Result<u32, Failure> {
    resolve_id(group, "/etc/group", "group", "GID")
}

/// A name in `file` (`name:x:ID:…` lines) or a number.
fn resolve_id(name: &str, file: &str, what: &str, id: &str) -> Result<u32, Failure> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let table = std::fs::read_to_string(file).unwrap_or_default();
    table
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let entry = f.next()?;
            let n = f.nth(1)?.parse::<u32>().ok()?;
            (entry == name).then_some(n)
        })
        .next()
        .ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                format!("unknown {what} {name:?}: give a name from {file} or a numeric {id}"),
            )
        })
}

/// `--owner`, `--group` and `--mode` on the builder of a file to create.
pub fn creation(pf: &mut Pidfile, args: &CreateArgs) -> Result<(), Failure> {
    let uid = args.owner.as_deref().map(resolve_user).transpose()?;
    let gid = args.group.as_deref().map(resolve_group).transpose()?;
    if uid.is_some() || gid.is_some() {
        pf.owner(uid, gid);
    }
    if let Some(mode) = args.mode {
        pf.mode(mode);
    }
    Ok(())
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
    Failure::of(exit, &e)
}

/// The identity fields every object shares: `identity` (the library's
/// name for the verdict) and `identity_detail` (its reason), `null` when no
/// live process is named.
pub fn with_identity(obj: Obj, identity: Option<&Identity>) -> Obj {
    obj.set("identity", identity.map(|i| i.name()))
        .set("identity_detail", identity.map(|i| i.to_string()))
}

/// Which kind of stale a stale file is: `gone` (its process exited) or
/// `other-process` (the PID now names a process that is not the file's
/// owner, which the identity says).
pub fn stale_kind(identity: Option<&Identity>) -> &'static str {
    match identity {
        None => "gone",
        Some(_) => "other-process",
    }
}

/// "stale (…)", saying which kind.
pub fn stale_words(pid: Option<Pid>, identity: Option<&Identity>) -> String {
    let pid = pid
        .map(|p| format!("PID {p}"))
        .unwrap_or_else(|| "its PID".into());
    match identity {
        None => format!("stale ({pid} is gone)"),
        Some(id) => format!("stale ({pid} now belongs to another process; identity: {id})"),
    }
}

/// Which command a [`Report`] is for: what the line says about the file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Doing<'a> {
    /// `stop`: removes the file once the process is gone.
    Stop,
    /// `signal`, with what was done ("sent SIGHUP to").
    Signal(&'a str),
    /// `wait`: never removes anything, so says nothing about the file.
    Wait,
}

/// The JSON object for a report of `stop`, `signal` or `wait`.
pub fn report_json(path: &std::path::Path, report: &Report) -> Obj {
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
    let obj = Obj::new()
        .path("path", path)
        .set("outcome", outcome)
        .set("pid", report.pid.map(|p| p.get()));
    let obj = with_identity(obj, report.identity.as_ref()).set("file_gone", report.file_gone);
    if report.outcome == Outcome::Stale {
        obj.set("stale_kind", stale_kind(report.identity.as_ref()))
    } else {
        obj
    }
}

/// One line (or one JSON object) saying what `stop`, `signal` or `wait`
/// found and did.
pub fn print_report(path: &std::path::Path, report: &Report, json_out: bool, doing: Doing<'_>) {
    if json_out {
        crate::output::print_json(&report_json(path, report).value());
        return;
    }
    let p = crate::output::escape(path.as_os_str().as_encoded_bytes());
    let pid = report.pid.map(|p| p.to_string()).unwrap_or_default();
    let id = report
        .identity
        .as_ref()
        .map(|i| format!(" ({i})"))
        .unwrap_or_default();
    // `wait` never removes the file: it says nothing about it.
    let file = match (doing, report.file_gone) {
        (Doing::Wait, _) => "",
        (_, true) => "; the file is gone",
        (_, false) => "; the file is kept",
    };
    let did = match doing {
        Doing::Stop => "stopped",
        Doing::Signal(did) => did,
        Doing::Wait => "exited",
    };
    let stale = stale_words(report.pid, report.identity.as_ref());
    match report.outcome {
        Outcome::NotRunning => println!("{p}: not running (no PID file)"),
        Outcome::Starting => println!("{p}: starting (locked, no PID yet): nothing to signal"),
        Outcome::Stale if doing == Doing::Wait => println!("{p}: {stale}: nothing to wait for"),
        Outcome::Stale => println!("{p}: {stale}: nothing was signalled{file}"),
        Outcome::Mismatched if doing == Doing::Wait => println!(
            "{p}: PID {pid} is running but is not proved to be the file's owner{id}: \
             nothing to wait for"
        ),
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
