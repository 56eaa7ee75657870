//! One message on its way from DATA to the delivery [`Target`]: the `Received:` trace first, the
//! text buffered and written in chunks off the async threads (at most [`WRITE_CHUNK`] held per
//! session, so memory does not grow with message size), and the submission fix-ups (Date,
//! Message-ID) once the header section is complete.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::mailbox::headers::{self, Trace};
use crate::mailbox::{Committed, Delivery, DeliveryError, Origin, Recipient, Target};
use crate::proto::smtp::Envelope;

/// Text buffered before it is written to the delivery.
pub const WRITE_CHUNK: usize = 256 * 1024;
/// Submission: how much of the header section is held to look for Date/Message-ID.
const HEADER_SCAN_LIMIT: usize = 64 * 1024;

pub struct Message {
    pub envelope: Envelope,
    pub id: String,
    pub started: Instant,
    /// `None` only while it is on a blocking thread.
    delivery: Option<Box<dyn Delivery>>,
    buf: Vec<u8>,
    /// The first write that failed; the rest of the text is dropped, the end gets a 4xx.
    failed: Option<DeliveryError>,
    /// Submission: the start of the message, held until its header section is complete.
    head: Option<Vec<u8>>,
    hostname: String,
}

fn task_failed(e: tokio::task::JoinError) -> DeliveryError {
    DeliveryError::Task(e.to_string())
}

impl Message {
    /// DATA was accepted: the delivery begins and the trace header is the first text.
    pub fn begin(
        target: &Arc<dyn Target>,
        envelope: Envelope,
        peer: IpAddr,
        hostname: &str,
    ) -> Self {
        let recipients: Vec<Recipient> = envelope
            .recipients
            .iter()
            .map(|r| Recipient {
                address: r.address.clone(),
                domain: r.domain.clone(),
                local: r.local.clone(),
                remote: r.remote,
                notify: r.notify,
                orcpt: r.orcpt.clone(),
                alias: r.alias.clone(),
            })
            .collect();
        let origin = Origin {
            sender: envelope.from.clone(),
            ret: envelope.ret,
            envid: envelope.envid.clone(),
            smtputf8: envelope.smtputf8,
        };
        let delivery = Arc::clone(target).begin(&origin, &recipients);
        let id = delivery.id().to_string();
        let rcpts: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        let protocol = envelope.protocol();
        let trace = Trace {
            helo: envelope.helo.as_deref(),
            peer,
            hostname,
            protocol: &protocol,
            id: &id,
            recipients: &rcpts,
            from: &envelope.from,
            time: SystemTime::now(),
        };
        // Mail that leaves through the queue gets its Return-Path at its final delivery.
        let relayed = recipients.iter().any(Recipient::through_queue);
        let mut head = if relayed {
            trace.received()
        } else {
            trace.render()
        };
        // An alias forwarded out: Delivered-To: the alias, as Postfix's local(8) adds, so a
        // copy that comes back shows the loop (checked when it is sent on again).
        let mut forwarded: Vec<&str> = recipients
            .iter()
            .filter(|r| r.remote)
            .filter_map(|r| r.alias.as_deref())
            .collect();
        forwarded.sort_unstable();
        forwarded.dedup();
        for alias in forwarded {
            head.insert_str(0, &crate::mailbox::headers::delivered_to(alias));
        }
        Message {
            buf: head.into_bytes(),
            head: envelope.submission.then(Vec::new),
            envelope,
            id,
            started: Instant::now(),
            delivery: Some(delivery),
            failed: None,
            hostname: hostname.to_string(),
        }
    }

    /// Message text: held while a submission's header is scanned, then buffered and written.
    pub async fn take(&mut self, data: Vec<u8>) {
        if self.failed.is_some() {
            return;
        }
        if let Some(head) = self.head.as_mut() {
            head.extend_from_slice(&data);
            if headers::header_end(head).is_some() || head.len() >= HEADER_SCAN_LIMIT {
                self.release_head();
            }
        } else {
            self.buf.extend_from_slice(&data);
        }
        if self.buf.len() >= WRITE_CHUNK {
            self.flush().await;
        }
    }

    /// Submission (RFC 6409 §8): adds Date and Message-ID when the header section lacks them,
    /// then passes the held bytes on.
    fn release_head(&mut self) {
        let Some(head) = self.head.take() else {
            return;
        };
        let end = headers::header_end(&head).unwrap_or(head.len());
        let section = &head[..end];
        if !headers::has_field(section, "Date") {
            let date = headers::rfc5322_date(SystemTime::now());
            self.buf
                .extend_from_slice(format!("Date: {date}\n").as_bytes());
        }
        if !headers::has_field(section, "Message-ID") {
            let (id, host) = (&self.id, &self.hostname);
            self.buf
                .extend_from_slice(format!("Message-ID: <{id}.submission@{host}>\n").as_bytes());
        }
        self.buf.extend_from_slice(&head);
    }

    /// Writes the buffered text to the delivery, off the async threads.
    async fn flush(&mut self) {
        let Some(mut delivery) = self.delivery.take() else {
            return;
        };
        let mut buf = std::mem::take(&mut self.buf);
        let done = tokio::task::spawn_blocking(move || {
            let r = delivery.write(&buf);
            buf.clear();
            (delivery, buf, r)
        })
        .await;
        match done {
            Ok((delivery, buf, r)) => {
                self.delivery = Some(delivery);
                self.buf = buf;
                self.failed = r.err();
            }
            Err(e) => self.failed = Some(task_failed(e)),
        }
    }

    /// The final dot: the rest of the text and the commit, in one trip to a blocking thread.
    pub async fn finish(mut self) -> Result<Committed, DeliveryError> {
        if self.head.is_some() {
            self.release_head();
        }
        let delivery = self.delivery.take();
        if let Some(e) = self.failed.take() {
            if let Some(d) = delivery {
                let _ = tokio::task::spawn_blocking(move || d.abort()).await;
            }
            return Err(e);
        }
        let Some(mut delivery) = delivery else {
            return Err(DeliveryError::Task("the delivery was lost".into()));
        };
        let buf = std::mem::take(&mut self.buf);
        tokio::task::spawn_blocking(move || {
            delivery.write(&buf)?;
            delivery.commit()
        })
        .await
        .map_err(task_failed)?
    }

    /// Gives the message up (refused, or the session ended inside DATA), off the async threads.
    pub async fn discard(mut self) {
        if let Some(d) = self.delivery.take() {
            let _ = tokio::task::spawn_blocking(move || d.abort()).await;
        }
    }
}
