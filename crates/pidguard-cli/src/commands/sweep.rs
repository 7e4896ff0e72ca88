//! `pidguard sweep DIR`: remove stale PID files, stop orphans with --kill.

use pidguard::registry::{self, Action, SweepPolicy, Swept};

use crate::cli::SweepArgs;
use crate::commands::list::rel_name;
use crate::exit::{Exit, Failure};
use crate::output::{escape, print_json, Obj};
use crate::output::{stale_kind, stale_words};

/// The action's word (for `--json`) and its sentence: what was done, or with
/// `--dry-run` what would be.
pub fn describe(item: &Swept) -> (&'static str, String) {
    let dry = item.dry_run;
    let pick = |done: &str, would: &str| if dry { would } else { done }.to_owned();
    match &item.action {
        Action::RemovedStale => {
            let stale = stale_words(item.pid, item.identity.as_ref());
            let did = pick("file removed", "would remove the file");
            ("remove-stale", format!("{stale}: {did}"))
        }
        Action::StoppedOrphan => (
            "stop-orphan",
            pick(
                "orphan: process stopped, file removed",
                "orphan: would stop the process and remove the file",
            ),
        ),
        Action::Kept(why) => ("keep", why.to_string()),
        Action::Failed(e) => ("error", e.to_string()),
    }
}

pub fn run(args: SweepArgs) -> Result<Exit, Failure> {
    let mut policy = SweepPolicy {
        dry_run: args.dry_run,
        kill: args.kill,
        max_depth: args.dir.depth(),
        ..SweepPolicy::default()
    };
    if let Some(s) = &args.schedule {
        policy.schedule = s.clone();
    }
    let dir = args.dir.dir.as_path();
    let report = registry::sweep(dir, &policy)?;
    let failed = report.iter().any(|i| matches!(i.action, Action::Failed(_)));
    let exit = if failed { Exit::IoErr } else { Exit::Success };
    if args.dir.json {
        let actions: Vec<_> = report
            .iter()
            .map(|item| {
                let (word, detail) = describe(item);
                let obj = Obj::new()
                    .bytes("name", rel_name(dir, &item.path, true))
                    .path("path", &item.path)
                    .set("pid", item.pid.map(|p| p.get()))
                    .set("action", word)
                    .set("detail", detail)
                    .set("dry_run", item.dry_run);
                match item.action {
                    Action::RemovedStale => {
                        obj.set("stale_kind", stale_kind(item.identity.as_ref()))
                    }
                    _ => obj,
                }
                .value()
            })
            .collect();
        let obj = Obj::new()
            .path("dir", dir)
            .set("dry_run", args.dry_run)
            .set("actions", actions)
            .set("exit", exit.code());
        print_json(&obj.value());
    } else {
        for item in &report {
            let (_, detail) = describe(item);
            let pid = item.pid.map(|p| format!(" (PID {p})")).unwrap_or_default();
            let name = escape(rel_name(dir, &item.path, true));
            println!("{name}{pid}: {detail}");
        }
    }
    Ok(exit)
}
