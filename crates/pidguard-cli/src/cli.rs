//! The command line, as clap derive structs. Doc comments are the help text.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use pidguard::{Schedule, Signal};

use crate::duration::parse_duration;

pub mod fast;

/// PID files that get the hard cases right: run a program once, find it,
/// stop it.
#[derive(Debug, Parser)]
#[command(
    name = "pidguard",
    version,
    propagate_version = true,
    after_help = crate::exit::summary()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// `defer`: each command's arguments are built only when that command runs
// (or for help, man pages and completions), not all of them at start-up:
// about 40% of the instructions of a short command. Deferred arguments are
// added after the command's own `about`, so the structs flattened into
// commands carry `//` comments, not doc comments (which would replace it).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Take the PID file's lock and run a command under it.
    ///
    /// By default pidguard stays as the command's parent: the file names the
    /// command (never pidguard), the command inherits the lock (so it
    /// outlives a killed supervisor), SIGTERM, SIGINT, SIGHUP, SIGQUIT,
    /// SIGUSR1 and SIGUSR2 are forwarded to it (not a terminal's Ctrl-C,
    /// which it already got), the file is removed when it
    /// exits, and pidguard exits with its status (128+N if killed by signal
    /// N). With --exec pidguard writes its own PID and becomes the command.
    ///
    /// With --backend etcd://HOST:PORT/PREFIX --name NAME the lock is
    /// cluster-wide: a lease on etcd, renewed by pidguard; the command gets
    /// the fencing token in PIDGUARD_FENCE and is stopped (exit 69) if the
    /// lease is lost.
    ///
    /// Example: pidguard run --name backup -- rsync -a src/ dst/
    #[command(after_help = "Exit codes: the command's own status; 75 if another \
        process holds the lock; 73 if the file cannot be created; 126/127 if \
        the command cannot be executed or is not found.")]
    Run(RunArgs),

    /// Make sure a daemon holds the PID file, starting it if none does.
    ///
    /// If the file's holder runs (and, with --socket, the socket accepts a
    /// connection), print its PID. Otherwise start CMD as with `run
    /// --daemon`, wait until it is ready, and print the new PID. Any number
    /// of concurrent calls start exactly one daemon and print the same PID.
    ///
    /// Example: pidguard ensure --name lsp --socket "$XDG_RUNTIME_DIR/lsp.sock" -- lsp-server
    Ensure(EnsureArgs),

    /// Print the PID file's state in one line.
    ///
    /// Exit 0 running (or starting: locked, no PID yet), 1 stale (the file
    /// exists, its process is gone), 3 not running (no file), 4 unknown
    /// (unreadable, invalid content, not a regular file).
    ///
    /// With --backend etcd://…: the cluster-wide holder (host, PID, since
    /// when, fence), from any host.
    ///
    /// Example: pidguard status -p /run/nginx.pid
    Status(StatusArgs),

    /// Print the PID of the running holder.
    ///
    /// Exit 0 with the PID on standard output; 1 stale, 3 not running, 4
    /// unknown, 65 invalid content.
    ///
    /// Example: kill -HUP "$(pidguard pid --name myapp)"
    Pid(QueryArgs),

    /// Stop the file's owner safely, following a schedule, and remove the
    /// file.
    ///
    /// Only a process proved or consistent to be the file's owner is
    /// signalled (see `status`): a stale file (its process is gone) is
    /// removed and nothing is signalled; a file naming a reused PID (a live
    /// process proved not to be the owner) is kept and nothing is signalled.
    /// Default schedule: TERM/10/KILL/5.
    /// After TERM a CONT follows, so a stopped process can act on it. With
    /// --backend, the cluster-wide holder's supervisor (on any host) is asked
    /// to stop its command, and stop waits until the lock is released.
    ///
    /// Exit 0 when the process is gone or was not running (a stale file is
    /// removed), 1 when it still runs at the end of the schedule, when the
    /// PID names a live process proved not to be the owner, or when the file
    /// is starting: locked, no PID yet (the file is kept in each case), 77
    /// when it may not or must not be signalled (EPERM, a failed trust
    /// check), 65 on invalid content.
    ///
    /// Example: pidguard stop -p /run/app.pid --schedule TERM/30/KILL/5
    Stop(StopArgs),

    /// Send one signal to the file's owner, with the same checks as `stop`.
    ///
    /// Exit 0 when sent, 1 when nothing is sent because the file is stale,
    /// names a live process proved not to be the owner, or is starting
    /// (locked, no PID yet), 3 when there is no file, 77 and 65 as for
    /// `stop`. Signal 0 sends nothing:
    /// exit 0 when the process could be signalled, 77 when not.
    ///
    /// Example: pidguard signal -p /run/nginx.pid HUP
    Signal(SignalArgs),

    /// Wait for the file's owner to exit.
    ///
    /// Exit 0 when it exits (or was not running), 1 at the timeout, 77 and
    /// 65 as for `stop`.
    ///
    /// Example: pidguard wait -p /run/app.pid --timeout 30s
    Wait(WaitArgs),

    /// List the PID files in a directory: name, PID, state, identity, the
    /// evidence that decided it, age and command line.
    ///
    /// One row per *.pid file; symlinks, directories and other files are
    /// reported as skipped and never followed (with --recursive or
    /// --max-depth N, subdirectories are listed too, never through a
    /// symlink). Identity: verified (the process holds the file's lock, or
    /// the file's kernel identity record proves it), consistent (every
    /// check passed), unproved (a fact could not be read), mismatched (a
    /// reused PID…); EVIDENCE: kernel (the record pidguard keeps with the
    /// file, Linux 6.9+), lock, or checks; COMMAND is what the PID runs now.
    /// Names and command lines are printed with control characters escaped
    /// (\n, \xHH).
    ///
    /// Exit 0 when listed, 73 when the directory is behind a symlink
    /// someone else owns, 74 when it cannot be read.
    ///
    /// Example: pidguard list /run/myapp/servers
    List(DirArgs),

    /// Remove stale PID files in a directory; with --kill also stop orphans.
    ///
    /// A stale file (nobody holds the lock; the PID is dead) is removed. An
    /// orphan (unlocked, naming a live process that started before the file
    /// was written and matches the exe recorded in NAME.meta) is stopped
    /// with --kill, else reported; without a recorded exe it is never
    /// signalled. A live process that cannot be verified, or is not the
    /// owner, keeps its file. Every action is printed.
    ///
    /// Exit 0 when every action was done (or, with --dry-run, printed), 74
    /// when one failed (the others were done), 73 and 74 as for `list` when
    /// the directory cannot be swept.
    ///
    /// Example: pidguard sweep --kill --schedule TERM/5/KILL/5 /run/myapp/servers
    Sweep(SweepArgs),

    /// Print the path a PID file resolves to.
    ///
    /// Example: pidguard path --name myapp --instance "$PWD"
    Path(QueryArgs),

    /// Print the man page (roff), or write one page per command into a
    /// directory.
    ///
    /// Without --dir the page for pidguard itself goes to standard output
    /// (view it with `pidguard man | man -l -`). With --dir DIR, pidguard.1
    /// and one page per command (pidguard-run.1, pidguard-stop.1, …) are
    /// written into DIR, which is created if missing.
    ///
    /// Example: pidguard man --dir /usr/local/share/man/man1
    Man(ManArgs),

    /// Print a shell completion script.
    ///
    /// SHELL is one of bash, zsh, fish, elvish, powershell.
    ///
    /// Example: pidguard completions bash > /etc/bash_completion.d/pidguard
    Completions(CompletionsArgs),
}

