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
    use std::io::Write;
    // Rows are printed as they are inspected, not collected: a directory of
    // any size is listed in little memory.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // A closed pipe (`pidguard list DIR | head`) just ends the output.
    let mut closed = false;
    if !args.json {
        closed |= writeln!(
            out,
            "{:<24} {:>8} {:<9} {:<11} {:>8}  COMMAND",
            "NAME", "PID", "STATE", "IDENTITY", "AGE"
        )
        .is_err();
    }
    registry::for_each(&args.dir, |e| {
        if closed {
            return;
        }
        let line = match (&e, args.json) {
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
                    .as_deref()
                    .or(r.problem.as_deref())
                    .unwrap_or_default(),
            ),
            (Entry::Skipped { name, reason }, false) => {
                format!("{name:<24} {:>8} skipped ({})", "-", reason.name())
            }
        };
        closed |= writeln!(out, "{line}").is_err();
    })?;
    let _ = out.flush();
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
