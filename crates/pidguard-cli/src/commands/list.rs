//! `pidguard list DIR`: one row per PID file.

use pidguard::registry::{self, Entry, Row};
use serde_json::json;

use crate::cli::DirArgs;
use crate::exit::{Exit, Failure};

/// A row as JSON.
pub fn row_json(r: &Row) -> serde_json::Value {
    json!({
        "name": r.name,
        "path": r.path,
        "state": r.state.name(),
        "pid": r.pid.map(|p| p.get()),
        "identity": r.identity_label(),
        "identity_detail": r.identity.as_ref().map(|i| i.to_string()),
        "locked": r.locked,
        "age_seconds": r.age.map(|a| a.as_secs_f64()),
        "command": r.command,
        "problem": r.problem,
    })
}

pub fn run(args: DirArgs) -> Result<Exit, Failure> {
    let entries = registry::list(&args.dir)?;
    let mut out = String::new();
    if !args.json {
        out.push_str(&format!(
            "{:<24} {:>8} {:<9} {:<11} {:>8}  {}\n",
            "NAME", "PID", "STATE", "IDENTITY", "AGE", "COMMAND"
        ));
    }
    for e in &entries {
        let line = match (e, args.json) {
            (Entry::File(r), true) => row_json(r).to_string(),
            (Entry::Skipped { name, reason }, true) => {
                json!({ "name": name, "skipped": reason.name() }).to_string()
            }
            (Entry::File(r), false) => format!(
                "{:<24} {:>8} {:<9} {:<11} {:>8}  {}",
                r.name,
                r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                r.state.name(),
                r.identity_label().unwrap_or("-"),
                r.age.map(human_age).unwrap_or_else(|| "-".into()),
                r.command
                    .clone()
                    .or_else(|| r.problem.clone())
                    .unwrap_or_default(),
            ),
            (Entry::Skipped { name, reason }, false) => {
                format!("{name:<24} {:>8} skipped ({})", "-", reason.name())
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    print!("{out}");
    Ok(Exit::Success)
}

fn human_age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}
