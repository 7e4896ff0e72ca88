//! The kernel32 calls the Windows seam makes, declared by hand (no
//! `windows-sys` dependency). Names and layouts as in Microsoft's headers
//! (`fileapi.h`, `processthreadsapi.h`, `tlhelp32.h`, `winbase.h`).
#![allow(
    non_snake_case,
    non_camel_case_types,
    non_upper_case_globals,
    clippy::upper_case_acronyms,
    dead_code // the declarations, whether or not each is called yet
)]

use std::ffi::c_void;

pub(crate) type HANDLE = *mut c_void;
pub(crate) type BOOL = i32;

/// The handle value `CreateToolhelp32Snapshot` returns on failure.
pub(crate) const INVALID_HANDLE_VALUE: HANDLE = -1isize as HANDLE;

#[repr(C)]
#[derive(Default)]
pub(crate) struct OVERLAPPED {
    pub(crate) Internal: usize,
    pub(crate) InternalHigh: usize,
    pub(crate) Offset: u32,
    pub(crate) OffsetHigh: u32,
    pub(crate) hEvent: usize,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FILETIME {
    pub(crate) dwLowDateTime: u32,
    pub(crate) dwHighDateTime: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct BY_HANDLE_FILE_INFORMATION {
    pub(crate) dwFileAttributes: u32,
    pub(crate) ftCreationTime: FILETIME,
    pub(crate) ftLastAccessTime: FILETIME,
    pub(crate) ftLastWriteTime: FILETIME,
    pub(crate) dwVolumeSerialNumber: u32,
    pub(crate) nFileSizeHigh: u32,
    pub(crate) nFileSizeLow: u32,
    pub(crate) nNumberOfLinks: u32,
    pub(crate) nFileIndexHigh: u32,
    pub(crate) nFileIndexLow: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FILE_STANDARD_INFO {
    pub(crate) AllocationSize: i64,
    pub(crate) EndOfFile: i64,
    pub(crate) NumberOfLinks: u32,
    pub(crate) DeletePending: u8,
    pub(crate) Directory: u8,
}

#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FILE_ID_INFO {
    pub(crate) VolumeSerialNumber: u64,
    /// `FILE_ID_128`: 16 bytes, little-endian.
    pub(crate) FileId: [u8; 16],
}

#[repr(C)]
pub(crate) struct FILE_DISPOSITION_INFO {
    pub(crate) DeleteFile: u8,
}

#[repr(C)]
pub(crate) struct FILE_DISPOSITION_INFO_EX {
    pub(crate) Flags: u32,
}

#[repr(C)]
pub(crate) struct PROCESSENTRY32W {
    pub(crate) dwSize: u32,
    pub(crate) cntUsage: u32,
    pub(crate) th32ProcessID: u32,
    pub(crate) th32DefaultHeapID: usize,
    pub(crate) th32ModuleID: u32,
    pub(crate) cntThreads: u32,
    pub(crate) th32ParentProcessID: u32,
    pub(crate) pcPriClassBase: i32,
    pub(crate) dwFlags: u32,
    pub(crate) szExeFile: [u16; 260],
}

// Error codes (winerror.h).
pub(crate) const ERROR_FILE_NOT_FOUND: i32 = 2;
pub(crate) const ERROR_PATH_NOT_FOUND: i32 = 3;
pub(crate) const ERROR_ACCESS_DENIED: i32 = 5;
pub(crate) const ERROR_NOT_SAME_DEVICE: i32 = 17;
pub(crate) const ERROR_WRITE_PROTECT: i32 = 19;
pub(crate) const ERROR_SHARING_VIOLATION: i32 = 32;
pub(crate) const ERROR_LOCK_VIOLATION: i32 = 33;
pub(crate) const ERROR_NOT_SUPPORTED: i32 = 50;
pub(crate) const ERROR_FILE_EXISTS: i32 = 80;
pub(crate) const ERROR_INVALID_PARAMETER: i32 = 87;
pub(crate) const ERROR_CALL_NOT_IMPLEMENTED: i32 = 120;
pub(crate) const ERROR_ALREADY_EXISTS: i32 = 183;
pub(crate) const ERROR_FILENAME_EXCED_RANGE: i32 = 206;
pub(crate) const ERROR_DIRECTORY: i32 = 267;
pub(crate) const ERROR_STOPPED_ON_SYMLINK: i32 = 681;
pub(crate) const ERROR_IO_DEVICE: i32 = 1117;
pub(crate) const ERROR_PRIVILEGE_NOT_HELD: i32 = 1314;

// File attributes, flags, access rights, share modes.
pub(crate) const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
pub(crate) const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
pub(crate) const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
pub(crate) const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
pub(crate) const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
pub(crate) const FILE_SHARE_READ: u32 = 1;
pub(crate) const FILE_SHARE_WRITE: u32 = 2;
pub(crate) const FILE_SHARE_DELETE: u32 = 4;
pub(crate) const FILE_READ_ATTRIBUTES: u32 = 0x80;
pub(crate) const DELETE: u32 = 0x0001_0000;
pub(crate) const FILE_TYPE_DISK: u32 = 1;

// File information classes.
pub(crate) const FileStandardInfo: i32 = 1;
pub(crate) const FileDispositionInfo: i32 = 4;
pub(crate) const FileDispositionInfoEx: i32 = 21;
pub(crate) const FileIdInfo: i32 = 18;
pub(crate) const FILE_DISPOSITION_FLAG_DELETE: u32 = 0x1;
pub(crate) const FILE_DISPOSITION_FLAG_POSIX_SEMANTICS: u32 = 0x2;

// Locks.
pub(crate) const LOCKFILE_FAIL_IMMEDIATELY: u32 = 1;
pub(crate) const LOCKFILE_EXCLUSIVE_LOCK: u32 = 2;

// Handles and processes.
pub(crate) const HANDLE_FLAG_INHERIT: u32 = 1;
pub(crate) const PROCESS_TERMINATE: u32 = 0x1;
pub(crate) const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
pub(crate) const SYNCHRONIZE: u32 = 0x0010_0000;
pub(crate) const WAIT_OBJECT_0: u32 = 0;
pub(crate) const WAIT_TIMEOUT: u32 = 258;
pub(crate) const INFINITE: u32 = u32::MAX;
pub(crate) const TH32CS_SNAPPROCESS: u32 = 0x2;
pub(crate) const DRIVE_REMOTE: u32 = 4;

#[link(name = "kernel32")]
extern "system" {
    pub(crate) fn LockFileEx(
        h: HANDLE,
        flags: u32,
        reserved: u32,
        len_lo: u32,
        len_hi: u32,
        ov: *mut OVERLAPPED,
    ) -> BOOL;
    pub(crate) fn UnlockFileEx(
        h: HANDLE,
        reserved: u32,
        len_lo: u32,
        len_hi: u32,
        ov: *mut OVERLAPPED,
    ) -> BOOL;
    pub(crate) fn GetFileType(h: HANDLE) -> u32;
    pub(crate) fn GetFileInformationByHandle(
        h: HANDLE,
        info: *mut BY_HANDLE_FILE_INFORMATION,
    ) -> BOOL;
    pub(crate) fn GetFileInformationByHandleEx(
        h: HANDLE,
        class: i32,
        info: *mut c_void,
        size: u32,
    ) -> BOOL;
    pub(crate) fn SetFileInformationByHandle(
        h: HANDLE,
        class: i32,
        info: *const c_void,
        size: u32,
    ) -> BOOL;
    pub(crate) fn GetFinalPathNameByHandleW(h: HANDLE, buf: *mut u16, len: u32, flags: u32)
        -> u32;
    pub(crate) fn MoveFileExW(from: *const u16, to: *const u16, flags: u32) -> BOOL;
    pub(crate) fn DeleteFileW(path: *const u16) -> BOOL;
    pub(crate) fn GetVolumePathNameW(path: *const u16, buf: *mut u16, len: u32) -> BOOL;
    pub(crate) fn GetDriveTypeW(root: *const u16) -> u32;
    pub(crate) fn SetHandleInformation(h: HANDLE, mask: u32, flags: u32) -> BOOL;
    pub(crate) fn OpenProcess(access: u32, inherit: BOOL, pid: u32) -> HANDLE;
    pub(crate) fn GetProcessTimes(
        h: HANDLE,
        created: *mut FILETIME,
        exited: *mut FILETIME,
        kernel: *mut FILETIME,
        user: *mut FILETIME,
    ) -> BOOL;
    pub(crate) fn QueryFullProcessImageNameW(
        h: HANDLE,
        flags: u32,
        buf: *mut u16,
        size: *mut u32,
    ) -> BOOL;
    pub(crate) fn TerminateProcess(h: HANDLE, code: u32) -> BOOL;
    pub(crate) fn WaitForSingleObject(h: HANDLE, ms: u32) -> u32;
    pub(crate) fn CreateToolhelp32Snapshot(flags: u32, pid: u32) -> HANDLE;
    pub(crate) fn Process32FirstW(snap: HANDLE, entry: *mut PROCESSENTRY32W) -> BOOL;
    pub(crate) fn Process32NextW(snap: HANDLE, entry: *mut PROCESSENTRY32W) -> BOOL;
    pub(crate) fn GetTickCount64() -> u64;
}

// NTSTATUS (ntstatus.h).
pub(crate) const STATUS_DELETE_PENDING: u32 = 0xC000_0056;

#[link(name = "ntdll")]
extern "system" {
    /// The NTSTATUS of this thread's last failed call (kept in its TEB
    /// beside the Win32 error).
    pub(crate) fn RtlGetLastNtStatus() -> i32;
}

/// A path as a NUL-terminated wide string.
pub(crate) fn wide(p: &std::path::Path) -> Vec<u16> {
    use std::os::windows::ffi::OsStrExt;
    p.as_os_str().encode_wide().chain([0]).collect()
}
