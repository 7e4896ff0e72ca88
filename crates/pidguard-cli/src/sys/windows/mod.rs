//! What `run` needs on Windows (docs/WINDOWS.md, decision 9): a Job object
//! that keeps the command's tree together and ends it with the supervisor,
//! and a console control handler. The kernel32 calls are declared by hand
//! in `ffi.rs`.
//!
//! The supervisor puts **itself** in the job before it spawns the command,
//! so the command is in the job before it runs any code, and so is
//! everything it starts (job membership is inherited). The alternative,
//! `CreateProcessW` with `CREATE_SUSPENDED`, assigning the child, then
//! `ResumeThread`, would need the child's main-thread handle, which std's
//! `Command` closes: it would mean reimplementing `Command` (arguments
//! quoting, environment block, stdio handles) by hand. The cost of the
//! choice: the supervisor is a member too, so the job cannot be ended with
//! `TerminateJobObject` without ending the supervisor; it ends when the
//! supervisor exits, however it exits (its handle, the only one, is closed
//! by the kernel), which is the guarantee wanted.

mod ffi;

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::OnceLock;

use pidguard::Signal;

use ffi::*;

/// The job this process joined: kept open until the process exits (a
/// static is never dropped). Closing the handle earlier would end every
/// process in the job, this one included.
static JOB: OnceLock<OwnedHandle> = OnceLock::new();

/// Creates a Job object with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` and puts
/// this process in it: every process started afterwards is in it too, and
/// all of them are ended when this process exits (its handle on the job is
/// the only one). Fails if this process is in a job that forbids another
/// (before Windows 8 a process could be in one job only).
pub(crate) fn join_new_job() -> io::Result<()> {
    if JOB.get().is_some() {
        return Ok(());
    }
    // SAFETY: no security attributes, no name.
    let raw = unsafe { CreateJobObjectW(std::ptr::null_mut(), std::ptr::null()) };
    if raw.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just created, owned here.
    let job = unsafe { OwnedHandle::from_raw_handle(raw) };
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    // SAFETY: `limits` is the structure the class names, with its size.
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectExtendedLimitInformation,
            (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the job handle is valid; GetCurrentProcess is a pseudo-handle.
    if unsafe { AssignProcessToJobObject(job.as_raw_handle(), GetCurrentProcess()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let _ = JOB.set(job);
    Ok(())
}

/// How many processes of the job are running besides this one; `None`
/// without a job, or if the count cannot be read.
pub(crate) fn job_others() -> Option<u32> {
    let job = JOB.get()?;
    let mut info = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION::default();
    // SAFETY: `info` is the structure the class names, with its size.
    let ok = unsafe {
        QueryInformationJobObject(
            job.as_raw_handle(),
            JobObjectBasicAccountingInformation,
            (&mut info as *mut JOBOBJECT_BASIC_ACCOUNTING_INFORMATION).cast(),
            std::mem::size_of::<JOBOBJECT_BASIC_ACCOUNTING_INFORMATION>() as u32,
            std::ptr::null_mut(),
        )
    };
    (ok != 0).then(|| info.ActiveProcesses.saturating_sub(1))
}

/// Ctrl-C and Ctrl-Break: handled (nothing done), so the supervisor stays
/// to remove the file once the command, which shares the console and got
/// the same event, exits. Other events (the console closing, log-off,
/// shut-down) go to the default handler, which ends the process.
unsafe extern "system" fn on_console_event(ctrl: u32) -> BOOL {
    BOOL::from(matches!(ctrl, CTRL_C_EVENT | CTRL_BREAK_EVENT))
}

/// Installs [`on_console_event`]. A handler, unlike
/// `SetConsoleCtrlHandler(NULL, TRUE)`, is not inherited: the command
/// still gets Ctrl-C as usual.
pub(crate) fn outlive_console_interrupts() {
    // SAFETY: a handler with the expected signature, for the process's life.
    let _ = unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) };
}

/// Why `pidguard signal` cannot send `signal` here, or `None` if it can:
/// Windows has only `KILL` (`TerminateProcess`) and 0 (a probe), as the
/// library's `send_signal` there. Every other signal is Unix-only.
pub(crate) fn unsendable(signal: Signal) -> Option<String> {
    if signal == Signal::KILL || signal.as_raw() == 0 {
        return None;
    }
    Some(format!(
        "signal {} is Unix-only: not available on Windows (there are no signals: only \
         KILL, by TerminateProcess, and 0, a probe, can be sent; pidguard stop waits a \
         TERM step out as a grace, then KILLs)",
        signal.name()
    ))
}

/// Why a `stop` schedule cannot name `signal` here, or `None` if it can:
/// the library's `stop` waits a `TERM` or `INT` step out as a grace (no
/// SIGTERM, docs/WINDOWS.md decision 10) and sends `KILL`; any other
/// signal is Unix-only.
pub(crate) fn unschedulable(signal: Signal) -> Option<String> {
    if [Signal::KILL, Signal::TERM, Signal::INT].contains(&signal) || signal.as_raw() == 0 {
        return None;
    }
    Some(format!(
        "signal {} is Unix-only: not available on Windows (a stop schedule there may name \
         TERM or INT, waited out as a grace, and KILL, by TerminateProcess)",
        signal.name()
    ))
}
