//! The connection under HTTP/1: hyper answers a few requests itself, before the router sees
//! them, with a bare status and no body — a request target longer than it parses (65,534
//! bytes: 414), a request head larger than its read buffer (about 400 KiB) or with more than 100
//! header fields (431), a head it cannot parse (400). Every accepted connection is wrapped so
//! that those answers leave as the API's JSON errors, like every other refusal:
//! `uri_too_long`, `headers_too_large`, `invalid_request`.
//!
//! The wrapper only reads what hyper writes. Hyper's own answer is recognised by its exact
//! shape — one of those three status lines, then only `connection`, `content-length: 0` and
//! `date` — which no answer of the router has (each carries a JSON body and its
//! `content-type`), and which no body can contain (JSON and the metrics text hold no raw
//! CR LF). It is replaced, whole, by the JSON answer; hyper then closes the connection, as it
//! would have. An HTTP/2 connection (whose first bytes are not `HTTP/1.`) is passed through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The answers hyper writes by itself: status line, and the code of the JSON answer.
const BARE_ANSWERS: &[(&[u8], &str)] = &[
    (b"HTTP/1.1 414 URI Too Long\r\n", "uri_too_long"),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        "headers_too_large",
    ),
    (b"HTTP/1.1 400 Bad Request\r\n", "invalid_request"),
];

/// What the JSON answer in place of hyper's says. (Hyper's 431 also answers a request line
/// that overflows its read buffer: the message names both limits.)
fn message(code: &str) -> String {
    use crate::limits::{MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_URI_BYTES};
    match code {
        "uri_too_long" => format!("the request's URI is longer than {MAX_URI_BYTES} bytes"),
        "headers_too_large" => format!(
            "the request's head is too large: the URI may have at most {MAX_URI_BYTES} bytes, and the headers {MAX_HEADER_BYTES} bytes in {MAX_HEADER_FIELDS} fields"
        ),
        _ => "the request's head is not valid HTTP/1.1".to_owned(),
    }
}

/// The header fields hyper's own answers carry (and nothing else).
const BARE_FIELDS: &[&str] = &["connection", "content-length", "date"];

/// Listens for connections and wraps each one in [`JsonAnswers`].
#[derive(Debug)]
pub(crate) struct Listener<L>(pub(crate) L);

impl<L: axum::serve::Listener> axum::serve::Listener for Listener<L>
where
    JsonAnswers<L::Io>: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = JsonAnswers<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (JsonAnswers::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose bare answers from hyper are replaced by JSON errors.
#[derive(Debug)]
pub(crate) struct JsonAnswers<T> {
    io: T,
    /// Nothing written yet: the first bytes say whether this is HTTP/1.
    first: bool,
    /// An HTTP/1 connection, whose answers are looked at.
    watching: bool,
    /// The JSON answer written in place of hyper's, and how much of it went out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> JsonAnswers<T> {
    pub(crate) fn new(io: T) -> Self {
        JsonAnswers {
            io,
            first: true,
            watching: true,
            replacement: None,
        }
    }
}

/// Where hyper's bare answer starts in `buf`, where its head ends, and the JSON answer that
/// replaces it.
fn bare_answer(buf: &[u8]) -> Option<(usize, usize, Vec<u8>)> {
    let mut from = 0;
    while let Some(at) = find(&buf[from..], b"HTTP/1.1 4").map(|i| from + i) {
        if let Some((end, answer)) = replace_at(&buf[at..]) {
            return Some((at, at + end, answer));
        }
        from = at + 1;
    }
    None
}

/// The JSON answer for the bare answer that `head` starts with, and the length of its head.
fn replace_at(head: &[u8]) -> Option<(usize, Vec<u8>)> {
    let (status_line, code) = BARE_ANSWERS
        .iter()
        .find(|(line, _)| head.starts_with(line))?;
    let end = find(head, b"\r\n\r\n")? + 4;
    let fields = &head[status_line.len()..end - 2];
    let mut kept = Vec::new();
    let mut empty = false;
    for line in fields.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r")?;
        let text = std::str::from_utf8(line).ok()?;
        let (name, value) = text.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        if !BARE_FIELDS.contains(&name.as_str()) {
            return None;
        }
        match name.as_str() {
            "content-length" => empty = value.trim() == "0",
            "date" => kept.push(text),
            _ => {}
        }
    }
    if !empty {
        return None;
    }
    let body = serde_json::to_vec(&crate::error::error_json(code, &message(code), None))
        .unwrap_or_default();
    let mut answer = status_line.to_vec();
    answer.extend_from_slice(
        format!(
            "content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        )
        .as_bytes(),
    );
    for line in kept {
        answer.extend_from_slice(line.as_bytes());
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(&body);
    Some((end, answer))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl<T: AsyncWrite + Unpin> JsonAnswers<T> {
    /// Writes what is left of a replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.replacement {
            if *written == answer.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Looks at the next bytes hyper writes: `Some(result)` when they are (or lead up to) a
    /// bare answer and were dealt with here, `None` to pass them on.
    fn intercept(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<io::Result<usize>>> {
        if buf.is_empty() {
            return None;
        }
        if self.first {
            self.first = false;
            self.watching = buf.starts_with(b"HTTP/1.");
        }
        if !self.watching {
            return None;
        }
        let (start, end, answer) = bare_answer(buf)?;
        if start > 0 {
            // The end of an earlier answer first; the bare one comes at the next write.
            return Some(Pin::new(&mut self.io).poll_write(cx, &buf[..start]));
        }
        self.replacement = Some((answer, 0));
        Some(match self.poll_replacement(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Taken whole: what is left of the replacement goes out before anything else.
            _ => Poll::Ready(Ok(end)),
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonAnswers<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonAnswers<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        match this.intercept(cx, buf) {
            Some(result) => result,
            None => Pin::new(&mut this.io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        // Hyper writes a head as one buffer, the first one it hands over.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(result) = this.intercept(cx, first)
        {
            return result;
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const BARE_414: &[u8] = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 20:23:07 GMT\r\n\r\n";

    #[test]
    fn a_bare_answer_is_replaced_by_a_json_one() {
        let (start, end, answer) = bare_answer(BARE_414).unwrap();
        assert_eq!((start, end), (0, BARE_414.len()));
        let text = String::from_utf8(answer).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\n")
        );
        assert!(text.contains("\r\ndate: Fri, 04 Dec 2026 20:23:07 GMT\r\n"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "uri_too_long");
        // After the end of an earlier answer.
        let mut both = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        both.extend_from_slice(BARE_414);
        let (start, end, _) = bare_answer(&both).unwrap();
        assert_eq!(end - start, BARE_414.len());
    }

    #[test]
    fn the_routers_answers_pass() {
        for answer in [
            &b"HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"[..],
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nx-other: 1\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"{\"name\": \"HTTP/1.1 414 URI Too Long\\r\\ncontent-length: 0\\r\\n\\r\\n\"}",
        ] {
            assert!(
                bare_answer(answer).is_none(),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}
