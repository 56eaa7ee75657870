//! When to (re)obtain the certificate, how long to wait after a failure, and whether what the CA
//! sent is acceptable. Pure: every time is given in seconds since the Unix epoch, and nothing
//! here reads a clock, a file or a socket.

use super::cert::CertFacts;

/// Why a certificate must be obtained now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No certificate file yet (or it does not parse).
    Missing,
    /// The one in place is self-signed (the temporary one, or an old `self_signed = true`).
    Temporary,
    /// `acme_names` lists names the certificate does not cover.
    Names(Vec<String>),
    /// A third of its life (or less) is left.
    Due,
    /// `smtpctl tls renew`.
    Forced,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Missing => f.write_str("no certificate yet"),
            Reason::Temporary => f.write_str("the certificate in place is self-signed"),
            Reason::Names(n) => write!(f, "the certificate does not cover {}", n.join(", ")),
            Reason::Due => f.write_str("a third of its life or less is left"),
            Reason::Forced => f.write_str("renewal asked for (smtpctl tls renew)"),
        }
    }
}

/// What the renewal loop does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Obtain(Reason),
    /// Nothing to do before this time.
    Wait(u64),
}

/// When a certificate is renewed: once a third of its validity is left.
pub fn renew_at(c: &CertFacts) -> u64 {
    let life = c.not_after.saturating_sub(c.not_before);
    c.not_after.saturating_sub(life / 3)
}

/// The names of `wanted` the certificate does not cover (exactly or by a `*.` wildcard one label
/// deep), lower-cased.
pub fn uncovered(c: &CertFacts, wanted: &[String]) -> Vec<String> {
    wanted
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .filter(|w| !c.covers(w))
        .collect()
}

/// What to do at `now` with the certificate in place (`None`: missing or unreadable).
pub fn decide(now: u64, current: Option<&CertFacts>, wanted: &[String], forced: bool) -> Decision {
    let Some(c) = current else {
        return Decision::Obtain(Reason::Missing);
    };
    if c.self_signed {
        return Decision::Obtain(Reason::Temporary);
    }
    let missing = uncovered(c, wanted);
    if !missing.is_empty() {
        return Decision::Obtain(Reason::Names(missing));
    }
    if forced {
        return Decision::Obtain(Reason::Forced);
    }
    let at = renew_at(c);
    if now >= at {
        Decision::Obtain(Reason::Due)
    } else {
        Decision::Wait(at)
    }
}

/// The first wait after a failure, in seconds.
pub const FIRST_RETRY_SECS: u64 = 60;
/// The longest wait between attempts (as certbot's timer, twice a day at most would be too
/// slow for a first certificate; six hours keeps well inside Let's Encrypt's rate limits).
pub const MAX_RETRY_SECS: u64 = 6 * 3600;

/// How long to wait after the `failures`-th failure in a row (1 for the first): `first`
/// seconds, doubled each time, at most [`MAX_RETRY_SECS`].
pub fn backoff(failures: u32, first: u64) -> u64 {
    let shift = failures.saturating_sub(1).min(32);
    first
        .max(1)
        .saturating_mul(1u64 << shift)
        .min(MAX_RETRY_SECS.max(first))
}

/// When to try again after a failure at `now`: after the backoff, but never later than an hour
/// before the certificate in place expires (while there is one).
pub fn retry_at(now: u64, failures: u32, first: u64, current: Option<&CertFacts>) -> u64 {
    let next = now.saturating_add(backoff(failures, first));
    match current {
        Some(c) if !c.self_signed && c.not_after > now + 3600 => next.min(c.not_after - 3600),
        _ => next,
    }
}

/// Whether the certificate the CA sent may replace the one in place: it must cover every name
/// asked for, not be self-signed, and be valid at `now`.
pub fn accept(issued: &CertFacts, wanted: &[String], now: u64) -> Result<(), String> {
    let missing = uncovered(issued, wanted);
    if !missing.is_empty() {
        return Err(format!(
            "the CA's certificate is for {} and does not cover {} (refused; the old certificate stays)",
            issued.names.join(", "),
            missing.join(", ")
        ));
    }
    if issued.self_signed {
        return Err("the CA sent a self-signed certificate (refused)".into());
    }
    if issued.not_before > now + 300 || issued.not_after <= now {
        return Err(format!(
            "the CA's certificate is not valid now (valid from {} to {}, Unix time; check the clock)",
            issued.not_before, issued.not_after
        ));
    }
    Ok(())
}

