//! Races: 64 processes released together at one barrier contend for one PID
//! file, round after round, mixing the library (`Pidfile::acquire`), the CLI
//! (`pidguard run -p P -- sh …`) and `flock -n P …`.
//!
//! Each winner appends `enter` and `exit` records to a shared log opened
//! with `O_APPEND` (a short pause between them) and checks, at both ends,
//! that the PID file is still there and is its own (pidguard holders: the
//! file names their PID; flock(1) holders: the path names the inode they
//! locked). The log must show, round after round, exactly one holder at a
//! time, at least one holder per round, and no `lost` record.
//!
//! This module also hosts the helper-process entry point of the hardening
//! binary ([`helper`], `helper_role`): a scenario that needs another process
//! running library code re-executes this test binary in a role.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pidguard::{ErrorKind, Pidfile};

use crate::summary;
use testkit::{bin, tmp, var, Owned};

/// A command re-executing this test binary as a helper in `role` (only the
/// `helper_role` entry point runs; testkit's helper processes). Its
/// standard streams are the caller's to set.
pub fn helper(role: &str) -> Command {
    testkit::helper_command("races::helper_role", role)
}

/// The entry point of helper processes; does nothing when run as a test.
#[test]
#[ignore = "helper processes' entry point; runs only when a scenario starts it"]
fn helper_role() {
    match testkit::role().as_deref() {
        Some("contender") => contender(),
        Some("cycler") => crate::crashes::cycler(),
        Some(other) => panic!("unknown helper role {other:?}"),
        None => {}
    }
}

/// Appends one record with a single `write` on an `O_APPEND` descriptor.
fn append(log: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("cannot open the log {}: {e}", log.display()));
    f.write_all(line.as_bytes()).unwrap();
}

/// The library contender: waits at the barrier (standard input reaching
/// EOF), tries once, and if it wins holds the file for a moment.
fn contender() {
    let path = std::path::PathBuf::from(var("PG_PIDFILE"));
    let log = std::path::PathBuf::from(var("PG_LOG"));
    let id = var("PG_ID");
    eprintln!("@ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let guard = match Pidfile::new(&path).acquire() {
        Ok(g) => g,
        // Refused: say so with the CLI's exit code.
        Err(e) if e.kind() == ErrorKind::AlreadyRunning => std::process::exit(75),
        Err(e) => panic!("contender {id}: acquire failed: {e}"),
    };
    let me = std::process::id();
    append(&log, &format!("enter {id} lib {me}\n"));
    let check = |when: &str| {
        // The file names us (strict rule: exactly our PID and a newline),
        // and the path names the inode we hold locked.
        let content = std::fs::read(&path).unwrap_or_default();
        let ours = pidguard::Pid::parse(
            &content,
            pidguard::Rule::Strict,
            pidguard::Pid::kernel_max(),
        )
        .map(|p| p.as_u32() == me)
        .unwrap_or(false);
        let same = {
            use std::os::unix::fs::MetadataExt;
            let held = rustix::fs::fstat(&guard).unwrap();
            std::fs::symlink_metadata(&path)
                // Their widths differ between platforms.
                .map(|m| {
                    #[allow(clippy::unnecessary_cast)]
                    let (ino, dev) = (held.st_ino as u64, held.st_dev as u64);
                    m.ino() == ino && m.dev() == dev
                })
                .unwrap_or(false)
        };
        if !ours || !same {
            append(
                &log,
                &format!(
                    "lost {id} lib {when}: content {:?}, same inode {same}\n",
                    String::from_utf8_lossy(&content)
                ),
            );
        }
    };
    check("at enter");
    std::thread::sleep(Duration::from_millis(2));
    check("at exit");
    append(&log, &format!("exit {id}\n"));
    guard.release().unwrap();
}

/// The shell body a CLI or flock(1) winner runs: `$1` kind (`cli`, `flock`
/// or `flock-naive`), `$2` PID file, `$3` log, `$4` id. A flock(1) holder's
/// lock is on its descriptor 3. A careful flock(1) user (`flock`) checks
/// that the path still names the inode it locked, and gives up (exit 75)
/// when it does not, as pidguard's own protocol does; a naive one goes on.
const HOLDER_SH: &str = r#"kind=$1 p=$2 log=$3 id=$4
if [ "$kind" = flock ] && ! [ /proc/$$/fd/3 -ef "$p" ]; then exit 75; fi
printf 'enter %s %s %s\n' "$id" "$kind" "$$" >> "$log"
check() {
  if [ "$kind" = cli ]; then
    n=
    read -r n < "$p"
    [ "$n" = "$$" ] || printf 'lost %s cli %s: content %s\n' "$id" "$1" "$n" >> "$log"
  else
    [ /proc/$$/fd/3 -ef "$p" ] || printf 'lost %s flock %s: the path is not the locked inode\n' "$id" "$1" >> "$log"
  fi
}
check at-enter
sleep 0.002
check at-exit
printf 'exit %s\n' "$id" >> "$log"
"#;