impl Command {
    /// Whether `--json` was given: the command prints exactly one JSON
    /// object, on success and on failure.
    pub fn json(&self) -> bool {
        match self {
            Command::Run(a) => a.file.json,
            Command::Ensure(a) => a.file.json,
            Command::Status(a) => a.file.json,
            Command::Pid(a) | Command::Path(a) => a.file.json,
            Command::Stop(a) => a.file.json,
            Command::Signal(a) => a.file.json,
            Command::Wait(a) => a.file.json,
            Command::List(a) => a.json,
            Command::Sweep(a) => a.dir.json,
            Command::Man(_) | Command::Completions(_) => false,
        }
    }

    /// Whether the command prints no object of its own when it succeeds
    /// (a supervised `run`, also with `--backend`: the command's output is
    /// its output), so that `--json` adds `{"exit": N}` at the end. (`run
    /// --exec` prints nothing on success: the command replaces pidguard.)
    pub fn prints_nothing_on_success(&self) -> bool {
        matches!(self, Command::Run(a) if !a.daemon && !a.exec)
    }
}

// Which PID file: an explicit path or an application name.
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// The PID file's path.
    #[arg(short = 'p', long = "pidfile", value_name = "PATH")]
    pub pidfile: Option<PathBuf>,

    /// An application name: the file goes to the standard location
    /// (/run/NAME.pid for root, $XDG_RUNTIME_DIR/NAME/NAME.pid for a user).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

