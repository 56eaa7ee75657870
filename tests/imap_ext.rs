//! IMAP extensions against the real smtpd with Python imaplib: ESEARCH (RFC 4731) and SEARCHRES
//! (RFC 5182), LIST-EXTENDED and LIST-STATUS (RFC 5258, RFC 5819) on the Maildir, STATUS=SIZE,
//! BINARY (RFC 3516), `ENABLE IMAP4rev2` (RFC 9051). Each test proves one clause of issue 16's
//! extension list; bad options get a tagged BAD and the session goes on.
mod common;
use common::*;
use std::net::SocketAddr;

const ALICE: &str = "alice@example.test";

fn server() -> Server {
    imap_server_with_three(ALICE)
}

fn python(step: &str, addr: SocketAddr) {
    client_script("imaplib_ext.py", step, addr, ALICE, PASSWORD);
}

/// ESEARCH: `SEARCH RETURN (MIN MAX COUNT ALL)` and `UID SEARCH RETURN (...)` answer one
/// `* ESEARCH (TAG ..) [UID] ...` line; SAVE, unknown options and unbalanced lists are BAD.
#[test]
fn esearch_with_imaplib() {
    if !have("python3") {
        return;
    }
    let srv = server();
    python("esearch", srv.addr("imap"));
}

/// LIST-EXTENDED and LIST-STATUS (and STATUS=SIZE) on the Maildir account: `LIST (SUBSCRIBED SPECIAL-USE) "" "*"
/// RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (...))` lists the subscribed special folders
/// each with its STATUS line; a subscribed name with no folder is `\NonExistent`; RECURSIVEMATCH
/// gives CHILDINFO; several patterns; bad options are BAD and plain LIST is unchanged.
#[test]
fn list_extended_and_list_status_with_imaplib() {
    if !have("python3") {
        return;
    }
    let srv = server();
    python("list", srv.addr("imap"));
}

/// BINARY: BINARY.PEEK[n] of a base64 part is the decoded octets (a literal8 as they hold a
/// NUL), of a quoted-printable part the decoded text; BINARY.SIZE; a partial range; \Seen only
/// after BINARY[]; an x-uuencode part is `NO [UNKNOWN-CTE]`.
#[test]
fn binary_with_imaplib() {
    if !have("python3") {
        return;
    }
    let srv = server();
    srv.deliver(
        ALICE,
        b"Subject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
          --B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
          caf=C3=A9 =\r\nau lait\r\n\
          --B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n\
          --B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n\
          --B--\r\n",
    );
    python("binary", srv.addr("imap"));
}

/// `ENABLE IMAP4rev2`: `* ENABLED IMAP4rev2`; SELECT sends no RECENT but the folder's LIST line;
/// FLAGS carry no \Recent; SEARCH and UID SEARCH answer ESEARCH; a missing parent on the
/// Maildir is `\NonExistent`; SEARCHRES: `UID SEARCH RETURN (SAVE)` answers nothing, then `$`
/// names the saved messages in UID FETCH, STORE and FETCH (an empty `$` fetches nothing); a UTF-8
/// folder name is stored in modified UTF-7, as Dovecot names it.
#[test]
fn imap4rev2_with_imaplib() {
    if !have("python3") {
        return;
    }
    let srv = server();
    python("rev2", srv.addr("imap"));
    let md = srv.root().join("example.test/alice");
    assert!(md.join(".Entw&APw-rfe/cur").is_dir(), "{:?}", list(&md));
}
