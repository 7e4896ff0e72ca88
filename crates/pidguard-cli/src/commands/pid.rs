//! `pidguard pid`: print the running holder's PID.

use pidguard::Status;

use crate::cli::QueryArgs;
use crate::commands::{resolved_path, status};
use crate::exit::{self, Exit, Failure, Found};
use crate::output::{escape, print_json};

pub fn run(args: QueryArgs) -> Result<Exit, Failure> {
    let path = resolved_path(&args.file)?;
    let found = pidguard::inspect(&path, &Default::default());
    let st = &found.status;
    let exit = exit::of_pid(Found::of(st));
    if let Status::Running { pid, .. } = st {
        if args.file.json {
            print_json(&status::to_json(&path, &found).value());
        } else {
            println!("{pid}");
        }
        return Ok(exit);
    }
    let p = escape(path.as_os_str().as_encoded_bytes());
    let message = format!("{p}: {}", status::describe(&found));
    if args.file.json {
        // The failure's object, with the state: `error` and `exit` too.
        let obj = status::to_json(&path, &found)
            .set("error", message.as_str())
            .set("exit", exit.code());
        print_json(&obj.value());
    }
    Err(Failure {
        path: Some(path.clone()),
        ..Failure::new(exit, message)
    })
}
