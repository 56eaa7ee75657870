//! FETCH BODY[] / BINARY[] of a whole message streamed from its file ([`Event::Literal`]): the
//! literal's header with the size the folder's index knows (for BINARY a first pass over the
//! file counts the octets and looks for a NUL, for its `~{n}`), then the file in chunks, each
//! line end made CRLF on the way. Memory stays at a few chunks whatever the message size. The
//! file reads block (in place, as the engine's calls do).
//!
//! [`Event::Literal`]: crate::proto::imap::Event::Literal

use std::fs::File;
use std::io::{self, Read, Seek};
use std::time::Duration;

use tracing::warn;

use super::session::{self, SessionEnd, Who};
use super::tls::Stream;
use crate::mailbox::imap::folder::open_message;
use crate::proto::imap::store::MessageFile;
use crate::wire::{CrlfStream, WireSize};

/// Bytes read from the file at a time.
const CHUNK: usize = 64 * 1024;

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The wire size of what `file` holds from here on, and whether it holds a NUL.
fn measure(file: &mut File) -> io::Result<(u64, bool)> {
    let mut size = WireSize::default();
    let mut nul = false;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size.feed(&buf[..n]);
        nul |= buf[..n].contains(&0);
    }
    file.rewind()?;
    Ok((size.total(), nul))
}

/// Writes the message of `m` as a literal, or `NIL` when it is gone or unreadable (logged).
pub async fn write(
    who: Who,
    stream: &mut Stream,
    m: &MessageFile,
    binary: bool,
    limit: Duration,
) -> Result<(), SessionEnd> {
    let opened = blocking(|| {
        let mut f = match open_message(&m.path, &m.folder, &m.base)? {
            Some(f) => f,
            None => return Ok(None),
        };
        let (size, nul) = if binary {
            measure(&mut f)?
        } else {
            (m.size, false)
        };
        Ok::<_, io::Error>(Some((f, size, nul)))
    });
    let (mut file, size, nul) = match opened {
        Ok(Some(v)) => v,
        Ok(None) => return session::write(stream, b"NIL", limit).await,
        Err(e) => {
            warn!(session = who.sid, peer = %who.peer, file = %m.path.display(), error = %e, "imap FETCH could not read a message");
            return session::write(stream, b"NIL", limit).await;
        }
    };
    let header = if binary && nul {
        format!("~{{{size}}}\r\n")
    } else {
        format!("{{{size}}}\r\n")
    };
    session::write(stream, header.as_bytes(), limit).await?;
    let mut crlf = CrlfStream::default();
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK * 2 + 2);
    let mut sent = 0u64;
    let mut cut = false;
    loop {
        out.clear();
        let n = match blocking(|| file.read(&mut buf)) {
            Ok(n) => n,
            Err(e) => {
                warn!(session = who.sid, peer = %who.peer, file = %m.path.display(), error = %e, "imap FETCH read failed midway");
                0
            }
        };
        if n == 0 {
            crlf.finish(&mut out);
        } else {
            crlf.feed(&buf[..n], &mut out);
        }
        // The header promised `size` octets: never more, and padded if the file shrank (a
        // Maildir file never changes; this only keeps the protocol in step).
        let room = size.saturating_sub(sent) as usize;
        if out.len() > room && !cut {
            cut = true;
            warn!(session = who.sid, peer = %who.peer, file = %m.path.display(), size, "imap FETCH: the message is longer than its size in the index; cut");
        }
        out.truncate(room);
        sent += out.len() as u64;
        session::write(stream, &out, limit).await?;
        if n == 0 {
            break;
        }
    }
    if sent < size {
        warn!(session = who.sid, peer = %who.peer, file = %m.path.display(), "imap FETCH: the message changed while it was sent; padded");
        let pad = vec![b' '; (size - sent).min(CHUNK as u64) as usize];
        while sent < size {
            let k = ((size - sent) as usize).min(pad.len());
            session::write(stream, &pad[..k], limit).await?;
            sent += k as u64;
        }
    }
    Ok(())
}
