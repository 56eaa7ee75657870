//! The IMAP engine fed arbitrary bytes in arbitrary pieces over the in-memory store (feature
//! `fuzzing`): logged in or refused, STARTTLS and IDLE wake-ups answered, a message delivered
//! meanwhile, as a real session would see them.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use smtpd::proto::imap::fake::{Account, FakeStore};
use smtpd::proto::imap::{Event, ImapPolicy, ImapSession, LoginOutcome};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let policy = ImapPolicy {
        hostname: "mail.example.test".into(),
        plaintext_allowed: ctl & 1 != 0,
        tls_available: ctl & 2 != 0,
        max_errors: 20,
        max_literal: 4096,
        max_line: 512,
    };
    let account = Account::new();
    if let Ok(mut a) = account.lock() {
        a.deliver(b"From: a@b.test\nSubject: one\n\nhello\n");
        a.deliver(b"Subject: two\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\nbody\n--x--\n");
    }
    let mut s = ImapSession::new(Arc::new(policy));
    let step = usize::from(ctl >> 4) + 1;
    let mut queue = std::collections::VecDeque::new();
    for (i, chunk) in input.chunks(step).enumerate() {
        queue.extend(s.feed(chunk));
        if i % 7 == 3
            && let Ok(mut a) = account.lock()
        {
            a.deliver(b"Subject: meanwhile\n\nnew\n");
        }
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::Login { .. } => {
                    let outcome = if ctl & 4 != 0 {
                        LoginOutcome::Ok(Box::new(FakeStore::new(&account)))
                    } else {
                        LoginOutcome::BadCredentials
                    };
                    queue.extend(s.login(outcome));
                }
                Event::StartTls => s.tls_started(),
                Event::Idle => queue.extend(s.idle_poll()),
                _ => {}
            }
        }
        if s.is_closed() {
            break;
        }
    }
});
