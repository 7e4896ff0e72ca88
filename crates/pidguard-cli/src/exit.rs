//! Exit codes: one enum, one table ([`TABLE`]). The README's table, the
//! help's summary ([`summary`]) and the codes the help texts name are
//! checked against it by the tests below.

use std::process::ExitCode;

/// Every exit status pidguard itself produces (a supervised command's own
/// status is passed through as [`Exit::Child`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    Stale,
    Usage,
    NotRunning,
    Unknown,
    DataErr,
    Unavailable,
    Software,
    CantCreate,
    IoErr,
    TempFail,
    NoPerm,
    CannotExecute,
    NotFound,
    /// A supervised command's exit status (128+N when killed by signal N).
    Child(u8),
}

/// Every exit code pidguard itself produces: (code, short name, meaning).
/// The README's "Exit codes" table is this table (a test compares them);
/// `run` also passes its command's own status through.
pub const TABLE: &[(u8, &str, &str)] = &[
    (
        0,
        "ok",
        "success; `status`: running (or starting: locked, no PID yet; or locked by a holder that could not be identified); `pid`: running (its PID printed); `stop`/`wait`: gone, stale (its process is gone: nothing to signal) or not running; `signal`: signalled (`signal 0`: could be signalled); `sweep`: every action done",
    ),
    (
        1,
        "stale",
        "`status`/`pid`/`signal`: stale (the file exists, its process is gone or its PID names another process); `stop`/`signal`/`wait`: the PID names a live process proved not to be the owner (nothing signalled, the file kept); `stop`/`signal`: starting (locked, no PID yet: nothing to signal, the file kept); `stop`/`wait`: still running at the end (`wait`: or the lock still held); `run --daemon`: not ready in time",
    ),
    (2, "usage", "usage error (bad arguments)"),
    (3, "not running", "`status`/`pid`/`signal`: not running (no file)"),
    (
        4,
        "unknown",
        "`status`/`pid`: unknown (unreadable, invalid content, not a regular file, or a live process whose ownership is unproved); `pid`: starting (no PID yet), or locked by a holder that could not be identified",
    ),
    (
        65,
        "invalid content",
        "`pid`/`stop`/`signal`/`wait`: invalid PID file content",
    ),
    (
        69,
        "unavailable",
        "unsupported on this platform or filesystem; `--backend`: etcd unreachable, or the lease was lost (the command was stopped)",
    ),
    (
        70,
        "internal",
        "internal error (signal handlers, the lock hand-over to the command)",
    ),
    (
        73,
        "cannot create",
        "cannot create or use the file or directory (permissions, read-only or full filesystem, unsafe path, a directory behind a foreign symlink, no standard location)",
    ),
    (
        74,
        "I/O error",
        "other I/O error (`list`/`sweep`: the directory cannot be read); `sweep`: an action failed (the others were done)",
    ),
    (
        75,
        "held",
        "the lock is held by another live process, or the unlocked file names a running daemon that does not lock (the message names its PID)",
    ),
    (
        77,
        "denied",
        "permission denied; `stop`/`signal`/`wait`: may not or must not signal (EPERM, a failed trust check, an unsafe path, an unproved identity naming the fact that could not be read, a holder that cannot be reached from here)",
    ),
    (126, "cannot execute", "the command cannot be executed"),
    (127, "not found", "the command was not found"),
];

/// The help's one-line summary of [`TABLE`]: "0 ok, 1 stale, …".
pub fn summary() -> String {
    let codes: Vec<String> = TABLE
        .iter()
        .map(|(code, name, _)| format!("{code} {name}"))
        .collect();
    format!(
        "Exit codes: {}; `run` passes its command's own status through (128+N if killed by signal N).",
        codes.join(", ")
    )
}

impl Exit {
    /// Every variant but [`Exit::Child`].
    #[cfg(test)]
    const ALL: [Exit; 14] = [
        Exit::Success,
        Exit::Stale,
        Exit::Usage,
        Exit::NotRunning,
        Exit::Unknown,
        Exit::DataErr,
        Exit::Unavailable,
        Exit::Software,
        Exit::CantCreate,
        Exit::IoErr,
        Exit::TempFail,
        Exit::NoPerm,
        Exit::CannotExecute,
        Exit::NotFound,
    ];

    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Stale => 1,
            Exit::Usage => 2,
            Exit::NotRunning => 3,
            Exit::Unknown => 4,
            Exit::DataErr => 65,
            Exit::Unavailable => 69,
            Exit::Software => 70,
            Exit::CantCreate => 73,
            Exit::IoErr => 74,
            Exit::TempFail => 75,
            Exit::NoPerm => 77,
            Exit::CannotExecute => 126,
            Exit::NotFound => 127,
            Exit::Child(c) => c,
        }
    }

    /// The exit code for a library error.
    pub fn for_error(e: &pidguard::Error) -> Exit {
        use pidguard::ErrorKind as K;
        match e.kind() {
            K::AlreadyRunning => Exit::TempFail,
            K::InvalidContents => Exit::DataErr,
            K::UnsafeFile | K::CannotCreate => Exit::CantCreate,
            K::PermissionDenied => Exit::NoPerm,
            K::InvalidName => Exit::Usage,
            K::Unsupported => Exit::Unavailable,
            _ => Exit::IoErr,
        }
    }
}

