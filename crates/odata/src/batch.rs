//! `$batch`: the `multipart/mixed` request body into requests and change sets, and the
//! `multipart/mixed` response body written back.
//!
//! A batch body is parts separated by `--<boundary>` lines (the boundary from the request's
//! `Content-Type`) and closed by `--<boundary>--`; text before the first delimiter and after
//! the closing one is ignored, and lines may end with CRLF or LF. Each part is either one
//! request (`Content-Type: application/http`: a request line, headers, an empty line, a body)
//! or a change set (`Content-Type: multipart/mixed;boundary=…`) whose requests commit
//! together. A change set holds no change set and no `GET`. `Content-ID` comes from the part's
//! headers (or, failing that, the request's own headers) and is unique in the batch.
//!
//! The response ([`write_batch_response`]) answers in the same shape with the boundaries
//! `batchresponse_<token>` and `changesetresponse_<…>`: the body starts with the first
//! delimiter (clients take the first line as the delimiter) and every part is
//! `application/http` with a `HTTP/1.1 <status> <reason>` line.

use std::collections::BTreeSet;

use crate::{MAX_BATCH_BYTES, MAX_BATCH_REQUESTS, MAX_CHANGE_SET_REQUESTS, MAX_PART_HEADERS};

/// A `$batch` body that cannot be accepted. `at` names the place: `Content-Type`, `body`,
/// `part 2`, `part 1, change set request 3`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Malformed multipart or HTTP text.
    #[error("{at}: {message}")]
    Syntax {
        /// Where.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// An explicit limit exceeded ([`MAX_BATCH_BYTES`], [`MAX_BATCH_REQUESTS`],
    /// [`MAX_CHANGE_SET_REQUESTS`], [`MAX_PART_HEADERS`]).
    #[error("{at}: {message}")]
    Limit {
        /// Where.
        at: String,
        /// Which limit.
        message: String,
    },
}

impl BatchError {
    /// The stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            BatchError::Syntax { .. } => "batch_syntax",
            BatchError::Limit { .. } => "batch_limit",
        }
    }

    fn syntax(at: &str, message: impl Into<String>) -> Self {
        BatchError::Syntax {
            at: at.to_owned(),
            message: message.into(),
        }
    }

    fn limit(at: &str, message: impl Into<String>) -> Self {
        BatchError::Limit {
            at: at.to_owned(),
            message: message.into(),
        }
    }
}

/// The methods a batch request may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET` (never inside a change set).
    Get,
    /// `POST`.
    Post,
    /// `PATCH`.
    Patch,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method from its name (uppercase, as HTTP writes it).
    #[must_use]
    pub fn parse(text: &str) -> Option<Method> {
        match text {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "PATCH" => Some(Method::Patch),
            "PUT" => Some(Method::Put),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }

    /// The method's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// One request in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRequest {
    /// The `Content-ID`, which later requests of the change set reference as `$<id>`.
    pub content_id: Option<String>,
    /// The method.
    pub method: Method,
    /// The URL as written: absolute (`http://host/api/data/v9.2/contacts`), rooted
    /// (`/api/data/v9.2/contacts`) or relative (`contacts`, `$1`); see
    /// [`split_url`](crate::split_url).
    pub url: String,
    /// The HTTP version of the request line (`HTTP/1.1`).
    pub version: String,
    /// The request's headers, in order, as written.
    pub headers: Vec<(String, String)>,
    /// The body: `Content-Length` bytes when that header is given, otherwise the rest of the
    /// part without its trailing line breaks.
    pub body: Vec<u8>,
}

impl BatchRequest {
    /// A header's value, by name in any case.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A change set: requests that commit together or not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// The requests, in order.
    pub requests: Vec<BatchRequest>,
}

/// One part of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchPart {
    /// A request on its own.
    Request(BatchRequest),
    /// A change set.
    ChangeSet(ChangeSet),
}

/// A parsed `$batch` body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The parts, in order.
    pub parts: Vec<BatchPart>,
}

