//! One file per command.

pub mod completions;
pub mod ensure;
pub mod list;
pub mod man;
pub mod path;
pub mod pid;
pub mod run;
pub mod signal;
pub mod status;
pub mod stop;
pub mod sweep;
pub mod wait;

use std::path::PathBuf;

use pidguard::{ErrorKind, Filters, Pidfile};

use crate::cli::{CreateArgs, FileArgs, FilterArgs};
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
