//! docs/JSON.md against real output: every key each command prints is
//! documented for its object, with its type and value; every documented key
//! is printed by some run below.
#![cfg(unix)]

use testkit::*;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One documented key: its allowed types and, when closed, its values.
#[derive(Debug)]
struct Key {
    types: Vec<String>,
    values: Option<Vec<String>>,
    /// Marked "(not produced by the test: …)": checked when printed, not
    /// required to be.
    untested: bool,
}

/// The `### name` sections of docs/JSON.md and their tables.
fn documented() -> BTreeMap<String, BTreeMap<String, Key>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/JSON.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, Key>> = BTreeMap::new();
    let mut section = None;
    for line in doc.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            section = Some(name.trim().to_owned());
            out.entry(name.trim().to_owned()).or_default();
            continue;
        }
        let Some(name) = &section else { continue };
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `key` | type | meaning |
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let key = cells[1].trim_matches('`').to_owned();
        let types = cells[2]
            .split(" or ")
            .map(|t| t.trim().to_owned())
            .collect();
        let values = cells[3].strip_prefix("one of ").map(|mut rest| {
            let mut v = Vec::new();
            while let Some(r) = rest.strip_prefix('`') {
                let end = r.find('`').unwrap();
                v.push(r[..end].to_owned());
                rest = &r[end + 1..];
                match rest.strip_prefix(", ") {
                    Some(r) => rest = r,
                    None => break,
                }
            }
            v
        });
        let untested = cells[3].contains("(not produced by the test");
        out.get_mut(name).unwrap().insert(
            key,
            Key {
                types,
                values,
                untested,
            },
        );
    }
    out
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `obj` against `section`, recursing into list entries and sweep
/// actions; records the keys seen.
fn check(
    doc: &BTreeMap<String, BTreeMap<String, Key>>,
    seen: &mut BTreeSet<(String, String)>,
    section: &str,
    obj: &Value,
) {
    let keys = doc
        .get(section)
        .unwrap_or_else(|| panic!("docs/JSON.md has no section {section:?}"));
    let map = obj
        .as_object()
        .unwrap_or_else(|| panic!("{section}: not an object: {obj}"));
    for (k, v) in map {
        if let Some(base) = k.strip_suffix("_hex") {
            let key = keys
                .get(base)
                .unwrap_or_else(|| panic!("{section}: {k} without {base}"));
            assert!(
                key.types.iter().any(|t| t == "bytes"),
                "{section}: {k}: {base} is not bytes"
            );
            let h = v.as_str().unwrap();
            assert!(
                h.len() % 2 == 0 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                "{k}: {h}"
            );
            continue;
        }
        let key = keys.get(k).unwrap_or_else(|| {
            panic!("{section}: key {k:?} is not documented in docs/JSON.md: {obj}")
        });
        let t = type_of(v);
        let ok = key
            .types
            .iter()
            .any(|d| d == t || (d == "bytes" && t == "string"));
        assert!(
            ok,
            "{section}: {k} is {t}, documented {:?}: {obj}",
            key.types
        );
        if let (Some(values), Value::String(s)) = (&key.values, v) {
            assert!(
                values.contains(s),
                "{section}: {k} = {s:?}, documented {values:?}"
            );
        }
        seen.insert((section.to_owned(), k.clone()));
        match (section, k.as_str()) {
            ("list", "entries") => {
                for e in v.as_array().unwrap() {
                    let kind = if e.get("skipped").is_some() {
                        "list skipped"
                    } else {
                        "list file"
                    };
                    check(doc, seen, kind, e);
                }
            }
            ("sweep", "actions") => {
                for a in v.as_array().unwrap() {
                    check(doc, seen, "sweep action", a);
                }
            }
            _ => {}
        }
    }
}