impl Batch {
    /// Every request, change sets included.
    #[must_use]
    pub fn request_count(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                BatchPart::Request(_) => 1,
                BatchPart::ChangeSet(c) => c.requests.len(),
            })
            .sum()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The boundary of a `multipart/mixed` content type (`multipart/mixed;boundary=batch_x` or
/// `multipart/mixed; boundary="batch_x"`).
pub fn multipart_boundary(content_type: &str) -> Result<String, BatchError> {
    boundary_at(content_type, "Content-Type")
}

fn boundary_at(content_type: &str, at: &str) -> Result<String, BatchError> {
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/mixed") {
        return Err(BatchError::syntax(
            at,
            format!("expected `multipart/mixed`, not `{media}`"),
        ));
    }
    let boundary = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim())
        .ok_or_else(|| BatchError::syntax(at, "`multipart/mixed` without a `boundary`"))?;
    let boundary = match boundary.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"').ok_or_else(|| {
            BatchError::syntax(at, format!("unterminated quoted boundary `{boundary}`"))
        })?,
        None => boundary,
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    if boundary.is_empty()
        || boundary.len() > 70
        || boundary.ends_with(' ')
        || !boundary.chars().all(allowed)
    {
        return Err(BatchError::syntax(
            at,
            format!("`{boundary}` is not a multipart boundary (1 to 70 characters)"),
        ));
    }
    Ok(boundary.to_owned())
}

/// The lines of `bytes` from `from`: each line's start, its end without the line break, and
/// the start of the next line.
fn next_line(bytes: &[u8], from: usize) -> (usize, usize) {
    let end = bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
        .map_or(bytes.len(), |n| from + n);
    let content_end = if end > from && bytes.get(end - 1) == Some(&b'\r') {
        end - 1
    } else {
        end
    };
    (content_end, end + 1)
}

/// The contents of the parts of a multipart body (without their delimiters and the line
/// break before each delimiter).
fn split_multipart<'a>(
    body: &'a [u8],
    boundary: &str,
    at: &str,
) -> Result<Vec<&'a [u8]>, BatchError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let (line_end, next) = next_line(body, pos);
        let line = &body[pos..line_end];
        if let Some(rest) = line.strip_prefix(delimiter) {
            let (close, padding) = match rest.strip_prefix(b"--") {
                Some(padding) => (true, padding),
                None => (false, rest),
            };
            if padding.iter().all(|b| matches!(b, b' ' | b'\t')) {
                if let Some(start) = current {
                    let mut end = pos;
                    if end > start && body[end - 1] == b'\n' {
                        end -= 1;
                        if end > start && body[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    parts.push(&body[start..end]);
                }
                if close {
                    return Ok(parts);
                }
                current = Some(next.min(body.len()));
            }
        }
        pos = next;
    }
    Err(BatchError::syntax(
        at,
        if current.is_some() {
            format!("the body ends without the closing delimiter `--{boundary}--`")
        } else {
            format!("no `--{boundary}` delimiter")
        },
    ))
}

/// Headers up to an empty line or the end: the headers and where the rest starts.
fn parse_headers(bytes: &[u8], at: &str) -> Result<(Vec<(String, String)>, usize), BatchError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (line_end, next) = next_line(bytes, pos);
        let line = &bytes[pos..line_end];
        if line.is_empty() {
            return Ok((headers, next.min(bytes.len())));
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| BatchError::syntax(at, "a header line is not UTF-8"))?;
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = headers.last_mut() else {
                return Err(BatchError::syntax(
                    at,
                    "a continuation line before any header",
                ));
            };
            value.push(' ');
            value.push_str(line.trim());
        } else {
            let Some((name, value)) = line.split_once(':') else {
                return Err(BatchError::syntax(
                    at,
                    format!("`{line}` is not a `Name: value` header"),
                ));
            };
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(BatchError::syntax(
                    at,
                    format!("`{name}` is not a header name"),
                ));
            }
            if headers.len() == MAX_PART_HEADERS {
                return Err(BatchError::limit(
                    at,
                    format!("more than {MAX_PART_HEADERS} headers"),
                ));
            }
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        pos = next;
    }
    Ok((headers, bytes.len()))
}

