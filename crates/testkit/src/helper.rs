//! Helper processes: a test that needs another process running library
//! code re-executes its own test binary, running one `#[ignore]`d test
//! (conventionally `helper_process`; the hardening suite's
//! `races::helper_role`) in a *role* given by [`ROLE`] in the environment.
//! The helper reports on stdout behind a marker, among libtest's own lines,
//! and the parent reads the reports with [`Helper::report`].

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the helper's role.
pub const ROLE: &str = "PIDGUARD_TEST_ROLE";
/// Marks a helper's report among libtest's own output.
pub const MARK: &str = "@pidguard-helper: ";

/// This process's role, when it was started as a helper.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// An environment variable a helper was started with.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("the helper needs {name} in its environment"))
}

/// Reports one line to the parent (and flushes, so it arrives at once).
pub fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n{MARK}{line}").unwrap();
    out.flush().unwrap();
}

/// A command running the `#[ignore]`d test `test_name` of this test binary
/// in `role`. SIGTERM, SIGINT and SIGHUP start with their default
/// disposition, whatever this process inherited (a runner started under
/// nohup ignores SIGHUP, for one). Standard input and output are piped
/// (the reports), standard error goes to /dev/null: set them again if the
/// test needs otherwise.
pub fn helper_command(test_name: &str, role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        test_name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(ROLE, role)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    // SAFETY: only signal(2), which is async-signal-safe, runs between fork
    // and exec.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    cmd
}

/// A running helper process, owned by the test: killed and reaped on drop.
pub struct Helper {
    pub child: Child,
    out: BufReader<ChildStdout>,
}

impl Helper {
    pub fn spawn(mut cmd: Command) -> Helper {
        let mut child = cmd.spawn().expect("cannot start a helper process");
        let out = BufReader::new(child.stdout.take().unwrap());
        Helper { child, out }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The helper's next report; "eof" if it exited without one.
    pub fn report(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            if self.out.read_line(&mut line).unwrap() == 0 {
                return String::from("eof");
            }
            if let Some(rest) = line.trim().strip_prefix(MARK) {
                return rest.to_string();
            }
        }
    }

    /// Sends `sig` to the helper (our child, not yet reaped, so its PID
    /// cannot have been reused).
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Closes the helper's stdin (a holder then releases and exits).
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Waits (up to 10 s) for the helper to exit; kills it on timeout.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the helper did not exit within 10 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes stdin and expects a clean exit.
    pub fn finish(mut self) {
        self.close_stdin();
        let status = self.wait();
        assert!(status.success(), "helper failed: {status:?}");
    }

    /// SIGKILL (our child, not yet reaped: its PID cannot have been
    /// reused), then reap; returns how it ended.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }

    /// What the helper wrote on standard error (after it ended; empty
    /// unless the test piped it).
    pub fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