// Options shared by every command that names a PID file.
#[derive(Debug, Args, Clone)]
pub struct FileArgs {
    #[command(flatten)]
    pub target: Target,

    /// One instance per KEY (a project directory, a port): the file goes
    /// into a directory named instance-HASH, HASH a short hash of KEY.
    #[arg(long, value_name = "KEY")]
    pub instance: Option<String>,

    /// Machine-readable output (one JSON object).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub file: FileArgs,
}

// The created file's owner, group and mode (for a daemon that drops
// privileges; owner needs root).
#[derive(Debug, Args, Clone, Default)]
pub struct CreateArgs {
    /// Give the PID file to this user (name or numeric UID; needs root).
    /// Note: as root, stop/signal/wait refuse an unverified file another
    /// user owns.
    #[arg(long, value_name = "USER")]
    pub owner: Option<String>,

    /// Give the PID file to this group (name or numeric GID).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// The PID file's mode, in octal, exactly (the umask does not apply)
    /// [default: 644 less the umask].
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub mode: Option<u32>,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    parse_octal(s, "mode", "644 or 0640")
}

/// Permission bits in octal, at most 0777.
fn parse_octal(s: &str, what: &str, examples: &str) -> Result<u32, String> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "invalid {what} {s:?}: use an octal mode such as {examples}"
        )),
    }
}

// A cluster-wide lock on etcd instead of a PID file.
#[derive(Debug, Args, Clone, Default)]
pub struct BackendArgs {
    /// Use a cluster-wide lock on etcd instead of a PID file:
    /// etcd://HOST:PORT[,HOST:PORT…]/PREFIX (the lock key is
    /// PREFIX/lock/NAME, a stop request PREFIX/stop/NAME; needs --name).
    /// Requires a pidguard built with the `etcd` feature.
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,

    /// With --backend: speak TLS to etcd, trusting the CA in this PEM file
    /// (as etcdctl's --cacert; default: $ETCDCTL_CACERT).
    #[arg(long, value_name = "FILE", requires = "backend")]
    pub cacert: Option<PathBuf>,

    /// With --backend: the TLS client certificate, PEM (default:
    /// $ETCDCTL_CERT); needs --key.
    #[arg(long, value_name = "FILE", requires = "backend")]
    pub cert: Option<PathBuf>,

    /// With --backend: the TLS client certificate's key, PEM (default:
    /// $ETCDCTL_KEY).
    #[arg(long, value_name = "FILE", requires = "backend")]
    pub key: Option<PathBuf>,

    /// With --backend and --user USER: the etcd user's password (default:
    /// $ETCDCTL_PASSWORD). Never shown in messages.
    #[arg(long, value_name = "PASSWORD", requires = "backend")]
    pub password: Option<String>,
}

// The etcd user, on run and status (stop's --user means this with
// --backend).
#[derive(Debug, Args, Clone, Default)]
pub struct EtcdUserArgs {
    /// With --backend: authenticate to etcd as USER:PASSWORD, or USER with
    /// --password (as etcdctl's --user; default: $ETCDCTL_USER).
    #[arg(long, value_name = "USER[:PASSWORD]", requires = "backend")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub file: FileArgs,

    #[command(flatten)]
    pub backend: BackendArgs,

    #[command(flatten)]
    pub etcd_user: EtcdUserArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub file: FileArgs,

    #[command(flatten)]
    pub create: CreateArgs,

    /// Wait up to DURATION for the lock instead of failing at once (e.g.
    /// 10s, 500ms, 2m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait: Option<Duration>,

    /// Write pidguard's own PID and exec the command in place (no
    /// supervisor, no cleanup: the kernel drops the lock when it exits).
    #[arg(long)]
    pub exec: bool,

    /// fsync the file and its directory after writing and removing it.
    #[arg(long)]
    pub fsync: bool,

    /// Detach CMD as a daemon (new session, no terminal, stdin from
    /// /dev/null, working directory /) and return once the PID file names it
    /// and it holds the lock (with --notify: once it is ready).
    #[arg(long, conflicts_with = "exec")]
    pub daemon: bool,

    #[command(flatten)]
    pub detach: DaemonArgs,

    #[command(flatten)]
    pub backend: BackendArgs,

    #[command(flatten)]
    pub etcd_user: EtcdUserArgs,

    /// With --backend: the lease TTL, in whole seconds [default: 10s]. If
    /// etcd cannot confirm a renewal for about this long, the command is
    /// stopped; a crashed holder's lock is free after it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "backend")]
    pub ttl: Option<Duration>,

