//! The command lines of the programs, in the library so that the man pages and shell
//! completions are generated from the same definitions (`examples/gen_docs.rs`).
pub mod sendmail;
pub mod smtp_send;
pub mod smtpctl;
pub mod smtpd;

/// Writes to stdout for `println!`/`print!` in the client programs. When the reader has gone
/// (`smtpctl status | grep -q ...`, `| head`), the program exits quietly with status 0 instead of
/// panicking as `println!` does; any other write error is reported and exits 1.
pub fn out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`out`], for the client programs.
#[macro_export]
macro_rules! outln {
    () => { $crate::cli::out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::cli::out(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` through [`out`], for the client programs.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::out(format_args!($($t)*)) };
}
