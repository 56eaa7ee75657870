//! Everything built from one config: the engines' policies, the stores, the accounts and the TLS
//! configuration. Swapped whole on reload; each session keeps the generation it started with.
//! Building engine policies from config data happens here, at the composition root.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::auth::accounts::{Accounts, ProbeSlot};
use crate::config::{AcceptMode, Config};
use crate::http::HttpContext;
use crate::mailbox::MaildirStore;
use crate::net::imap_conn::ImapContext;
use crate::net::pop3_conn::Pop3Context;
use crate::net::smtp_conn::SmtpContext;
use crate::net::stats::Stats;
use crate::net::tls::TlsError;
use crate::net::transcript::TranscriptConfig;
use crate::outbound::OutboundConfig;
use crate::proto::smtp::{Accept, Policy, RelayTo};
use crate::queue::{QueueStore, Router};
use crate::testing::Break;

pub struct Generation {
    pub config: Arc<Config>,
    /// When this generation was built (a certificate file newer than this has changed).
    pub built_at: SystemTime,
    pub smtp: Arc<SmtpContext>,
    pub pop3: Arc<Pop3Context>,
    pub imap: Arc<ImapContext>,
    pub http: Arc<HttpContext>,
}

impl Generation {
    /// Builds the contexts; loads (or makes) the TLS certificate when `[tls]` is set. Blocking
    /// (certificate files, a dummy argon2 hash): call it off the async threads.
    pub fn build(
        config: Config,
        stats: &Arc<Stats>,
        probe: &Arc<ProbeSlot>,
        queue: &Arc<QueueStore>,
    ) -> Result<Generation, TlsError> {
        let tls = match &config.tls {
            Some(t) => Some(crate::net::tls::server_config(t, &config.hostname)?),
            None => None,
        };
        let store = Arc::new(MaildirStore::new(
            config.mailboxes.root.clone(),
            &config.server.instance_name(),
        ));
        let pairs = config.accounts.iter();
        let pairs = pairs.map(|a| (a.address.as_str(), a.password.as_str()));
        let accounts = Arc::new(Accounts::new(pairs, Arc::clone(probe)));
        let smtp = Arc::new(SmtpContext {
            policy: Arc::new(smtp_policy(&config, &accounts, false)),
            submission_policy: Arc::new(smtp_policy(&config, &accounts, true)),
            target: Arc::new(Router {
                local: Arc::clone(&store) as _,
                queue: Arc::clone(queue),
            }),
            relay_networks: config.relay.networks.clone(),
            limits: config.limits.clone(),
            stats: Arc::clone(stats),
            accounts: Arc::clone(&accounts),
            tls: tls.clone(),
            auth_failure_delay: Duration::from_millis(config.pop3.auth_failure_delay_ms),
            transcripts: transcripts(&config),
        });
        let http = Arc::new(HttpContext::new(
            &config,
            Arc::clone(stats),
            Arc::clone(&accounts),
            tls.clone(),
        ));
        let imap = Arc::new(ImapContext::new(
            &config,
            Arc::clone(&store),
            Arc::clone(stats),
            Arc::clone(&accounts),
            tls.clone(),
        ));
        let pop3 = Arc::new(Pop3Context::new(
            &config,
            store,
            Arc::clone(stats),
            accounts,
            tls,
        ));
        Ok(Generation {
            config: Arc::new(config),
            built_at: SystemTime::now(),
            smtp,
            pop3,
            imap,
            http,
        })
    }
}

impl Generation {
    /// What the outbound runner takes from this generation.
    pub fn outbound(&self) -> OutboundConfig {
        OutboundConfig {
            hostname: self.config.hostname.clone(),
            relay: self.config.relay.clone(),
            dns: crate::outbound::Dns::new(&self.config.dns),
            queue: self.config.queue.clone(),
            local: Arc::clone(&self.pop3.store),
            domains: self.config.mailboxes.domains.clone(),
            delimiter: self.config.mailboxes.recipient_delimiter.chars().next(),
            dkim: Arc::new(signers(&self.config)),
        }
    }
}

