//! CONDSTORE and QRESYNC (RFC 7162) against the real smtpd with Python imaplib: two sessions on
//! one Maildir folder, and mod-sequences over a restart. Proves issue 16's CONDSTORE/QRESYNC
//! clause: a flag change in one session is CHANGEDSINCE in the other, an expunge is VANISHED
//! there and VANISHED (EARLIER) at a QRESYNC reselect, and HIGHESTMODSEQ survives a restart.
mod common;
use common::*;
use std::net::SocketAddr;

const ALICE: &str = "alice@example.test";

fn server() -> Server {
    imap_server_with_three(ALICE)
}

fn python(step: &str, addr: SocketAddr) {
    client_script("imaplib_condstore.py", step, addr, ALICE, PASSWORD);
}

/// Two sessions: CHANGEDSINCE shows the other's STORE with a larger MODSEQ, UNCHANGEDSINCE
/// from before it gets `[MODIFIED]`, its EXPUNGE arrives as `* VANISHED`, and a QRESYNC
/// reselect gets `* VANISHED (EARLIER)` and the changed message; STATUS HIGHESTMODSEQ and
/// SEARCH MODSEQ agree.
#[test]
fn two_sessions_with_imaplib() {
    if !have("python3") {
        return;
    }
    let srv = server();
    python("two", srv.addr("imap"));
}

/// HIGHESTMODSEQ and each message's MODSEQ are what they were before smtpd was killed and
/// started again, and the next change gets a larger one.
#[test]
fn modseqs_survive_a_restart() {
    if !have("python3") {
        return;
    }
    let mut srv = server();
    python("before", srv.addr("imap"));
    let index = std::fs::read_to_string(srv.root().join("example.test/alice/smtpd-cache"))
        .expect("the folder's index");
    let highest = index
        .lines()
        .next()
        .and_then(|h| h.split(' ').find_map(|f| f.strip_prefix('H')))
        .expect("HIGHESTMODSEQ in the index header")
        .to_string();
    srv.kill_and_restart(&[]);
    python(&format!("after:{highest}"), srv.addr("imap"));
}
