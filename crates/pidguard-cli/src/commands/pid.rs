//! `pidguard pid`: print the running holder's PID.

use pidguard::{ErrorKind, Status};

use crate::cli::QueryArgs;
use crate::commands::{resolved_path, status};
use crate::exit::{Exit, Failure};

pub fn run(args: QueryArgs) -> Result<Exit, Failure> {
    let path = resolved_path(&args.file)?;
    let st = pidguard::status(&path);
    if let Status::Running { pid, .. } = st {
        if args.file.json {
            println!("{}", status::to_json(&path, &st));
        } else {
            println!("{pid}");
        }
        return Ok(Exit::Success);
    }
    let exit = match &st {
        Status::Unknown(e) if e.kind() == ErrorKind::InvalidContents => Exit::DataErr,
        Status::Starting | Status::Held(_) => Exit::Unknown,
        other => status::exit_for(other),
    };
    if args.file.json {
        println!("{}", status::to_json(&path, &st));
        return Ok(exit);
    }
    Err(Failure::new(exit, format!("{}: {st}", path.display())))
}
