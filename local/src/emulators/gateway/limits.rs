//! What the gateway refuses before any route, answered as API Gateway answers everything
//! it says itself: a status and a `{"message": ...}` body.
//!
//! - The HTTP API's quota on the "total combined size of request line and header values"
//!   (10240 bytes). AWS documents the quota, not its answer: here a request line over it
//!   is a 414 and headers that take the total over it a 431.
//! - What hyper cannot parse at all (a URI over 64 KiB, a head over its buffer, more than
//!   100 headers, a malformed line) it answers itself, with an empty 400/414/431 and
//!   before the gateway sees a request. [`JsonErrors`] wraps each connection and writes
//!   those answers as JSON instead. They are recognisable: every response the gateway
//!   gives carries `apigw-requestid`, and hyper's own carry no body and no header but
//!   `content-length: 0`, `connection` and `date`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::connect_info::Connected;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::payload::message;

/// API Gateway's quota for the request line and the header values together, in bytes.
pub const MAX_REQUEST_HEAD: usize = 10_240;

/// The 414 or 431 for a request over [`MAX_REQUEST_HEAD`], if it is.
pub(super) fn over_quota(method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    let target = uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    // METHOD SP request-target SP HTTP/1.1
    let line = method.as_str().len() + 1 + target + 1 + "HTTP/1.1".len();
    if line > MAX_REQUEST_HEAD {
        return Some(message(StatusCode::URI_TOO_LONG, "Request-URI Too Long"));
    }
    let values: usize = headers.values().map(|v| v.len()).sum();
    (line + values > MAX_REQUEST_HEAD).then(|| {
        message(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
        )
    })
}

/// The gateway's listener: TCP connections whose parse-error answers are JSON.
pub struct JsonErrors(pub TcpListener);

impl axum::serve::Listener for JsonErrors {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        let (inner, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let conn = Connection {
            inner,
            replacement: Vec::new(),
            sent: 0,
        };
        (conn, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The client's address, for the event's `sourceIp`.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, JsonErrors>> for Peer {
    fn connect_info(stream: IncomingStream<'_, JsonErrors>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// One client connection. Reads pass through; a write that is hyper's own answer to a
/// request it could not parse is replaced by the JSON one.
pub struct Connection {
    inner: TcpStream,
    /// The JSON answer still to send, from `sent` on.
    replacement: Vec<u8>,
    sent: usize,
}

impl Connection {
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.replacement.len() {
            let rest = &self.replacement[self.sent..];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.replacement.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

// Not vectored (the trait's default): hyper then hands each response over in one buffer.
impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        if let Some(json) = as_json(buf) {
            // hyper's bytes count as written; the JSON answer goes out in their place,
            // now or on the flush hyper does next.
            this.replacement = json;
            if let Poll::Ready(Err(e)) = this.poll_replacement(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// `buf` as the JSON answer, if it is hyper's own answer to an unparsable request: a
/// head alone, status 400, 414 or 431, no header but `content-length: 0`, `connection`
/// and `date`.
fn as_json(buf: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(buf).ok()?.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let code = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))?
        .get(..3)?;
    let (status, text) = match code {
        "400" => (StatusCode::BAD_REQUEST, "Bad Request"),
        "414" => (StatusCode::URI_TOO_LONG, "Request-URI Too Long"),
        "431" => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
        ),
        _ => return None,
    };
    let only_hypers = lines.all(|line| {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let name = name.to_ascii_lowercase();
        (name == "content-length" && value.trim() == "0") || name == "connection" || name == "date"
    });
    if !only_hypers {
        return None;
    }
    let body = serde_json::json!({ "message": text }).to_string();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    );
    Some([head.into_bytes(), body.into_bytes()].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_parse_error_answers_become_json() {
        let out = as_json(
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Sun, 01 Nov 2026 10:00:00 GMT\r\n\r\n",
        )
        .expect("rewritten");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(
            text.contains("content-type: application/json\r\n"),
            "{text}"
        );
        assert!(
            text.ends_with("\r\n\r\n{\"message\":\"Request-URI Too Long\"}"),
            "{text}"
        );
        for head in [
            &b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert!(as_json(head).is_some(), "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn every_other_write_passes_as_it_is() {
        for bytes in [
            // Every response of the gateway's carries its request id.
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\napigw-requestid: abc\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"a body chunk\r\n\r\n",
        ] {
            assert!(as_json(bytes).is_none(), "{}", String::from_utf8_lossy(bytes));
        }
    }
}
