//! The whole Maildir tree as the HTTP API sees it: every message file of
//! `<root>/<domain>/<local>/{new,cur}` with its delivery time, stored size and flags, the header
//! section of one, and removal (the directory fsync'ed after). Each name is checked again here
//! (not empty, no `/`, `\` or NUL, no leading dot), so no caller can reach outside the root.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Where in a Maildir a message file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folder {
    /// Not yet seen by a reader.
    New,
    /// Seen (POP3 moved it, with `:2,` flags).
    Cur,
}

impl Folder {
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::New => "new",
            Folder::Cur => "cur",
        }
    }
}

/// One message file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub domain: String,
    pub local: String,
    pub folder: Folder,
    /// The file name before any `:` info: the unique part and its size hints, the same in new/
    /// and cur/.
    pub unique: String,
    /// The letters after `:2,` (empty in new/).
    pub flags: String,
    pub path: PathBuf,
    /// Microseconds since the Unix epoch: from a `<secs>.M<usec>` name, else the file's mtime.
    pub delivered_us: u64,
    /// Stored octets: the `,S=` hint, else the file's length.
    pub size: u64,
}

/// A name that may stand for one path component under the root.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// Every `(domain, local part)` under `root` that is a Maildir (has new/ and cur/), sorted.
pub fn maildirs(root: &Path) -> io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let domains = match fs::read_dir(root) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for domain in domains.flatten() {
        let Ok(d) = domain.file_name().into_string() else {
            continue;
        };
        if !is_safe_name(&d) || !domain.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(locals) = fs::read_dir(domain.path()) else {
            continue;
        };
        for local in locals.flatten() {
            let Ok(l) = local.file_name().into_string() else {
                continue;
            };
            let md = local.path();
            if is_safe_name(&l) && md.join("new").is_dir() && md.join("cur").is_dir() {
                out.push((d.clone(), l));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The messages of every Maildir (or of `only`), unsorted, leaving out those delivered before
/// `since_us` (without a `stat` when the name says when). Files that vanish meanwhile are
/// skipped; a Maildir that does not exist has none.
pub fn scan(root: &Path, only: Option<(&str, &str)>, since_us: u64) -> io::Result<Vec<Stored>> {
    let boxes = match only {
        Some((d, l)) => vec![(d.to_string(), l.to_string())],
        None => maildirs(root)?,
    };
    let mut out = Vec::new();
    for (domain, local) in boxes {
        messages(root, &domain, &local, since_us, &mut out)?;
    }
    Ok(out)
}

fn maildir(root: &Path, domain: &str, local: &str) -> Option<PathBuf> {
    (is_safe_name(domain) && is_safe_name(local)).then(|| root.join(domain).join(local))
}

fn messages(
    root: &Path,
    domain: &str,
    local: &str,
    since_us: u64,
    out: &mut Vec<Stored>,
) -> io::Result<()> {
    let Some(md) = maildir(root, domain, local) else {
        return Ok(());
    };
    for folder in [Folder::New, Folder::Cur] {
        let dir = md.join(folder.as_str());
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !is_safe_name(&name) {
                continue;
            }
            let named_time = name_time_us(&name);
            if named_time.is_some_and(|t| t < since_us) {
                continue;
            }
            let Some(s) = stored(domain, local, folder, &name, entry.path(), named_time) else {
                continue;
            };
            if s.delivered_us >= since_us {
                out.push(s);
            }
        }
    }
    Ok(())
}

/// The record of one file, or `None` when it is gone or not a regular file.
fn stored(
    domain: &str,
    local: &str,
    folder: Folder,
    name: &str,
    path: PathBuf,
    named_time: Option<u64>,
) -> Option<Stored> {
    let (unique, info) = match name.split_once(':') {
        Some((u, i)) => (u, i),
        None => (name, ""),
    };
    let hint = size_hint(unique);
    let meta = if named_time.is_none() || hint.is_none() {
        let m = fs::metadata(&path).ok()?;
        if !m.is_file() {
            return None;
        }
        Some(m)
    } else {
        None
    };
    let delivered_us = named_time.unwrap_or_else(|| {
        meta.as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_micros() as u64)
    });
    let size = hint.unwrap_or_else(|| meta.as_ref().map_or(0, |m| m.len()));
    Some(Stored {
        domain: domain.to_string(),
        local: local.to_string(),
        folder,
        unique: unique.to_string(),
        flags: info.strip_prefix("2,").unwrap_or("").to_string(),
        path,
        delivered_us,
        size,
    })
}

/// The message whose unique part is `unique` in `<root>/<domain>/<local>`: `new/<unique>`, or
/// `cur/<unique>` with or without `:` info.
pub fn find(root: &Path, domain: &str, local: &str, unique: &str) -> io::Result<Option<Stored>> {
    let Some(md) = maildir(root, domain, local) else {
        return Ok(None);
    };
    if !is_safe_name(unique) || unique.contains(':') {
        return Ok(None);
    }
    for folder in [Folder::New, Folder::Cur] {
        let dir = md.join(folder.as_str());
        let exact = dir.join(unique);
        if exact.is_file() {
            return Ok(stored(
                domain,
                local,
                folder,
                unique,
                exact,
                name_time_us(unique),
            ));
        }
        if folder == Folder::New {
            continue;
        }
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.split_once(':').is_some_and(|(u, _)| u == unique) {
                let t = name_time_us(&name);
                return Ok(stored(domain, local, folder, &name, entry.path(), t));
            }
        }
    }
    Ok(None)
}

