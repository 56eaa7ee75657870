//! The POP3 checks: LIST sizes equal RETR octets, UIDL stable across sessions, DELE without QUIT
//! deletes nothing.

use std::net::SocketAddr;
use std::time::Duration;

use super::Run;
use super::peer::Peer;
use crate::control::proto::Outcome;

impl Run<'_> {
    async fn pop3_login(&self, addr: SocketAddr, secret: &str) -> Result<Peer, String> {
        let mut p = Peer::connect(addr).await?;
        let greet = p.line().await?;
        if !greet.starts_with("+OK") {
            return Err(format!("greeting {greet}"));
        }
        for line in [format!("USER {}", self.probe), format!("PASS {secret}")] {
            p.send(format!("{line}\r\n").as_bytes()).await?;
            let r = p.line().await?;
            if !r.starts_with("+OK") {
                return Err(format!("{} -> {r}", line.split(' ').next().unwrap_or("")));
            }
        }
        Ok(p)
    }

    async fn pop3_cmd(p: &mut Peer, line: &str) -> Result<String, String> {
        p.send(format!("{line}\r\n").as_bytes()).await?;
        let r = p.line().await?;
        if r.starts_with("+OK") {
            Ok(r)
        } else {
            Err(format!("{line} -> {r}"))
        }
    }

    pub(super) async fn pop3(&mut self, secret: &str) {
        const LIST: &str = "RFC 1939 5 (LIST, RETR)";
        const UIDL: &str = "RFC 1939 7";
        const DELE: &str = "RFC 1939 6";
        let Some(addr) = self.t.pop3 else {
            for (n, r) in [
                ("POP3 LIST size = RETR octets", LIST),
                ("POP3 UIDL stable", UIDL),
                ("POP3 DELE without QUIT", DELE),
            ] {
                self.record(n, r, Outcome::Skip, "no [pop3] listener");
            }
            return;
        };
        // Session 1: sizes and UIDs.
        let first = async {
            let mut p = self.pop3_login(addr, secret).await?;
            Self::pop3_cmd(&mut p, "LIST").await?;
            let list = String::from_utf8_lossy(&p.multiline().await?).into_owned();
            let mut mismatches = Vec::new();
            let mut count = 0;
            for l in list.lines() {
                let mut f = l.split(' ');
                let (Some(n), Some(size)) = (f.next(), f.next()) else {
                    continue;
                };
                count += 1;
                Self::pop3_cmd(&mut p, &format!("RETR {n}")).await?;
                let got = p.multiline().await?.len();
                if size.parse::<usize>().ok() != Some(got) {
                    mismatches.push(format!("message {n}: LIST {size}, RETR {got}"));
                }
            }
            Self::pop3_cmd(&mut p, "UIDL").await?;
            let uidl = p.multiline().await?;
            Self::pop3_cmd(&mut p, "QUIT").await?;
            Ok::<_, String>((count, mismatches, uidl))
        }
        .await;
        let uidl1 = match first {
            Ok((count, mismatches, uidl)) => {
                let seen = if mismatches.is_empty() {
                    format!("{count} messages, every size equal")
                } else {
                    mismatches.join("; ")
                };
                self.check(
                    "POP3 LIST size = RETR octets",
                    LIST,
                    count > 0 && mismatches.is_empty(),
                    seen,
                );
                uidl
            }
            Err(e) => {
                self.broken("POP3 LIST size = RETR octets", LIST, e);
                return;
            }
        };
        // Session 2: the same UIDs (the messages moved to cur/ meanwhile); DELE, then drop the
        // connection without QUIT.
        let second = async {
            let mut p = self.pop3_login(addr, secret).await?;
            Self::pop3_cmd(&mut p, "UIDL").await?;
            let uidl = p.multiline().await?;
            let stat = Self::pop3_cmd(&mut p, "STAT").await?;
            Self::pop3_cmd(&mut p, "DELE 1").await?;
            drop(p);
            Ok::<_, String>((uidl, stat))
        }
        .await;
        let stat_before = match second {
            Ok((uidl2, stat)) => {
                self.check(
                    "POP3 UIDL stable",
                    UIDL,
                    uidl2 == uidl1,
                    format!(
                        "{} UIDs, {} across two sessions",
                        String::from_utf8_lossy(&uidl1).lines().count(),
                        if uidl2 == uidl1 {
                            "the same"
                        } else {
                            "different"
                        }
                    ),
                );
                stat
            }
            Err(e) => {
                self.broken("POP3 UIDL stable", UIDL, e);
                return;
            }
        };
        // Session 3: still all there (the lock of session 2 is released when its socket closes,
        // which may take a moment). Then empty the probe maildrop properly.
        let mut third = Err(String::new());
        for _ in 0..50 {
            third = async {
                let mut p = self.pop3_login(addr, secret).await?;
                let stat = Self::pop3_cmd(&mut p, "STAT").await?;
                let n: usize = stat
                    .split(' ')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                for i in 1..=n {
                    Self::pop3_cmd(&mut p, &format!("DELE {i}")).await?;
                }
                Self::pop3_cmd(&mut p, "QUIT").await?;
                Ok::<_, String>(stat)
            }
            .await;
            match &third {
                Err(e) if e.contains("IN-USE") => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => break,
            }
        }
        match third {
            Ok(stat) => self.check(
                "POP3 DELE without QUIT",
                DELE,
                stat == stat_before,
                format!("STAT before DELE: {stat_before:?}; after a close without QUIT: {stat:?}"),
            ),
            Err(e) => self.broken("POP3 DELE without QUIT", DELE, e),
        }
    }
}
