//! The control socket: the protocol shared by smtpd and smtpctl, the server side, the client side.
pub mod client;
pub mod proto;
pub mod render;
pub mod server;
