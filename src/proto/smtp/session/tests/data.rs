//! DATA as transcripts: the smuggling look-alikes, bare CR and LF, dot-stuffing, long lines and
//! the size limit.

use super::*;

#[test]
fn smuggling_variants_stay_inside_the_body() {
    for variant in [
        "\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r.\r", "\r.\n", "\n.\r", "\r\n.\n",
    ] {
        let script = format!(
            "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nbody{variant}MAIL FROM:<evil@b.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n"
        );
        let run = transcript(&policy(), &script);
        assert_eq!(run.codes(), [250, 250, 250, 354, 250, 221], "{variant:?}");
        assert_eq!(run.messages.len(), 1);
        let body = String::from_utf8_lossy(&run.messages[0].1);
        assert!(
            body.contains("MAIL FROM:<evil@b.test>"),
            "{variant:?}: {body:?}"
        );
        assert!(body.contains("smuggled"));
    }
}

/// A bare CR ends a line as a bare LF does (issue 14): both are stored as LF, so a stored copy
/// holds no CR, and neither ever ends DATA.
#[test]
fn bare_cr_and_bare_lf_are_stored_as_line_ends() {
    let table: &[(&str, &[u8])] = &[
        ("alpha\rbeta\r\n", b"alpha\nbeta\n"),
        ("alpha\nbeta\r\n", b"alpha\nbeta\n"),
        ("a\r\r\nb\r\n", b"a\n\nb\n"),
        ("a\r..b\r\n", b"a\n.b\n"),
        ("a\r.\rQUIT\r\n", b"a\n.\nQUIT\n"),
        ("a\n.\nQUIT\r\n", b"a\n.\nQUIT\n"),
    ];
    for (data, stored) in table {
        let script = format!(
            "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n{data}.\r\nNOOP\r\n"
        );
        let run = transcript(&policy(), &script);
        assert_eq!(run.codes(), [250, 250, 354, 250, 250], "{data:?}");
        assert_eq!(
            String::from_utf8_lossy(&run.messages[0].1),
            String::from_utf8_lossy(stored),
            "{data:?}"
        );
    }
}

#[test]
fn dot_lines_and_eight_bit_survive() {
    let run = transcript(
        &policy(),
        "MAIL FROM:<a@b.test> BODY=8BITMIME\r\nRCPT TO:<x@example.test>\r\nDATA\r\n..leading dot\r\n.\u{e9}t\u{e9}\r\n...\r\n.\r\n",
    );
    assert_eq!(run.codes(), [250, 250, 354, 250]);
    assert_eq!(
        run.messages[0].1,
        ".leading dot\n\u{e9}t\u{e9}\n..\n".as_bytes()
    );
}

#[test]
fn overlong_text_line_refuses_the_message_and_session_continues() {
    let script = format!(
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n{}\r\n.\r\nNOOP\r\n",
        "y".repeat(1200)
    );
    let run = transcript(&policy(), &script);
    assert_eq!(run.codes(), [250, 250, 354, 500, 250]);
    assert_eq!(run.enhanced()[3], "5.5.6");
    assert!(run.messages.is_empty());
    assert_eq!(run.aborted, 1);
}

#[test]
fn size_limits_declared_and_actual() {
    let mut p = policy();
    p.max_message_bytes = 100;
    let run = transcript(
        &p,
        "MAIL FROM:<a@b.test> SIZE=101\r\nMAIL FROM:<a@b.test> SIZE=100\r\n",
    );
    assert_eq!(run.codes(), [552, 250]);
    assert_eq!(run.enhanced()[0], "5.3.4");
    let script = format!(
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n{}\r\n.\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nsmall\r\n.\r\n",
        "z\r\n".repeat(60)
    );
    let run = transcript(&p, &script);
    assert_eq!(run.codes(), [250, 250, 354, 552, 250, 250, 354, 250]);
    assert_eq!(run.messages.len(), 1);
    assert_eq!(run.messages[0].1, b"small\n");
}