/// `pidguard ARGS…`: its one JSON object.
fn json_of(args: &[&OsStr]) -> Value {
    let out = pidguard().args(args).output().unwrap();
    let s = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(s.lines().count(), 1, "{args:?}: {}", text(&out));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)))
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn the_documented_schema_matches_real_output() {
    let doc = documented();
    let mut seen = BTreeSet::new();
    let dir = tmp();
    let d = dir.path();
    let mut runs: Vec<(&str, Vec<&OsStr>)> = Vec::new();

    let target = sleeper();
    let running = d.join("running.pid");
    write_pidfile(&running, &format!("{}\n", target.pid()));
    let stale = d.join("stale.pid");
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    write_pidfile(&stale, &format!("{}\n", gone.id()));
    let garbage = d.join("garbage.pid");
    write_pidfile(&garbage, "banana\n");
    let starting = d.join("starting.pid");
    // flock(1) holding `file`'s lock (--no-fork: its sleep holds it).
    let flock = |file: &Path| {
        Owned::spawn(
            Command::new("flock")
                .arg("--no-fork")
                .arg(file)
                .args(["sleep", "30"]),
        )
    };
    let _flock = flock(&starting);
    wait_for("flock(1) to hold the file", || {
        matches!(pidguard::status(&starting), pidguard::Status::Starting)
    });
    // Locked by flock(1), naming a live process that does not hold the
    // lock: the holder (flock) is found and named, besides the file's PID.
    let held = d.join("held.pid");
    write_pidfile(&held, &format!("{}\n", target.pid()));
    let _held_lock = flock(&held);
    wait_for("flock(1) to hold the second file", || {
        matches!(
            pidguard::status(&held),
            pidguard::Status::Running { locked: true, .. }
        )
    });
    let odd = d.join(OsStr::from_bytes(b"odd\xff.pid"));
    write_pidfile(&odd, &format!("{}\n", target.pid()));
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink(&running, d.join("link.pid")).unwrap();

    let none = d.join("none.pid");
    // `pidguard COMMAND --json -p FILE`, for each file: its documented kind.
    let per_file: [(&str, &str, Vec<&PathBuf>); 4] = [
        (
            "status",
            "status",
            vec![&running, &stale, &garbage, &starting, &odd, &held],
        ),
        ("status", "pid", vec![&running]),
        (
            "pid failure",
            "pid",
            vec![&stale, &garbage, &starting, &none],
        ),
        ("path", "path", vec![&running]),
    ];
    for (kind, command, files) in per_file {
        for p in files {
            runs.push((
                kind,
                vec![os(command), os("--json"), os("-p"), p.as_os_str()],
            ));
        }
    }
    runs.push((
        "stop, wait",
        vec![
            os("wait"),
            os("--json"),
            os("--timeout"),
            os("100ms"),
            os("-p"),
            running.as_os_str(),
        ],
    ));
    runs.push((
        "signal",
        vec![
            os("signal"),
            os("--json"),
            os("-p"),
            running.as_os_str(),
            os("0"),
        ],
    ));
    runs.push((
        "signal",
        vec![
            os("signal"),
            os("--json"),
            os("-p"),
            running.as_os_str(),
            os("CONT"),
        ],
    ));
    runs.push((
        "signal",
        vec![
            os("signal"),
            os("--json"),
            os("-p"),
            stale.as_os_str(),
            os("HUP"),
        ],
    ));
    runs.push((
        "error",
        vec![os("stop"), os("--json"), os("-p"), garbage.as_os_str()],
    ));
    runs.push((
        "error",
        vec![
            os("signal"),
            os("--json"),
            os("-p"),
            running.as_os_str(),
            os("NOPE"),
        ],
    ));
    runs.push(("list", vec![os("list"), os("--json"), d.as_os_str()]));
    runs.push((
        "sweep",
        vec![os("sweep"), os("--json"), os("--dry-run"), d.as_os_str()],
    ));
    let ok = d.join("ok.pid");
    runs.push((
        "run",
        vec![
            os("run"),
            os("--json"),
            os("-p"),
            ok.as_os_str(),
            os("--"),
            os("true"),
        ],
    ));
    for (section, args) in &runs {
        check(&doc, &mut seen, section, &json_of(args));
    }

    // A daemon: started, ensured, then stopped (and a stale file stopped).
    let daemon = d.join("daemon.pid");
    let dp = daemon.as_os_str();
    let v = json_of(&[
        os("run"),
        os("--daemon"),
        os("--json"),
        os("-p"),
        dp,
        os("--"),
        os("sleep"),
        os("30"),
    ]);
    check(&doc, &mut seen, "run --daemon", &v);
    let v = json_of(&[
        os("ensure"),
        os("--json"),
        os("-p"),
        dp,
        os("--"),
        os("sleep"),
        os("30"),
    ]);
    check(&doc, &mut seen, "ensure", &v);
    assert_eq!(v["started"], false, "{v}");
    for p in [dp, stale.as_os_str(), running.as_os_str()] {
        let v = json_of(&[
            os("stop"),
            os("--json"),
            os("--timeout"),
            os("10"),
            os("-p"),
            p,
        ]);
        check(&doc, &mut seen, "stop, wait", &v);
    }
    assert!(!alive(target.pid()));

    // The identity words are the library's.
    let words = doc["status"]["identity"].values.clone().unwrap();
    assert_eq!(words, pidguard::Identity::NAMES.to_vec());

    // Every documented key was printed by some run (the etcd section is
    // not run here).
    for (section, keys) in &doc {
        for (k, key) in keys {
            if key.untested {
                continue;
            }
            assert!(
                seen.contains(&(section.clone(), k.clone())),
                "docs/JSON.md documents {section}: {k}, which no run printed"
            );
        }
    }
}
