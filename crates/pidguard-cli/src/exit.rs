//! Exit codes: one enum, one table.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; `status`: running (or starting) |
//! | 1 | `status`/`pid`: the file is stale (its process is gone or is not its owner); `stop`/`signal`/`wait`: a live process that is not the owner was left alone |
//! | 2 | usage error (bad arguments) |
//! | 3 | `status`/`pid`: not running (no file) |
//! | 4 | `status`/`pid`: unknown (unreadable, invalid content, not a regular file, unproved identity) |
//! | 65 | invalid PID file content |
//! | 69 | unsupported on this platform or filesystem |
//! | 70 | internal error |
//! | 73 | cannot create or use the PID file (permissions, read-only or full filesystem, unsafe path) |
//! | 74 | other I/O error |
//! | 75 | the lock is held by another live process |
//! | 77 | permission denied; refused to signal (untrusted file, unproved identity, unreachable holder) |
//! | 126 | the command could not be executed |
//! | 127 | the command was not found |

use std::process::ExitCode;

/// Every exit status pidguard itself produces (a supervised command's own
/// status is passed through as [`Exit::Child`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    Stale,
    Usage,
    NotRunning,
    Unknown,
    DataErr,
    Unavailable,
    Software,
    CantCreate,
    IoErr,
    TempFail,
    NoPerm,
    CannotExecute,
    NotFound,
    /// A supervised command's exit status (128+N when killed by signal N).
    Child(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Stale => 1,
            Exit::Usage => 2,
            Exit::NotRunning => 3,
            Exit::Unknown => 4,
            Exit::DataErr => 65,
            Exit::Unavailable => 69,
            Exit::Software => 70,
            Exit::CantCreate => 73,
            Exit::IoErr => 74,
            Exit::TempFail => 75,
            Exit::NoPerm => 77,
            Exit::CannotExecute => 126,
            Exit::NotFound => 127,
            Exit::Child(c) => c,
        }
    }

    /// The exit code for a library error.
    pub fn for_error(e: &pidguard::Error) -> Exit {
        use pidguard::ErrorKind as K;
        match e.kind() {
            K::AlreadyRunning => Exit::TempFail,
            K::InvalidContents => Exit::DataErr,
            K::UnsafeFile | K::CannotCreate => Exit::CantCreate,
            K::PermissionDenied => Exit::NoPerm,
            K::InvalidName => Exit::Usage,
            K::Unsupported => Exit::Unavailable,
            _ => Exit::IoErr,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// An error to print, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

impl From<pidguard::Error> for Failure {
    fn from(e: pidguard::Error) -> Failure {
        Failure::new(Exit::for_error(&e), e.to_string())
    }
}