// Each command's outcome → exit code, in one place: the test
// `each_outcome_exits_as_the_table_says` checks every pair against the
// words of [`TABLE`].

/// What `status` and `pid` found, as far as their exit codes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Running,
    /// Locked, no PID yet.
    Starting,
    /// Locked by a holder that could not be identified.
    Held,
    Stale,
    NotRunning,
    /// Invalid content (unknown to `status`, 65 to `pid`).
    InvalidContents,
    Unknown,
}

impl Found {
    pub fn of(status: &pidguard::Status) -> Found {
        use pidguard::Status as S;
        match status {
            S::Running { .. } => Found::Running,
            S::Starting => Found::Starting,
            S::Held(_) => Found::Held,
            S::Stale(_) => Found::Stale,
            S::NotRunning => Found::NotRunning,
            S::Unknown(e) if e.kind() == pidguard::ErrorKind::InvalidContents => {
                Found::InvalidContents
            }
            S::Unknown(_) => Found::Unknown,
        }
    }
}

/// `status`'s exit code.
pub fn of_status(found: Found) -> Exit {
    match found {
        Found::Running | Found::Starting | Found::Held => Exit::Success,
        Found::Stale => Exit::Stale,
        Found::NotRunning => Exit::NotRunning,
        Found::InvalidContents | Found::Unknown => Exit::Unknown,
    }
}

/// `pid`'s exit code: 0 only when it has a PID to print.
pub fn of_pid(found: Found) -> Exit {
    match found {
        Found::Running => Exit::Success,
        Found::Starting | Found::Held => Exit::Unknown,
        Found::InvalidContents => Exit::DataErr,
        other => of_status(other),
    }
}

/// `stop`'s exit code: 0 once nothing runs.
pub fn of_stop(outcome: pidguard::Outcome) -> Exit {
    use pidguard::Outcome as O;
    match outcome {
        O::StillRunning | O::Starting | O::Mismatched => Exit::Stale,
        _ => Exit::Success,
    }
}

/// `signal`'s exit code (also for signal 0): 0 only when signalled.
pub fn of_signal(outcome: pidguard::Outcome) -> Exit {
    use pidguard::Outcome as O;
    match outcome {
        O::Signalled => Exit::Success,
        O::NotRunning => Exit::NotRunning,
        _ => Exit::Stale,
    }
}

/// `wait`'s exit code: 0 once nothing runs.
pub fn of_wait(outcome: pidguard::Outcome) -> Exit {
    // The same as `stop`'s: `wait` only never signals.
    of_stop(outcome)
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// An error to print, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    /// The file or directory concerned, when known (for `--json`).
    pub path: Option<std::path::PathBuf>,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
            path: None,
        }
    }

    /// A failure for a library error, with its exit code chosen by the
    /// caller.
    pub fn of(exit: Exit, e: &pidguard::Error) -> Failure {
        Failure {
            path: e.path().map(std::path::Path::to_path_buf),
            ..Failure::new(exit, e.to_string())
        }
    }

    /// The object `--json` prints for it: `error`, `exit`, and `path` when
    /// known.
    pub fn to_json(&self) -> serde_json::Value {
        let obj = crate::output::Obj::new()
            .set("error", self.message.as_str())
            .set("exit", self.exit.code());
        match &self.path {
            Some(p) => obj.path("path", p),
            None => obj,
        }
        .value()
    }
}

impl From<pidguard::Error> for Failure {
    fn from(e: pidguard::Error) -> Failure {
        Failure::of(Exit::for_error(&e), &e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository README's "Exit codes" table: (code, meaning) rows.
    /// `None` outside the repository (the packaged crate has no copy of the
    /// repository's README; this test runs in the workspace).
    fn readme_table() -> Option<Vec<(u8, String)>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let Ok(readme) = std::fs::read_to_string(path) else {
            eprintln!("skipped: {path} is not here (a packaged crate): the README table is checked in the workspace");
            return None;
        };
        let start = readme
            .find("| exit | meaning |")
            .expect("README has an exit code table");
        let rows = readme[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = cells[1]
                    .parse()
                    .unwrap_or_else(|_| panic!("README exit row {l:?}: not one code"));
                (code, cells[2].to_owned())
            })
            .collect();
        Some(rows)
    }

    #[test]
    fn the_readme_table_is_the_table() {
        let ours: Vec<(u8, String)> = TABLE
            .iter()
            .map(|(c, _, m)| (*c, (*m).to_owned()))
            .collect();
        let Some(readme) = readme_table() else { return };
        // What to paste into README.md under `| exit | meaning |`.
        let rows: String = ours
            .iter()
            .map(|(c, m)| format!("| {c} | {m} |\n"))
            .collect();
        assert_eq!(
            readme, ours,
            "README.md's exit code table differs from exit::TABLE; its rows, from the table:\n{rows}"
        );
    }

