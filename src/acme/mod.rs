//! ACME (RFC 8555): certificates a CA issues, obtained and renewed by the daemon itself.
//!
//! - `plan`: sans-IO decisions: when to renew, how long to back off, whether an issued
//!   certificate is acceptable. Pure: no clock (times come in), no I/O.
//! - `cert`: what a PEM certificate says (names, issuer, validity), from bytes.
//! - `challenges`: the HTTP-01 answers in flight, shared with the `[http]` listener.
//! - `alpn`: the TLS-ALPN-01 answers in flight, looked up by every TLS accept.
//! - `store`: the files under the certificate's directory (account, certificate, key; 0600).
//! - `client`: the CA conversation, on instant-acme; thin.
//!
//! Uses `config` (the `[tls]` keys) and nothing else of the crate; the daemon runs the loop
//! (`daemon::acme`) and the HTTP layer serves [`Challenges`].

pub mod alpn;
pub mod cert;
pub mod challenges;
pub mod client;
pub mod plan;
pub mod store;

pub use cert::CertFacts;
pub use challenges::Challenges;
