//! The scans behind the routes (blocking: run them in `spawn_blocking`): the messages that match
//! a filter in delivery order, a page at a time; one message by id; removal.

use std::io;
use std::path::{Path, PathBuf};

use super::detail;
use super::id::{Cursor, MessageId};
use super::message::{self, HEAD_BYTES, Summary};
use super::query::Filter;
use crate::mailbox::browse::{self, Stored};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The list: newest first.
    Newest,
    /// The wait: the first delivered since `since`.
    Oldest,
}

/// A page: the matching messages (at most `limit`) and whether more match after them.
pub struct Page {
    pub messages: Vec<(Stored, Summary)>,
    pub more: bool,
}

impl Page {
    /// Where the next page starts, when there is one.
    pub fn next_cursor(&self) -> Option<Cursor> {
        let (_, last) = self.messages.last().filter(|_| self.more)?;
        Some(Cursor {
            delivered_us: last.delivered_us,
            id: last.id.clone(),
        })
    }
}

/// The messages under `root` matching `f`, in `order` (by delivery time, then id), starting after
/// `after`, at most `limit`. With `read_max`, each match is read whole (up to that many octets) for
/// its snippet and attachment count; otherwise only as far as its header section.
pub fn select(
    root: &Path,
    f: &Filter,
    order: Order,
    after: Option<&Cursor>,
    limit: usize,
    read_max: Option<usize>,
) -> io::Result<Page> {
    let only = f.mailbox.as_ref().map(|(d, l)| (d.as_str(), l.as_str()));
    let mut found: Vec<(u64, String, Stored)> = browse::scan(root, only, f.since_us)?
        .into_iter()
        .filter_map(|s| {
            let id = MessageId::new(&s.domain, &s.local, &s.unique)?.encode();
            Some((s.delivered_us, id, s))
        })
        .collect();
    match order {
        Order::Newest => found.sort_unstable_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1))),
        Order::Oldest => found.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1))),
    }
    let past = |us: u64, id: &str| match after {
        None => true,
        Some(c) => match order {
            Order::Newest => (us, id) < (c.delivered_us, c.id.as_str()),
            Order::Oldest => (us, id) > (c.delivered_us, c.id.as_str()),
        },
    };
    let mut page = Page {
        messages: Vec::new(),
        more: false,
    };
    for (us, id, s) in found {
        if !past(us, &id) {
            continue;
        }
        if page.messages.len() == limit {
            // One more match means another page.
            if matching(&s, f, None)?.is_some() {
                page.more = true;
                break;
            }
            continue;
        }
        let Some(summary) = matching(&s, f, read_max)? else {
            continue;
        };
        page.messages.push((s, summary));
    }
    Ok(page)
}

