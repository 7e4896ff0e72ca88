//! What pidguard prints: one JSON object per command (`--json`), bytes that
//! may not be UTF-8 encoded losslessly in it, and text escaped for a
//! terminal.
//!
//! Paths, file names and command lines are bytes on Unix, not text. In JSON
//! such a value is a string when the bytes are valid UTF-8 (JSON escapes
//! control characters itself). When they are not, the string shows them with
//! each invalid byte written as `\xHH`, and a second field, the key with
//! `_hex` appended, holds every byte of the value as lowercase hex: the
//! lossless form (`bytes.fromhex(obj["path_hex"])` in Python). The `_hex`
//! field is present only then, so `"path" in obj and "path_hex" not in obj`
//! means the string is exact. docs/JSON.md documents this for every command.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use pidguard::{Identity, Outcome, Pid, Report};
use serde_json::{Map, Value};

/// Whether a JSON object went to standard output.
static PRINTED: AtomicBool = AtomicBool::new(false);

/// Prints one JSON object (a line) on standard output.
pub fn print_json(v: &Value) {
    PRINTED.store(true, Ordering::Relaxed);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
}

/// Whether [`print_json`] (or a streamed object, see [`mark_printed`]) has
/// printed an object.
pub fn printed() -> bool {
    PRINTED.load(Ordering::Relaxed)
}

/// Records that a command streamed its object itself (`list`).
pub fn mark_printed() {
    PRINTED.store(true, Ordering::Relaxed);
}

/// A JSON object being built; bytes go in losslessly.
#[derive(Debug, Default, Clone)]
pub struct Obj(Map<String, Value>);

impl Obj {
    pub fn new() -> Obj {
        Obj::default()
    }

    /// Any JSON value (numbers, booleans, words).
    pub fn set(mut self, key: &str, v: impl Into<Value>) -> Obj {
        self.0.insert(key.to_owned(), v.into());
        self
    }

    /// Bytes that may not be UTF-8: see the module's documentation.
    pub fn bytes(mut self, key: &str, b: &[u8]) -> Obj {
        match std::str::from_utf8(b) {
            Ok(s) => {
                self.0.insert(key.to_owned(), Value::from(s));
            }
            Err(_) => {
                self.0
                    .insert(key.to_owned(), Value::from(escape_invalid(b)));
                self.0.insert(format!("{key}_hex"), Value::from(hex(b)));
            }
        }
        self
    }

    /// Optional bytes: `null` when absent.
    pub fn opt_bytes(self, key: &str, b: Option<&[u8]>) -> Obj {
        match b {
            Some(b) => self.bytes(key, b),
            None => self.set(key, Value::Null),
        }
    }

    /// A path, losslessly.
    pub fn path(self, key: &str, p: &Path) -> Obj {
        self.bytes(key, p.as_os_str().as_encoded_bytes())
    }

    pub fn value(self) -> Value {
        Value::Object(self.0)
    }
}

/// The beginning of an object streamed in pieces (`list`): `head`'s keys,
/// then `key` and the opening of its array, whose elements the caller
/// writes one by one, separated by commas; [`stream_close`] ends it.
pub fn stream_open(head: Obj, key: &str) -> String {
    let head = head.value().to_string();
    // `{…}` without its closing brace (nothing of it when empty).
    let keys = &head[1..head.len() - 1];
    let sep = if keys.is_empty() { "" } else { "," };
    format!("{{{keys}{sep}{}:[", Value::from(key))
}

/// The end of an object begun by [`stream_open`]: the array closed, then
/// the keys of `tail` (an object: `{}`, or a failure's `error`, `exit` and
/// `path` when the listing failed part-way).
pub fn stream_close(tail: &Value) -> String {
    let tail = tail.to_string();
    match tail.strip_prefix('{').filter(|t| *t != "}") {
        Some(keys) => format!("],{keys}"),
        None => "]}".to_owned(),
    }
}

/// Lowercase hex of every byte.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for byte in b {
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// The bytes as text with every byte that is not part of valid UTF-8
/// written as `\xHH` (not reversible on its own: see [`Obj::bytes`]).
pub fn escape_invalid(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(s, "\\x{byte:02X}");
        }
    }
    s
}

