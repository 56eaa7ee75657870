//! The SMTP engine fed arbitrary bytes in arbitrary pieces, with every driver answer exercised.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use smtpd::proto::smtp::session::{Delivery, Event, Policy, SmtpSession};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let mut p = Policy::example("mx.example.test", &["example.test", "localhost"]);
    p.tls_available = ctl & 1 != 0;
    p.auth_available = ctl & 2 != 0;
    p.submission = ctl & 4 != 0;
    p.max_message_bytes = 4096;
    let mut s = SmtpSession::new(Arc::new(p)).with_secure_peer(ctl & 8 != 0);
    let step = usize::from(ctl >> 4) + 1;
    let mut queue = std::collections::VecDeque::new();
    for chunk in input.chunks(step) {
        queue.extend(s.feed(chunk));
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::MessageEnd => queue.extend(s.delivered(Delivery::Done { id: "F".into() })),
                Event::StartTls => s.tls_started(),
                Event::Authenticate { user, .. } => {
                    queue.extend(s.auth_result(ctl & 16 != 0, &user))
                }
                _ => {}
            }
        }
    }
});