/// An `application/http` part's content: the request line, headers and body.
fn parse_request(
    bytes: &[u8],
    content_id: Option<String>,
    at: &str,
) -> Result<BatchRequest, BatchError> {
    let mut pos = 0;
    let (line_end, next) = loop {
        if pos >= bytes.len() {
            return Err(BatchError::syntax(at, "no request line"));
        }
        let (line_end, next) = next_line(bytes, pos);
        if line_end > pos {
            break (line_end, next);
        }
        pos = next;
    };
    let line = std::str::from_utf8(&bytes[pos..line_end])
        .map_err(|_| BatchError::syntax(at, "the request line is not UTF-8"))?;
    let bad_line = || {
        BatchError::syntax(
            at,
            format!("`{line}` is not a request line (`METHOD url HTTP/1.1`)"),
        )
    };
    let (method, rest) = line.trim().split_once([' ', '\t']).ok_or_else(bad_line)?;
    let (url, version) = rest.trim().rsplit_once([' ', '\t']).ok_or_else(bad_line)?;
    let url = url.trim();
    if url.is_empty() || !version.starts_with("HTTP/") {
        return Err(bad_line());
    }
    let method = Method::parse(method)
        .ok_or_else(|| BatchError::syntax(at, format!("unknown method `{method}`")))?;
    let rest = bytes.get(next..).unwrap_or(&[]);
    let (headers, body_start) = parse_headers(rest, at)?;
    let mut body = rest.get(body_start..).unwrap_or(&[]);
    if let Some(length) = header(&headers, "Content-Length") {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| BatchError::syntax(at, format!("`{length}` is not a Content-Length")))?;
        body = body
            .get(..length)
            .ok_or_else(|| BatchError::syntax(at, "the body is shorter than its Content-Length"))?;
    } else {
        while let Some(rest) = body
            .strip_suffix(b"\n")
            .map(|b| b.strip_suffix(b"\r").unwrap_or(b))
        {
            body = rest;
        }
    }
    let content_id = content_id.or_else(|| header(&headers, "Content-ID").map(str::to_owned));
    Ok(BatchRequest {
        content_id,
        method,
        url: url.to_owned(),
        version: version.to_owned(),
        headers,
        body: body.to_vec(),
    })
}

/// What a part holds, from its headers.
enum PartKind {
    Http,
    Multipart(String),
}

fn part_kind(headers: &[(String, String)], at: &str) -> Result<PartKind, BatchError> {
    let content_type = header(headers, "Content-Type")
        .ok_or_else(|| BatchError::syntax(at, "no Content-Type header"))?;
    if let Some(encoding) = header(headers, "Content-Transfer-Encoding")
        && !["binary", "7bit", "8bit"]
            .iter()
            .any(|e| encoding.eq_ignore_ascii_case(e))
    {
        return Err(BatchError::syntax(
            at,
            format!("unsupported Content-Transfer-Encoding `{encoding}` (binary)"),
        ));
    }
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/http") {
        Ok(PartKind::Http)
    } else if media.eq_ignore_ascii_case("multipart/mixed") {
        Ok(PartKind::Multipart(boundary_at(content_type, at)?))
    } else {
        Err(BatchError::syntax(
            at,
            format!("unexpected Content-Type `{media}` (application/http or multipart/mixed)"),
        ))
    }
}

/// Counts requests and Content-IDs across the batch.
struct Tally {
    requests: usize,
    content_ids: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, request: &BatchRequest, at: &str) -> Result<(), BatchError> {
        self.requests += 1;
        if self.requests > MAX_BATCH_REQUESTS {
            return Err(BatchError::limit(
                at,
                format!("a batch holds at most {MAX_BATCH_REQUESTS} requests"),
            ));
        }
        if let Some(id) = &request.content_id
            && !self.content_ids.insert(id.clone())
        {
            return Err(BatchError::syntax(
                at,
                format!("the Content-ID `{id}` is given twice"),
            ));
        }
        Ok(())
    }
}