    /// A table meaning's clauses (split at `; ` outside parentheses), each
    /// as the commands it begins with ("`stop`/`wait`: …") and its text.
    fn clauses(meaning: &str) -> Vec<(Vec<&str>, &str)> {
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0i32, 0);
        for (i, c) in meaning.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ';' if depth == 0 => {
                    parts.push(meaning[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(meaning[start..].trim());
        parts
            .into_iter()
            .filter_map(|p| {
                let (cmds, text) = p.split_once(": ")?;
                let cmds: Option<Vec<&str>> = cmds
                    .split('/')
                    .map(|c| c.strip_prefix('`')?.strip_suffix('`'))
                    .collect();
                Some((cmds?, text))
            })
            .collect()
    }

    /// Every outcome each command can have exits with a code whose row in
    /// [`TABLE`] names that command with that outcome's word.
    #[test]
    fn each_outcome_exits_as_the_table_says() {
        use pidguard::Outcome as O;
        let check = |cmd: &str, exit: Exit, case: &dyn std::fmt::Debug, word: &str| {
            let (_, _, meaning) = TABLE
                .iter()
                .find(|(c, ..)| *c == exit.code())
                .unwrap_or_else(|| panic!("{cmd} {case:?}: exit {} not in TABLE", exit.code()));
            assert!(
                clauses(meaning)
                    .iter()
                    .any(|(cmds, text)| cmds.contains(&cmd) && text.contains(word)),
                "{cmd} {case:?} exits {}, but that row does not say `{cmd}`: …{word}…: {meaning}",
                exit.code()
            );
        };
        let found = [
            (Found::Running, "running"),
            (Found::Starting, "starting"),
            (Found::Held, "could not be identified"),
            (Found::Stale, "stale"),
            (Found::NotRunning, "not running"),
            (Found::InvalidContents, "invalid"),
            (Found::Unknown, "unknown"),
        ];
        for (f, word) in found {
            check("status", of_status(f), &f, word);
            check("pid", of_pid(f), &f, word);
        }
        let word = |o: O| match o {
            O::NotRunning => "not running",
            O::Starting => "starting",
            O::Stale => "stale",
            O::Mismatched => "not to be the owner",
            O::Stopped => "gone",
            O::StillRunning => "still running",
            O::Signalled => "signalled",
            _ => unreachable!(),
        };
        // The outcomes each command's library call returns.
        let common = [O::NotRunning, O::Stale, O::Mismatched];
        let stop = [O::Starting, O::Stopped, O::StillRunning];
        let wait = [O::Stopped, O::StillRunning];
        let signal = [O::Starting, O::Signalled];
        for o in common.iter().chain(&stop) {
            check("stop", of_stop(*o), o, word(*o));
        }
        for o in common.iter().chain(&wait) {
            check("wait", of_wait(*o), o, word(*o));
        }
        for o in common.iter().chain(&signal) {
            check("signal", of_signal(*o), o, word(*o));
        }
        // The parser finds the clauses it should.
        assert_eq!(
            clauses("x (a; b); `a`/`b`: c (d; e)"),
            vec![(vec!["a", "b"], "c (d; e)")]
        );
    }

    #[test]
    fn every_exit_is_in_the_table_and_back() {
        let codes: Vec<u8> = TABLE.iter().map(|(c, ..)| *c).collect();
        let mut ours: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        ours.sort();
        assert_eq!(ours, codes);
    }

    /// Every code a help text names ("Exit 0 …, 1 …", "(exit 69)") is in
    /// the table, and the top-level help carries the summary.
    #[test]
    fn help_texts_name_only_codes_of_the_table() {
        use clap::CommandFactory;
        let codes: Vec<u8> = TABLE.iter().map(|(c, ..)| *c).collect();
        let mut cli = crate::cli::Cli::command();
        cli.build();
        let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let top = flat(&cli.render_long_help().to_string());
        assert!(top.contains(&summary()), "{top}");
        let mut checked = 0;
        for sub in cli.get_subcommands_mut() {
            let help = sub.render_long_help().to_string();
            for para in help.split("\n\n") {
                let flat = flat(para);
                let lower = flat.to_lowercase();
                let Some(at) = lower.find("exit ") else {
                    continue;
                };
                // The numbers from the first "exit" to the end of the
                // paragraph, except parts of 128+N and durations.
                for word in flat[at..].split(|c: char| !c.is_ascii_digit() && c != '+' && c != '/')
                {
                    for part in word.split('/') {
                        if part.is_empty() || part.contains('+') {
                            continue;
                        }
                        let n: u32 = part.parse().unwrap();
                        assert!(
                            n <= 255 && codes.contains(&(n as u8)),
                            "{}: help names exit {n}, not in exit::TABLE: {flat}",
                            sub.get_name()
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 20, "only {checked} codes found in the help texts");
    }
}
