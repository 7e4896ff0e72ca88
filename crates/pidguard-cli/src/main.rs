//! The `pidguard` command.
//!
//! On Linux with glibc the command has its own C `main` (below): Rust's
//! start-up (`std::rt`) costs more than the whole lock protocol — on glibc
//! it reads `/proc/self/maps` to find the main thread's stack, installs a
//! stack-overflow handler with its own `sigaltstack` mapping, and names the
//! thread. pidguard keeps only the two parts of it that change what the
//! program does ([`sys::runtime_init`]: standard descriptors 0–2 are never
//! left closed, so a PID file or a lock can never land on them; SIGPIPE is
//! ignored, so writing to a closed pipe is an error, not death). What is
//! lost is std's "stack overflow" message (a stack overflow is a plain
//! SIGSEGV). Arguments and the environment still come from std (glibc
//! hands them to std's `.init_array` hook). Elsewhere, and in unit tests,
//! Rust's own `main` runs [`pidguard_main`].
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

mod cli;
mod commands;
mod duration;
mod exit;
mod output;
mod supervise;
mod sys;

use clap::Parser;

use crate::exit::{Exit, Failure};

/// The C entry point: the runtime's two promises, then the command. Where
/// panics unwind (debug and test builds), one is caught here and exits
/// 101, as under Rust's own `main` (unwinding out of an `extern "C"`
/// function would abort instead); the release profile has
/// `panic = "abort"`, as before, so there a panic aborts either way.
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    if let Err((fd, e)) = sys::runtime_init() {
        // Nothing else is open yet: fd 2 may be the one that is closed.
        eprintln!(
            "pidguard: descriptor {fd} (standard input, output or error) is closed and \
             /dev/null could not be opened in its place ({e}): start pidguard with \
             descriptors 0-2 open"
        );
        return std::ffi::c_int::from(Exit::Software.code());
    }
    let code = std::panic::catch_unwind(pidguard_main).unwrap_or(101);
    finish();
    std::ffi::c_int::from(code)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", not(test))))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(pidguard_main())
}

/// What Rust's runtime does after `main` returns: standard output's
/// buffer written out (a failure to write it has nowhere to be reported).
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
fn finish() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// The command: its exit status.
fn pidguard_main() -> u8 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == supervise::job::WATCHDOG_ARG)
    {
        return supervise::job::watchdog_main(&args[2..]);
    }
    let cli = match cli::fast::parse(&args) {
        Some(cli) => cli,
        None => match cli::Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(e) => usage_error(e),
        },
    };
    let json = cli.command.json();
    // Only a supervised `run` prints no object of its own on success.
    let silent = cli.command.prints_nothing_on_success();
    match run(cli) {
        Ok(exit) => {
            if json && silent && !output::printed() {
                output::print_json(&output::Obj::new().set("exit", exit.code()).value());
            }
            exit.code()
        }
        Err(f) => {
            eprintln!("pidguard: {}", f.message);
            // Every command prints exactly one object with --json: the
            // error's, unless the command already printed its own.
            if json && !output::printed() {
                output::print_json(&f.to_json());
            }
            f.exit.code()
        }
    }
}

/// clap's error (or help and version, which are not errors), as clap prints
/// it; with `--json` among pidguard's own arguments (before `--`: not one
/// of the supervised command's), also as one JSON object.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind as K;
    let informational = matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !informational && asks_for_json(std::env::args_os().skip(1)) {
        let message = e.render().to_string();
        let first = message.lines().next().unwrap_or_default();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let f = Failure::new(Exit::Usage, first);
        output::print_json(&f.to_json());
    }
    e.exit()
}

/// Whether `--json` is among the arguments before `--` (after it they are
/// the supervised command's).
fn asks_for_json(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

fn run(cli: cli::Cli) -> Result<Exit, Failure> {
    use cli::Command as C;
    match cli.command {
        C::Run(args) => commands::run::run(args),
        C::Status(args) => commands::status::run(args),
        C::Pid(args) => commands::pid::run(args),
        C::Path(args) => commands::path::run(args),
        C::List(args) => commands::list::run(args),
        C::Sweep(args) => commands::sweep::run(args),
        C::Ensure(args) => commands::ensure::run(args),
        C::Stop(args) => commands::stop::run(args),
        C::Signal(args) => commands::signal::run(args),
        C::Wait(args) => commands::wait::run(args),
        C::Man(args) => commands::man::run(args),
        C::Completions(args) => commands::completions::run(args),
    }
}