    /// With --backend: how to stop the command's whole job when the lock
    /// is lost. It must end with KILL and fit in half the TTL (less a
    /// margin of TTL/10, at most 1 s), so the job is gone before another
    /// host can take the lock [default: TERM, KILL and its confirmation in
    /// a third of the TTL: TERM/2333ms/KILL/1 for 10s].
    #[arg(long, value_name = "SCHEDULE", value_parser = parse_schedule, requires = "backend")]
    pub schedule: Option<Schedule>,

    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

// How a daemon is detached and when it counts as ready.
#[derive(Debug, Args, Clone, Default)]
pub struct DaemonArgs {
    /// Append the daemon's standard output to FILE [default: /dev/null].
    #[arg(long, value_name = "FILE")]
    pub stdout: Option<PathBuf>,

    /// Append the daemon's standard error to FILE [default: /dev/null].
    #[arg(long, value_name = "FILE")]
    pub stderr: Option<PathBuf>,

    /// The daemon's working directory [default: /].
    #[arg(long, value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// The daemon's umask, in octal (e.g. 027) [default: inherited].
    #[arg(long, value_name = "MODE", value_parser = parse_umask)]
    pub umask: Option<u32>,

    /// Wait for the daemon to send READY=1 over the systemd notification
    /// protocol (NOTIFY_SOCKET); MAINPID= is honoured when it names a
    /// process the daemon started (any other is refused, exit 69).
    #[arg(long)]
    pub notify: bool,

    /// How long the daemon may take to become ready [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ready_timeout: Option<Duration>,

    /// Without --notify: how long to watch a new daemon's first process
    /// before returning. If it exits meanwhile leaving a descendant with
    /// the lock (a command that forks itself into the background, as nginx
    /// does), that descendant is the daemon: the file names it and its PID
    /// is printed [default: 100ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "notify")]
    pub settle: Option<Duration>,
}

// Used by the Unix daemon code only (Windows refuses --daemon and ensure).
#[cfg_attr(windows, allow(dead_code))]
impl DaemonArgs {
    /// The readiness timeout, with its default.
    pub fn ready_timeout(&self) -> Duration {
        self.ready_timeout.unwrap_or(Duration::from_secs(10))
    }

    /// The settle time, with its default.
    pub fn settle(&self) -> Duration {
        self.settle.unwrap_or(Duration::from_millis(100))
    }
}

#[derive(Debug, Args)]
pub struct EnsureArgs {
    #[command(flatten)]
    pub file: FileArgs,

    #[command(flatten)]
    pub create: CreateArgs,

    /// A Unix socket the daemon listens on: it counts as running (and a new
    /// one as ready) only when the socket accepts a connection.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    #[command(flatten)]
    pub detach: DaemonArgs,

    /// The daemon command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

fn parse_umask(s: &str) -> Result<u32, String> {
    parse_octal(s, "umask", "022 or 0077")
}

// Conditions the process must also meet (as start-stop-daemon's).
#[derive(Debug, Args, Clone)]
pub struct FilterArgs {
    /// Only a process running this executable (compared by inode, or by path
    /// as start-stop-daemon does, so a binary replaced by an upgrade still
    /// matches). A path that does not exist is a usage error.
    #[arg(long, value_name = "PATH")]
    pub exe: Option<PathBuf>,

    /// Only a process of this user (name or numeric UID). With `stop
    /// --backend`: the etcd user, USER:PASSWORD or USER with --password
    /// (default: $ETCDCTL_USER).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Only a process with this command name (as in /proc/PID/comm; first 15
    /// bytes).
    #[arg(long, value_name = "COMM")]
    pub comm: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub file: FileArgs,

    #[command(flatten)]
    pub filters: FilterArgs,

    /// The first signal to send [default: TERM]; with --schedule N, the
    /// signal of its SIG/N/KILL/N.
    #[arg(long, value_name = "SIG", value_parser = parse_signal)]
    pub signal: Option<Signal>,

    /// Shorthand for the schedule SIG/DURATION/KILL/5 (pidguard's own; note
    /// that start-stop-daemon's --retry N, which is --schedule N here, waits
    /// N after KILL too).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "schedule")]
    pub timeout: Option<Duration>,

    /// A start-stop-daemon schedule: SIG/TIME/SIG/TIME…, with `forever`
    /// marking where the rest repeats (e.g. TERM/30/forever/KILL/5), or
    /// its shorthand N for SIG/N/KILL/N (as `--retry N`). Times take the
    /// same units as every option (30, 500ms, 2m).
    #[arg(long, value_name = "SCHEDULE", value_parser = parse_stop_schedule)]
    pub schedule: Option<StopSchedule>,

