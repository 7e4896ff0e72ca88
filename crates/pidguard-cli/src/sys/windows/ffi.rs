//! The kernel32 calls the command's Windows seam makes, declared by hand
//! (no `windows-sys` dependency), as the library's `sys/windows/ffi.rs`
//! does. Names and layouts as in Microsoft's headers (`jobapi2.h`,
//! `winnt.h`, `consoleapi.h`, `processthreadsapi.h`).
#![allow(
    non_snake_case,
    non_camel_case_types,
    non_upper_case_globals,
    clippy::upper_case_acronyms
)]

use std::ffi::c_void;

pub(crate) type HANDLE = *mut c_void;
pub(crate) type BOOL = i32;

/// `SetInformationJobObject`'s class for [`JOBOBJECT_EXTENDED_LIMIT_INFORMATION`].
pub(crate) const JobObjectExtendedLimitInformation: i32 = 9;
/// `QueryInformationJobObject`'s class for
/// [`JOBOBJECT_BASIC_ACCOUNTING_INFORMATION`].
pub(crate) const JobObjectBasicAccountingInformation: i32 = 1;
/// Every process in the job is ended when its last handle is closed.
pub(crate) const JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: u32 = 0x2000;

/// Console control events a handler may answer.
pub(crate) const CTRL_C_EVENT: u32 = 0;
pub(crate) const CTRL_BREAK_EVENT: u32 = 1;

#[repr(C)]
#[derive(Default)]
pub(crate) struct JOBOBJECT_BASIC_LIMIT_INFORMATION {
    pub(crate) PerProcessUserTimeLimit: i64,
    pub(crate) PerJobUserTimeLimit: i64,
    pub(crate) LimitFlags: u32,
    pub(crate) MinimumWorkingSetSize: usize,
    pub(crate) MaximumWorkingSetSize: usize,
    pub(crate) ActiveProcessLimit: u32,
    pub(crate) Affinity: usize,
    pub(crate) PriorityClass: u32,
    pub(crate) SchedulingClass: u32,
}

#[repr(C)]
#[derive(Default)]
pub(crate) struct IO_COUNTERS {
    pub(crate) ReadOperationCount: u64,
    pub(crate) WriteOperationCount: u64,
    pub(crate) OtherOperationCount: u64,
    pub(crate) ReadTransferCount: u64,
    pub(crate) WriteTransferCount: u64,
    pub(crate) OtherTransferCount: u64,
}

#[repr(C)]
#[derive(Default)]
pub(crate) struct JOBOBJECT_EXTENDED_LIMIT_INFORMATION {
    pub(crate) BasicLimitInformation: JOBOBJECT_BASIC_LIMIT_INFORMATION,
    pub(crate) IoInfo: IO_COUNTERS,
    pub(crate) ProcessMemoryLimit: usize,
    pub(crate) JobMemoryLimit: usize,
    pub(crate) PeakProcessMemoryUsed: usize,
    pub(crate) PeakJobMemoryUsed: usize,
}

#[repr(C)]
#[derive(Default)]
pub(crate) struct JOBOBJECT_BASIC_ACCOUNTING_INFORMATION {
    pub(crate) TotalUserTime: i64,
    pub(crate) TotalKernelTime: i64,
    pub(crate) ThisPeriodTotalUserTime: i64,
    pub(crate) ThisPeriodTotalKernelTime: i64,
    pub(crate) TotalPageFaultCount: u32,
    pub(crate) TotalProcesses: u32,
    pub(crate) ActiveProcesses: u32,
    pub(crate) TotalTerminatedProcesses: u32,
}

/// A console control handler (`PHANDLER_ROUTINE`).
pub(crate) type HandlerRoutine = unsafe extern "system" fn(ctrl: u32) -> BOOL;

#[link(name = "kernel32")]
extern "system" {
    pub(crate) fn CreateJobObjectW(attributes: *mut c_void, name: *const u16) -> HANDLE;
    pub(crate) fn SetInformationJobObject(
        job: HANDLE,
        class: i32,
        info: *const c_void,
        len: u32,
    ) -> BOOL;
    pub(crate) fn QueryInformationJobObject(
        job: HANDLE,
        class: i32,
        info: *mut c_void,
        len: u32,
        returned: *mut u32,
    ) -> BOOL;
    pub(crate) fn AssignProcessToJobObject(job: HANDLE, process: HANDLE) -> BOOL;
    pub(crate) fn GetCurrentProcess() -> HANDLE;
    pub(crate) fn SetConsoleCtrlHandler(handler: Option<HandlerRoutine>, add: BOOL) -> BOOL;
}
