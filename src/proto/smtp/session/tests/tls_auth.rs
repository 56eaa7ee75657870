//! STARTTLS (RFC 3207, the CVE-2011-0411 injection), AUTH (RFC 4954) and the submission rules
//! (RFC 6409), as transcripts.

use super::*;

fn tls_policy() -> Policy {
    let mut p = policy();
    p.tls_available = true;
    p.auth_available = true;
    p
}

pub(super) fn submission_policy() -> Policy {
    let mut p = tls_policy();
    p.submission = true;
    p
}

#[test]
fn starttls_advertised_then_reset_and_not_again() {
    let p = tls_policy();
    let run = drive_reads(
        &p,
        &[
            b"EHLO c\r\nSTARTTLS\r\n",
            b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@b.test>\r\n",
        ],
        false,
    );
    assert_eq!(run.codes(), [250, 220, 250, 503, 250]);
    assert_eq!(run.tls_started, 1);
    assert!(run.replies[0].lines.iter().any(|l| l == "STARTTLS"));
    assert!(
        !run.replies[2].lines.iter().any(|l| l == "STARTTLS"),
        "not offered again"
    );
    // AUTH shows only under TLS for a remote peer.
    assert!(!run.replies[0].lines.iter().any(|l| l.starts_with("AUTH")));
    assert!(run.replies[2].lines.iter().any(|l| l == "AUTH PLAIN LOGIN"));
    let run = drive(&p, b"STARTTLS now\r\n", 100);
    assert_eq!(run.codes(), [501]);
    let run = drive(&policy(), b"STARTTLS\r\n", 100);
    assert_eq!(run.codes(), [502]);
}

/// CVE-2011-0411: commands pipelined after STARTTLS in the same write are never answered.
#[test]
fn starttls_injection_is_dropped() {
    let p = tls_policy();
    let injected: &[u8] =
        b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@b.test>\r\nRCPT TO:<x@example.test>\r\n";
    let run = drive(&p, injected, injected.len());
    assert_eq!(run.codes(), [250, 220]);
    // Also when the injected bytes arrive in the same read as the end of the STARTTLS line.
    let run = drive_reads(
        &p,
        &[b"EHLO c\r\nSTART", b"TLS\r\nMAIL FROM:<evil@b.test>\r\n"],
        false,
    );
    assert_eq!(run.codes(), [250, 220]);
}

#[test]
fn auth_plain_and_login() {
    let p = tls_policy();
    let plain = crate::proto::sasl::encode_plain("alice@example.test", "secret");
    let bad = crate::proto::sasl::encode_plain("alice@example.test", "wrong");
    let script = format!(
        "EHLO c\r\nAUTH PLAIN {bad}\r\nAUTH PLAIN\r\n{plain}\r\nAUTH PLAIN {plain}\r\nMAIL FROM:<a@b.test>\r\n"
    );
    let run = drive_with(&p, script.as_bytes(), 7, true);
    assert_eq!(run.codes(), [250, 535, 334, 235, 503, 250]);
    assert_eq!(run.enhanced()[1], "5.7.8");
    assert_eq!(run.replies[2].to_string(), "334 \r\n");
    // LOGIN with exactly Thunderbird's prompts; "*" cancels.
    let user = "YWxpY2VAZXhhbXBsZS50ZXN0"; // alice@example.test
    let pass = "c2VjcmV0"; // secret
    let script = format!("AUTH LOGIN\r\n*\r\nAUTH LOGIN\r\n{user}\r\n{pass}\r\n");
    let run = drive_with(&p, script.as_bytes(), 5, true);
    assert_eq!(run.codes(), [334, 501, 334, 334, 235]);
    assert_eq!(run.replies[0].to_string(), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(run.replies[3].to_string(), "334 UGFzc3dvcmQ6\r\n");
    let run = drive_with(
        &p,
        format!("AUTH LOGIN {user}\r\n{pass}\r\n").as_bytes(),
        100,
        true,
    );
    assert_eq!(run.codes(), [334, 235]);
    // Not in a transaction, unknown mechanism, bad base64.
    let run = drive_with(
        &p,
        b"MAIL FROM:<a@b.test>\r\nAUTH PLAIN x\r\nRSET\r\nAUTH CRAM-MD5\r\nAUTH PLAIN !!\r\n",
        100,
        true,
    );
    assert_eq!(run.codes(), [250, 503, 250, 504, 501]);
}

#[test]
fn auth_needs_tls_from_remote_peers() {
    let p = tls_policy();
    let run = drive(
        &p,
        b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n",
        100,
    );
    assert_eq!(run.codes(), [538]);
    assert_eq!(run.enhanced()[0], "5.7.11");
    let run = drive_reads(
        &p,
        &[
            b"STARTTLS\r\n",
            b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n",
        ],
        false,
    );
    assert_eq!(run.codes(), [220, 235]);
    let mut insecure = tls_policy();
    insecure.allow_insecure_auth = true;
    let run = drive(
        &insecure,
        b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n",
        100,
    );
    assert_eq!(run.codes(), [235]);
}

#[test]
fn submission_requires_auth_and_matching_sender() {
    let p = submission_policy();
    let ok = crate::proto::sasl::encode_plain("alice@example.test", "secret");
    let script = format!(
        "EHLO c\r\nMAIL FROM:<alice@example.test>\r\nAUTH PLAIN {ok}\r\nMAIL FROM:<bob@example.test>\r\nMAIL FROM:<Alice@Example.TEST>\r\nRCPT TO:<x@elsewhere.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: s\r\n\r\nx\r\n.\r\n"
    );
    let run = drive_with(&p, script.as_bytes(), 1000, true);
    assert_eq!(run.codes(), [250, 530, 235, 553, 250, 550, 250, 354, 250]);
    assert_eq!(run.enhanced()[1], "5.7.0");
    assert!(run.replies[5].lines[0].contains("relaying is not offered"));
    let env = &run.messages[0].0;
    assert!(env.submission);
    assert_eq!(env.authenticated.as_deref(), Some("alice@example.test"));
    assert_eq!(env.protocol(), "ESMTPA");
    let mut free = submission_policy();
    free.sender_login_match = false;
    let run = drive_with(
        &free,
        format!("AUTH PLAIN {ok}\r\nMAIL FROM:<bob@example.test>\r\n").as_bytes(),
        100,
        true,
    );
    assert_eq!(run.codes(), [235, 250]);
}

#[test]
fn received_protocol_names() {
    let p = tls_policy();
    let ok = crate::proto::sasl::encode_plain("alice@example.test", "secret");
    let script = format!(
        "EHLO c\r\nAUTH PLAIN {ok}\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n.\r\n"
    );
    let run = drive_reads(&p, &[b"STARTTLS\r\n", script.as_bytes()], false);
    assert_eq!(run.messages[0].0.protocol(), "ESMTPSA");
    let rest: &[u8] =
        b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n.\r\n";
    let run = drive_reads(&p, &[b"STARTTLS\r\n", rest], false);
    assert_eq!(run.messages[0].0.protocol(), "ESMTPS");
}
