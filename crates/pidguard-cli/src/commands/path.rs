//! `pidguard path`: print where a PID file lives.

use std::io::Write;

use crate::cli::QueryArgs;
use crate::commands::resolved_path;
use crate::exit::{Exit, Failure};
use crate::output::{print_json, Obj};

pub fn run(args: QueryArgs) -> Result<Exit, Failure> {
    let path = resolved_path(&args.file)?;
    if args.file.json {
        print_json(&Obj::new().path("path", &path).value());
    } else {
        // The path's bytes as they are: this output is for `$(...)`.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(path.as_os_str().as_encoded_bytes());
        let _ = out.write_all(b"\n");
    }
    Ok(Exit::Success)
}