/// [`accept`] on a PEM chain as the CA sent it: its leaf's facts, or why it is refused.
pub fn accept_pem(chain: &[u8], wanted: &[String], now: u64) -> Result<CertFacts, String> {
    let facts =
        super::cert::facts(chain).map_err(|e| format!("the CA's certificate is refused: {e}"))?;
    accept(&facts, wanted, now)?;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn cert(names: &[&str], from: u64, to: u64) -> CertFacts {
        CertFacts {
            names: names.iter().map(|s| s.to_string()).collect(),
            issuer: "CN=Test CA".into(),
            not_before: from,
            not_after: to,
            self_signed: false,
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn renews_with_a_third_of_its_life_left() {
        // 90 days: renewed after 60.
        let c = cert(&["mail.example.test"], 0, 90 * DAY);
        assert_eq!(renew_at(&c), 60 * DAY);
        let want = names(&["mail.example.test"]);
        assert_eq!(
            decide(60 * DAY - 1, Some(&c), &want, false),
            Decision::Wait(60 * DAY)
        );
        assert_eq!(
            decide(60 * DAY, Some(&c), &want, false),
            Decision::Obtain(Reason::Due)
        );
        // Pebble's 5-year-ish or 7-day ones the same way.
        let short = cert(&["mail.example.test"], 1000, 1000 + 7 * DAY);
        assert_eq!(renew_at(&short), 1000 + 7 * DAY - 7 * DAY / 3);
        // Already expired: due.
        assert_eq!(
            decide(100 * DAY, Some(&c), &want, false),
            Decision::Obtain(Reason::Due)
        );
    }

    #[test]
    fn obtains_when_missing_temporary_or_names_changed() {
        let want = names(&["mail.example.test", "mx.example.test"]);
        assert_eq!(
            decide(0, None, &want, false),
            Decision::Obtain(Reason::Missing)
        );
        let mut temp = cert(&["mail.example.test", "mx.example.test"], 0, 365 * DAY);
        temp.self_signed = true;
        assert_eq!(
            decide(0, Some(&temp), &want, false),
            Decision::Obtain(Reason::Temporary)
        );
        let one = cert(&["mail.example.test"], 0, 90 * DAY);
        assert_eq!(
            decide(DAY, Some(&one), &want, false),
            Decision::Obtain(Reason::Names(names(&["mx.example.test"])))
        );
        let both = cert(&["mx.example.test", "mail.example.test"], 0, 90 * DAY);
        assert_eq!(
            decide(DAY, Some(&both), &want, false),
            Decision::Wait(60 * DAY)
        );
        assert_eq!(
            decide(DAY, Some(&both), &want, true),
            Decision::Obtain(Reason::Forced)
        );
    }

    #[test]
    fn wildcards_cover_one_label() {
        let w = cert(&["*.example.test"], 0, 90 * DAY);
        assert!(uncovered(&w, &names(&["mail.example.test"])).is_empty());
        assert_eq!(
            uncovered(&w, &names(&["a.b.example.test", "example.test"])),
            names(&["a.b.example.test", "example.test"])
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1, 60), 60);
        assert_eq!(backoff(2, 60), 120);
        assert_eq!(backoff(5, 60), 960);
        assert_eq!(backoff(30, 60), MAX_RETRY_SECS);
        assert_eq!(backoff(u32::MAX, 60), MAX_RETRY_SECS);
        assert_eq!(backoff(0, 60), 60);
        assert_eq!(backoff(3, 0), 4, "at least a second");
        // A test's short first wait still doubles.
        assert_eq!(backoff(2, 1), 2);
    }

    #[test]
    fn retries_before_the_old_certificate_expires() {
        let c = cert(&["m.example.test"], 0, 10 * 3600);
        // The backoff says 6 h from 5 h; the certificate ends at 10 h: retry at 9 h.
        assert_eq!(retry_at(5 * 3600, 30, 60, Some(&c)), 9 * 3600);
        assert_eq!(retry_at(5 * 3600, 1, 60, Some(&c)), 5 * 3600 + 60);
        assert_eq!(retry_at(100, 1, 60, None), 160);
    }

    #[test]
    fn issued_certificates_are_checked() {
        let want = names(&["mail.acme.test"]);
        let good = cert(&["mail.acme.test"], 100, 100 + 90 * DAY);
        assert_eq!(accept(&good, &want, 200), Ok(()));
        let other = cert(&["evil.test"], 100, 100 + 90 * DAY);
        let e = accept(&other, &want, 200).unwrap_err();
        assert!(
            e.contains("evil.test") && e.contains("mail.acme.test"),
            "{e}"
        );
        let mut own = good.clone();
        own.self_signed = true;
        assert!(
            accept(&own, &want, 200)
                .unwrap_err()
                .contains("self-signed")
        );
        assert!(
            accept(&good, &want, 100 + 91 * DAY)
                .unwrap_err()
                .contains("not valid now")
        );
        assert!(
            accept(&good, &want, 0).is_ok(),
            "a few seconds of clock skew are fine"
        );
        let later = cert(&["mail.acme.test"], 10_000, 10_000 + 90 * DAY);
        assert!(accept(&later, &want, 0).unwrap_err().contains("clock"));
    }
}
