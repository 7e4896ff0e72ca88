//! Every Unix, through rustix: waiting, process groups, descriptor
//! passing. `linux.rs` and `other.rs` (FreeBSD, macOS…) export the same
//! functions on top of it: [`become_subreaper`],
//! [`contain_death`], [`pidfd_open`], [`pidfd_kill`], [`boot_now_ns`],
//! [`proc_stat`], [`children_of`], [`parent_of`], [`process_parents`],
//! [`holds_inode`] and [`open_fds`]. Without `/proc` and pidfds the
//! process-tree readers answer `None` (unknown), which the callers treat
//! as unproved: only the command's own child is signalled, by PID, and a
//! lock holder is never guessed.

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::process::ExitStatus;

use pidguard::{Pid, Signal};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::process::{self as rp, Pid as RPid};

/// A system call's error number.
pub(crate) use rustix::io::Errno;

/// `pid` for rustix's system calls (the library keeps rustix's types out of
/// its API).
fn rpid(pid: Pid) -> RPid {
    RPid::from_raw(pid.get()).expect("a Pid is in 1..=i32::MAX")
}

/// A named signal for rustix; `None` for a real-time one.
fn rsig(s: Signal) -> Option<rp::Signal> {
    rp::Signal::from_named_raw(s.as_raw())
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// This process's PID.
pub(crate) fn getpid() -> i32 {
    rp::getpid().as_raw_nonzero().get()
}

/// The effective user ID.
pub(crate) fn geteuid() -> u32 {
    rp::geteuid().as_raw()
}

/// `kill(2)` by PID: a process that already exited is not an error; a
/// signal without a name here is `InvalidInput`.
pub(crate) fn kill(pid: Pid, signal: Signal) -> io::Result<()> {
    let sig = rsig(signal).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    match rp::kill_process(rpid(pid), sig) {
        Ok(()) | Err(Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Why `pidguard signal` cannot send `signal` here: never on Unix (every
/// named signal can; a real-time one goes through the library).
pub(crate) fn unsendable(_signal: Signal) -> Option<String> {
    None
}

/// Why a `stop` schedule cannot name `signal` here: never on Unix.
pub(crate) fn unschedulable(_signal: Signal) -> Option<String> {
    None
}

/// Sends `signal` to the process group `pgid`; `true` if the group has a
/// member it reached.
pub(crate) fn kill_group(pgid: i32, signal: Signal) -> bool {
    match (RPid::from_raw(pgid), rsig(signal)) {
        (Some(g), Some(s)) => rp::kill_process_group(g, s).is_ok(),
        _ => false,
    }
}

/// In a child between fork and exec: a new session (`setsid`) and the
/// file mode mask. Async-signal-safe.
pub(crate) fn new_session(umask: Option<u32>) -> io::Result<()> {
    rp::setsid()?;
    if let Some(m) = umask {
        rp::umask(rustix::fs::Mode::from_raw_mode(m as _));
    }
    Ok(())
}

/// Whether `child` is in our process group (so a signal the terminal sent
/// to our foreground group reached it too).
pub(crate) fn in_our_group(child: Pid) -> bool {
    match rp::getpgid(Some(rpid(child))) {
        Ok(group) => group == rp::getpgrp(),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

/// Reaps our child `pid` if it has exited.
pub(crate) fn reap(pid: Pid) -> Option<ExitStatus> {
    reap_raw(pid.get())
}

/// [`reap`] for a raw PID.
pub(crate) fn reap_raw(pid: i32) -> Option<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let pid = RPid::from_raw(pid)?;
    loop {
        match rp::waitpid(Some(pid), rp::WaitOptions::NOHANG) {
            Ok(Some((_, st))) => return Some(ExitStatus::from_raw(st.as_raw())),
            Ok(None) => return None,
            Err(Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Waits for our child `pid` to exit and reaps it (one that is not our
/// child, or already reaped, returns at once).
pub(crate) fn reap_blocking(pid: i32) {
    let Some(p) = RPid::from_raw(pid) else { return };
    while let Err(Errno::INTR) = rp::waitpid(Some(p), rp::WaitOptions::empty()) {}
}

/// Reaps one exited child of ours, if any: `Ok(None)` when none has
/// exited, `Err(ECHILD)` when we have no children.
pub(crate) fn reap_any() -> Result<Option<(i32, ExitStatus)>, Errno> {
    use std::os::unix::process::ExitStatusExt;
    rp::wait(rp::WaitOptions::NOHANG).map(|r| {
        r.map(|(pid, st)| {
            (
                pid.as_raw_nonzero().get(),
                ExitStatus::from_raw(st.as_raw()),
            )
        })
    })
}

/// Reaps every child of ours that has exited.
pub(crate) fn reap_children() {
    loop {
        match reap_any() {
            Ok(Some(_)) => {}
            Err(Errno::INTR) => {}
            _ => return,
        }
    }
}

/// Blocks until our child `pid` has exited, without reaping it.
pub(crate) fn wait_exited(pid: i32) -> io::Result<()> {
    let p = RPid::from_raw(pid).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        match rp::waitid(
            rp::WaitId::Pid(p),
            rp::WaitIdOptions::EXITED | rp::WaitIdOptions::NOWAIT,
        ) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether our child `pid` exists and has not exited.
pub(crate) fn child_running(pid: Pid) -> bool {
    matches!(
        rp::waitid(
            rp::WaitId::Pid(rpid(pid)),
            rp::WaitIdOptions::EXITED | rp::WaitIdOptions::NOHANG | rp::WaitIdOptions::NOWAIT
        ),
        Ok(None)
    )
}

/// Whether we still have any child (running or not yet reaped).
pub(crate) fn has_children() -> bool {
    !matches!(
        rp::waitid(
            rp::WaitId::All,
            rp::WaitIdOptions::EXITED | rp::WaitIdOptions::NOHANG | rp::WaitIdOptions::NOWAIT
        ),
        Err(Errno::CHILD)
    )
}

/// Waits up to `timeout_ns` (forever for `None`) for `fd` to be readable:
/// `Ok(false)` on timeout.
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout_ns: Option<i128>) -> Result<bool, Errno> {
    let timeout = timeout_ns.map(|ns| rustix::time::Timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as _,
    });
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    rustix::event::poll(&mut fds, timeout.as_ref()).map(|n| n > 0)
}

/// `read(2)`.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    rustix::io::read(fd, buf)
}

// ---------------------------------------------------------------------------
// Files and descriptors
// ---------------------------------------------------------------------------

/// The `(dev, ino)` of the file behind `fd`.
pub(crate) fn inode(fd: impl AsFd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    // Their widths differ between platforms.
    #[allow(clippy::unnecessary_cast)]
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// `open(2)` flags for a log file: no blocking on a FIFO, no controlling
/// terminal, and (`nofollow`) no symlink in the last component.
pub(crate) fn log_open_flags(nofollow: bool) -> i32 {
    use rustix::fs::OFlags;
    let mut flags = OFlags::NONBLOCK | OFlags::NOCTTY;
    if nofollow {
        flags |= OFlags::NOFOLLOW;
    }
    flags.bits() as i32
}

/// Clears `O_NONBLOCK` (set for opening only) on an opened log file.
pub(crate) fn clear_nonblock(file: &File) {
    use rustix::fs::OFlags;
    let _ = rustix::fs::fcntl_setfl(
        file,
        rustix::fs::fcntl_getfl(file)
            .map(|f| f - OFlags::NONBLOCK)
            .unwrap_or(OFlags::APPEND),
    );
}

/// Marks every descriptor above 2 close-on-exec (`listed`, what
/// [`open_fds`](super::open_fds) answered, or every number below the
/// descriptor limit where it could not list them), so a daemon started
/// next inherits none of them.
pub(crate) fn close_on_exec_above_stdio(listed: Option<Vec<i32>>) {
    use rustix::io::{fcntl_getfd, fcntl_setfd, FdFlags};
    let fds: Vec<i32> = match listed {
        Some(fds) => fds,
        None => {
            let limit = rp::getrlimit(rp::Resource::Nofile)
                .current
                .unwrap_or(1 << 16)
                .min(1 << 16);
            (3..limit as i32).collect()
        }
    };
    for fd in fds.into_iter().filter(|&fd| fd > 2) {
        // SAFETY: only the descriptor's flags are read and changed; a
        // number that is not open (any more) fails with EBADF.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = fcntl_getfd(fd) {
            let _ = fcntl_setfd(fd, flags | FdFlags::CLOEXEC);
        }
    }
}

/// A connected pair of Unix stream sockets, close-on-exec.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(not(target_vendor = "apple"))]
    let flags = SocketFlags::CLOEXEC;
    // Apple systems have no SOCK_CLOEXEC: set it just after (a process
    // forked by another thread in between would inherit the pair).
    #[cfg(target_vendor = "apple")]
    let flags = SocketFlags::empty();
    let (a, b) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, flags, None)?;
    #[cfg(target_vendor = "apple")]
    for fd in [&a, &b] {
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
    }
    Ok((a, b))
}

/// Closes a raw descriptor (in a child between fork and exec).
///
/// # Safety
/// `fd` must be open and not used afterwards by anything.
pub(crate) unsafe fn close_raw(fd: RawFd) {
    // SAFETY: the caller's promise.
    unsafe { rustix::io::close(fd) }
}

/// `ECANCELED`, as an I/O error.
pub(crate) fn canceled() -> io::Error {
    io::Error::from_raw_os_error(Errno::CANCELED.raw_os_error())
}

pub(crate) fn write_all(sock: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(sock, bytes) {
            Ok(0) => return Err(io::Error::from_raw_os_error(Errno::PIPE.raw_os_error())),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub(crate) fn read_exact(sock: &OwnedFd, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::read(sock, &mut *buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Sends one descriptor with `SCM_RIGHTS`.
pub(crate) fn send_fd(sock: &OwnedFd, fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(b"L")],
        &mut control,
        // No SIGPIPE if the child is gone (Rust programs ignore it anyway;
        // Apple systems have no MSG_NOSIGNAL).
        #[cfg(not(target_vendor = "apple"))]
        SendFlags::NOSIGNAL,
        #[cfg(target_vendor = "apple")]
        SendFlags::empty(),
    )?;
    Ok(())
}

/// Receives one descriptor sent with `SCM_RIGHTS` (allocation-free):
/// `Ok(None)` at the end of file (the sender gave up), an error when
/// `recvmsg` fails or a message came without its descriptor (a truncated
/// control message, a descriptor refused on the way: `EBADMSG`).
pub(crate) fn receive_fd(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    loop {
        match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::empty()) {
            Ok(msg) if msg.bytes == 0 => return Ok(None),
            Ok(_) => break,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    control
        .drain()
        .find_map(|m| match m {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        })
        .map(Some)
        .ok_or_else(|| io::Error::from_raw_os_error(Errno::BADMSG.raw_os_error()))
}

// ---------------------------------------------------------------------------
// Starting a command: fork, set up, a gate, exec
// ---------------------------------------------------------------------------

/// A command prepared for [`fork_exec`]: everything the child needs is
/// made here, in the parent (paths to try, argument and environment
/// arrays), so that the child between fork and exec allocates nothing.
///
/// The program is looked up in `PATH` as `execvp(3)` does (a name with a
/// `/` is used as it is): every candidate is tried in order, a file that
/// cannot be executed (EACCES) is remembered and the search goes on, and
/// a file that is not an executable format (ENOEXEC) runs with `/bin/sh`.
pub(crate) struct Exec {
    candidates: Vec<std::ffi::CString>,
    argv: Vec<std::ffi::CString>,
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    dir: Option<std::ffi::CString>,
    stdio: [Option<OwnedFd>; 3],
    session: Option<Option<u32>>,
}

/// The step of [`fork_exec`]'s child that failed (the child's report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExecStep {
    /// Giving stdin, stdout or stderr their descriptor.
    Stdio,
    /// Changing to the working directory.
    Chdir,
    /// `setsid` (a new session).
    Session,
    /// The caller's gate.
    Gate,
    /// `execve` of every candidate.
    Exec,
}

impl ExecStep {
    fn code(self) -> i32 {
        self as i32 + 1
    }

    /// The step a report's code names.
    pub(crate) fn from_code(code: i32) -> Option<ExecStep> {
        [
            ExecStep::Stdio,
            ExecStep::Chdir,
            ExecStep::Session,
            ExecStep::Gate,
            ExecStep::Exec,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

fn cstring(bytes: &[u8], what: &str) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

impl Exec {
    /// `command[0]` with the arguments `command[1..]`, our environment,
    /// our working directory and our stdio.
    pub(crate) fn new(command: &[std::ffi::OsString]) -> io::Result<Exec> {
        use std::os::unix::ffi::OsStrExt;
        let program = command
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command"))?;
        let name = program.as_bytes();
        if name.is_empty() {
            return Err(io::Error::from_raw_os_error(Errno::NOENT.raw_os_error()));
        }
        let candidates = if name.contains(&b'/') {
            vec![cstring(name, "the command")?]
        } else {
            // execvp's default search path where PATH is unset.
            let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
            let mut all = Vec::new();
            for dir in path.as_bytes().split(|&b| b == b':') {
                let mut full = Vec::with_capacity(dir.len() + 1 + name.len());
                // An empty entry is the current directory.
                if !dir.is_empty() {
                    full.extend_from_slice(dir);
                    full.push(b'/');
                }
                full.extend_from_slice(name);
                all.push(cstring(&full, "the command")?);
            }
            all
        };
        let argv = command
            .iter()
            .map(|a| cstring(a.as_bytes(), "an argument"))
            .collect::<io::Result<_>>()?;
        Ok(Exec {
            candidates,
            argv,
            env: Vec::new(),
            dir: None,
            stdio: [None, None, None],
            session: None,
        })
    }

    /// Sets `key` in the command's environment (ours otherwise).
    pub(crate) fn env(
        &mut self,
        key: impl Into<std::ffi::OsString>,
        value: impl Into<std::ffi::OsString>,
    ) {
        self.env.push((key.into(), value.into()));
    }

    /// The command's working directory.
    pub(crate) fn dir(&mut self, dir: &std::path::Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        self.dir = Some(cstring(dir.as_os_str().as_bytes(), "the directory")?);
        Ok(())
    }

    /// Descriptor `n` (0, 1 or 2) of the command.
    pub(crate) fn stdio(&mut self, n: usize, fd: OwnedFd) {
        self.stdio[n] = Some(fd);
    }

    /// A new session (`setsid`), and the file mode mask if given.
    pub(crate) fn new_session(&mut self, umask: Option<u32>) {
        self.session = Some(umask);
    }

    /// The environment as `KEY=VALUE` strings: ours, with [`Exec::env`]'s
    /// keys replaced.
    fn environment(&self) -> io::Result<Vec<std::ffi::CString>> {
        use std::os::unix::ffi::OsStrExt;
        let mut vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
            .filter(|(k, _)| !self.env.iter().any(|(o, _)| o == k))
            .collect();
        vars.extend(self.env.iter().cloned());
        vars.iter()
            .map(|(k, v)| {
                let mut kv = Vec::with_capacity(k.len() + 1 + v.len());
                kv.extend_from_slice(k.as_bytes());
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(&kv, "an environment variable")
            })
            .collect()
    }
}

/// The process's environment, as the C library keeps it.
fn our_environ() -> *const *const libc::c_char {
    #[cfg(target_vendor = "apple")]
    {
        // SAFETY: _NSGetEnviron returns a pointer to the environ variable.
        unsafe { *libc::_NSGetEnviron() as *const *const libc::c_char }
    }
    #[cfg(not(target_vendor = "apple"))]
    {
        extern "C" {
            static environ: *const *const libc::c_char;
        }
        // SAFETY: a read of the C library's variable; nothing in this
        // process writes it (std's set_var is not used).
        unsafe { environ }
    }
}

/// A null-terminated array of pointers into `strings`.
fn pointers(strings: &[std::ffi::CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Forks a child that sets itself up as `exec` says, runs `gate`, then
/// execs the command (returns its PID). A child whose step fails writes
/// `(step, errno)` as two native-endian `i32`s to `report` and exits
/// with 127; once it has exec'd, `report` (close-on-exec) is closed.
/// SIGPIPE (ignored by Rust programs) is set back to its default just
/// before the exec, as `std::process::Command` does; the signal mask is
/// inherited.
///
/// # Safety
/// The process must be single-threaded (the child of a multi-threaded
/// process may call only async-signal-safe functions, and the child here
/// runs `gate`), or `gate` must make only async-signal-safe calls, as must
/// this function's child (it does: system calls on prepared memory only).
/// `report` must be a descriptor that stays open in the child.
pub(crate) unsafe fn fork_exec(
    exec: &Exec,
    report: RawFd,
    gate: impl FnOnce() -> io::Result<()>,
) -> io::Result<i32> {
    // Our own environment as it is, unless variables are set: the C
    // library's `environ` (nothing in pidguard changes it: no set_var).
    let built;
    let envp_ptr = if exec.env.is_empty() {
        our_environ()
    } else {
        let strings = exec.environment()?;
        built = (pointers(&strings), strings);
        built.0.as_ptr()
    };
    let argv = pointers(&exec.argv);
    // For ENOEXEC: `/bin/sh CANDIDATE ARGS…`, slot 1 set in the child.
    let sh = c"/bin/sh";
    let mut sh_argv: Vec<*const libc::c_char> = Vec::with_capacity(argv.len() + 1);
    sh_argv.push(sh.as_ptr());
    sh_argv.push(std::ptr::null());
    sh_argv.extend(argv.iter().skip(1));
    // SAFETY: fork itself is safe; the child runs only `child` below.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: this is the child of fork; see `child`.
            let (step, errno) = unsafe { child(exec, gate, &argv, &mut sh_argv, envp_ptr) };
            if step != ExecStep::Gate || errno != Errno::CANCELED.raw_os_error() {
                let mut word = [0u8; 8];
                word[..4].copy_from_slice(&step.code().to_ne_bytes());
                word[4..].copy_from_slice(&errno.to_ne_bytes());
                // SAFETY: `report` is open in this child (the caller's promise).
                let _ = write_all(unsafe { BorrowedFd::borrow_raw(report) }, &word);
            }
            // SAFETY: _exit is async-signal-safe and runs no destructor.
            unsafe { libc::_exit(127) }
        }
        pid => Ok(pid),
    }
}

/// The child's side of [`fork_exec`]: only system calls on memory the
/// parent prepared. Returns only on failure, with the step and errno.
unsafe fn child(
    exec: &Exec,
    gate: impl FnOnce() -> io::Result<()>,
    argv: &[*const libc::c_char],
    sh_argv: &mut [*const libc::c_char],
    envp: *const *const libc::c_char,
) -> (ExecStep, i32) {
    let errno = |e: Errno| e.raw_os_error();
    let io_errno = |e: io::Error| e.raw_os_error().unwrap_or(Errno::INVAL.raw_os_error());
    for (n, fd) in exec.stdio.iter().enumerate() {
        let Some(fd) = fd else { continue };
        // SAFETY: 0, 1 and 2 are open in every Rust program (std opens
        // /dev/null for a closed one at start-up); dup2 replaces them.
        let mut target = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(n as RawFd) };
        let done = if std::os::fd::AsRawFd::as_raw_fd(fd) == n as RawFd {
            // Already in place: only drop close-on-exec.
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())
        } else {
            rustix::io::dup2(fd, &mut target)
        };
        // The target stays open for the command.
        std::mem::forget(target);
        if let Err(e) = done {
            return (ExecStep::Stdio, errno(e));
        }
    }
    if let Some(dir) = &exec.dir {
        if let Err(e) = rustix::process::chdir(dir.as_c_str()) {
            return (ExecStep::Chdir, errno(e));
        }
    }
    if let Some(umask) = exec.session {
        if let Err(e) = new_session(umask) {
            return (ExecStep::Session, io_errno(e));
        }
    }
    if let Err(e) = gate() {
        return (ExecStep::Gate, io_errno(e));
    }
    // SAFETY: SIGPIPE's default action back (Rust programs ignore it, and
    // an ignored signal stays ignored across exec): a plain system call,
    // async-signal-safe. The signal mask is inherited as it is, as std's
    // Command and env(1) leave it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let mut denied = false;
    let mut last = Errno::NOENT.raw_os_error();
    for path in &exec.candidates {
        // SAFETY: null-terminated arrays of pointers to C strings that
        // live in the parent's memory, copied into this child.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp) };
        let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if e == Errno::NOEXEC.raw_os_error() {
            sh_argv[1] = path.as_ptr();
            // SAFETY: as above.
            unsafe { libc::execve(sh_argv[0], sh_argv.as_ptr(), envp) };
            return (
                ExecStep::Exec,
                io::Error::last_os_error().raw_os_error().unwrap_or(0),
            );
        }
        if e == Errno::ACCESS.raw_os_error() {
            denied = true;
        } else if ![
            Errno::NOENT,
            Errno::NOTDIR,
            Errno::STALE,
            Errno::NODEV,
            Errno::TIMEDOUT,
        ]
        .iter()
        .any(|x| x.raw_os_error() == e)
        {
            return (ExecStep::Exec, e);
        }
        last = e;
    }
    if denied {
        last = Errno::ACCESS.raw_os_error();
    }
    (ExecStep::Exec, last)
}