/// The bytes as one line of terminal-safe text: a backslash becomes `\\`,
/// newline, carriage return and tab become `\n`, `\r`, `\t`, every other
/// control character `\xHH` (C0 and DEL) or `\u{HHHH}` (C1, U+0080 to
/// U+009F), and every byte that is not valid UTF-8 `\xHH`. Reversible: no
/// two inputs give the same text, so a file name cannot pass for another
/// row or column.
pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(s, "\\x{:02X}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(s, "\\u{{{:04X}}}", c as u32);
                }
                c => s.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(s, "\\x{byte:02X}");
        }
    }
    s
}

// The words shared by the commands' reports: identity, stale kinds, and
// the outcome of `stop`, `signal` and `wait`.

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
        print_json(&report_json(path, report).value());
        return;
    }
    let p = escape(path.as_os_str().as_encoded_bytes());
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
        // (`wait` on a file locked with no PID in it waits for the lock.)
        Outcome::StillRunning if report.pid.is_none() => {
            println!("{p}: still locked (no PID in the file): its holder is still running{file}")
        }
        Outcome::StillRunning => println!("{p}: PID {pid}{id} is still running{file}"),
        Outcome::Signalled => println!("{p}: {did} PID {pid}{id}"),
        _ => println!("{p}: {report:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a script does to get the bytes back: the `_hex` field when
    /// present, else the string.
    fn decode(v: &Value, key: &str) -> Vec<u8> {
        match v.get(format!("{key}_hex")) {
            Some(Value::String(h)) => (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect(),
            _ => v[key].as_str().unwrap().as_bytes().to_vec(),
        }
    }

    /// [`escape`] undone, to prove it loses nothing.
    fn unescape(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\\' {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            match chars.next().unwrap() {
                '\\' => out.push(b'\\'),
                'n' => out.push(b'\n'),
                'r' => out.push(b'\r'),
                't' => out.push(b'\t'),
                'x' => {
                    let h: String = chars.by_ref().take(2).collect();
                    out.push(u8::from_str_radix(&h, 16).unwrap());
                }
                'u' => {
                    assert_eq!(chars.next(), Some('{'));
                    let h: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    let c = char::from_u32(u32::from_str_radix(&h, 16).unwrap()).unwrap();
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                other => panic!("unknown escape \\{other}"),
            }
        }
        out
    }

    #[test]
    fn examples() {
        let v = Obj::new().bytes("path", b"/run/a\xffb.pid").value();
        assert_eq!(v["path"], "/run/a\\xFFb.pid");
        assert_eq!(v["path_hex"], "2f72756e2f61ff622e706964");
        let v = Obj::new().bytes("path", "/run/é\n.pid".as_bytes()).value();
        assert_eq!(v["path"], "/run/é\n.pid");
        assert!(v.get("path_hex").is_none());
        assert_eq!(
            escape(b"a\nsshd 1 running\t\\\x1b[31m\xc2\x85\xff"),
            "a\\nsshd 1 running\\t\\\\\\x1B[31m\\u{0085}\\xFF"
        );
        // A streamed object with nothing before its array, or an error
        // after it.
        let open = stream_open(Obj::new(), "entries");
        assert_eq!(
            open.clone() + &stream_close(&Obj::new().value()),
            r#"{"entries":[]}"#
        );
        let f = crate::exit::Failure::new(crate::exit::Exit::IoErr, "cannot read");
        assert_eq!(
            open + "1" + &stream_close(&f.to_json()),
            r#"{"entries":[1],"error":"cannot read","exit":74}"#
        );
    }

    /// The documented text form of bytes that are not UTF-8, built another
    /// way than [`escape_invalid`] (from `from_utf8`'s error positions): the
    /// valid text as it is, each byte of an invalid sequence as `\xHH`.
    fn documented_text(mut b: &[u8]) -> String {
        let mut s = String::new();
        loop {
            match std::str::from_utf8(b) {
                Ok(valid) => return s + valid,
                Err(e) => {
                    let (valid, rest) = b.split_at(e.valid_up_to());
                    s.push_str(std::str::from_utf8(valid).unwrap());
                    let bad = e.error_len().unwrap_or(rest.len());
                    for byte in &rest[..bad] {
                        s.push_str(&format!("\\x{byte:02X}"));
                    }
                    b = &rest[bad..];
                }
            }
        }
    }

    /// Mostly valid UTF-8 (ASCII, multi-byte characters, backslashes and
    /// text that looks like an escape) with a few bytes of 0x80 to 0xff
    /// put in anywhere, also inside a character: where mistakes hide.
    fn mostly_text() -> impl Strategy<Value = Vec<u8>> {
        (
            "[a-z0-9x\\\\\n é€😀]{0,24}",
            proptest::collection::vec((any::<proptest::sample::Index>(), 0x80u8..=0xff), 0..4),
        )
            .prop_map(|(text, injected)| {
                let mut b = text.into_bytes();
                for (at, byte) in injected {
                    b.insert(at.index(b.len() + 1), byte);
                }
                b
            })
    }

    fn any_or_mostly_text() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![proptest::collection::vec(any::<u8>(), 0..64), mostly_text()]
    }

    proptest! {
        /// Any bytes, and mostly-valid text with invalid bytes: the JSON
        /// text parses back and the bytes come back exactly; valid UTF-8
        /// is the plain string, without `_hex`; otherwise the string is
        /// the documented text form and `_hex` every byte in lowercase hex.
        #[test]
        fn json_encoding_of_any_bytes_is_lossless(b in any_or_mostly_text()) {
            let text = Obj::new().bytes("name", &b).value().to_string();
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(decode(&back, "name"), b.clone());
            match std::str::from_utf8(&b) {
                Ok(s) => {
                    prop_assert_eq!(back["name"].as_str(), Some(s));
                    prop_assert!(back.get("name_hex").is_none());
                }
                Err(_) => {
                    let documented = documented_text(&b);
                    prop_assert_eq!(back["name"].as_str(), Some(documented.as_str()));
                    let lower: String = b.iter().map(|x| format!("{x:02x}")).collect();
                    prop_assert_eq!(back["name_hex"].as_str(), Some(lower.as_str()));
                }
            }
        }

        /// `list`'s streamed object (its beginning, the entries written one
        /// by one, its end, with or without a failure's keys) is the object
        /// built in one piece, for any directory and entry names.
        #[test]
        fn the_streamed_list_object_is_the_whole_object(
            dir in any_or_mostly_text(),
            names in proptest::collection::vec(any_or_mostly_text(), 0..4),
            failed in proptest::option::of((".{0,16}", any::<u8>(), any_or_mostly_text())),
        ) {
            let entries: Vec<Value> = names
                .iter()
                .enumerate()
                .map(|(i, n)| Obj::new().bytes("name", n).set("pid", i).value())
                .collect();
            let tail = match &failed {
                // The keys of a failure's object (Failure::to_json).
                Some((error, exit, path)) => Obj::new()
                    .set("error", error.as_str())
                    .set("exit", *exit)
                    .bytes("path", path),
                None => Obj::new(),
            }
            .value();
            let mut streamed = stream_open(Obj::new().bytes("dir", &dir), "entries");
            let rows: Vec<String> = entries.iter().map(Value::to_string).collect();
            streamed.push_str(&rows.join(","));
            streamed.push_str(&stream_close(&tail));
            let back: Value = serde_json::from_str(&streamed)
                .map_err(|e| TestCaseError::fail(format!("{e}: {streamed}")))?;
            let mut whole = Obj::new().bytes("dir", &dir).set("entries", entries).value();
            for (k, v) in tail.as_object().unwrap() {
                whole[k] = v.clone();
            }
            prop_assert_eq!(back, whole);
        }

        /// Mostly-text inputs (where mistakes hide) as well as any bytes:
        /// the escaped text has no control character and undoes to the
        /// input.
        #[test]
        fn escaped_text_is_one_safe_line_and_reversible(
            b in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                "[a-z\\\\\n\r\t\u{1b}\u{7f}\u{85}é ]{0,32}".prop_map(String::into_bytes),
            ]
        ) {
            let e = escape(&b);
            prop_assert!(!e.chars().any(char::is_control), "{:?}", e);
            prop_assert_eq!(unescape(&e), b);
        }
    }
}
