//! Control protocol: one JSON object per line each way over the Unix socket.
//! Request `{"v":1,"cmd":"status"}`; reply `{"v":1,"ok":true,"data":{...}}` or
//! `{"v":1,"ok":false,"error":"..."}`. Bump [`PROTOCOL_VERSION`] whenever a request or a reply
//! changes shape; a mismatch is refused with "incompatible smtpctl and smtpd".

use serde::{Deserialize, Serialize};

use crate::net::Protocol;
use crate::net::stats::Snapshot;

pub const PROTOCOL_VERSION: u32 = 1;

/// Longest line either side accepts.
pub const MAX_LINE: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Status,
    Mailboxes,
    SendTest {
        to: Option<String>,
        from: Option<String>,
    },
    Reload,
    /// Validate a configuration (default: the running one's file) and describe what a reload
    /// would change, without applying it.
    ReloadCheck {
        config: Option<String>,
    },
    /// Counters in Prometheus text format.
    Metrics,
    /// Run the RFC checks against the daemon's own listeners. `quick`: skip "SIZE actual" (it
    /// sends max_message_bytes + 1 octets). Absent means false and false is not sent, so this
    /// request's shape is what it was before the field (no [`PROTOCOL_VERSION`] bump).
    Selftest {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        quick: bool,
    },
    /// The session transcript behind a delivered message (its queue id).
    Transcript {
        id: String,
    },
    /// Stream live events (one response line each) until the client leaves.
    Watch {
        address: Option<String>,
    },
    /// Wait for a matching message, as `GET /api/v1/wait` does; the reply is
    /// `{"found": <message>}` or `{"timed_out": "<why>"}`.
    Wait {
        #[serde(flatten)]
        query: WaitQuery,
    },
    LogLevel {
        level: String,
    },
    Pause,
    Resume,
    /// A rolling restart's first step: `/health` answers 503 `draining` (the balancer stops
    /// sending clients here) while every session, new ones too, is still served; answered with
    /// [`DrainResult`] once no SMTP, POP3 or IMAP session is left (after at least `settle_secs`,
    /// the balancer's time to see the 503) or after `timeout_secs`.
    Drain {
        timeout_secs: u64,
        settle_secs: u64,
    },
    /// `/health` is 200 again.
    Undrain,
    /// The outbound queue: list, show, flush, remove, hold, release.
    Queue {
        action: QueueAction,
    },
    /// The certificate in use and, under `[tls] acme = true`, its renewal ([`TlsInfo`]).
    Tls,
    /// `[tls] acme = true`: obtain a new certificate now; answered with [`TlsInfo`] once the
    /// attempt is over.
    TlsRenew,
}

/// The conditions of a wait, as `GET /api/v1/wait` takes them (the daemon reads them with the
/// same parser): absent ones are not sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl WaitQuery {
    /// As the `(name, value)` pairs of an HTTP query.
    pub fn pairs(&self) -> Vec<(String, String)> {
        [
            ("to", &self.to),
            ("from", &self.from),
            ("subject", &self.subject),
            ("contains", &self.contains),
            ("mailbox", &self.mailbox),
            ("since", &self.since),
            ("timeout", &self.timeout),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.clone()?)))
        .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum QueueAction {
    List,
    Show {
        id: String,
    },
    /// Try now: one message, or every one.
    Flush {
        id: Option<String>,
    },
    Remove {
        id: String,
    },
    Hold {
        id: String,
    },
    Release {
        id: String,
    },
}

