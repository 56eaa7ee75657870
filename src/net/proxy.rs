//! The PROXY protocol (HAProxy's, v1 text and v2 binary) in front of every listener, from the
//! peers in `[server] proxy_from` only: such a connection must start with a header, whose
//! source address is then the client for everything (limits, relay networks, loopback rules,
//! `Received:`, logs). Parsing is `ppp`'s; [`parse`] is pure, [`read_header`] reads exactly the
//! header's bytes off the socket (what follows belongs to the protocol: an HTTP request may come
//! in the same segment), within a time limit.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ppp::v2::{Addresses, Command};
use ppp::{HeaderResult, PartialResult, v1};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest header read: a v1 line is at most 107 bytes; a v2 header is 16 bytes and its
/// addresses, plus TLVs (HAProxy's are a few dozen bytes; 1 KiB leaves room for a TLS or
/// cloud-provider TLV, and stops a peer from holding 64 KiB per connection).
pub const MAX_HEADER: usize = 1024;

/// The 12 bytes a v2 header starts with.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// What the start of a connection says.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A header of `len` bytes: the client it names, or `None` for a connection of the proxy's
    /// own (v2 LOCAL, such as a health check; v1 UNKNOWN; a Unix socket).
    Header {
        len: usize,
        client: Option<SocketAddr>,
    },
    /// Not a header, or a malformed one: why.
    Bad(String),
}

/// Parses the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let n = buf.len().min(V2_SIGNATURE.len());
    let could_be_v2 = buf[..n] == V2_SIGNATURE[..n];
    let could_be_v1 = b"PROXY "[..buf.len().min(6)] == buf[..buf.len().min(6)];
    if !could_be_v1 && !could_be_v2 {
        return Parsed::Bad("no PROXY protocol header (v1 or v2) at the start".into());
    }
    if could_be_v2 && buf.len() >= 16 {
        let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if len > MAX_HEADER {
            return Parsed::Bad(format!(
                "a PROXY v2 header of {len} bytes (at most {MAX_HEADER})"
            ));
        }
    }
    // A v1 line is judged whole: a prefix can look wrong (a port cut short) before its end.
    if could_be_v1 && !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 108 {
        return Parsed::Incomplete;
    }
    match HeaderResult::parse(buf) {
        r if r.is_incomplete() => {
            if could_be_v1 {
                // Its line is complete (above): what is missing will not come.
                Parsed::Bad("malformed PROXY v1 header: fields missing".into())
            } else if buf.len() >= MAX_HEADER {
                Parsed::Bad(format!("no complete PROXY header in {MAX_HEADER} bytes"))
            } else {
                Parsed::Incomplete
            }
        }
        HeaderResult::V1(Ok(h)) => Parsed::Header {
            len: h.header.len(),
            client: match h.addresses {
                v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                v1::Addresses::Unknown => None,
            },
        },
        HeaderResult::V2(Ok(h)) => Parsed::Header {
            len: h.header.len(),
            client: match (h.command, h.addresses) {
                (Command::Local, _) => None,
                (Command::Proxy, Addresses::IPv4(a)) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                (Command::Proxy, Addresses::IPv6(a)) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                (Command::Proxy, Addresses::Unspecified | Addresses::Unix(_)) => None,
            },
        },
        HeaderResult::V1(Err(e)) => Parsed::Bad(format!("malformed PROXY v1 header: {e}")),
        HeaderResult::V2(Err(e)) => Parsed::Bad(format!("malformed PROXY v2 header: {e}")),
    }
}

