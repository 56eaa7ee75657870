//! SASL PLAIN responses (base64, NUL-separated fields).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = smtpd::proto::sasl::decode_plain(text) {
            assert!(!p.user.is_empty());
        }
    }
});
