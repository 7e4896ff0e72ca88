//! `pidguard completions SHELL`: a completion script, generated from the
//! clap definition.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit::{Exit, Failure};

pub fn run(args: CompletionsArgs) -> Result<Exit, Failure> {
    let mut cmd = visible_only(Cli::command());
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "pidguard", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)
        .map_err(|e| Failure::new(Exit::IoErr, format!("cannot write to standard output: {e}")))?;
    Ok(Exit::Success)
}

/// The command line without hidden commands (`__gate`): clap_complete
/// would offer them, clap has no way to remove a subcommand, so the top
/// level is rebuilt around the visible ones.
fn visible_only(cmd: clap::Command) -> clap::Command {
    let mut out = clap::Command::new("pidguard")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .subcommand_required(true);
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    out.args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}