/// The `[dkim]` signers; an entry whose key was not read (`Config::read_dkim_keys`) signs
/// nothing.
fn signers(config: &Config) -> BTreeMap<String, crate::dkim::Signer> {
    let mut out = BTreeMap::new();
    for (domain, d) in &config.dkim {
        match &d.signing_key {
            Some(key) => {
                out.insert(
                    domain.clone(),
                    crate::dkim::Signer {
                        domain: domain.clone(),
                        selector: d.selector.clone(),
                        key: key.clone(),
                    },
                );
            }
            None => tracing::warn!(
                domain,
                "dkim: no key was read; this domain's mail goes out unsigned"
            ),
        }
    }
    out
}

/// Where transcripts go, when `[log] transcripts` is on.
pub fn transcripts(config: &Config) -> Option<TranscriptConfig> {
    let log = &config.log;
    log.transcripts.then(|| TranscriptConfig {
        dir: log.dir.join("transcripts"),
        max_bytes: log.transcript_max_kib * 1024,
        keep: Duration::from_secs(log.transcript_keep_days as u64 * 86_400),
    })
}

/// The SMTP session policy for sessions started under `config`, on a plain SMTP listener or
/// (`submission`) on a submission listener. Under `accept = "accounts"` the recipients are looked
/// up in `accounts` (which also know the selftest's probe mailbox).
pub fn smtp_policy(config: &Config, accounts: &Arc<Accounts>, submission: bool) -> Policy {
    Policy {
        hostname: config.hostname.clone(),
        max_message_bytes: config.limits.max_message_bytes,
        max_recipients: config.limits.max_recipients,
        max_errors: config.limits.max_errors,
        max_command_line: config.limits.max_command_line,
        max_line_length: config.limits.max_line_length,
        domains: config.mailboxes.domains.clone(),
        accept: match config.mailboxes.accept {
            AcceptMode::Any => Accept::Any,
            AcceptMode::Accounts => Accept::Known(Arc::clone(accounts) as _),
        },
        tls_available: config.tls.is_some(),
        auth_available: !config.accounts.is_empty(),
        allow_insecure_auth: config.smtp.allow_insecure_auth,
        submission,
        sender_login_match: config.smtp.sender_login_match,
        // Direct delivery (MX) reaches every domain that has no route and no smarthost.
        relay_to: RelayTo::Anywhere,
        aliases: Arc::new(config.aliases.clone()),
        recipient_delimiter: config.mailboxes.recipient_delimiter.chars().next(),
        fault_addresses: config.testing.fault_addresses,
        test_keep_dot_stuffing: Break::DotUnstuff.is_on(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// `accept = "accounts"`: the policy's lookup knows the configured accounts (any case in the
    /// file), and the selftest's probe only while the daemon's probe slot holds it.
    #[test]
    fn accounts_policy_knows_accounts_and_probe() {
        let ok = "hostname = \"mx.test\"\n[mailboxes]\ndomains = [\"example.test\"]\naccept = \"accounts\"\n[[accounts]]\naddress = \"Alice@Example.test\"\npassword = \"$argon2id$h\"\n";
        let c = crate::config::parse(ok, Path::new("t.toml")).unwrap();
        let probe = Arc::new(ProbeSlot::default());
        let pairs = c
            .accounts
            .iter()
            .map(|a| (a.address.as_str(), a.password.as_str()));
        let accounts = Arc::new(Accounts::new(pairs, Arc::clone(&probe)));
        let policy = smtp_policy(&c, &accounts, false);
        let Accept::Known(known) = &policy.accept else {
            panic!("accept = accounts gives a lookup");
        };
        assert!(known.exists("alice@example.test"));
        assert!(!known.exists("smtpd-selftest@example.test"));
        probe.set(
            "smtpd-selftest@example.test",
            "x",
            std::time::Instant::now() + Duration::from_secs(60),
        );
        assert!(known.exists("smtpd-selftest@example.test"));
        assert!(!policy.test_keep_dot_stuffing);
    }
}
