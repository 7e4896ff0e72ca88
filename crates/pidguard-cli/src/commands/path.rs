//! `pidguard path`: print where a PID file lives.

use crate::cli::QueryArgs;
use crate::commands::resolved_path;
use crate::exit::{Exit, Failure};

pub fn run(args: QueryArgs) -> Result<Exit, Failure> {
    let path = resolved_path(&args.file)?;
    if args.file.json {
        println!("{}", serde_json::json!({ "path": path }));
    } else {
        println!("{}", path.display());
    }
    Ok(Exit::Success)
}
