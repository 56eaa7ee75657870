//! The config loader on arbitrary text: every problem is a report with a line, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match smtpd::config::parse(text, std::path::Path::new("fuzz.toml")) {
            Ok(_) => {}
            Err(e) => assert!(!e.problems.is_empty()),
        }
    }
});
