//! PROXY protocol headers (v1 text, v2 binary): parsing never panics, a header never claims more
//! bytes than were given or than the 1 KiB bound, and the verdict on a complete header does not
//! change with bytes after it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smtpd::net::proxy::{MAX_HEADER, Parsed, parse};

fuzz_target!(|data: &[u8]| {
    if let Parsed::Header { len, client } = parse(data) {
        assert!(len <= data.len() && len <= MAX_HEADER);
        assert_eq!(parse(&data[..len]), Parsed::Header { len, client });
    }
});
