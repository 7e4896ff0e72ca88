//! The readers: what a PID file says and whose PID it is, without taking
//! its lock.
//!
//! - `status.rs`: [`status`](crate::status()), [`inspect`](crate::inspect),
//!   [`read`](crate::read()): the file's state, probing its lock.
//! - `identity.rs`: the verdict on a PID read from a file
//!   ([`Identity`](crate::Identity)), from facts about the process and the file.
//! - `kernel_id.rs`: the kernel identity record (the owner's pidfs inode).
//! - `process.rs`: process liveness and [`Process`](crate::Process).
pub(crate) mod identity;
pub(crate) mod kernel_id;
pub(crate) mod process;
pub(crate) mod status;
