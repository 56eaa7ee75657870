//! The control socket's client side (smtpctl): one request, one reply.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::proto::{PROTOCOL_VERSION, Request, RequestLine, ResponseLine};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("smtpd is not running (cannot connect to its control socket {path}: {error})")]
    NotRunning { path: String, error: std::io::Error },
    #[error("control socket {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("control socket {path}: unreadable reply: {detail}")]
    BadReply { path: String, detail: String },
    #[error("{0}")]
    Refused(String),
}

/// Connects and writes the request line; returns the stream and the socket path for messages.
fn send(socket: &Path, request: Request) -> Result<(UnixStream, String), ClientError> {
    let path = socket.display().to_string();
    let stream = UnixStream::connect(socket).map_err(|error| ClientError::NotRunning {
        path: path.clone(),
        error,
    })?;
    let mut line = serde_json::to_vec(&RequestLine {
        v: PROTOCOL_VERSION,
        request,
    })
    .map_err(|e| ClientError::BadReply {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    line.push(b'\n');
    (&stream)
        .write_all(&line)
        .map_err(|error| ClientError::Io {
            path: path.clone(),
            error,
        })?;
    Ok((stream, path))
}

/// Sends `request` and returns the reply's data.
pub fn call(
    socket: &Path,
    request: Request,
    timeout: Duration,
) -> Result<serde_json::Value, ClientError> {
    let (stream, path) = send(socket, request)?;
    let io = |error| ClientError::Io {
        path: path.clone(),
        error,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(io)?;
    if reply.is_empty() {
        return Err(ClientError::BadReply {
            path,
            detail: "the daemon closed the connection".into(),
        });
    }
    let resp: ResponseLine = serde_json::from_str(&reply).map_err(|e| ClientError::BadReply {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if resp.v != PROTOCOL_VERSION {
        return Err(ClientError::Refused(format!(
            "incompatible smtpctl and smtpd (control protocol {} here, {} there)",
            PROTOCOL_VERSION, resp.v
        )));
    }
    if resp.ok {
        Ok(resp.data.unwrap_or(serde_json::Value::Null))
    } else {
        Err(ClientError::Refused(
            resp.error.unwrap_or_else(|| "refused".into()),
        ))
    }
}

/// Sends `request` and calls `each` with the data of every reply line until the daemon closes
/// the connection (or `each` returns false). For `watch`.
pub fn stream(
    socket: &Path,
    request: Request,
    mut each: impl FnMut(serde_json::Value) -> bool,
) -> Result<(), ClientError> {
    let (stream, path) = send(socket, request)?;
    let io = |error| ClientError::Io {
        path: path.clone(),
        error,
    };
    let reader = BufReader::new(&stream);
    for text in reader.lines() {
        let text = text.map_err(io)?;
        let resp: ResponseLine =
            serde_json::from_str(&text).map_err(|e| ClientError::BadReply {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if !resp.ok {
            return Err(ClientError::Refused(resp.error.unwrap_or_default()));
        }
        if !each(resp.data.unwrap_or(serde_json::Value::Null)) {
            break;
        }
    }
    Ok(())
}