/// What one round's contenders did.
#[derive(Default, Debug)]
struct Tally {
    refused: usize,
    held: usize,
}

/// 200 rounds of 64 (12,800 contenders) take about 25 s on 2 cores; a soak
/// run (`PIDGUARD_SOAK=1`) does ten times as many.
const ROUNDS: usize = 200;
const CONTENDERS: usize = 64;

#[test]
fn races_64_contenders_library_cli_and_flock_never_overlap() {
    let detail = run_races("flock");
    summary::passed("races", &detail);
}

/// flock(1) does not check, after locking, that the path still names the
/// inode it opened. When a pidguard holder releases (unlinks the file, then
/// unlocks it) while a `flock -n P` has opened the old inode but not yet
/// locked it, flock(1) then locks the orphaned inode while the next
/// contender creates a new file at the path: two holders at once. Seen
/// within 200 rounds in most runs (`enter X flock` then `enter Y flock`,
/// `lost Y flock at-enter: the path is not the locked inode`).
#[test]
#[ignore = "bug: a naive `flock -n P` can lock the inode a pidguard holder just \
            unlinked on release, while another contender holds the new file \
            (pidguard removes the file on release; flock(1) never rechecks the path)"]
fn races_naive_flock_can_lock_an_inode_pidguard_unlinked() {
    let detail = run_races("flock-naive");
    eprintln!("{detail}");
}

/// Runs the rounds with flock(1) holders of `flock_kind`; returns the summary.
fn run_races(flock_kind: &str) -> String {
    let dir = tmp();
    let p = dir.path().join("race.pid");
    let log = dir.path().join("holders.log");
    let script = dir.path().join("holder.sh");
    std::fs::write(&script, HOLDER_SH).unwrap();
    std::fs::write(&log, "").unwrap();
    let rounds = summary::rounds(ROUNDS);
    let started = Instant::now();
    let mut totals = Tally::default();
    for round in 0..rounds {
        append(&log, &format!("round {round}\n"));
        let t = run_round(round, &p, &log, &script, flock_kind);
        totals.refused += t.refused;
        totals.held += t.held;
    }
    let took = started.elapsed();
    let (checked, entered) = check_log(&std::fs::read_to_string(&log).unwrap(), rounds);
    assert_eq!(
        entered, totals.held,
        "every contender that exited 0 held the file once, and logged it"
    );
    assert!(!p.exists() || pidguard::status(&p).name() != "running");
    let detail = format!(
        "{rounds} rounds x {CONTENDERS} contenders (library, CLI, flock(1)) in {:.1}s: \
         {} holders, one at a time ({checked}), {} refused",
        took.as_secs_f64(),
        totals.held,
        totals.refused
    );
    eprintln!("{detail}");
    detail
}

