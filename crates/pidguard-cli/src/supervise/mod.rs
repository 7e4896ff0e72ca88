//! The mechanisms of supervision (moved from commands/; the next commit
//! separates them from the `run` command and breaks the import circle).

pub mod daemon;
pub mod etcd;
pub mod foreground;
pub mod gate;
pub mod job;
pub mod tree;
