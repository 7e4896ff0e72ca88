//! The platform seams hold: the library's `src/sys/` and the command's
//! `crates/pidguard-cli/src/sys/` are the only code that names rustix or
//! libc, or reads a `/proc` path (README, "Layout"). Everything else goes
//! through `sys`, so that a platform is one file there.

use std::path::{Path, PathBuf};

/// Files outside `sys/` allowed to name a `/proc` path, and why.
/// None: the etcd backend, which reads hostname and boot ID, is its own
/// crate (crates/pidguard-etcd) outside this seam.
const PROC_EXEMPT: &[(&str, &str)] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The line without its `//` comment (a `//` inside a string literal, as
/// in a URL, is kept: quotes before it are counted).
fn code_of(line: &str) -> &str {
    let mut in_str = false;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_str = !in_str,
            b'/' if !in_str && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Whether `code` names `krate` as a path (`rustix::…`, `use rustix`),
/// not as part of a longer identifier.
fn names_crate(code: &str, krate: &str) -> bool {
    code.match_indices(krate).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = &code[i + krate.len()..];
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && (after.starts_with("::") || code[..i].trim_end().ends_with("use"))
    })
}

/// Every place outside `src/<seam>` of `crate_dir` (called `label`) that names
/// rustix or libc, or a `/proc` path, as "file:line: what".
fn leaks(crate_dir: &Path, label: &str, seam: &[&str]) -> Vec<String> {
    let src = crate_dir.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let rel_str = rel.to_string_lossy().replace('\\', "/");
        if seam
            .iter()
            .any(|s| rel_str == *s || rel_str.starts_with(&format!("{s}/")))
        {
            continue;
        }
        let proc_ok = PROC_EXEMPT.iter().any(|(f, _)| *f == rel_str);
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line);
            for krate in ["rustix", "libc"] {
                if names_crate(code, krate) {
                    found.push(format!(
                        "{label}/src/{rel_str}:{}: names {krate}: {}",
                        n + 1,
                        line.trim()
                    ));
                }
            }
            if !proc_ok && (code.contains("\"/proc/") || code.contains("\"/proc\"")) {
                found.push(format!(
                    "{label}/src/{rel_str}:{}: reads a /proc path: {}",
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

#[test]
fn only_sys_names_rustix_libc_or_proc() {
    let leaks = leaks(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        "crates/pidguard",
        &["sys"],
    );
    assert!(
        leaks.is_empty(),
        "system calls outside the platform seam (crates/pidguard/src/sys/): move each \
         behind a function in sys/mod.rs (every Unix) or sys/linux.rs + sys/other.rs \
         (per platform), documented in sys/mod.rs's contract:\n  {}",
        leaks.join("\n  ")
    );
}

#[test]
fn only_the_commands_sys_names_rustix_libc_or_proc() {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pidguard-cli");
    if !cli.join("src/main.rs").exists() {
        // A packaged crate, outside the workspace.
        // Only a packaged pidguard runs this without the CLI beside it (in
        // the workspace it is always there): no record for ./test.sh, which
        // runs in the workspace, and no dependency on the workspace's
        // testkit, so that this test stays in the package.
        eprintln!("skipped: crates/pidguard-cli is not here (a packaged crate)");
        return;
    }
    let leaks = leaks(&cli, "crates/pidguard-cli", &["sys"]);
    assert!(
        leaks.is_empty(),
        "system calls outside the command's platform seam (crates/pidguard-cli/src/sys/): \
         move each behind a function in sys/mod.rs (every Unix) or sys/linux.rs + \
         sys/other.rs (per platform):\n  {}",
        leaks.join("\n  ")
    );
}

#[test]
fn the_scanner_sees_what_it_should() {
    assert!(names_crate("use rustix::fs::Stat;", "rustix"));
    assert!(names_crate("let x = libc::getpid();", "libc"));
    assert!(names_crate("use libc;", "libc"));
    assert!(!names_crate(
        "use crate::sys::signo as libc_consts;",
        "libc"
    ));
    assert!(!names_crate("fn to_rustix(self)", "rustix"));
    assert_eq!(code_of("a(); // rustix::x"), "a(); ");
    assert_eq!(code_of(r#"f("http://x") // c"#), r#"f("http://x") "#);
}