/// One round: start the contenders, wait until every one is at the barrier,
/// release them all at once, and collect their exits.
fn run_round(round: usize, p: &Path, log: &Path, script: &Path, flock_kind: &str) -> Tally {
    let (release_r, release_w) = std::io::pipe().unwrap();
    let (ready_r, ready_w) = std::io::pipe().unwrap();
    let mut kids: Vec<(char, Owned)> = Vec::with_capacity(CONTENDERS);
    for i in 0..CONTENDERS {
        let id = format!("{round}.{i}");
        // A third each, in an order that changes from round to round.
        let kind = ['l', 'c', 'f'][(i + round) % 3];
        let mut cmd = match kind {
            'l' => {
                let mut c = helper("contender");
                c.env("PG_PIDFILE", p).env("PG_LOG", log).env("PG_ID", &id);
                c
            }
            _ => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(r#"echo @ready >&2; read -r _; exec "$@""#)
                    .arg("contender");
                if kind == 'c' {
                    c.arg(bin()).arg("run").arg("-p").arg(p).arg("--");
                    c.arg("sh").arg(script).arg("cli");
                } else {
                    c.args(["flock", "-n"]).arg(p);
                    c.arg("sh").arg(script).arg(flock_kind);
                }
                c.arg(p).arg(log).arg(&id);
                c
            }
        };
        cmd.stdin(Stdio::from(release_r.try_clone().unwrap()))
            .stdout(Stdio::null())
            .stderr(Stdio::from(ready_w.try_clone().unwrap()));
        kids.push((kind, Owned(cmd.spawn().unwrap())));
    }
    drop(release_r);
    drop(ready_w);
    // Count the contenders at the barrier; keep everything else they say.
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut other = String::new();
        for line in BufReader::new(ready_r).lines() {
            let line = line.unwrap_or_default();
            if line == "@ready" {
                let _ = tx.send(());
            } else {
                other.push_str(&line);
                other.push('\n');
            }
        }
        other
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0..CONTENDERS {
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!("round {round}: only {n} of {CONTENDERS} contenders reached the barrier")
        });
    }
    // The barrier: every contender is blocked reading its standard input.
    drop(release_w);
    let mut tally = Tally::default();
    let mut statuses: Vec<(char, ExitStatus)> = Vec::new();
    for (kind, kid) in &mut kids {
        let status = wait_deadline(kid, deadline);
        statuses.push((*kind, status));
    }
    let other = reader.join().unwrap();
    for (kind, status) in statuses {
        // Held (0) or refused: the library contender and `pidguard run`
        // exit 75, `flock -n` 1 (75: it locked an inode no longer at the
        // path, and gave up).
        match (kind, status.code()) {
            (_, Some(0)) => tally.held += 1,
            ('l' | 'c', Some(75)) | ('f', Some(1 | 75)) => tally.refused += 1,
            _ => {
                panic!("round {round}: a {kind} contender ended with {status:?}; it said:\n{other}")
            }
        }
    }
    tally
}

fn wait_deadline(kid: &mut Owned, deadline: Instant) -> ExitStatus {
    loop {
        if let Some(s) = kid.0.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "a contender (PID {}) did not finish in time",
            kid.pid()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Checks the log: rounds in order, each with at least one holder, every
/// `enter` followed directly by the same holder's `exit`, no `lost` record.
/// Returns a summary of what was seen, and the number of holders.
fn check_log(text: &str, rounds: usize) -> (String, usize) {
    let mut round: Option<usize> = None;
    let mut holders_this_round = 0;
    let mut inside: Option<&str> = None;
    let mut kinds = [0usize; 3];
    let close_round = |round: Option<usize>, holders: usize| {
        if let Some(r) = round {
            assert!(holders >= 1, "round {r}: nobody held the file");
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let around = |n: usize| lines[n.saturating_sub(8)..(n + 8).min(lines.len())].join("\n");
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split(' ');
        match (words.next(), words.next()) {
            (Some("round"), Some(r)) => {
                assert!(inside.is_none(), "line {n}: a holder never exited");
                close_round(round, holders_this_round);
                round = Some(r.parse().unwrap());
                holders_this_round = 0;
            }
            (Some("enter"), Some(id)) => {
                assert!(
                    inside.is_none(),
                    "line {n}: {id} entered while {} held the file:\n{}",
                    inside.unwrap(),
                    around(n)
                );
                assert!(
                    id.starts_with(&format!("{}.", round.unwrap())),
                    "line {n}: a holder from another round: {line}"
                );
                inside = Some(id);
                holders_this_round += 1;
                match words.next() {
                    Some("lib") => kinds[0] += 1,
                    Some("cli") => kinds[1] += 1,
                    Some("flock" | "flock-naive") => kinds[2] += 1,
                    k => panic!("line {n}: unknown kind {k:?}"),
                }
            }
            (Some("exit"), Some(id)) => {
                assert_eq!(
                    inside,
                    Some(id),
                    "line {n}: exit without enter:\n{}",
                    around(n)
                );
                inside = None;
            }
            _ => panic!(
                "line {n}: {line}\n(the file was lost or replaced while held):\n{}",
                around(n)
            ),
        }
    }
    assert!(inside.is_none(), "the last holder never exited");
    close_round(round, holders_this_round);
    assert_eq!(round, Some(rounds - 1));
    let summary = format!(
        "{} by the library, {} by the CLI, {} by flock(1)",
        kinds[0], kinds[1], kinds[2]
    );
    (summary, kinds.iter().sum())
}
