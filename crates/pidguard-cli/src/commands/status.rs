//! `pidguard status`: one line about the file's state.

use pidguard::{Identity, Status};

use crate::cli::StatusArgs;
use crate::commands::{resolved_path, stale_kind, stale_words, with_identity};
use crate::exit::{Exit, Failure};
use crate::output::{escape, print_json, Obj};

/// The exit code `status` uses for a state.
pub fn exit_for(status: &Status) -> Exit {
    match status {
        Status::Running { .. } | Status::Starting => Exit::Success,
        Status::Stale(_) => Exit::Stale,
        Status::NotRunning => Exit::NotRunning,
        Status::Unknown(_) => Exit::Unknown,
    }
}

/// The JSON object describing a state (and the verdict on its PID, when it
/// names a live process).
pub fn to_json(path: &std::path::Path, status: &Status, identity: Option<&Identity>) -> Obj {
    let v = Obj::new().path("path", path).set("state", status.name());
    let v = match status {
        Status::Running { pid, locked } => v.set("pid", pid.get()).set("locked", *locked),
        Status::Stale(pid) => v
            .set("pid", pid.get())
            .set("stale_kind", stale_kind(identity)),
        Status::Starting => v.set("locked", true),
        Status::Unknown(e) => v.set("problem", e.to_string()),
        Status::NotRunning => v,
    };
    with_identity(v, identity)
}

/// The state in words; a stale file says which kind it is.
pub fn describe(status: &Status, identity: Option<&Identity>) -> String {
    match (status, identity) {
        (Status::Stale(pid), _) => stale_words(Some(*pid), identity),
        (_, Some(id)) => format!("{status}; identity: {id}"),
        (_, None) => status.to_string(),
    }
}

pub fn run(args: StatusArgs) -> Result<Exit, Failure> {
    if let Some(url) = &args.backend.backend {
        return crate::commands::etcd::status(&args, url);
    }
    let path = resolved_path(&args.file)?;
    let found = pidguard::inspect(&path, &Default::default());
    let status = &found.status;
    let identity = found.identity.as_ref();
    if args.file.json {
        print_json(&to_json(&path, status, identity).value());
    } else {
        let p = escape(path.as_os_str().as_encoded_bytes());
        println!("{p}: {}", describe(status, identity));
    }
    Ok(exit_for(status))
}