impl Request {
    /// Commands that change the daemon or reach into mail (send-test, selftest, transcripts):
    /// root or the daemon's own user only. Reading (status, mailboxes, metrics, the live `watch`
    /// of the same sessions and deliveries) is open to the socket's group.
    pub fn is_privileged(&self) -> bool {
        !matches!(
            self,
            Request::Status
                | Request::Mailboxes
                | Request::Metrics
                | Request::Watch { .. }
                | Request::Wait { .. }
                | Request::Tls
                | Request::Queue {
                    action: QueueAction::List | QueueAction::Show { .. }
                }
        )
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RequestLine {
    pub v: u32,
    #[serde(flatten)]
    pub request: Request,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResponseLine {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ResponseLine {
    pub fn ok(data: impl Serialize) -> Self {
        ResponseLine {
            v: PROTOCOL_VERSION,
            ok: true,
            data: Some(serde_json::to_value(data).unwrap_or(serde_json::Value::Null)),
            error: None,
        }
    }
    pub fn err(error: impl Into<String>) -> Self {
        ResponseLine {
            v: PROTOCOL_VERSION,
            ok: false,
            data: None,
            error: Some(error.into()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerInfo {
    pub protocol: Protocol,
    pub address: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadInfo {
    /// Unix time of the attempt.
    pub at: u64,
    pub applied: bool,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub changes: Vec<String>,
}

/// The answer to [`Request::Drain`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainResult {
    /// No session was left before the timeout.
    pub drained: bool,
    /// SMTP, POP3 and IMAP sessions still open.
    pub sessions: u64,
    pub waited_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCounts {
    pub active: u64,
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    pub smtp: SessionCounts,
    pub pop3: SessionCounts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub version: String,
    pub uptime_secs: u64,
    pub config: String,
    pub listeners: Vec<ListenerInfo>,
    pub sessions: Sessions,
    pub counters: Snapshot,
    pub smtp_paused: bool,
    /// `smtpctl drain`: `/health` answers 503 until `smtpctl undrain` or a restart.
    #[serde(default)]
    pub draining: bool,
    pub log_level: String,
    pub last_reload: Option<ReloadInfo>,
    /// Messages in the outbound queue, and those with a deferred recipient.
    #[serde(default)]
    pub queue: QueueCounts,
    /// The certificate, when `[tls]` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
}

/// The TLS certificate in use (`smtpctl tls`, `status`); times are Unix seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// `[tls] acme = true`: the certificate is obtained and renewed by smtpd.
    pub acme: bool,
    /// The names the certificate covers (under ACME while the temporary one is in use: the
    /// names asked for).
    pub names: Vec<String>,
    /// The issuer's distinguished name.
    pub issuer: String,
    pub not_after: Option<u64>,
    /// The certificate in use is smtpd's temporary self-signed one (ACME has not got one yet).
    #[serde(default)]
    pub temporary: bool,
    /// ACME: when the next attempt is due (renewal, or a retry after a failure).
    #[serde(default)]
    pub next_renewal: Option<u64>,
    /// ACME: the last attempt's error, cleared by a success.
    #[serde(default)]
    pub last_error: Option<String>,
    /// ACME: when the last attempt ended, and when one last succeeded.
    #[serde(default)]
    pub last_attempt: Option<u64>,
    #[serde(default)]
    pub last_success: Option<u64>,
    /// ACME: failed attempts in a row.
    #[serde(default)]
    pub failures: u32,
    /// ACME: the CA's directory URL.
    #[serde(default)]
    pub directory: String,
    /// The certificate file's problem, when it cannot be read.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounts {
    pub messages: u64,
    pub deferred: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxInfo {
    pub address: String,
    /// Messages in new/ and cur/.
    pub messages: u64,
    pub new: u64,
    pub cur: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Unix time of the newest message, if any.
    pub newest: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendTestResult {
    pub delivered: bool,
    pub from: String,
    pub to: String,
    pub message_id: String,
    /// The server's last reply (the 250 after DATA, or the refusal).
    pub reply: String,
    pub latency_ms: u64,
    /// Where the message landed.
    pub path: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLevelResult {
    pub previous: String,
    pub level: String,
}

/// `smtpctl queue`: one queued message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub id: String,
    /// Reverse-path; empty for `<>`.
    pub sender: String,
    pub age_secs: u64,
    pub size: u64,
    pub held: bool,
    pub recipients: Vec<QueuedRecipient>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    pub address: String,
    /// "queued" | "deferred" | "delivered" | "failed" | "held".
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Unix time of the next try, while pending.
    pub next_try: Option<u64>,
}

/// `smtpctl selftest`: one check's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// Where the rule is written.
    pub rfc: String,
    pub outcome: Outcome,
    /// What was seen (or why the check was skipped).
    pub seen: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub smtp: String,
    pub pop3: Option<String>,
    pub checks: Vec<Check>,
    pub passed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let line = RequestLine {
            v: PROTOCOL_VERSION,
            request: Request::SendTest {
                to: Some("a@b".into()),
                from: None,
            },
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(text, r#"{"v":1,"cmd":"send-test","to":"a@b","from":null}"#);
        let back: RequestLine = serde_json::from_str(r#"{"v":1,"cmd":"status"}"#).unwrap();
        assert_eq!(back.request, Request::Status);
        let ll: RequestLine =
            serde_json::from_str(r#"{"v":1,"cmd":"log-level","level":"debug"}"#).unwrap();
        assert_eq!(
            ll.request,
            Request::LogLevel {
                level: "debug".into()
            }
        );
        assert!(serde_json::from_str::<RequestLine>(r#"{"v":1,"cmd":"nope"}"#).is_err());
        // selftest's optional `quick`: an old client's request still parses, and without
        // --quick the request is the same bytes as before the field.
        let old: RequestLine = serde_json::from_str(r#"{"v":1,"cmd":"selftest"}"#).unwrap();
        assert_eq!(old.request, Request::Selftest { quick: false });
        let plain = RequestLine {
            v: PROTOCOL_VERSION,
            request: Request::Selftest { quick: false },
        };
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"v":1,"cmd":"selftest"}"#
        );
        let quick: RequestLine =
            serde_json::from_str(r#"{"v":1,"cmd":"selftest","quick":true}"#).unwrap();
        assert_eq!(quick.request, Request::Selftest { quick: true });
        assert!(Request::Reload.is_privileged() && !Request::Status.is_privileged());
        // README: group members may use watch, and wait.
        assert!(!Request::Watch { address: None }.is_privileged());
        let wait = Request::Wait {
            query: WaitQuery {
                to: Some("bob@example.test".into()),
                timeout: Some("30s".into()),
                ..WaitQuery::default()
            },
        };
        assert!(!wait.is_privileged());
        let line = serde_json::to_string(&RequestLine {
            v: 1,
            request: wait.clone(),
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"v":1,"cmd":"wait","to":"bob@example.test","timeout":"30s"}"#
        );
        let back: RequestLine = serde_json::from_str(&line).unwrap();
        assert_eq!(back.request, wait);
        let Request::Wait { query } = wait else {
            unreachable!()
        };
        assert_eq!(
            query.pairs(),
            [
                ("to".to_string(), "bob@example.test".to_string()),
                ("timeout".to_string(), "30s".to_string())
            ]
        );
        let r = serde_json::to_string(&ResponseLine::err("x")).unwrap();
        assert_eq!(r, r#"{"v":1,"ok":false,"error":"x"}"#);
    }
}
