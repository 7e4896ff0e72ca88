//! The man pages and shell completions generated from the clap definition.
#![cfg(unix)]

use testkit::*;

use std::process::Command;

/// Every command a user sees; `__gate` is internal and hidden.
const VISIBLE: &[&str] = &[
    "run", "status", "pid", "path", "stop", "signal", "wait", "ensure", "list", "sweep",
];

const SHELLS: &[&str] = &["bash", "zsh", "fish", "elvish", "powershell"];

fn stdout_of(args: &[&str]) -> String {
    let out = pidguard().args(args).output().unwrap();
    assert!(out.status.success(), "pidguard {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn man_prints_the_page_with_every_visible_command() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH"), "{page}");
    for name in VISIBLE {
        assert!(page.contains(name), "{name} missing from the man page");
    }
    assert!(
        !page.contains("__gate"),
        "the hidden command is in the page"
    );
    assert!(!page.contains("gate"), "the hidden command is in the page");
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let dir = tmp();
    let out_dir = dir.path().join("man1");
    let out = pidguard()
        .args(["man", "--dir"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut pages = vec!["pidguard.1".to_owned()];
    pages.extend(VISIBLE.iter().map(|n| format!("pidguard-{n}.1")));
    pages.push("pidguard-man.1".into());
    pages.push("pidguard-completions.1".into());
    for page in &pages {
        let path = out_dir.join(page);
        let roff = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(roff.contains(".TH"), "{page}: {roff}");
        assert!(
            !roff.contains("__gate"),
            "{page} mentions the hidden command"
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    pages.sort();
    assert_eq!(names, pages, "exactly these pages, no hidden one");
    let run = std::fs::read_to_string(out_dir.join("pidguard-run.1")).unwrap();
    assert!(
        run.contains(r"\-\-daemon") && run.contains("Example:"),
        "{run}"
    );

    if !have_tool("man", "--version") {
        skipped("rendering: man(1) is not installed");
        return;
    }
    for page in &pages {
        let out = Command::new("man")
            .arg("-l")
            .arg(out_dir.join(page))
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "man -l {page}: {}", text(&out));
        assert!(!out.stdout.is_empty(), "man -l {page} rendered nothing");
        assert!(!err.contains("warning"), "man -l {page}: {err}");
    }
}

#[test]
fn completions_for_every_shell() {
    for shell in SHELLS {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("pidguard"), "{shell}: {script}");
        assert!(script.contains("sweep"), "{shell} lacks a command");
        assert!(
            !script.contains("__gate"),
            "{shell} offers the hidden command"
        );
    }
}

#[test]
fn bash_completion_defines_the_function() {
    if !have_tool("bash", "--version") {
        skipped("bash is not installed");
        return;
    }
    let dir = tmp();
    let file = dir.path().join("pidguard.bash");
    std::fs::write(&file, stdout_of(&["completions", "bash"])).unwrap();
    let out = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg("source \"$1\" && complete -p pidguard")
        .arg("bash")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.contains("-F _pidguard") && line.trim_end().ends_with(" pidguard"),
        "{line}"
    );

    // The function completes the commands (without the hidden one).
    let out = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(
            "source \"$1\"; COMP_WORDS=(pidguard s); COMP_CWORD=1; COMP_LINE='pidguard s'; \
             COMP_POINT=${#COMP_LINE}; _pidguard pidguard s pidguard; printf '%s\\n' \"${COMPREPLY[@]}\"",
        )
        .arg("bash")
        .arg(&file)
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    for w in ["status", "stop", "signal", "sweep"] {
        assert!(
            words.lines().any(|l| l == w),
            "{w} not completed: {}",
            text(&out)
        );
    }
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = pidguard().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty());
    let out = pidguard().args(["completions"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn help_lists_man_and_completions_but_not_gate() {
    let help = stdout_of(&["--help"]);
    assert!(
        help.contains("man") && help.contains("completions"),
        "{help}"
    );
    assert!(!help.contains("__gate"), "{help}");
}
