//! `pidguard man`: the man pages, generated from the clap definition.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::exit::{Exit, Failure};

pub fn run(args: ManArgs) -> Result<Exit, Failure> {
    match &args.dir {
        None => {
            let mut page = Vec::new();
            render(command(), &mut page)?;
            std::io::stdout()
                .lock()
                .write_all(&page)
                .map_err(|e| io_failure("standard output", e))?;
        }
        Some(dir) => write_pages(dir)?,
    }
    Ok(Exit::Success)
}

/// The whole command line, built (so versions and bin names propagate).
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// The visible commands: neither hidden (`__gate`) nor clap's own `help`.
fn visible(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// Writes `pidguard.1` and `pidguard-<command>.1` for every visible command.
fn write_pages(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| io_failure(&dir.display().to_string(), e))?;
    let cmd = command();
    let mut pages = vec![cmd.clone()];
    for sub in visible(&cmd) {
        // clap names are &'static str without its `string` feature; this
        // runs once per command in a short-lived process.
        let name: &'static str =
            Box::leak(format!("{}-{}", cmd.get_name(), sub.get_name()).into_boxed_str());
        pages.push(sub.clone().name(name));
    }
    for page in pages {
        let path = dir.join(format!("{}.1", page.get_name()));
        let mut text = Vec::new();
        render(page, &mut text)?;
        std::fs::write(&path, text).map_err(|e| io_failure(&path.display().to_string(), e))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn render(cmd: clap::Command, out: &mut Vec<u8>) -> Result<(), Failure> {
    clap_mangen::Man::new(cmd)
        .render(out)
        .map_err(|e| io_failure("the man page", e))
}

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure::new(Exit::IoErr, format!("cannot write {what}: {e}"))
}
