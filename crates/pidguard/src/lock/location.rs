//! Standard locations: where `Pidfile::named("app")` puts its file.
//!
//! | who | where |
//! |---|---|
//! | root (effective UID 0) | `/run/app.pid` |
//! | a user, with a private `$XDG_RUNTIME_DIR` | `$XDG_RUNTIME_DIR/app/app.pid` |
//! | a user, with a private `/run/user/<uid>` | `/run/user/<uid>/app/app.pid` |
//! | a user, otherwise (Linux and other Unix) | `${XDG_CACHE_HOME:-~/.cache}/app/app.pid` |
//! | a user, otherwise (macOS) | `~/Library/Application Support/app/app.pid` |
//! | Windows (any user) | `%LOCALAPPDATA%\app\app.pid` |
//!
//! A runtime directory is used only when it exists, is owned by the user and
//! is not group- or world-writable. `.instance(key)` adds a directory
//! `instance-<hash>` (12 hex digits of a hash of the key) before the file
//! name, e.g. `/run/app/instance-3f2a9c0d1b4e/app.pid`, so that one
//! application can run once per project, per port, per checkout.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys;

/// Directory mode for directories pidguard creates on the way to a PID file
/// the caller named explicitly.
pub(crate) const PUBLIC_DIR_MODE: u32 = 0o755;
/// Directory mode for per-user private directories.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;

/// Checks an application name: it becomes a file name, so it must be one
/// plain path component.
pub(crate) fn validate_name(app: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+');
    if app.is_empty() || app.len() > 64 || app.starts_with('.') || !app.chars().all(ok_char) {
        return Err(Error::invalid_name(format!(
            "{app:?} is not usable as a PID file name: use 1 to 64 characters \
             from A-Z a-z 0-9 . _ - @ +, not starting with '.'"
        )));
    }
    Ok(())
}

/// A short, stable hash of an instance key (FNV-1a, 64 bits, 12 hex digits).
pub(crate) fn instance_dir(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("instance-{:012x}", h >> 16)
}

/// Resolves `named(app)` (+ `instance(key)`) to a path and the mode for
/// directories created on the way.
pub(crate) fn resolve(app: &str, instance: Option<&str>) -> Result<(PathBuf, u32)> {
    validate_name(app)?;
    let file = format!("{app}.pid");
    // Windows has no root, no /run: the user's local application data.
    if cfg!(windows) {
        let base = std::env::var_os("LOCALAPPDATA")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .ok_or_else(|| {
                Error::no_location(format!(
                    "no place for PID file {file:?}: %LOCALAPPDATA% is not set or not an \
                     absolute path; set it or give an explicit path"
                ))
            })?;
        let mut dir = base.join(app);
        if let Some(key) = instance {
            dir.push(instance_dir(key));
        }
        return Ok((dir.join(file), PRIVATE_DIR_MODE));
    }
    let euid = sys::geteuid();
    if euid == 0 {
        let path = match instance {
            None => Path::new("/run").join(&file),
            Some(key) => Path::new("/run")
                .join(app)
                .join(instance_dir(key))
                .join(&file),
        };
        return Ok((path, PUBLIC_DIR_MODE));
    }
    let base = user_base(euid).ok_or_else(|| {
        Error::no_location(format!(
            "no place for PID file {file:?}: $XDG_RUNTIME_DIR and /run/user/{} are \
             missing or not private, and no home directory is known; set \
             XDG_RUNTIME_DIR or give an explicit path",
            euid
        ))
    })?;
    let mut dir = base.join(app);
    if let Some(key) = instance {
        dir.push(instance_dir(key));
    }
    Ok((dir.join(file), PRIVATE_DIR_MODE))
}

/// The per-user base directory.
fn user_base(uid: u32) -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        if private_dir(&x, uid) {
            return Some(x);
        }
    }
    let run_user = PathBuf::from(format!("/run/user/{uid}"));
    if private_dir(&run_user, uid) {
        return Some(run_user);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())?;
    if cfg!(target_os = "macos") {
        return Some(home.join("Library/Application Support"));
    }
    match std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from) {
        Some(c) if c.is_absolute() => Some(c),
        _ => Some(home.join(".cache")),
    }
}

/// An existing directory (not a symlink), owned by `uid`, with no group or
/// world write permission.
fn private_dir(dir: &Path, uid: u32) -> bool {
    if !dir.is_absolute() {
        return false;
    }
    match sys::lstat(dir) {
        Ok(st) => {
            sys::is_dir(&st)
                && st.st_uid == uid
                && st.st_mode & 0o022 == 0
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_safe_components() {
        for ok in ["app", "my-app_2", "a.b", "x@y"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "../x", "é"] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidName, "{bad}");
        }
        assert!(validate_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn instance_hash_is_stable_and_distinct() {
        assert_eq!(instance_dir("/home/me/proj"), instance_dir("/home/me/proj"));
        assert_ne!(instance_dir("a"), instance_dir("b"));
        let d = instance_dir("x");
        assert_eq!(d.len(), "instance-".len() + 12, "{d}");
    }
}