/// The message file at `path` when it is `<root>/<domain>/<local>/{new,cur}/<name>` with safe
/// names and still there (a delivery's copy, as the delivery event names it); `None` otherwise,
/// so a caller falls back to [`scan`].
pub fn at(root: &Path, path: &Path) -> Option<Stored> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let [domain, local, folder, name] = parts.as_slice() else {
        return None;
    };
    let folder = match *folder {
        "new" => Folder::New,
        "cur" => Folder::Cur,
        _ => return None,
    };
    if ![domain, local, name].iter().all(|n| is_safe_name(n)) {
        return None;
    }
    if !path.is_file() {
        return None;
    }
    stored(
        domain,
        local,
        folder,
        name,
        path.to_path_buf(),
        name_time_us(name),
    )
}

/// The header section of the file at `path`: its first `max` octets at most, cut after the
/// blank line that ends the headers when there is one.
pub fn read_head(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(max.min(8192));
    File::open(path)?.take(max as u64).read_to_end(&mut buf)?;
    let end = memchr::memmem::find(&buf, b"\n\n")
        .map(|i| i + 2)
        .into_iter()
        .chain(memchr::memmem::find(&buf, b"\r\n\r\n").map(|i| i + 4))
        .min();
    if let Some(end) = end {
        buf.truncate(end);
    }
    Ok(buf)
}

