//! The `pidguard` command.

mod cli;
mod commands;
mod duration;
mod exit;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::{Exit, Failure};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == commands::job::WATCHDOG_ARG)
    {
        return commands::job::watchdog_main(&args[2..]);
    }
    let cli = cli::Cli::parse_from(args);
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(f) => {
            eprintln!("pidguard: {}", f.message);
            f.exit.into()
        }
    }
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
