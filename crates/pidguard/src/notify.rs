//! The systemd notification protocol (`sd_notify(3)`), daemon side.
//!
//! A service manager that wants to know when a daemon is ready (systemd with
//! `Type=notify`, `pidguard run --daemon --notify`) binds a Unix datagram
//! socket and passes its address in `$NOTIFY_SOCKET`: an absolute path, or an
//! abstract socket name written with a leading `@`. The daemon sends it
//! newline-separated assignments such as `READY=1` or `MAINPID=1234`, one
//! datagram per call.

use std::io;
#[cfg(unix)]
use std::{ffi::OsStr, os::unix::ffi::OsStrExt, os::unix::net::UnixDatagram, path::Path};

/// The environment variable naming the manager's socket.
#[cfg(unix)]
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Tells the service manager that start-up is complete: sends `READY=1` to
/// `$NOTIFY_SOCKET`.
///
/// Returns `Ok(true)` when the notification was sent, and `Ok(false)` when
/// `$NOTIFY_SOCKET` is unset or empty (no manager is listening: nothing to
/// do). An address that is neither an absolute path nor `@` followed by an
/// abstract socket name (systemd's `vsock:` addresses, for one) is refused
/// with [`io::ErrorKind::Unsupported`]; an error sending the datagram (no
/// socket at that path, say) is returned as it is.
///
/// Call it once the daemon serves requests, after it holds its PID file.
/// The variable is left set, so programs the daemon starts inherit it.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let socket = dir.path().join("notify");
/// # // What the service manager does before starting the daemon:
/// # let manager = std::os::unix::net::UnixDatagram::bind(&socket)?;
/// # std::env::set_var("NOTIFY_SOCKET", &socket);
/// // ... acquire the PID file, open listening sockets, then:
/// if pidguard::notify_ready()? {
///     eprintln!("told the service manager we are ready");
/// }
/// # let mut buf = [0; 64];
/// # let n = manager.recv(&mut buf)?;
/// # assert_eq!(&buf[..n], b"READY=1");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn notify_ready() -> io::Result<bool> {
    notify_state("READY=1")
}

/// Sends `state`, one or more newline-separated assignments (`"READY=1"`,
/// `"READY=1\nMAINPID=1234"`, `"STATUS=loading data"`, `"STOPPING=1"`), to
/// the service manager at `$NOTIFY_SOCKET` as one datagram.
///
/// Returns `Ok(false)` without sending anything when `$NOTIFY_SOCKET` is
/// unset or empty, and `Ok(true)` once the datagram is sent. An empty
/// `state` is refused with [`io::ErrorKind::InvalidInput`]. Other errors as
/// for `notify_ready`.
pub fn notify_state(state: &str) -> io::Result<bool> {
    // Windows has no systemd: as on Unix outside it, nothing to notify.
    #[cfg(windows)]
    return {
        let _ = state;
        Ok(false)
    };
    #[cfg(unix)]
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(address) if !address.is_empty() => {
            send(&address, state.as_bytes())?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Sends `state` as one datagram to the notification socket `address` (the
/// value of `$NOTIFY_SOCKET`).
#[cfg(unix)]
fn send(address: &OsStr, state: &[u8]) -> io::Result<()> {
    if state.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty notification carries no state: send assignments such as READY=1",
        ));
    }
    let bytes = address.as_bytes();
    let target = match bytes.first() {
        Some(b'/') => Target::Path(Path::new(address)),
        Some(b'@') => Target::Abstract(&bytes[1..]),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{NOTIFY_SOCKET}={address:?} is neither an absolute socket path nor an \
                     abstract socket name starting with @; no notification sent"
                ),
            ))
        }
    };
    let socket = UnixDatagram::unbound()?;
    let sent = loop {
        match target.send(&socket, state) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    }
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot notify the service manager at {NOTIFY_SOCKET}={address:?}: {e}"),
        )
    })?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!(
                "the notification to {address:?} was truncated ({sent} of {} bytes sent)",
                state.len()
            ),
        ));
    }
    Ok(())
}

/// Where a notification goes.
#[cfg(unix)]
enum Target<'a> {
    /// A socket bound to a path in the filesystem.
    Path(&'a Path),
    /// A Linux abstract socket: the name without the leading `@`.
    Abstract(&'a [u8]),
}

#[cfg(unix)]
impl Target<'_> {
    fn send(&self, socket: &UnixDatagram, state: &[u8]) -> io::Result<usize> {
        match self {
            Target::Path(path) => socket.send_to(state, path),
            Target::Abstract(name) => send_abstract(socket, name, state),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(socket: &UnixDatagram, name: &[u8], state: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;

    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(state, &addr)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn send_abstract(_socket: &UnixDatagram, _name: &[u8], _state: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract Unix sockets (a NOTIFY_SOCKET starting with @) exist only on Linux",
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn recv(socket: &UnixDatagram) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn sends_one_datagram_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), b"READY=1\nMAINPID=123").unwrap();
        assert_eq!(recv(&manager), b"READY=1\nMAINPID=123");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("pidguard-notify-unit-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&addr).unwrap();
        send(OsStr::new(&format!("@{name}")), b"READY=1").unwrap();
        assert_eq!(recv(&manager), b"READY=1");
    }

    #[test]
    fn refuses_relative_and_vsock_addresses_and_empty_state() {
        for address in ["notify.sock", "vsock:2:1234"] {
            let e = send(OsStr::new(address), b"READY=1").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{address}: {e}");
        }
        let e = send(OsStr::new("/nonexistent/notify"), b"").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn reports_a_missing_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody-listens");
        let e = send(path.as_os_str(), b"READY=1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("nobody-listens"), "{e}");
    }
}
