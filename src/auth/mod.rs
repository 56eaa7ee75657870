//! Accounts and password hashes.
pub mod password;
