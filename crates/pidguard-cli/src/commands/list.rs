//! `pidguard list DIR`: one row per PID file.

use std::io::Write;
use std::path::Path;

use pidguard::registry::{self, Entry, Row};

use crate::cli::DirArgs;
use crate::exit::{Exit, Failure};
use crate::output::{escape, mark_printed, stream_close, stream_open, Obj};
use crate::output::{stale_kind, with_identity};

/// An entry's name relative to the listed directory, as bytes: the path
/// without `dir/` (and, for a row, without `.pid`). Lossless, unlike the
/// library's display name.
pub fn rel_name<'a>(dir: &Path, path: &'a Path, strip_pid: bool) -> &'a [u8] {
    let rel = path
        .strip_prefix(dir)
        .unwrap_or(path)
        .as_os_str()
        .as_encoded_bytes();
    match strip_pid {
        true => rel.strip_suffix(b".pid").unwrap_or(rel),
        false => rel,
    }
}

/// A row as JSON.
pub fn row_json(dir: &Path, r: &Row) -> Obj {
    let obj = Obj::new()
        .bytes("name", rel_name(dir, &r.path, true))
        .path("path", &r.path)
        .set("state", r.state.name())
        .set("pid", r.pid.map(|p| p.get()));
    let obj = with_identity(obj, r.identity.as_ref())
        .set("evidence", r.decided_by.map(|d| d.name()))
        .set("locked", r.locked)
        .set("age_seconds", r.age.map(|a| a.as_secs_f64()))
        .opt_bytes("command", r.command.as_ref().map(|c| c.as_encoded_bytes()))
        .set("problem", r.problem.as_ref().map(|e| e.to_string()));
    match r.state {
        registry::State::Stale => obj.set("stale_kind", stale_kind(r.identity.as_ref())),
        _ => obj,
    }
}

/// A skipped entry as JSON.
pub fn skipped_json(dir: &Path, path: &Path, reason: registry::Skip) -> Obj {
    Obj::new()
        .bytes("name", rel_name(dir, path, false))
        .path("path", path)
        .set("skipped", reason.name())
}

/// The evidence that decided a row, in one word for the table: `kernel`
/// (kernel identity), `lock` or `checks` (consistent checks).
fn evidence_word(d: pidguard::DecidedBy) -> &'static str {
    match d {
        pidguard::DecidedBy::KernelIdentity => "kernel",
        pidguard::DecidedBy::Lock => "lock",
        _ => "checks",
    }
}

pub fn run(args: DirArgs) -> Result<Exit, Failure> {
    // Rows are printed as they are inspected, not collected: a directory of
    // any size is listed in little memory. With --json the one object is
    // streamed too: `{"dir": …, "entries": [` row, row… `]}`.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // A closed pipe (`pidguard list DIR | head`) just ends the output.
    let mut closed = false;
    // The header (or the object's opening) goes out with the first row, or
    // at the end of an empty listing, not before a directory that is
    // refused (whose error is then the one object).
    let mut header = true;
    let json = args.json;
    let dir = args.dir.as_path();
    let mut print_header = |out: &mut dyn Write| {
        if !std::mem::take(&mut header) {
            return Ok(());
        }
        if json {
            mark_printed();
            out.write_all(stream_open(Obj::new().path("dir", dir), "entries").as_bytes())
        } else {
            writeln!(
                out,
                "{:<24} {:>8} {:<9} {:<11} {:<8} {:>8}  COMMAND",
                "NAME", "PID", "STATE", "IDENTITY", "EVIDENCE", "AGE"
            )
        }
    };
    let mut first = true;
    let listed = registry::for_each_within(dir, args.depth(), |e| {
        closed |= print_header(&mut out).is_err();
        if closed {
            return;
        }
        let sep = if std::mem::take(&mut first) { "" } else { "," };
        // Written straight into the buffer: no string per row.
        let written = match (&e, json) {
            (Entry::File(r), true) => write!(out, "{sep}{}", row_json(dir, r).value()),
            (Entry::Skipped { path, reason, .. }, true) => {
                write!(out, "{sep}{}", skipped_json(dir, path, *reason).value())
            }
            (Entry::File(r), false) => writeln!(
                out,
                "{:<24} {:>8} {:<9} {:<11} {:<8} {:>8}  {}",
                escape(rel_name(dir, &r.path, true)),
                Dash(r.pid),
                r.state.name(),
                r.identity_label().unwrap_or("-"),
                r.decided_by.map(evidence_word).unwrap_or("-"),
                Dash(r.age.map(HumanAge)),
                match (&r.command, &r.problem) {
                    (Some(c), _) => escape(c.as_encoded_bytes()),
                    (None, Some(p)) => escape(p.to_string().as_bytes()),
                    (None, None) => String::new(),
                }
            ),
            (Entry::Skipped { path, reason, .. }, false) => {
                let name = escape(rel_name(dir, path, false));
                writeln!(out, "{name:<24} {:>8} skipped ({})", "-", reason.name())
            }
        };
        closed |= written.is_err();
    });
    match listed {
        Ok(()) => {
            let _ = print_header(&mut out);
            if json {
                let _ = writeln!(out, "{}", stream_close(&Obj::new().value()));
            }
            let _ = out.flush();
            Ok(Exit::Success)
        }
        // Refused before any entry: the error is the one object.
        Err(e) if header => Err(e.into()),
        Err(e) => {
            let f = Failure::from(e);
            if json {
                // Closes the object begun, with the error in it.
                let _ = writeln!(out, "{}", stream_close(&f.to_json()));
            }
            let _ = out.flush();
            eprintln!("pidguard: {}", f.message);
            Ok(f.exit)
        }
    }
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
