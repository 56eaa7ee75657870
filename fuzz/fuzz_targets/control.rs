//! Control-protocol request lines as the daemon reads them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smtpd::control::proto::{RequestLine, ResponseLine};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = serde_json::from_value::<RequestLine>(v.clone());
        let _ = serde_json::from_value::<ResponseLine>(v);
    }
});