    // With --backend: the cluster-wide holder's supervisor (on any host)
    // is asked to stop its command with the schedule.
    #[command(flatten)]
    pub backend: BackendArgs,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    #[command(flatten)]
    pub file: FileArgs,

    #[command(flatten)]
    pub filters: FilterArgs,

    /// The signal: a name with or without SIG (HUP, SIGHUP), RTMIN+N or
    /// RTMAX-N, or a number from 1 to the real-time maximum (64 on Linux).
    /// 0 sends nothing: it reports whether the process could be signalled
    /// (exit 0 yes, 77 no).
    #[arg(value_name = "SIG", value_parser = parse_signal_arg, allow_hyphen_values = true)]
    pub signal: SignalArg,
}

/// `signal`'s argument: a signal to send, or 0 to probe.
#[derive(Debug, Clone, Copy)]
pub enum SignalArg {
    /// Signal 0: check, send nothing.
    Probe,
    /// A signal to send.
    Send(Signal),
}

fn parse_signal_arg(s: &str) -> Result<SignalArg, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b == b'0') {
        return Ok(SignalArg::Probe);
    }
    parse_signal(s).map(SignalArg::Send)
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub file: FileArgs,

    #[command(flatten)]
    pub filters: FilterArgs,

    /// Give up after DURATION (exit 1) [default: wait forever].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// The directory holding the PID files.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Machine-readable output: one JSON object, its entries in an array.
    #[arg(long)]
    pub json: bool,

    /// Also descend into subdirectories (up to 64 levels; symlinked
    /// directories are never followed).
    #[arg(short = 'r', long, conflicts_with = "max_depth")]
    pub recursive: bool,

    /// Descend at most N levels into subdirectories (0: the directory only).
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,
}

/// How deep `--recursive` goes.
pub const RECURSIVE_DEPTH: usize = 64;

impl DirArgs {
    /// How many levels of subdirectories to descend into.
    pub fn depth(&self) -> usize {
        match (self.recursive, self.max_depth) {
            (true, _) => RECURSIVE_DEPTH,
            (false, Some(n)) => n.min(RECURSIVE_DEPTH),
            (false, None) => 0,
        }
    }
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub dir: DirArgs,

    /// Print what would be done and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also stop orphans (then remove their files).
    #[arg(long)]
    pub kill: bool,

    /// The stop schedule for orphans [default: TERM/10/KILL/5].
    #[arg(long, value_name = "SCHEDULE", value_parser = parse_schedule)]
    pub schedule: Option<Schedule>,
}

fn parse_signal(s: &str) -> Result<Signal, String> {
    s.parse().map_err(|e: pidguard::SyntaxError| e.to_string())
}

/// `stop --schedule`: a full schedule, or the shorthand N whose first
/// signal `--signal` chooses.
#[derive(Debug, Clone)]
pub enum StopSchedule {
    /// A lone duration N: SIG/N/KILL/N.
    Retry(Duration),
    /// SIG/TIME/…
    Full(Schedule),
}

fn parse_stop_schedule(s: &str) -> Result<StopSchedule, String> {
    if !s.contains('/') {
        if let Ok(d) = pidguard::parse_duration(s) {
            return Ok(StopSchedule::Retry(d));
        }
    }
    parse_schedule(s).map(StopSchedule::Full)
}

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    s.parse().map_err(|e: pidguard::SyntaxError| e.to_string())
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write pidguard.1 and one page per command (pidguard-run.1, …) into
    /// DIR instead of printing pidguard.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate the script for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Once the deferred arguments are built, every command still has its
    /// own description (a doc comment on a flattened struct would replace
    /// it: see `defer` on [`Command`]).
    #[test]
    fn every_command_keeps_its_own_description() {
        let describe = |cli: &clap::Command| -> Vec<(String, String, String)> {
            // (`build` adds clap's own `help` command.)
            cli.get_subcommands()
                .filter(|s| s.get_name() != "help")
                .map(|s| {
                    let text = |t: Option<&clap::builder::StyledStr>| {
                        t.map(|t| t.to_string()).unwrap_or_default()
                    };
                    (
                        s.get_name().to_string(),
                        text(s.get_about()),
                        text(s.get_long_about()),
                    )
                })
                .collect()
        };
        let mut cli = Cli::command();
        let declared = describe(&cli);
        cli.build();
        assert_eq!(describe(&cli), declared);
        let run = declared.iter().find(|(name, ..)| name == "run").unwrap();
        assert_eq!(run.1, "Take the PID file's lock and run a command under it");
    }
}
