//! The common `run` lines without clap: `run [--exec] [--json] [--fsync]
//! (-p PATH | --pidfile PATH | --name NAME) -- CMD [ARG…]`, each option at
//! most once, in any order. Parsing them with clap costs more instructions
//! than the whole lock protocol (about 150,000 of a `run --exec`'s
//! 160,000, callgrind); this takes them in a few hundred.
//!
//! Anything else (another option, a repeated one, a value that is empty,
//! starts with `-` or is not UTF-8 where clap wants a `String`, a missing
//! `--` or command) is declined (`None`) and clap parses the line as
//! always, with its own errors and help. The tests check that every line
//! taken here is parsed by clap to the same value.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{
    BackendArgs, Cli, Command, CreateArgs, DaemonArgs, EtcdUserArgs, FileArgs, RunArgs, Target,
};

/// `args` (the program name first) as clap would parse them, or `None`
/// where this parser does not take the line.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let mut it = args.iter().skip(1);
    if it.next()? != "run" {
        return None;
    }
    let (mut exec, mut json, mut fsync) = (false, false, false);
    let mut target: Option<Target> = None;
    loop {
        let a = it.next()?;
        let a = a.to_str()?;
        match a {
            "--" => break,
            "--exec" => set(&mut exec)?,
            "--json" => set(&mut json)?,
            "--fsync" => set(&mut fsync)?,
            "-p" | "--pidfile" | "--name" => {
                if target.is_some() {
                    return None;
                }
                let v = it.next()?;
                if v.is_empty() || v.as_encoded_bytes().starts_with(b"-") {
                    return None;
                }
                target = Some(if a == "--name" {
                    Target {
                        pidfile: None,
                        name: Some(v.to_str()?.to_owned()),
                    }
                } else {
                    Target {
                        pidfile: Some(PathBuf::from(v)),
                        name: None,
                    }
                });
            }
            _ => return None,
        }
    }
    let command: Vec<OsString> = it.cloned().collect();
    if command.is_empty() {
        return None;
    }
    Some(Cli {
        command: Command::Run(RunArgs {
            file: FileArgs {
                target: target?,
                instance: None,
                json,
            },
            create: CreateArgs::default(),
            wait: None,
            exec,
            fsync,
            daemon: false,
            detach: DaemonArgs::default(),
            backend: BackendArgs::default(),
            etcd_user: EtcdUserArgs::default(),
            ttl: None,
            schedule: None,
            command,
        }),
    })
}

/// A flag seen once: set; seen again: declined (clap refuses a repeat).
fn set(flag: &mut bool) -> Option<()> {
    if *flag {
        return None;
    }
    *flag = true;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::parse;
    use clap::Parser;
    use proptest::prelude::*;
    use std::ffi::OsString;

    fn line(words: &[&str]) -> Vec<OsString> {
        std::iter::once("pidguard")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// What clap gives for the line, as text (the structs are `Debug`).
    fn clap(args: &[OsString]) -> Result<String, String> {
        super::Cli::try_parse_from(args)
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.kind().to_string())
    }

    const WORDS: &[&str] = &[
        "run",
        "--exec",
        "--json",
        "--fsync",
        "-p",
        "--pidfile",
        "--name",
        "--",
        "a.pid",
        "/tmp/x.pid",
        "web",
        "-x",
        "",
        "--daemon",
        "--wait",
        "1s",
        "true",
        "--exec",
        "-p",
        "--pidfile=a",
        "status",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn a_taken_line_is_what_clap_gives(
            picks in proptest::collection::vec(0..WORDS.len(), 0..9),
            lead in proptest::bool::ANY,
        ) {
            let mut words: Vec<&str> = picks.iter().map(|&i| WORDS[i]).collect();
            if lead {
                words.insert(0, "run");
            }
            let args = line(&words);
            if let Some(fast) = parse(&args) {
                prop_assert_eq!(Ok(format!("{fast:?}")), clap(&args), "line {:?}", words);
            }
        }
    }

    #[test]
    fn the_common_lines_are_taken_and_agree_with_clap() {
        for words in [
            &["run", "-p", "a.pid", "--", "/bin/true"][..],
            &[
                "run",
                "--exec",
                "--pidfile",
                "/run/x.pid",
                "--",
                "sleep",
                "1",
            ],
            &[
                "run", "--name", "web", "--json", "--fsync", "--", "x", "--", "-p",
            ],
            &["run", "-p", "a.pid", "--exec", "--", "--exec"],
        ] {
            let args = line(words);
            let fast = parse(&args).unwrap_or_else(|| panic!("{words:?} declined"));
            assert_eq!(Ok(format!("{fast:?}")), clap(&args), "{words:?}");
        }
    }

    #[test]
    fn unusual_lines_are_declined_and_clap_answers_them() {
        for words in [
            &["run", "-p", "a.pid", "-p", "b.pid", "--", "true"][..],
            &["run", "--exec", "--exec", "-p", "a", "--", "true"],
            &["run", "-p", "a.pid", "--name", "x", "--", "true"],
            &["run", "-p", "a.pid", "--"],
            &["run", "-p", "a.pid", "true"],
            &["run", "-p", "", "--", "true"],
            &["run", "-p", "-x", "--", "true"],
            &["run", "--", "true"],
            &["run", "--daemon", "-p", "a", "--", "true"],
            &["run", "--pidfile=a", "--", "true"],
            &["status", "-p", "a"],
        ] {
            let args = line(words);
            assert!(parse(&args).is_none(), "{words:?} taken");
            // clap still parses or refuses it, as before this parser.
            let _ = clap(&args);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_name_that_is_not_utf8_is_declined() {
        let bad = vec![
            OsString::from("pidguard"),
            OsString::from("run"),
            OsString::from("--name"),
            std::os::unix::ffi::OsStringExt::from_vec(vec![0xff]),
            OsString::from("--"),
            OsString::from("true"),
        ];
        assert!(
            parse(&bad).is_none(),
            "a non-UTF-8 --name is clap's to refuse"
        );
        assert!(clap(&bad).is_err());
    }
}