/// The file at `path`, its first `max` octets at most (what is parsed of a message).
pub fn read_bounded(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(max.min(64 * 1024));
    File::open(path)?.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Removes a message and fsyncs its directory; `false` when it was already gone.
pub fn remove(s: &Stored) -> io::Result<bool> {
    match fs::remove_file(&s.path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    if let Some(dir) = s.path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(true)
}

/// Microseconds since the epoch from a `<secs>.M<usec>...` name, or whole seconds from a
/// `<secs>.<anything>` one (the Maildir rule).
pub fn name_time_us(name: &str) -> Option<u64> {
    let (secs, rest) = name.split_once('.')?;
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let usec = rest
        .strip_prefix('M')
        .map(|r| {
            let end = r
                .bytes()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(r.len());
            &r[..end]
        })
        .filter(|d| !d.is_empty() && d.len() <= 6)
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0);
    secs.checked_mul(1_000_000)?.checked_add(usec)
}

/// Dovecot's `,S=<octets>` hint.
fn size_hint(unique: &str) -> Option<u64> {
    unique
        .split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix("S="))
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (d, l) in [("example.test", "bob"), ("localhost", "x")] {
            for sub in ["tmp", "new", "cur"] {
                fs::create_dir_all(root.path().join(d).join(l).join(sub)).unwrap();
            }
        }
        fs::create_dir_all(root.path().join("example.test/notamaildir")).unwrap();
        fs::create_dir_all(root.path().join(".hidden/y/new")).unwrap();
        root
    }

    #[test]
    fn names() {
        assert_eq!(
            name_time_us("1795696292.M686837P24171Q8.mail.example.test,S=508,W=519"),
            Some(1_795_696_292_686_837)
        );
        assert_eq!(
            name_time_us("1795696292.P24171.host"),
            Some(1_795_696_292_000_000)
        );
        assert_eq!(name_time_us("abc.M1"), None);
        assert_eq!(name_time_us("17"), None);
        assert_eq!(size_hint("1.M2P3Q4.h,S=508,W=519"), Some(508));
        assert_eq!(size_hint("1.M2P3Q4.h"), None);
        for bad in ["", ".", "..", ".x", "a/b", "a\\b", "a\0b"] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
        assert!(is_safe_name("alice") && is_safe_name("a.b"));
    }

    #[test]
    fn scan_find_read_remove() {
        let root = tree();
        let r = root.path();
        let bob = r.join("example.test/bob");
        fs::write(bob.join("new/100.M5P1Q1.h,S=18"), b"Subject: a\n\nbody\n").unwrap();
        fs::write(bob.join("cur/200.M7P1Q2.h,S=9:2,S"), b"X: y\n\nz\n").unwrap();
        fs::write(bob.join("cur/odd-name"), b"Subject: odd\r\n\r\nbody").unwrap();
        fs::write(bob.join("tmp/300.M1P1Q3.h"), b"unfinished").unwrap();
        assert_eq!(
            maildirs(r).unwrap(),
            [
                ("example.test".to_string(), "bob".to_string()),
                ("localhost".to_string(), "x".to_string())
            ]
        );
        let mut all = scan(r, None, 0).unwrap();
        all.sort_by_key(|s| s.unique.clone());
        let uniques: Vec<&str> = all.iter().map(|s| s.unique.as_str()).collect();
        assert_eq!(
            uniques,
            ["100.M5P1Q1.h,S=18", "200.M7P1Q2.h,S=9", "odd-name"]
        );
        assert_eq!(
            (all[0].folder, all[0].size, all[0].delivered_us),
            (Folder::New, 18, 100_000_005)
        );
        assert_eq!((all[1].folder, all[1].flags.as_str()), (Folder::Cur, "S"));
        assert_eq!(all[2].size, 20);
        assert!(all[2].delivered_us > 1_000_000_000_000_000, "the mtime");
        let later = scan(r, Some(("example.test", "bob")), 150_000_000).unwrap();
        assert_eq!(later.len(), 2, "{later:?}");
        assert!(
            scan(r, Some(("example.test", "nobody")), 0)
                .unwrap()
                .is_empty()
        );
        assert!(scan(r, Some(("..", "etc")), 0).unwrap().is_empty());

        let found = find(r, "example.test", "bob", "200.M7P1Q2.h,S=9")
            .unwrap()
            .unwrap();
        assert_eq!(found, all[1]);
        assert_eq!(
            find(r, "example.test", "bob", "100.M5P1Q1.h,S=18")
                .unwrap()
                .as_ref(),
            Some(&all[0])
        );
        for (d, l, u) in [
            ("example.test", "bob", "../cur/odd-name"),
            ("example.test", "bob", "200.M7P1Q2.h,S=9:2,S"),
            ("..", "example.test", "bob"),
            ("example.test", "bob", "missing"),
        ] {
            assert_eq!(find(r, d, l, u).unwrap(), None, "{d} {l} {u}");
        }
        // A delivery's own paths, as its event names them; anything else is not one.
        assert_eq!(at(r, &all[0].path).as_ref(), Some(&all[0]));
        assert_eq!(at(r, &all[1].path).as_ref(), Some(&all[1]));
        for bad in [
            bob.join("tmp/300.M1P1Q3.h"),
            bob.join("new/gone"),
            bob.join("new/../cur/odd-name"),
            r.join("example.test/bob"),
            PathBuf::from("/etc/passwd"),
        ] {
            assert_eq!(at(r, &bad), None, "{bad:?}");
        }
        assert_eq!(read_head(&all[0].path, 1024).unwrap(), b"Subject: a\n\n");
        assert_eq!(
            read_head(&all[2].path, 1024).unwrap(),
            b"Subject: odd\r\n\r\n"
        );
        assert_eq!(read_head(&all[2].path, 5).unwrap(), b"Subje");
        assert!(remove(&all[0]).unwrap());
        assert!(!remove(&all[0]).unwrap());
        assert_eq!(scan(r, None, 0).unwrap().len(), 2);
    }
}
