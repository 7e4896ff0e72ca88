//! `pidguard status`: one line about the file's state.

use pidguard::Status;
use serde_json::json;

use crate::cli::StatusArgs;
use crate::commands::resolved_path;
use crate::exit::{Exit, Failure};

/// The exit code `status` uses for a state.
pub fn exit_for(status: &Status) -> Exit {
    match status {
        Status::Running { .. } | Status::Starting => Exit::Success,
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
        println!("{v}");
    } else {
        match &found.identity {
            Some(id) => println!("{}: {status}; identity: {id}", path.display()),
            None => println!("{}: {status}", path.display()),
        }
    }
    Ok(exit_for(status))
}
