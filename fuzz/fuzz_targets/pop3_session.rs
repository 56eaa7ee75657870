//! The POP3 engine fed arbitrary bytes, logged in or refused, with STLS and UPDATE answered.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use smtpd::proto::pop3::{Entry, Event, LoginOutcome, Pop3Policy, Pop3Session};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let policy = Pop3Policy {
        hostname: "mx.example.test".into(),
        plaintext_allowed: ctl & 1 != 0,
        max_command_line: 255,
        max_errors: 20,
        tls_available: ctl & 2 != 0,
    };
    let mut s = Pop3Session::new(Arc::new(policy));
    let step = usize::from(ctl >> 4) + 1;
    let mut queue = std::collections::VecDeque::new();
    for chunk in input.chunks(step) {
        queue.extend(s.feed(chunk));
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::Login { user, .. } => {
                    let outcome = if ctl & 4 != 0 {
                        LoginOutcome::Ok(vec![
                            Entry {
                                uid: "a".into(),
                                size: 10,
                            },
                            Entry {
                                uid: "b".into(),
                                size: 20,
                            },
                        ])
                    } else {
                        LoginOutcome::BadCredentials
                    };
                    queue.extend(s.login(outcome, &user));
                }
                Event::Update { .. } => queue.extend(s.updated(ctl & 8 != 0)),
                Event::StartTls => s.tls_started(),
                _ => {}
            }
        }
    }
});
