//! SASL PLAIN (RFC 4616) decoding, shared by POP3 AUTH (RFC 5034) and SMTP AUTH (RFC 4954), and LOGIN's base64 lines.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Credentials from a PLAIN response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plain {
    pub user: String,
    pub password: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid base64")]
    Base64,
    #[error("malformed PLAIN response")]
    Malformed,
    #[error("authorization identity differs from the authentication identity")]
    AuthzidMismatch,
}

/// Decodes a base64 PLAIN response: `[authzid] NUL authcid NUL passwd`. An authzid, if given, must
/// equal the authcid (we do not let one user act as another). `=` is the empty response.
pub fn decode_plain(b64: &str) -> Result<Plain, SaslError> {
    let b64 = b64.trim();
    let raw = if b64 == "=" {
        Vec::new()
    } else {
        STANDARD.decode(b64).map_err(|_| SaslError::Base64)?
    };
    let mut parts = raw.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let authzid = std::str::from_utf8(authzid).map_err(|_| SaslError::Malformed)?;
    let user = std::str::from_utf8(authcid).map_err(|_| SaslError::Malformed)?;
    let password = std::str::from_utf8(passwd).map_err(|_| SaslError::Malformed)?;
    if user.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && authzid != user {
        return Err(SaslError::AuthzidMismatch);
    }
    Ok(Plain {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// Decodes one base64 line of the LOGIN mechanism (user name or password) as UTF-8.
pub fn decode_text(b64: &str) -> Option<String> {
    let bytes = STANDARD.decode(b64.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

/// Encodes PLAIN credentials (for clients and tests).
pub fn encode_plain(user: &str, password: &str) -> String {
    STANDARD.encode(format!("\0{user}\0{password}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let ok = Plain {
            user: "alice@example.test".into(),
            password: "pw with space".into(),
        };
        assert_eq!(
            decode_plain(&encode_plain("alice@example.test", "pw with space")),
            Ok(ok.clone())
        );
        let with_authzid = STANDARD.encode("alice@example.test\0alice@example.test\0pw with space");
        assert_eq!(decode_plain(&with_authzid), Ok(ok));
        let other = STANDARD.encode("bob\0alice\0pw");
        assert_eq!(decode_plain(&other), Err(SaslError::AuthzidMismatch));
        assert_eq!(decode_plain("!!!"), Err(SaslError::Base64));
        assert_eq!(decode_plain("="), Err(SaslError::Malformed));
        assert_eq!(
            decode_plain(&STANDARD.encode("a\0b")),
            Err(SaslError::Malformed)
        );
        assert_eq!(
            decode_plain(&STANDARD.encode("\0\0pw")),
            Err(SaslError::Malformed)
        );
        assert_eq!(
            decode_plain(&STANDARD.encode("a\0b\0c\0d")),
            Err(SaslError::Malformed)
        );
    }
}