/// Parses a `$batch` body; `content_type` is the request's `Content-Type` header.
pub fn parse_batch(content_type: &str, body: &[u8]) -> Result<Batch, BatchError> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(BatchError::limit(
            "body",
            format!("a batch body is at most {MAX_BATCH_BYTES} bytes"),
        ));
    }
    let boundary = boundary_at(content_type, "Content-Type")?;
    let mut tally = Tally {
        requests: 0,
        content_ids: BTreeSet::new(),
    };
    let mut batch = Batch::default();
    for (i, content) in split_multipart(body, &boundary, "body")?
        .into_iter()
        .enumerate()
    {
        let at = format!("part {}", i + 1);
        let (headers, start) = parse_headers(content, &at)?;
        let rest = content.get(start..).unwrap_or(&[]);
        let content_id = header(&headers, "Content-ID").map(str::to_owned);
        match part_kind(&headers, &at)? {
            PartKind::Http => {
                let request = parse_request(rest, content_id, &at)?;
                tally.add(&request, &at)?;
                batch.parts.push(BatchPart::Request(request));
            }
            PartKind::Multipart(inner) => {
                let mut set = ChangeSet::default();
                for (j, content) in split_multipart(rest, &inner, &at)?.into_iter().enumerate() {
                    let at = format!("part {}, change set request {}", i + 1, j + 1);
                    if j == MAX_CHANGE_SET_REQUESTS {
                        return Err(BatchError::limit(
                            &at,
                            format!(
                                "a change set holds at most {MAX_CHANGE_SET_REQUESTS} requests"
                            ),
                        ));
                    }
                    let (headers, start) = parse_headers(content, &at)?;
                    let rest = content.get(start..).unwrap_or(&[]);
                    let content_id = header(&headers, "Content-ID").map(str::to_owned);
                    if let PartKind::Multipart(_) = part_kind(&headers, &at)? {
                        return Err(BatchError::syntax(&at, "a change set inside a change set"));
                    }
                    let request = parse_request(rest, content_id, &at)?;
                    if request.method == Method::Get {
                        return Err(BatchError::syntax(
                            &at,
                            "a GET inside a change set (GETs go outside change sets)",
                        ));
                    }
                    tally.add(&request, &at)?;
                    set.requests.push(request);
                }
                batch.parts.push(BatchPart::ChangeSet(set));
            }
        }
    }
    Ok(batch)
}

/// The answer to one batch request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartResponse {
    /// The request's `Content-ID`, echoed (change set parts carry it).
    pub content_id: Option<String>,
    /// The status code.
    pub status: u16,
    /// The reason text; `None` for the standard one ([`reason_phrase`]).
    pub reason: Option<String>,
    /// The headers, in order (line breaks in names and values are dropped).
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

/// One part of a batch response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponsePart {
    /// The answer to a request on its own, or to a whole change set that failed.
    Single(PartResponse),
    /// The answers to a change set's requests.
    ChangeSet(Vec<PartResponse>),
}

/// The unique part of a batch response's boundaries: `batchresponse_<token>`. Change set
/// boundaries are derived from it, so a writer given the same token writes the same bytes;
/// a random token (such as a random UUID) keeps bodies from containing the boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundaryToken {
    text: String,
    seed: u64,
}

/// SplitMix64: spreads a counter into random-looking bits.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 128 bits written as a UUID: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn uuid_like(a: u64, b: u64) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

impl BoundaryToken {
    /// A UUID-like token from a seed (the server passes random bits; tests a constant).
    #[must_use]
    pub fn from_seed(seed: u128) -> BoundaryToken {
        let (high, low) = ((seed >> 64) as u64, seed as u64);
        let a = mix(high ^ mix(low));
        let b = mix(a ^ low);
        BoundaryToken {
            text: uuid_like(a, b),
            seed: mix(b),
        }
    }

    /// A token as given: 1 to 50 characters of `A-Z a-z 0-9 - _`.
    pub fn new(text: &str) -> Result<BoundaryToken, BatchError> {
        if text.is_empty()
            || text.len() > 50
            || !text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return Err(BatchError::syntax(
                "boundary",
                format!("`{text}` is not a boundary token (1 to 50 of A-Z a-z 0-9 - _)"),
            ));
        }
        // FNV-1a: the change set boundaries follow from the text.
        let seed = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Ok(BoundaryToken {
            text: text.to_owned(),
            seed,
        })
    }

    /// The token.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The boundary of the `n`th change set (0-based) of the response.
    fn change_set(&self, n: usize) -> String {
        let a = mix(self.seed ^ mix(2 * n as u64 + 1));
        let b = mix(a ^ mix(2 * n as u64 + 2));
        format!("changesetresponse_{}", uuid_like(a, b))
    }
}

