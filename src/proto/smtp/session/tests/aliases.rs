//! `[aliases]` and `recipient_delimiter` at RCPT: which recipients the envelope ends up with.

use super::*;

fn aliased() -> Policy {
    let mut p = policy();
    p.recipient_delimiter = Some('+');
    p.aliases = Arc::new(std::collections::BTreeMap::from([
        (
            "postmaster@example.test".to_string(),
            vec!["alice@example.test".to_string()],
        ),
        (
            "team@example.test".to_string(),
            vec!["alice@example.test".to_string(), "bob@far.test".to_string()],
        ),
        (
            "@localhost".to_string(),
            vec!["root@example.test".to_string()],
        ),
    ]));
    p.accept = Accept::Known(Arc::new(std::collections::BTreeSet::from([
        "alice@example.test".to_string(),
        "carol@localhost".to_string(),
    ])));
    p
}

/// (address, mailbox local part, remote) of the one message's recipients.
fn recipients(p: &Policy, rcpts: &[&str]) -> (Vec<u16>, Vec<(String, String, bool)>) {
    let mut script = String::from("MAIL FROM:<a@b.test>\r\n");
    for r in rcpts {
        script.push_str(&format!("RCPT TO:<{r}>\r\n"));
    }
    script.push_str("DATA\r\nx\r\n.\r\n");
    let run = transcript(p, &script);
    let got = run
        .messages
        .first()
        .map(|(env, _)| {
            env.recipients
                .iter()
                .map(|r| (r.address.clone(), r.local.clone(), r.remote))
                .collect()
        })
        .unwrap_or_default();
    (run.codes(), got)
}

fn r(address: &str, local: &str, remote: bool) -> (String, String, bool) {
    (address.into(), local.into(), remote)
}

#[test]
fn an_alias_delivers_to_its_addresses_local_and_remote() {
    let (codes, got) = recipients(&aliased(), &["team@example.test", "postmaster"]);
    assert_eq!(codes, [250, 250, 250, 354, 250]);
    assert_eq!(
        got,
        [
            r("alice@example.test", "alice", false),
            r("bob@far.test", "bob", true)
        ],
        "alice only once"
    );
}

#[test]
fn the_delimiter_finds_the_mailbox_and_keeps_the_address() {
    let (codes, got) = recipients(
        &aliased(),
        &["alice+lists@example.test", "nobody+x@example.test"],
    );
    assert_eq!(codes, [250, 250, 550, 354, 250]);
    assert_eq!(got, [r("alice+lists@example.test", "alice", false)]);
    // Without a delimiter, "alice+lists" is a mailbox of its own (and unknown here).
    let mut p = aliased();
    p.recipient_delimiter = None;
    let (codes, _) = recipients(&p, &["alice+lists@example.test"]);
    assert_eq!(codes[1], 550);
}

#[test]
fn a_catch_all_takes_what_has_no_mailbox() {
    let (codes, got) = recipients(&aliased(), &["anyone@localhost", "carol@localhost"]);
    assert_eq!(codes, [250, 250, 250, 354, 250]);
    assert_eq!(
        got,
        [
            r("root@example.test", "root", false),
            r("carol@localhost", "carol", false)
        ],
        "carol has an account: not caught"
    );
}

/// RFC 3461 parameters reach the envelope: RET and ENVID for the message, NOTIFY and ORCPT per
/// recipient; an alias's targets inherit its NOTIFY and name it as their original recipient.
#[test]
fn dsn_parameters_reach_the_envelope() {
    let script = "EHLO c.test\r\nMAIL FROM:<a@b.test> RET=FULL ENVID=e+2B1\r\n\
        RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice@example.test\r\n\
        RCPT TO:<team@example.test> NOTIFY=NEVER\r\n\
        RCPT TO:<carol@localhost>\r\nDATA\r\nx\r\n.\r\n";
    let run = transcript(&aliased(), script);
    assert_eq!(run.codes(), [250, 250, 250, 250, 250, 354, 250]);
    assert!(run.replies[0].lines.iter().any(|l| l == "DSN"));
    let env = &run.messages[0].0;
    assert_eq!(env.ret, Some(crate::dsn::Ret::Full));
    assert_eq!(env.envid.as_deref(), Some("e+2B1"));
    let got: Vec<(&str, Option<String>, Option<&str>)> = env
        .recipients
        .iter()
        .map(|r| {
            (
                r.address.as_str(),
                r.notify.map(|n| n.keyword()),
                r.orcpt.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "alice@example.test",
                Some("SUCCESS,FAILURE".into()),
                Some("rfc822;Alice@example.test")
            ),
            // alice again through the alias: already a recipient, kept once.
            (
                "bob@far.test",
                Some("NEVER".into()),
                Some("rfc822;team@example.test")
            ),
            ("carol@localhost", None, None),
        ]
    );
}
