//! smtpd library: the engines, the storage, the daemon and the clients behind the three programs.
//!
//! # Layers
//! Dependencies point one way, from the binaries down to the engines; `tests/layers.rs` fails
//! when a path anywhere in `src/` (a `use`, or one written in the code) breaks one of these rules.
//!
//! - [`proto`]: sans-IO protocol engines (SMTP server and reply parser, POP3, SASL). Every layer
//!   may use them; they use nothing of the crate but [`wire`], [`dsn`] and [`testing`], and no tokio,
//!   `std::fs`, `std::net` or clock.
//! - [`wire`], [`dsn`], [`testing`]: leaf helpers (on-the-wire sizes; RFC 3461 DSN requests;
//!   debug-only test switches, read in that one module).
//! - [`dkim`]: DKIM keys, signatures and key pairs (mail-auth); bytes in, bytes out: no tokio,
//!   files or sockets, and of the crate only itself.
//! - [`config`]: the configuration as data, loaded from TOML. Knows no daemon or net.
//! - [`mailbox`]: Maildir storage (delivery, POP3 maildrops). Blocking `std::fs`; knows no
//!   sockets or protocols.
//! - [`queue`]: the durable outbound queue (storage, like `mailbox`).
//! - [`auth`]: accounts and password hashes.
//! - [`acme`]: ACME certificates (RFC 8555): the sans-IO renewal plan, certificate facts, the
//!   HTTP-01 answers, the state files and the CA conversation (instant-acme). Uses `config`
//!   only; `acme::plan` and `acme::cert` are pure (no tokio, files, sockets or clock).
//!   `http` serves its challenge answers.
//! - [`net`]: the tokio drivers around the engines (listeners, SMTP and POP3 connections, TLS,
//!   transcripts, watch events).
//! - [`client`]: our SMTP client (smtp-send, send-test, selftest, outbound delivery).
//! - [`outbound`]: the runner that delivers the queue (client + queue + mailbox).
//! - [`http`]: the HTTP listener's API (mail list, read, raw, delete, wait; health, metrics).
//!   Uses `config`, `mailbox`, `net` (stats, watch events), `acme` (challenge answers) and
//!   `proto`; never `daemon`,
//!   `control` or `outbound` (the metrics text comes from the daemon as a closure).
//! - [`control`]: the control socket protocol, its server and client.
//! - [`daemon`]: the composition root: builds everything from a config and runs it. Only
//!   `bin/smtpd.rs` imports it.
//! - [`cli`], [`log`]: command-line definitions (also used to make the man pages) and logging.
pub mod acme;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dkim;
pub mod dsn;
pub mod http;
pub mod log;
pub mod mailbox;
pub mod net;
pub mod outbound;
pub mod proto;
pub mod queue;
pub mod testing;
pub mod wire;