/// The summary of `s` if it matches `f` (files gone meanwhile do not); with `read_max`, completed
/// from the body read up to that many octets.
pub fn matching(s: &Stored, f: &Filter, read_max: Option<usize>) -> io::Result<Option<Summary>> {
    let head = match browse::read_head(&s.path, HEAD_BYTES) {
        Ok(h) => h,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(mut summary) = message::summarize(s, &head) else {
        return Ok(None);
    };
    if !message::matches(f, &summary) {
        return Ok(None);
    }
    if f.contains.is_none() && read_max.is_none() {
        return Ok(Some(summary));
    }
    // The contains condition and the body's part of the summary: one read, one parse.
    let max = read_max.unwrap_or(usize::MAX).max(HEAD_BYTES);
    let raw = match browse::read_bounded(&s.path, max) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(m) = detail::parse(&raw) else {
        return Ok(f.contains.is_none().then_some(summary));
    };
    if let Some(needle) = &f.contains
        && !message::contains(&m, needle)
    {
        return Ok(None);
    }
    if read_max.is_some() {
        detail::complete(&mut summary, &m);
    }
    Ok(Some(summary))
}

/// What a delivery's own copies say about a wait.
#[derive(Debug)]
pub enum Among {
    /// The first of them (in delivery order) that matches.
    Found(Box<Summary>),
    /// None matches.
    NoMatch,
    /// One of them is no message under the root any more (a reader moved it meanwhile, or a
    /// reload changed the root): only a scan can tell.
    Unknown,
}

/// The wait's look at one delivery: of its copies `paths` (as its event names them), the first
/// that matches `f`, reading just those files instead of scanning every Maildir.
pub fn among(
    root: &Path,
    f: &Filter,
    paths: &[PathBuf],
    read_max: Option<usize>,
) -> io::Result<Among> {
    let mut copies = Vec::with_capacity(paths.len());
    for p in paths {
        let Some(s) = browse::at(root, p) else {
            return Ok(Among::Unknown);
        };
        // As in the scan, a file no id can name is never an answer.
        if let Some(id) = MessageId::new(&s.domain, &s.local, &s.unique) {
            copies.push((s.delivered_us, id.encode(), s));
        }
    }
    copies.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (us, _, s) in copies {
        let in_mailbox = f
            .mailbox
            .as_ref()
            .is_none_or(|(d, l)| *d == s.domain && *l == s.local);
        if us < f.since_us || !in_mailbox {
            continue;
        }
        match matching(&s, f, read_max)? {
            Some(summary) => return Ok(Among::Found(Box::new(summary))),
            None if !s.path.exists() => return Ok(Among::Unknown),
            None => {}
        }
    }
    Ok(Among::NoMatch)
}

/// What an id in a URL names: a message id, or `latest` (the newest, of one Maildir or all).
pub enum Target {
    Id(MessageId),
    Latest(Option<(String, String)>),
}

/// The stored message `target` names, if there is one.
pub fn find(root: &Path, target: &Target) -> io::Result<Option<Stored>> {
    match target {
        Target::Id(id) => browse::find(root, &id.domain, &id.local, &id.unique),
        Target::Latest(mailbox) => {
            let f = Filter {
                mailbox: mailbox.clone(),
                ..Filter::default()
            };
            let page = select(root, &f, Order::Newest, None, 1, None)?;
            Ok(page.messages.into_iter().next().map(|(s, _)| s))
        }
    }
}

/// Removes every message of one Maildir (or of all); how many were removed.
pub fn remove_all(root: &Path, mailbox: Option<&(String, String)>) -> io::Result<u64> {
    let only = mailbox.map(|(d, l)| (d.as_str(), l.as_str()));
    let mut n = 0;
    for s in browse::scan(root, only, 0)? {
        if browse::remove(&s)? {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn put(root: &Path, mailbox: &str, sub: &str, name: &str, subject: &str) {
        let (local, domain) = mailbox.split_once('@').unwrap();
        let md = root.join(domain).join(local);
        for s in ["tmp", "new", "cur"] {
            fs::create_dir_all(md.join(s)).unwrap();
        }
        let text =
            format!("From: a@b.test\nTo: {mailbox}\nSubject: {subject}\n\nbody of {subject}\n");
        fs::write(md.join(sub).join(name), text).unwrap();
    }

    fn subjects(p: &Page) -> Vec<&str> {
        p.messages
            .iter()
            .map(|(_, s)| s.subject.as_deref().unwrap_or(""))
            .collect()
    }

    #[test]
    fn pages_in_delivery_order() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        put(r, "bob@example.test", "new", "100.M1P1Q1.h", "one");
        put(r, "bob@example.test", "cur", "300.M1P1Q3.h:2,S", "three");
        put(r, "carol@example.test", "new", "200.M1P1Q2.h", "two");
        put(
            r,
            "carol@example.test",
            "new",
            "400.M1P1Q4.h",
            "four secret",
        );
        put(r, "x@localhost", "new", "500.M1P1Q5.h", "five");
        let all = Filter::default();
        let p = select(r, &all, Order::Newest, None, 2, Some(1 << 20)).unwrap();
        assert_eq!((subjects(&p), p.more), (vec!["five", "four secret"], true));
        let c = p.next_cursor().unwrap();
        let p = select(r, &all, Order::Newest, Some(&c), 2, Some(1 << 20)).unwrap();
        assert_eq!(subjects(&p), ["three", "two"]);
        let p = select(
            r,
            &all,
            Order::Newest,
            p.next_cursor().as_ref(),
            2,
            Some(1 << 20),
        )
        .unwrap();
        assert_eq!(
            (subjects(&p), p.more, p.next_cursor()),
            (vec!["one"], false, None)
        );

        let f = Filter {
            mailbox: Some(("example.test".into(), "carol".into())),
            ..Filter::default()
        };
        assert_eq!(
            subjects(&select(r, &f, Order::Newest, None, 10, Some(1 << 20)).unwrap()),
            ["four secret", "two"]
        );
        let f = Filter {
            to: Some("bob@".into()),
            since_us: 150_000_000,
            ..Filter::default()
        };
        assert_eq!(
            subjects(&select(r, &f, Order::Oldest, None, 10, Some(1 << 20)).unwrap()),
            ["three"]
        );
        let f = Filter {
            contains: Some("secret".into()),
            ..Filter::default()
        };
        assert_eq!(
            subjects(&select(r, &f, Order::Oldest, None, 10, Some(1 << 20)).unwrap()),
            ["four secret"]
        );
        let f = Filter {
            since_us: 250_000_000,
            ..Filter::default()
        };
        assert_eq!(
            subjects(&select(r, &f, Order::Oldest, None, 1, Some(1 << 20)).unwrap()),
            ["three"]
        );

        // A delivery's copies, as its event names them: the first match in delivery order,
        // under the same filter (Maildir, since), or "scan instead" for what is not there.
        let new = |m: &str, n: &str| {
            let (l, d) = m.split_once('@').unwrap();
            r.join(d).join(l).join("new").join(n)
        };
        let carol = [
            new("carol@example.test", "400.M1P1Q4.h"),
            new("carol@example.test", "200.M1P1Q2.h"),
        ];
        let first = |f: &Filter, paths: &[PathBuf]| match among(r, f, paths, Some(1 << 20)) {
            Ok(Among::Found(s)) => Ok(s.subject.clone().unwrap()),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(first(&all, &carol).as_deref(), Ok("two"));
        let since = Filter {
            since_us: 250_000_000,
            ..Filter::default()
        };
        assert_eq!(first(&since, &carol).as_deref(), Ok("four secret"));
        let bob = Filter {
            mailbox: Some(("example.test".into(), "bob".into())),
            ..Filter::default()
        };
        assert_eq!(first(&bob, &carol), Err("NoMatch".to_string()));
        let secret = Filter {
            contains: Some("secret".into()),
            ..Filter::default()
        };
        assert_eq!(first(&secret, &carol).as_deref(), Ok("four secret"));
        for unknown in [
            new("carol@example.test", "999.M1P1Q9.h"),
            PathBuf::from("/elsewhere/example.test/carol/new/400.M1P1Q4.h"),
        ] {
            assert_eq!(
                first(&all, &[carol[0].clone(), unknown]),
                Err("Unknown".to_string())
            );
        }

        let latest = find(r, &Target::Latest(None)).unwrap().unwrap();
        assert_eq!(latest.unique, "500.M1P1Q5.h");
        let bobs = Target::Latest(Some(("example.test".into(), "bob".into())));
        assert_eq!(find(r, &bobs).unwrap().unwrap().unique, "300.M1P1Q3.h");
        let id = MessageId::parse("bob@example.test~300.M1P1Q3.h").unwrap();
        assert_eq!(find(r, &Target::Id(id)).unwrap().unwrap().flags, "S");

        assert_eq!(
            remove_all(r, Some(&("example.test".into(), "carol".into()))).unwrap(),
            2
        );
        assert_eq!(remove_all(r, None).unwrap(), 3);
        assert!(
            select(r, &all, Order::Newest, None, 10, None)
                .unwrap()
                .messages
                .is_empty()
        );
    }
}
