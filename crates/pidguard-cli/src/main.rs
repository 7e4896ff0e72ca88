//! The `pidguard` command.

mod cli;
mod commands;
mod duration;
mod exit;
mod output;
mod supervise;
mod sys;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::{Exit, Failure};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == supervise::job::WATCHDOG_ARG)
    {
        return supervise::job::watchdog_main(&args[2..]);
    }
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.command.json();
    // Only a supervised `run` prints no object of its own on success.
    let silent = cli.command.prints_nothing_on_success();
    match run(cli) {
        Ok(exit) => {
            if json && silent && !output::printed() {
                output::print_json(&output::Obj::new().set("exit", exit.code()).value());
            }
            exit.into()
        }
        Err(f) => {
            eprintln!("pidguard: {}", f.message);
            // Every command prints exactly one object with --json: the
            // error's, unless the command already printed its own.
            if json && !output::printed() {
                output::print_json(&f.to_json());
            }
            f.exit.into()
        }
    }
}

/// clap's error (or help and version, which are not errors), as clap prints
/// it; with `--json` among pidguard's own arguments (before `--`: not one
/// of the supervised command's), also as one JSON object.
fn usage_error(e: clap::Error) -> ExitCode {
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
