//! A tiny blocking HTTP/1.1 client over [`std::net::TcpStream`]: `http://` only, one request
//! per connection (`Connection: close`), bodies framed by `Content-Length`, `chunked` or the end
//! of the connection, and a timeout on connecting, reading and writing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest response body accepted.
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Largest status or header line accepted.
const MAX_LINE: usize = 64 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 256;

/// Where requests go: a server and an optional path prefix.
#[derive(Clone, Debug)]
pub struct HttpClient {
    /// `host:port` as written (the `Host` header).
    authority: String,
    host: String,
    port: u16,
    /// Path prefix without a trailing slash (often empty).
    base_path: String,
    timeout: Duration,
}

/// A response: its status and its (de-chunked) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpClient {
    /// A client for `http://host[:port][/prefix]`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        let url = base_url.trim();
        let rest = match url.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
            _ if url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://")) =>
            {
                return Err(format!(
                    "`{url}`: only http:// is supported (put a TLS-terminating proxy in front, or use http)"
                ));
            }
            _ => return Err(format!("`{url}` is not an http:// URL")),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err(format!(
                "`{url}`: the server URL may not have a query or a fragment"
            ));
        }
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("`{url}`: name the server as http://host[:port]"));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("`{url}`: bad host or port `{authority}`"))?;
        Ok(HttpClient {
            authority: authority.to_owned(),
            host,
            port,
            base_path: path.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// The base URL, for messages.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.authority, self.base_path)
    }

    /// Sends one request; `path` starts with `/` and is already percent-encoded.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        let target = format!("{}{path}", self.base_path);
        self.send(method, &target, headers, body)
            .map_err(|e| format!("{method} {}{path}: {e}", self.base_url()))
    }

    fn connect(&self) -> Result<TcpStream, String> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve `{}`: {e}", self.host))?;
        let mut last = format!("`{}` resolves to no address", self.host);
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = format!("cannot connect to {addr}: {e}"),
            }
        }
        Err(last)
    }

    fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        let stream = self.connect()?;
        let io = |e: std::io::Error| e.to_string();
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;

        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: strata-scenario\r\n",
            self.authority
        );
        for (name, value) in headers {
            if [name, value].iter().any(|s| s.contains(['\r', '\n'])) {
                return Err(format!("header `{name}` contains a line break"));
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(b) = body {
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if let Some(b) = body {
            bytes.extend_from_slice(b);
        }
        (&stream)
            .write_all(&bytes)
            .and_then(|()| (&stream).flush())
            .map_err(|e| format!("cannot send the request: {e}"))?;

        let mut reader = BufReader::new(stream);
        read_response(&mut reader, method == "HEAD")
    }
}

fn split_host_port(authority: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => 80,
        Some(p) => p.parse().ok()?,
    };
    Some((host.to_owned(), port))
}

fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = Vec::new();
    reader
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read the response: {e}"))?;
    if line.last() != Some(&b'\n') {
        return Err(if line.is_empty() {
            "the server closed the connection without answering".to_owned()
        } else {
            "truncated or overlong line in the response".to_owned()
        });
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| "the response head is not UTF-8".to_owned())
}

fn read_response(reader: &mut impl BufRead, head_only: bool) -> Result<HttpResponse, String> {
    loop {
        let status_line = read_line(reader)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(format!("not an HTTP/1.x response: `{status_line}`"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|s| (100..1000).contains(s))
            .ok_or_else(|| format!("bad status line `{status_line}`"))?;

        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut count = 0;
        loop {
            let line = read_line(reader)?;
            if line.is_empty() {
                break;
            }
            count += 1;
            if count > MAX_HEADERS {
                return Err("too many response headers".to_owned());
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("bad response header `{line}`"));
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad Content-Length `{value}`"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            }
        }

        // Interim answers (100 Continue, 103 Early Hints) precede the real one.
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let body = if head_only || status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            read_chunked(reader)?
        } else if let Some(n) = content_length {
            if n > MAX_BODY {
                return Err(format!("the response body ({n} bytes) is too large"));
            }
            let mut body = vec![0; n];
            reader
                .read_exact(&mut body)
                .map_err(|e| format!("cannot read the response body: {e}"))?;
            body
        } else {
            let mut body = Vec::new();
            reader
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut body)
                .map_err(|e| format!("cannot read the response body: {e}"))?;
            if body.len() > MAX_BODY {
                return Err("the response body is too large".to_owned());
            }
            body
        };
        return Ok(HttpResponse { status, body });
    }
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size `{line}`"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err("the response body is too large".to_owned());
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|e| format!("cannot read a chunk of the response body: {e}"))?;
        if !read_line(reader)?.is_empty() {
            return Err("a chunk is longer than its size".to_owned());
        }
    }
}

/// Percent-encodes a path segment or a query value (everything but RFC 3986 unreserved).
#[must_use]
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<HttpResponse, String> {
        read_response(&mut raw.as_bytes(), false)
    }

    #[test]
    fn reads_content_length_chunked_and_close_delimited_bodies() {
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra"),
            Ok(HttpResponse {
                status: 200,
                body: b"{}".to_vec()
            })
        );
        assert_eq!(
            parse(
                "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n"
            ),
            Ok(HttpResponse {
                status: 403,
                body: b"abc0123456789".to_vec()
            })
        );
        assert_eq!(
            parse("HTTP/1.0 200 OK\r\n\r\nto the end"),
            Ok(HttpResponse {
                status: 200,
                body: b"to the end".to_vec()
            })
        );
        assert_eq!(
            parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
            Ok(HttpResponse {
                status: 204,
                body: Vec::new()
            })
        );
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").is_err());
        assert!(parse("").is_err());
        assert!(parse("SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn parses_base_urls() {
        let c = HttpClient::new("http://127.0.0.1:8080/", Duration::from_secs(1));
        assert!(
            c.as_ref()
                .is_ok_and(|c| c.port == 8080 && c.host == "127.0.0.1" && c.base_path.is_empty())
        );
        let c = HttpClient::new("HTTP://[::1]:9/prefix/", Duration::from_secs(1));
        assert!(c.as_ref().is_ok_and(|c| c.port == 9
            && c.host == "::1"
            && c.base_path == "/prefix"
            && c.base_url() == "http://[::1]:9/prefix"));
        let c = HttpClient::new("http://localhost", Duration::from_secs(1));
        assert!(c.as_ref().is_ok_and(|c| c.port == 80));
        assert!(HttpClient::new("https://x", Duration::from_secs(1)).is_err());
        assert!(HttpClient::new("x:80", Duration::from_secs(1)).is_err());
        assert!(HttpClient::new("http://:80", Duration::from_secs(1)).is_err());
        assert!(HttpClient::new("http://h:port", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn encodes_components() {
        assert_eq!(encode_component("a b/c%é~"), "a%20b%2Fc%25%C3%A9~");
    }
}
