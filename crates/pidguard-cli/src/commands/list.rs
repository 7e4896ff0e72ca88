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
    // The header goes out with the first row (or at the end of an empty
    // listing), not before a directory that is refused.
    let mut header = !args.json;
    let mut print_header = |out: &mut dyn Write| {
        if std::mem::take(&mut header) {
            writeln!(
                out,
                "{:<24} {:>8} {:<9} {:<11} {:>8}  COMMAND",
                "NAME", "PID", "STATE", "IDENTITY", "AGE"
            )
            .is_err()
        } else {
            false
        }
    };
    registry::for_each(&args.dir, |e| {
        closed |= print_header(&mut out);
        if closed {
            return;
        }
        // Written straight into the buffer: no string per row.
        let written = match (&e, args.json) {
            (Entry::File(r), true) => writeln!(out, "{}", row_json(r)),
            (Entry::Skipped { name, reason }, true) => {
                writeln!(out, "{}", json!({ "name": name, "skipped": reason.name() }))
            }
            (Entry::File(r), false) => writeln!(
                out,
                "{:<24} {:>8} {:<9} {:<11} {:>8}  {}",
                r.name,
                Dash(r.pid),
                r.state.name(),
                r.identity_label().unwrap_or("-"),
                Dash(r.age.map(HumanAge)),
                r.command
                    .as_deref()
                    .or(r.problem.as_deref())
                    .unwrap_or_default(),
            ),
            (Entry::Skipped { name, reason }, false) => {
                writeln!(out, "{name:<24} {:>8} skipped ({})", "-", reason.name())
            }
        };
        closed |= written.is_err();
    })?;
    print_header(&mut out);
    let _ = out.flush();
    Ok(Exit::Success)
}

/// A value, or "-" when there is none, padded as the column asks.
struct Dash<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Dash<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::io::Write;
        let Some(v) = &self.0 else {
            return f.pad("-");
        };
        // Formatted into a stack buffer first, then padded to the column.
        let mut buf = [0u8; 32];
        let n = {
            let mut w = &mut buf[..];
            if write!(w, "{v}").is_err() {
                return f.pad(&v.to_string());
            }
            32 - w.len()
        };
        f.pad(std::str::from_utf8(&buf[..n]).unwrap_or("?"))
    }
}

/// An age as the list shows it: 42s, 5m, 3h, 2d.
struct HumanAge(std::time::Duration);

impl std::fmt::Display for HumanAge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs();
        match s {
            0..=59 => write!(f, "{s}s"),
            60..=3599 => write!(f, "{}m", s / 60),
            3600..=86399 => write!(f, "{}h", s / 3600),
            _ => write!(f, "{}d", s / 86400),
        }
    }
}
