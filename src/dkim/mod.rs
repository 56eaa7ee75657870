//! DKIM (RFC 6376) for mail sent out: the signing keys of `[dkim]` (PEM files, RSA or Ed25519),
//! the signature of one message by its author's domain, and new key pairs with the DNS record
//! that publishes them (`smtpctl dkim-keygen`).
//!
//! Bytes in, bytes out: the key files are read by `config` and written by smtpctl; no tokio,
//! files or sockets here. Canonicalization and signing are mail-auth's, with ring's keys;
//! RSA key generation is the `rsa` crate's (ring signs with RSA keys but does not make them).

mod key;
mod keygen;
mod sign;

pub use key::{Algorithm, Key, KeyError};
pub use keygen::{DEFAULT_RSA_BITS, KeyPair, RSA_BITS, generate};
pub use sign::{SIGNED_HEADERS, SignError, Signer, author_domain};