/// Reads the header a `[server] proxy_from` peer must start with, and nothing after it: the
/// client it names (`Ok(None)`: the proxy's own connection), or why the connection is to be
/// closed.
pub async fn read_header(
    stream: &mut TcpStream,
    timeout: Duration,
) -> Result<Option<SocketAddr>, String> {
    let failed = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "closed before its PROXY header".to_string(),
        _ => format!("reading the PROXY header: {e}"),
    };
    let read = async {
        // The whole header normally comes in one segment: peek at it, then read its length.
        let mut buf = vec![0u8; MAX_HEADER];
        let n = stream.peek(&mut buf).await.map_err(failed)?;
        if n == 0 {
            return Err("closed before its PROXY header".to_string());
        }
        match parse(&buf[..n]) {
            Parsed::Header { len, client } => {
                stream.read_exact(&mut buf[..len]).await.map_err(failed)?;
                return Ok(client);
            }
            Parsed::Bad(why) => return Err(why),
            Parsed::Incomplete => {}
        }
        // In pieces: read only what is known to be the header's (a v2 header's announced
        // length, else a byte at a time), so nothing after it is taken from the protocol.
        let mut got = Vec::with_capacity(n);
        loop {
            match parse(&got) {
                Parsed::Header { client, .. } => return Ok(client),
                Parsed::Bad(why) => return Err(why),
                Parsed::Incomplete => {
                    let more = match got.get(..16) {
                        Some(h) if h.starts_with(V2_SIGNATURE) => (16
                            + usize::from(u16::from_be_bytes([h[14], h[15]])))
                        .saturating_sub(got.len())
                        .max(1),
                        _ => 1,
                    };
                    let at = got.len();
                    got.resize(at + more, 0);
                    stream.read_exact(&mut got[at..]).await.map_err(failed)?;
                }
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(format!("no PROXY header within {} s", timeout.as_secs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, addresses: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        h.push(0x20 | command);
        h.push(family);
        let len = (addresses.len() + tlvs.len()) as u16;
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(addresses);
        h.extend_from_slice(tlvs);
        h
    }

    fn v4_addresses() -> Vec<u8> {
        let mut a = vec![203, 0, 113, 7, 127, 0, 0, 1];
        a.extend_from_slice(&40000u16.to_be_bytes());
        a.extend_from_slice(&25u16.to_be_bytes());
        a
    }

    #[test]
    fn v1_and_v2_headers_name_the_client_and_their_length() {
        let line = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\nEHLO x\r\n";
        assert_eq!(
            parse(line),
            Parsed::Header {
                len: 43,
                client: Some("203.0.113.7:40000".parse().unwrap())
            }
        );
        let line = b"PROXY TCP6 2001:db8::7 ::1 40000 25\r\n";
        assert_eq!(
            parse(line),
            Parsed::Header {
                len: line.len(),
                client: Some("[2001:db8::7]:40000".parse().unwrap())
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Header {
                len: 15,
                client: None
            }
        );
        let mut h = v2(1, 0x11, &v4_addresses(), &[]);
        let len = h.len();
        h.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            parse(&h),
            Parsed::Header {
                len,
                client: Some("203.0.113.7:40000".parse().unwrap())
            }
        );
        // A TLV (PP2_TYPE_AUTHORITY) is skipped; LOCAL is the proxy's own connection.
        let h = v2(1, 0x11, &v4_addresses(), &[0x02, 0, 3, b'a', b'.', b'b']);
        assert!(matches!(
            parse(&h),
            Parsed::Header {
                client: Some(_),
                ..
            }
        ));
        let h = v2(0, 0x00, &[], &[]);
        assert_eq!(
            parse(&h),
            Parsed::Header {
                len: 16,
                client: None
            }
        );
    }

    /// Every prefix of a good header is Incomplete (fed byte by byte, it completes only at its
    /// end); garbage, a cut or wrong line, and oversize headers are Bad.
    #[test]
    fn partial_malformed_and_oversize_headers() {
        let line = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n";
        let v2h = v2(1, 0x11, &v4_addresses(), &[]);
        for good in [&line[..], &v2h[..]] {
            for cut in 0..good.len() {
                assert_eq!(parse(&good[..cut]), Parsed::Incomplete, "{cut} of {good:?}");
            }
        }
        for bad in [
            &b"EHLO client.example\r\n"[..],
            b"PROXY TCP4 203.0.113.7\r\n",
            b"PROXY TCP4 999.0.113.7 127.0.0.1 40000 25\r\n",
            b"PROXY TCP4 203.0.113.7 127.0.0.1 70000 25\r\n",
            b"PROXY TCP9 1 2 3 4\r\n",
            b"\x16\x03\x01\x02\x00",
        ] {
            assert!(matches!(parse(bad), Parsed::Bad(_)), "{bad:?}");
        }
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(parse(&long), Parsed::Bad(_)));
        let huge = v2(1, 0x11, &v4_addresses(), &vec![0u8; 2000]);
        let Parsed::Bad(why) = parse(&huge[..16]) else {
            panic!("a 2 KB v2 header accepted");
        };
        assert!(why.contains("at most 1024"), "{why}");
        // A wrong version nibble.
        let mut h = v2(1, 0x11, &v4_addresses(), &[]);
        h[12] = 0x31;
        assert!(matches!(parse(&h), Parsed::Bad(_)));
    }

    /// A header that arrives in pieces is read to its end and not a byte further: what follows
    /// it (here the client's first command) is left on the socket for the protocol.
    #[tokio::test(flavor = "current_thread")]
    async fn a_header_in_pieces_is_read_exactly() {
        use tokio::io::AsyncWriteExt;
        let v1 = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n".to_vec();
        let v2h = v2(1, 0x11, &v4_addresses(), &[0x02, 0, 3, b'a', b'.', b'b']);
        for header in [v1, v2h] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            client.write_all(&header[..7]).await.unwrap();
            server.readable().await.unwrap();
            let reading = tokio::spawn(async move {
                let r = read_header(&mut server, Duration::from_secs(10)).await;
                (r, server)
            });
            // The reader peeks at the first piece and goes on to read it byte by byte.
            tokio::task::yield_now().await;
            client.write_all(&header[7..]).await.unwrap();
            client.write_all(b"EHLO x\r\n").await.unwrap();
            let (r, mut server) = reading.await.unwrap();
            assert_eq!(r, Ok(Some("203.0.113.7:40000".parse().unwrap())));
            let mut rest = [0u8; 8];
            server.read_exact(&mut rest).await.unwrap();
            assert_eq!(&rest, b"EHLO x\r\n");
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes, alone or after a good header's start, never panic; a header never
        /// claims more than it was given (or 1 KiB), and bytes after it do not change it.
        #[test]
        fn arbitrary_input_never_panics(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500),
            prefix in 0usize..3,
        ) {
            let start: &[u8] = [&b""[..], b"PROXY ", b"\r\n\r\n\0\r\nQUIT\n\x21\x11"][prefix];
            let input = [start, &data].concat();
            if let Parsed::Header { len, client } = parse(&input) {
                proptest::prop_assert!(len <= input.len() && len <= MAX_HEADER);
                proptest::prop_assert_eq!(parse(&input[..len]), Parsed::Header { len, client });
            }
        }
    }
}
