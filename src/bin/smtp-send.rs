//! `smtp-send`: the SMTP client. Interactive (a menu like the original student client), scriptable
//! (flags, or a whole message on stdin as sendmail reads it), and `bench`, a load generator.
//! Exit status: 0 delivered to every recipient, 1 rejected (the reply is shown), 2 usage error,
//! 3 connection or protocol error. The modes live in `smtpd::client`; this picks one.

use std::process::ExitCode;

use clap::Parser;
use smtpd::cli::smtp_send::{Args, Cmd};
use smtpd::client::exit::Status;
use smtpd::client::{bench_cmd, menu, script, target};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let status = if e.use_stderr() {
                Status::Usage
            } else {
                Status::Done
            };
            let _ = e.print();
            return ExitCode::from(status.code());
        }
    };
    let result = if let Some(Cmd::Bench(b)) = args.command {
        bench_cmd::run(b)
    } else {
        let host = args.host.clone().unwrap_or_else(|| "localhost".into());
        let port = args.port.unwrap_or_else(target::default_port);
        if script::any_message_flag(&args.msg) {
            script::run(&host, port, args.msg)
        } else {
            menu::run(&host, port, &args.msg)
        }
    };
    match result {
        Ok(status) => ExitCode::from(status.code()),
        Err(f) => {
            eprintln!("smtp-send: {f}");
            ExitCode::from(f.status.code())
        }
    }
}
