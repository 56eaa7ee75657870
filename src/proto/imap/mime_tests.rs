use super::*;

const SIMPLE: &[u8] = b"From: Alice <alice@example.test>\r\nTo: bob@example.test, \"Carol C\" <carol@example.test>\r\nSubject: Hello\r\n there\r\nMessage-ID: <1@x>\r\nDate: Wed, 2 Dec 2026 09:00:00 +0000\r\n\r\nbody line\r\n";

const MULTI: &[u8] = b"From: a@b.test\r\nSubject: m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nfirst\r\n--XX\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--XX--\r\n";

fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn envelope_of_a_simple_message() {
    let m = parse(SIMPLE).unwrap();
    assert_eq!(
        text(|o| envelope(o, &m)),
        "(\"Wed, 2 Dec 2026 09:00:00 +0000\" \"Hello there\" ((\"Alice\" NIL \"alice\" \"example.test\")) \
         ((\"Alice\" NIL \"alice\" \"example.test\")) ((\"Alice\" NIL \"alice\" \"example.test\")) \
         ((NIL NIL \"bob\" \"example.test\")(\"Carol C\" NIL \"carol\" \"example.test\")) NIL NIL NIL \"<1@x>\")"
    );
}

#[test]
fn bodystructure_of_simple_and_multipart() {
    let m = parse(SIMPLE).unwrap();
    assert_eq!(
        text(|o| bodystructure(o, &m)),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 1)"
    );
    let m = parse(MULTI).unwrap();
    assert_eq!(
        text(|o| bodystructure(o, &m)),
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0)\
         (\"application\" \"pdf\" (\"name\" \"r.pdf\") NIL NIL \"base64\" 4) \"mixed\")"
    );
}

#[test]
fn sections() {
    let head = &SIMPLE[..header_len(SIMPLE)];
    assert!(head.ends_with(b"\r\n\r\n"));
    assert_eq!(section(SIMPLE, &[], &Spec::Header).unwrap(), head);
    assert_eq!(section(SIMPLE, &[], &Spec::Text).unwrap(), b"body line\r\n");
    assert_eq!(
        section(SIMPLE, &[1], &Spec::Whole).unwrap(),
        b"body line\r\n"
    );
    let f = Spec::Fields {
        names: vec!["subject".into(), "to".into()],
        not: false,
    };
    assert_eq!(
        section(SIMPLE, &[], &f).unwrap(),
        b"To: bob@example.test, \"Carol C\" <carol@example.test>\r\nSubject: Hello\r\n there\r\n\r\n"
    );
    let not = Spec::Fields {
        names: vec![
            "subject".into(),
            "to".into(),
            "date".into(),
            "message-id".into(),
        ],
        not: true,
    };
    assert_eq!(
        section(SIMPLE, &[], &not).unwrap(),
        b"From: Alice <alice@example.test>\r\n\r\n"
    );
    assert_eq!(section(MULTI, &[1], &Spec::Whole).unwrap(), b"first");
    assert_eq!(section(MULTI, &[2], &Spec::Whole).unwrap(), b"AAAA");
    assert!(
        section(MULTI, &[2], &Spec::Mime)
            .unwrap()
            .starts_with(b"Content-Type: application/pdf")
    );
    assert_eq!(section(MULTI, &[3], &Spec::Whole), None);
    assert_eq!(section(MULTI, &[0], &Spec::Whole), None);
}
