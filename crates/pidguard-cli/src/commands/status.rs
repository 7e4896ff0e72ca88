//! `pidguard status`: one line about the file's state.

use pidguard::Status;
use serde_json::json;

use crate::cli::StatusArgs;
use crate::commands::resolved_path;
use crate::exit::{Exit, Failure};

/// The exit code `status` uses for a state.
pub fn exit_for(status: &Status) -> Exit {
    match status {
        Status::Running { .. } | Status::Starting | Status::Held(_) => Exit::Success,
        Status::Stale(_) => Exit::Stale,
        Status::NotRunning => Exit::NotRunning,
        Status::Unknown(_) => Exit::Unknown,
    }
}

/// The JSON object describing a state.
pub fn to_json(path: &std::path::Path, status: &Status) -> serde_json::Value {
    let mut v = json!({ "path": path, "state": status.name() });
    match status {
        Status::Running { pid, locked } => {
            v["pid"] = json!(pid.get());
            v["locked"] = json!(locked);
        }
        Status::Stale(pid) => v["pid"] = json!(pid.get()),
        Status::Held(pid) => {
            v["pid"] = serde_json::Value::Null;
            v["file_pid"] = json!(pid.get());
            v["locked"] = json!(true);
        }
        Status::Starting => v["locked"] = json!(true),
        Status::Unknown(e) => v["error"] = json!(e.to_string()),
        Status::NotRunning => {}
    }
    v
}

pub fn run(args: StatusArgs) -> Result<Exit, Failure> {
    if let Some(url) = &args.backend.backend {
        return crate::commands::etcd::status(&args, url);
    }
    let path = resolved_path(&args.file)?;
    let found = pidguard::inspect(&path, &Default::default());
    let status = &found.status;
    if args.file.json {
        let mut v = to_json(&path, status);
        if let Some(id) = &found.identity {
            v["identity"] = json!(id.name());
            v["identity_detail"] = json!(id.to_string());
        }
        if let (Some(fp), Some(_)) = (found.file_pid, status.running_pid()) {
            v["file_pid"] = json!(fp.get());
        }
        println!("{v}");
    } else {
        // The holder of a file written in another PID namespace (or that
        // inherited the lock) is not the PID the file holds: say both.
        let other = match (found.file_pid, status.running_pid()) {
            (Some(fp), Some(p)) if fp != p => format!(
                "; the file holds PID {fp} (the holder's PID in its own PID namespace, \
                 or the process it inherited the lock from)"
            ),
            _ => String::new(),
        };
        match &found.identity {
            Some(id) => println!("{}: {status}{other}; identity: {id}", path.display()),
            None => println!("{}: {status}{other}", path.display()),
        }
    }
    Ok(exit_for(status))
}
