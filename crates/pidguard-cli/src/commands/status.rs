//! `pidguard status`: one line about the file's state.

use pidguard::{Inspection, Status};

use crate::cli::StatusArgs;
use crate::commands::resolved_path;
use crate::exit::{self, Exit, Failure, Found};
use crate::output::{escape, print_json, Obj};
use crate::output::{stale_kind, stale_words, with_identity};

/// The JSON object describing what was found: the state, and the verdict
/// on its PID when it names a live process.
pub fn to_json(path: &std::path::Path, found: &Inspection) -> Obj {
    let status = &found.status;
    let identity = found.identity.as_ref();
    let v = Obj::new().path("path", path).set("state", status.name());
    let v = match status {
        Status::Running { pid, locked } => {
            let v = v.set("pid", pid.get()).set("locked", *locked);
            // The holder of a file written in another PID namespace (or
            // that inherited the lock) is not the PID the file holds.
            match found.file_pid {
                Some(fp) => v.set("file_pid", fp.get()),
                None => v,
            }
        }
        Status::Held(pid) => v
            .set("pid", serde_json::Value::Null)
            .set("file_pid", pid.get())
            .set("locked", true),
        Status::Stale(pid) => v
            .set("pid", pid.get())
            .set("stale_kind", stale_kind(identity)),
        Status::Starting => v.set("locked", true),
        Status::Unknown(e) => v.set("problem", e.to_string()),
        Status::NotRunning => v,
    };
    with_identity(v, identity).set("evidence", found.decided_by.map(|d| d.name()))
}

/// The state in words; a stale file says which kind it is, and a holder
/// that is not the PID in the file says both.
pub fn describe(found: &Inspection) -> String {
    let status = &found.status;
    let identity = found.identity.as_ref();
    let other = match (found.file_pid, status.running_pid()) {
        (Some(fp), Some(p)) if fp != p => format!(
            "; the file holds PID {fp} (the holder's PID in its own PID namespace, \
             or the process it inherited the lock from)"
        ),
        _ => String::new(),
    };
    match (status, identity) {
        (Status::Stale(pid), _) => stale_words(Some(*pid), identity),
        (_, Some(id)) => match found.decided_by {
            Some(by) => format!("{status}{other}; identity: {id} (by {})", by.name()),
            None => format!("{status}{other}; identity: {id}"),
        },
        (_, None) => format!("{status}{other}"),
    }
}

pub fn run(args: StatusArgs) -> Result<Exit, Failure> {
    if let Some(url) = &args.backend.backend {
        return crate::supervise::etcd::status(&args, url);
    }
    let path = resolved_path(&args.file)?;
    let found = pidguard::inspect(&path, &Default::default());
    if args.file.json {
        print_json(&to_json(&path, &found).value());
    } else {
        let p = escape(path.as_os_str().as_encoded_bytes());
        println!("{p}: {}", describe(&found));
    }
    Ok(exit::of_status(Found::of(&found.status)))
}
