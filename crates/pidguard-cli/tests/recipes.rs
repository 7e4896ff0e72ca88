//! The command lines in docs/recipes/*.md, run as documented (with a
//! temporary PID file and a harmless command substituted).
#![cfg(unix)]

use testkit::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The fenced block right after `<!-- recipe-test: NAME … -->` in the doc.
fn block(doc: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/recipes")
        .join(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let marker = format!("<!-- recipe-test: {name}");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("{doc}: no {marker}"));
    let rest = &text[at..];
    let open = rest.find("```").unwrap();
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let end = body.find("```").unwrap();
    body[..end].to_owned()
}

/// The pidguard invocation in `line` (from the `pidguard` word on) with the
/// file after `-p` replaced by `pidfile` and everything after `--` by
/// `command`.
fn pidguard_args(line: &str, pidfile: &Path, command: &[&str]) -> Vec<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| w.ends_with("/pidguard") || *w == "pidguard")
        .unwrap_or_else(|| panic!("no pidguard in {line:?}"));
    let mut out = Vec::new();
    let mut it = words[start + 1..].iter();
    while let Some(w) = it.next() {
        match *w {
            "-p" => {
                it.next().expect("-p PATH");
                out.push("-p".to_owned());
                out.push(pidfile.display().to_string());
            }
            "--" => {
                out.push("--".to_owned());
                out.extend(command.iter().map(|s| s.to_string()));
                return out;
            }
            // Output redirections and shell operators end the command.
            w if w.starts_with('>') || w == "||" || w.starts_with("2>") => return out,
            w => out.push(w.to_owned()),
        }
    }
    out
}

/// Runs `pidguard stop` on `pidfile` and makes sure `pid` is gone.
fn stop_and_check(pidfile: &Path, pid: i32) {
    let out = pidguard()
        .args(["stop", "--timeout", "5", "-p"])
        .arg(pidfile)
        .output()
        .unwrap();
    if alive(pid) {
        signal(pid, "KILL");
    }
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the daemon to exit", || !alive(pid));
}

#[test]
fn systemd_exec_start_starts_a_daemon_named_by_the_file() {
    let unit = block("systemd.md", "systemd-unit");
    assert!(unit.contains("Type=forking"), "{unit}");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    let pidfile_line = unit
        .lines()
        .find_map(|l| l.strip_prefix("PIDFile="))
        .expect("PIDFile=");
    assert!(
        line.contains(&format!("-p {pidfile_line} ")),
        "PIDFile= and -p differ"
    );

    let dir = tmp();
    let pidfile = dir.path().join("app.pid");
    let mut args = pidguard_args(line, &pidfile, &["sleep", "30"]);
    // The unit's log file is replaced by one in the temporary directory.
    for a in args.iter_mut() {
        if a.starts_with("/var/log/") {
            *a = dir.path().join("app.err").display().to_string();
        }
    }
    assert!(args.contains(&"--daemon".to_owned()), "{args:?}");
    let out = pidguard().args(&args).output().unwrap();
    assert!(out.status.success(), "pidguard {args:?}: {}", text(&out));
    // Returned only once the file names the running daemon, which holds the lock.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let running = wait_running_locked(&pidfile);
    assert_eq!(pid, running);
    assert!(alive(pid));
    stop_and_check(&pidfile, pid);
    assert!(!pidfile.exists());
}

#[test]
fn logrotate_postrotate_sends_hup_to_the_owner() {
    let conf = block("logrotate.md", "logrotate");
    let lines: Vec<&str> = conf.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| *l == "postrotate").unwrap();
    let line = lines[at + 1];
    assert_eq!(lines[at + 2], "endscript");

    let dir = tmp();
    let mark = dir.path().join("hup");
    let target = Owned::spawn(
        Command::new("sh")
            .arg("-c")
            .arg("trap 'echo hup > \"$0\"' HUP; echo ready > \"$0.ready\"; while :; do sleep 0.05; done")
            .arg(&mark),
    );
    let ready = dir.path().join("hup.ready");
    wait_for("the trap to be installed", || ready.exists());
    let pidfile = dir.path().join("app.pid");
    write_pidfile(&pidfile, &format!("{}\n", target.pid()));

    // The postrotate line as logrotate runs it (sh -c), with the temporary
    // file and the binary under test.
    let script = line
        .replace("/run/app.pid", &pidfile.display().to_string())
        .replace("/usr/local/bin/pidguard", &bin().display().to_string());
    assert_ne!(script, line, "the documented paths changed: {line}");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", text(&out));
    wait_for("the HUP to arrive", || mark.exists());
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "hup\n");
    assert!(alive(target.pid()), "HUP was trapped, the process lives on");

    // Without --… || true the same command reports a stale file (exit 1).
    drop(target);
    let out = pidguard()
        .args(pidguard_args(line, &pidfile, &[]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn cron_second_overlapping_run_exits_75_at_once() {
    let crontab = block("cron.md", "cron");
    let line = crontab.lines().find(|l| l.contains("pidguard")).unwrap();
    let dir = tmp();
    let pidfile = dir.path().join("job.pid");
    let args = pidguard_args(line, &pidfile, &["sleep", "30"]);
    assert_eq!(args[0], "run", "{args:?}");

    let mut first = Owned::spawn(pidguard().args(&args));
    let job = wait_running_locked(&pidfile);
    assert_ne!(job, first.pid(), "the file names the job, not pidguard");

    let started = Instant::now();
    let out = pidguard().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(3), "not at once");
    assert!(text(&out).contains(&job.to_string()), "{}", text(&out));
    assert!(alive(job));

    // TERM to the supervisor is forwarded to the job; both exit, the file goes.
    signal(first.pid(), "TERM");
    wait_for("the job to exit", || !alive(job));
    let status = first.0.wait().unwrap();
    assert!(!status.success());
    assert!(!pidfile.exists());
}
