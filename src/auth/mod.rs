//! Accounts and password hashes.
pub mod accounts;
pub mod password;