/// A written batch response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenBatch {
    /// The `Content-Type` header's value: `multipart/mixed; boundary=batchresponse_…`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The standard reason text of a status code (`OK`, `No Content`, …; `Unknown` otherwise).
#[must_use]
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Text without line breaks (no header can inject another).
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
}

fn write_part(out: &mut Vec<u8>, boundary: &str, part: &PartResponse) {
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    out.extend_from_slice(
        b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n",
    );
    if let Some(id) = &part.content_id {
        out.extend_from_slice(format!("Content-ID: {}\r\n", one_line(id)).as_bytes());
    }
    let reason = part
        .reason
        .as_deref()
        .map_or_else(|| reason_phrase(part.status).to_owned(), one_line);
    out.extend_from_slice(format!("\r\nHTTP/1.1 {} {reason}\r\n", part.status).as_bytes());
    for (name, value) in &part.headers {
        out.extend_from_slice(format!("{}: {}\r\n", one_line(name), one_line(value)).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&part.body);
    out.extend_from_slice(b"\r\n");
}

/// Writes a batch response: the parts in order, change sets as nested multiparts.
#[must_use]
pub fn write_batch_response(parts: &[ResponsePart], token: &BoundaryToken) -> WrittenBatch {
    let boundary = format!("batchresponse_{}", token.as_str());
    let mut out = Vec::new();
    let mut change_sets = 0;
    for part in parts {
        match part {
            ResponsePart::Single(response) => write_part(&mut out, &boundary, response),
            ResponsePart::ChangeSet(responses) => {
                let inner = token.change_set(change_sets);
                change_sets += 1;
                out.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Type: multipart/mixed; boundary={inner}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                for response in responses {
                    write_part(&mut out, &inner, response);
                }
                out.extend_from_slice(format!("--{inner}--\r\n").as_bytes());
            }
        }
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    WrittenBatch {
        content_type: format!("multipart/mixed; boundary={boundary}"),
        body: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "\r\n--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET accounts HTTP/1.1\r\nAccept: application/json\r\n\r\n--b--\r\n";

    fn err(content_type: &str, body: &str) -> Option<(&'static str, String)> {
        parse_batch(content_type, body.as_bytes())
            .err()
            .map(|e| (e.code(), e.to_string()))
    }

    fn request(method: Method, url: &str) -> BatchRequest {
        BatchRequest {
            content_id: None,
            method,
            url: url.into(),
            version: "HTTP/1.1".into(),
            headers: vec![],
            body: vec![],
        }
    }

    #[test]
    fn boundaries_from_content_types() -> Result<(), BatchError> {
        assert_eq!(
            multipart_boundary("multipart/mixed;boundary=batch_x")?,
            "batch_x"
        );
        assert_eq!(
            multipart_boundary("Multipart/Mixed; charset=utf-8; Boundary=\"batch x\"")?,
            "batch x"
        );
        let code = |t: &str| multipart_boundary(t).err().map(|e| e.to_string());
        assert_eq!(
            code("application/json"),
            Some("Content-Type: expected `multipart/mixed`, not `application/json`".into())
        );
        assert!(code("multipart/mixed").is_some_and(|m| m.contains("without a `boundary`")));
        assert!(code("multipart/mixed;boundary=").is_some());
        assert!(code("multipart/mixed;boundary=\"x").is_some());
        assert!(code("multipart/mixed;boundary=a\u{e9}").is_some());
        assert!(code(&format!("multipart/mixed;boundary={}", "x".repeat(71))).is_some());
        assert!(
            multipart_boundary(&format!("multipart/mixed;boundary={}", "x".repeat(70))).is_ok()
        );
        Ok(())
    }

    #[test]
    fn lf_and_crlf_bodies_read_the_same() -> Result<(), BatchError> {
        let crlf = parse_batch("multipart/mixed;boundary=b", BODY.as_bytes())?;
        let lf = parse_batch(
            "multipart/mixed;boundary=b",
            BODY.replace("\r\n", "\n").as_bytes(),
        )?;
        assert_eq!(crlf, lf);
        let mut expected = request(Method::Get, "accounts");
        expected.headers = vec![("Accept".into(), "application/json".into())];
        assert_eq!(crlf.parts, vec![BatchPart::Request(expected)]);
        Ok(())
    }

    #[test]
    fn bodies_content_ids_and_content_length() -> Result<(), BatchError> {
        let body = "--b\nContent-Type: application/http\nContent-ID: 7\n\nPOST /api/data/v9.2/accounts HTTP/1.1\nContent-Type: application/json\nContent-Length: 4\n\n{}\n\nignored\n--b\nContent-Type: application/http\n\nPATCH $7 HTTP/1.1\nContent-ID: 8\nX-Folded: a\n  b\n\n{\"x\":1}\n\n\n--b--\nepilogue\n";
        let batch = parse_batch("multipart/mixed;boundary=b", body.as_bytes())?;
        let [BatchPart::Request(first), BatchPart::Request(second)] = batch.parts.as_slice() else {
            return Err(BatchError::syntax("test", "two requests"));
        };
        assert_eq!(first.content_id.as_deref(), Some("7"));
        assert_eq!(first.body, b"{}\n\n");
        assert_eq!(first.header("content-type"), Some("application/json"));
        assert_eq!(second.content_id.as_deref(), Some("8"));
        assert_eq!(second.url, "$7");
        assert_eq!(second.method, Method::Patch);
        assert_eq!(second.header("X-Folded"), Some("a b"));
        assert_eq!(second.body, b"{\"x\":1}");
        assert_eq!(batch.request_count(), 2);
        // A URL with a space (a filter left unencoded) keeps it.
        let body = "--b\r\nContent-Type: application/http\r\n\r\nGET accounts?$filter=name eq 'a b' HTTP/1.1\r\n--b--";
        let batch = parse_batch("multipart/mixed;boundary=b", body.as_bytes())?;
        assert!(
            matches!(&batch.parts[..], [BatchPart::Request(r)] if r.url == "accounts?$filter=name eq 'a b'")
        );
        // An empty batch.
        assert_eq!(
            parse_batch("multipart/mixed;boundary=b", b"--b--")?,
            Batch::default()
        );
        Ok(())
    }

    #[test]
    fn malformed_bodies_name_the_part() {
        let ct = "multipart/mixed;boundary=b";
        assert_eq!(
            err(ct, "no delimiter"),
            Some(("batch_syntax", "body: no `--b` delimiter".into()))
        );
        assert_eq!(
            err(
                ct,
                "--b\r\nContent-Type: application/http\r\n\r\nGET a HTTP/1.1\r\n"
            ),
            Some((
                "batch_syntax",
                "body: the body ends without the closing delimiter `--b--`".into()
            ))
        );
        assert_eq!(
            err(ct, "--b\r\n\r\nGET a HTTP/1.1\r\n--b--"),
            Some(("batch_syntax", "part 1: no Content-Type header".into()))
        );
        assert_eq!(
            err(ct, "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--").map(|e| e.1),
            Some(
                "part 1: unexpected Content-Type `text/plain` (application/http or multipart/mixed)"
                    .into()
            )
        );
        assert_eq!(
            err(
                ct,
                "--b\r\nContent-Type: application/http\r\n\r\nFETCH a HTTP/1.1\r\n--b--"
            )
            .map(|e| e.1),
            Some("part 1: unknown method `FETCH`".into())
        );
        assert!(
            err(
                ct,
                "--b\r\nContent-Type: application/http\r\n\r\nGET a\r\n--b--"
            )
            .is_some_and(|e| e.1.contains("not a request line"))
        );
        assert!(
            err(
                ct,
                "--b\r\nContent-Type: application/http\r\n\r\nGET  HTTP/1.1\r\n--b--"
            )
            .is_some_and(|e| e.1.contains("not a request line"))
        );
        assert!(
            err(ct, "--b\r\nContent-Type: application/http\r\n\r\n\r\n--b--")
                .is_some_and(|e| e.1.contains("no request line"))
        );
        assert!(
            err(ct, "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: base64\r\n\r\nGET a HTTP/1.1\r\n--b--")
                .is_some_and(|e| e.1.contains("base64"))
        );
        assert!(
            err(ct, "--b\r\nContent-Type application/http\r\n\r\n--b--")
                .is_some_and(|e| e.1.contains("not a `Name: value` header"))
        );
        assert!(
            err(ct, "--b\r\n Content-Type: application/http\r\n\r\n--b--")
                .is_some_and(|e| e.1.contains("continuation"))
        );
        assert!(
            err(ct, "--b\r\nContent-Type: application/http\r\n\r\nPOST a HTTP/1.1\r\nContent-Length: 9\r\n\r\n{}\r\n--b--")
                .is_some_and(|e| e.1.contains("shorter"))
        );
        assert!(
            err(ct, "--b\r\nContent-Type: application/http\r\n\r\nPOST a HTTP/1.1\r\nContent-Length: x\r\n\r\n{}\r\n--b--")
                .is_some()
        );
        let duplicate = "--b\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nGET a HTTP/1.1\r\n--b\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nGET a HTTP/1.1\r\n--b--";
        assert_eq!(
            err(ct, duplicate).map(|e| e.1),
            Some("part 2: the Content-ID `1` is given twice".into())
        );
        let get_in_set = "--b\r\nContent-Type: multipart/mixed;boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nPOST a HTTP/1.1\r\n--c\r\nContent-Type: application/http\r\n\r\nGET a HTTP/1.1\r\n--c--\r\n--b--";
        assert_eq!(
            err(ct, get_in_set),
            Some((
                "batch_syntax",
                "part 1, change set request 2: a GET inside a change set (GETs go outside change sets)"
                    .into()
            ))
        );
        let nested = "--b\r\nContent-Type: multipart/mixed;boundary=c\r\n\r\n--c\r\nContent-Type: multipart/mixed;boundary=d\r\n\r\n--d\r\nContent-Type: application/http\r\n\r\nPOST a HTTP/1.1\r\n--d--\r\n--c--\r\n--b--";
        assert_eq!(
            err(ct, nested).map(|e| e.1),
            Some("part 1, change set request 1: a change set inside a change set".into())
        );
        let unclosed_set = "--b\r\nContent-Type: multipart/mixed;boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nPOST a HTTP/1.1\r\n--b--";
        assert_eq!(
            err(ct, unclosed_set).map(|e| e.1),
            Some("part 1: the body ends without the closing delimiter `--c--`".into())
        );
        assert!(err("text/plain", BODY).is_some_and(|e| e.1.starts_with("Content-Type:")));
        assert!(
            parse_batch(
                ct,
                b"--b\r\nContent-Type: application/http\r\n\r\nGET \xff HTTP/1.1\r\n--b--"
            )
            .is_err()
        );
    }

    fn requests(n: usize, method: &str) -> String {
        let part =
            format!("--c\r\nContent-Type: application/http\r\n\r\n{method} accounts HTTP/1.1\r\n");
        part.repeat(n)
    }

    #[test]
    fn limits_are_errors() {
        let ct = "multipart/mixed;boundary=c";
        let body = format!("{}--c--", requests(MAX_BATCH_REQUESTS + 1, "GET"));
        assert_eq!(
            err(ct, &body),
            Some((
                "batch_limit",
                "part 1001: a batch holds at most 1000 requests".into()
            ))
        );
        let body = format!("{}--c--", requests(MAX_BATCH_REQUESTS, "GET"));
        assert!(parse_batch(ct, body.as_bytes()).is_ok_and(|b| b.request_count() == 1000));
        let set = format!(
            "--b\r\nContent-Type: multipart/mixed;boundary=c\r\n\r\n{}--c--\r\n--b--",
            requests(MAX_CHANGE_SET_REQUESTS + 1, "POST")
        );
        assert_eq!(
            err("multipart/mixed;boundary=b", &set),
            Some((
                "batch_limit",
                "part 1, change set request 1001: a change set holds at most 1000 requests".into()
            ))
        );
        // Requests in and out of change sets count together.
        let both = format!(
            "--b\r\nContent-Type: multipart/mixed;boundary=c\r\n\r\n{}--c--\r\n--b\r\nContent-Type: application/http\r\n\r\nGET a HTTP/1.1\r\n--b--",
            requests(MAX_CHANGE_SET_REQUESTS, "POST")
        );
        assert!(err("multipart/mixed;boundary=b", &both).is_some_and(|e| e.0 == "batch_limit"));
        let big = vec![b' '; MAX_BATCH_BYTES + 1];
        assert!(parse_batch(ct, &big).is_err_and(|e| e.code() == "batch_limit"));
        let headers = "X: y\r\n".repeat(MAX_PART_HEADERS + 1);
        let body = format!(
            "--c\r\nContent-Type: application/http\r\n\r\nGET a HTTP/1.1\r\n{headers}--c--"
        );
        assert!(
            err(ct, &body).is_some_and(|e| e.0 == "batch_limit" && e.1.contains("100 headers"))
        );
    }

    #[test]
    fn tokens_are_deterministic_and_checked() -> Result<(), BatchError> {
        let a = BoundaryToken::from_seed(1);
        assert_eq!(a, BoundaryToken::from_seed(1));
        assert_ne!(a, BoundaryToken::from_seed(2));
        assert_eq!(a.as_str().len(), 36);
        assert_eq!(a.as_str().matches('-').count(), 4);
        assert_ne!(a.change_set(0), a.change_set(1));
        assert!(a.change_set(0).starts_with("changesetresponse_"));
        let named = BoundaryToken::new("c1bd45c1-dd81-470d-b897-e965846aad2f")?;
        assert_eq!(named.as_str(), "c1bd45c1-dd81-470d-b897-e965846aad2f");
        assert!(BoundaryToken::new("").is_err());
        assert!(BoundaryToken::new("a b").is_err());
        assert!(BoundaryToken::new(&"a".repeat(51)).is_err());
        assert_eq!(reason_phrase(201), "Created");
        assert_eq!(reason_phrase(599), "Unknown");
        assert_eq!(Method::parse("get"), None);
        assert_eq!(Method::Delete.as_str(), "DELETE");
        Ok(())
    }

    #[test]
    fn responses_write_as_dataverse_does() -> Result<(), BatchError> {
        let token = BoundaryToken::new("T")?;
        let created = PartResponse {
            content_id: Some("1".into()),
            status: 204,
            reason: None,
            headers: vec![
                ("OData-Version".into(), "4.0".into()),
                (
                    "OData-EntityId".into(),
                    "http://h/api/data/v9.2/contacts(00000000-0000-0000-0000-000000000001)".into(),
                ),
            ],
            body: vec![],
        };
        let listed = PartResponse {
            content_id: None,
            status: 200,
            reason: None,
            headers: vec![(
                "Content-Type".into(),
                "application/json; odata.metadata=minimal".into(),
            )],
            body: br#"{"value":[]}"#.to_vec(),
        };
        let written = write_batch_response(
            &[
                ResponsePart::ChangeSet(vec![created]),
                ResponsePart::Single(listed),
            ],
            &token,
        );
        let cs = token.change_set(0);
        assert_eq!(
            written.content_type,
            "multipart/mixed; boundary=batchresponse_T"
        );
        let expected = format!(
            "--batchresponse_T\r\n\
             Content-Type: multipart/mixed; boundary={cs}\r\n\
             \r\n\
             --{cs}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             Content-ID: 1\r\n\
             \r\n\
             HTTP/1.1 204 No Content\r\n\
             OData-Version: 4.0\r\n\
             OData-EntityId: http://h/api/data/v9.2/contacts(00000000-0000-0000-0000-000000000001)\r\n\
             \r\n\
             \r\n\
             --{cs}--\r\n\
             --batchresponse_T\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             \r\n\
             HTTP/1.1 200 OK\r\n\
             Content-Type: application/json; odata.metadata=minimal\r\n\
             \r\n\
             {{\"value\":[]}}\r\n\
             --batchresponse_T--\r\n"
        );
        assert_eq!(String::from_utf8_lossy(&written.body), expected);
        // Line breaks in headers cannot inject a header.
        let sneaky = PartResponse {
            status: 400,
            reason: Some("Bad\r\nX-Injected: 1".into()),
            headers: vec![("A".into(), "b\r\nX-Injected: 1".into())],
            ..PartResponse::default()
        };
        let written = write_batch_response(&[ResponsePart::Single(sneaky)], &token);
        let text = String::from_utf8_lossy(&written.body);
        assert!(text.contains("HTTP/1.1 400 BadX-Injected: 1\r\nA: bX-Injected: 1\r\n"));
        assert!(!text.contains("\nX-Injected"));
        Ok(())
    }
}
