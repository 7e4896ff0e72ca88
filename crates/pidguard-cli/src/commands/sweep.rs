//! `pidguard sweep DIR`: remove stale PID files, stop orphans with --kill.

use pidguard::registry::{self, Action, SweepPolicy};
use serde_json::json;

use crate::cli::SweepArgs;
use crate::exit::{Exit, Failure};

pub fn run(args: SweepArgs) -> Result<Exit, Failure> {
    let mut policy = SweepPolicy {
        dry_run: args.dry_run,
        kill: args.kill,
        ..SweepPolicy::default()
    };
    if let Some(s) = &args.schedule {
        policy.schedule = s.clone();
    }
    let report = registry::sweep(&args.dir.dir, &policy)?;
    let mut failed = false;
    for item in &report {
        let (word, detail) = match &item.action {
            Action::RemovedStale => ("remove-stale", "stale: file removed".to_string()),
            Action::StoppedOrphan => (
                "stop-orphan",
                "orphan: process stopped, file removed".to_string(),
            ),
            Action::RemovedFileOnly => (
                "remove-file-only",
                "cannot verify the process: file removed, process left alone".to_string(),
            ),
            Action::Kept(why) => ("keep", why.to_string()),
            Action::Failed(e) => {
                failed = true;
                ("error", e.to_string())
            }
        };
        let pid = item.pid.map(|p| p.get());
        if args.dir.json {
            println!(
                "{}",
                json!({ "name": item.name, "path": item.path, "pid": pid, "action": word,
                        "detail": detail, "dry_run": item.dry_run })
            );
        } else {
            let would = if item.dry_run && !matches!(item.action, Action::Kept(_)) {
                "would "
            } else {
                ""
            };
            let pid = pid.map(|p| format!(" (PID {p})")).unwrap_or_default();
            println!("{}{pid}: {would}{word}: {detail}", item.name);
        }
    }
    Ok(if failed { Exit::IoErr } else { Exit::Success })
}
