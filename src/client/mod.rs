//! Our SMTP client, the one every sender uses: `smtp-send`, `sendmail`, `smtpctl send-test` and
//! `smtpctl selftest` (through the daemon), and the outbound queue's runner.
//!
//! - [`conn`]: the transport (timeouts, TLS, lines, replies parsed by `proto::smtp::response`).
//! - [`smtp`]: the SMTP dialogue on it.
//! - [`compose`]: builds a message (headers, body, attachments).
//! - [`bench`]: the load generator.
//!
//! `smtp-send`'s modes, which `bin/smtp-send.rs` only picks between:
//! - [`script`]: the scripted sender (flags or stdin → message → one send → result).
//! - [`menu`]: the interactive menu.
//! - [`bench_cmd`]: `smtp-send bench` (progress bar, report).
//! - [`prompt`]: the terminal side: answers read (line editing or plain stdin), lines shown.
//! - [`target`]: where and how to connect (TLS, AUTH from the flags) and one delivery.
//! - [`exit`]: the exit statuses and the failure that carries one.
//!
//! [`sendmail`]: the `sendmail` entry point (message from stdin, `-t`, sysexits.h codes).
pub mod bench;
pub mod bench_cmd;
pub mod compose;
pub mod conn;
pub mod exit;
pub mod menu;
pub mod prompt;
pub mod script;
pub mod sendmail;
pub mod smtp;
pub mod target;
