//! The command lines of the three programs, in the library so that the man pages and shell
//! completions are generated from the same definitions (`examples/gen_docs.rs`).
pub mod smtp_send;
pub mod smtpctl;
pub mod smtpd;
