//! A minimal blocking HTTP/1.1 server side for `fabric ui`: reads one
//! request (request line, headers, an optional body) under hard size and
//! time limits, and writes one response, then the connection closes.
//!
//! It owns the wire format only: it never interprets a path beyond
//! splitting and percent-decoding it, and never panics on input (every
//! malformed request is a [`BadRequest`] naming what was wrong).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest request line plus headers accepted (bytes).
pub(crate) const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body accepted (bytes).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a client may take to send its request.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    /// `GET`, `POST`, … as sent.
    pub(crate) method: String,
    /// The path, percent-decoded, split on `/` (empty segments dropped).
    pub(crate) segments: Vec<String>,
    /// The query's `key=value` pairs, percent-decoded (`+` is a space).
    pub(crate) query: Vec<(String, String)>,
    /// Header names (lower-cased) and values.
    pub(crate) headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; empty without one).
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`, when not empty.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read: the status to answer and a sentence.
#[derive(Debug)]
pub(crate) struct BadRequest {
    /// 400, 408, 413, 431 or 505.
    pub(crate) status: u16,
    /// What was wrong, and where.
    pub(crate) message: String,
}

fn bad(status: u16, message: impl Into<String>) -> BadRequest {
    BadRequest {
        status,
        message: message.into(),
    }
}

/// Reads one request from `stream` within [`READ_TIMEOUT`] per read and the
/// size limits above.
pub(crate) fn read_request(stream: &mut TcpStream) -> Result<Request, BadRequest> {
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(|e| bad(400, format!("socket: {e}")))?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = find_head_end(&buf) {
            break at;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(bad(
                431,
                format!("request head over {MAX_HEAD_BYTES} bytes"),
            ));
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(bad(400, "connection closed before the end of the headers")),
            Ok(n) => n,
            Err(e) if is_timeout(&e) => return Err(bad(408, "request not received in time")),
            Err(e) => return Err(bad(400, format!("reading the request: {e}"))),
        };
        buf.extend(chunk.iter().take(n));
    };
    if head_end > MAX_HEAD_BYTES {
        return Err(bad(
            431,
            format!("request head over {MAX_HEAD_BYTES} bytes"),
        ));
    }
    let (head, rest) = buf.split_at_checked(head_end).unwrap_or((&buf, &[]));
    let head = std::str::from_utf8(head).map_err(|e| {
        bad(
            400,
            format!("request head is not UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(
            400,
            format!("request line {request_line:?} is not `METHOD TARGET HTTP/1.x`"),
        ));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad(
            505,
            format!("HTTP version {version:?} is not 1.0 or 1.1"),
        ));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad(400, format!("method {method:?} is not a token")));
    }
    let mut headers = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad(
                400,
                format!("header line {} has no colon: {line:?}", i + 2),
            ));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/') {
        return Err(bad(400, format!("target {target:?} does not start with /")));
    }
    let mut segments = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        segments.push(percent_decode(raw, false).ok_or_else(|| {
            bad(
                400,
                format!("path segment {raw:?} is badly percent-encoded"),
            )
        })?);
    }
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode(s, true)
                .ok_or_else(|| bad(400, format!("query part {pair:?} is badly percent-encoded")))
        };
        pairs.push((decode(k)?, decode(v)?));
    }
    let mut request = Request {
        method: method.to_string(),
        segments,
        query: pairs,
        headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(bad(
            400,
            "Transfer-Encoding is not supported: send Content-Length",
        ));
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad(400, format!("Content-Length {v:?} is not a number")))?,
    };
    if length > MAX_BODY_BYTES {
        return Err(bad(
            413,
            format!("body of {length} bytes is over {MAX_BODY_BYTES}"),
        ));
    }
    let mut body: Vec<u8> = rest.iter().copied().take(length).collect();
    while body.len() < length {
        let n = match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(bad(
                    400,
                    format!("body ended at byte {} of {length}", body.len()),
                ));
            }
            Ok(n) => n,
            Err(e) if is_timeout(&e) => return Err(bad(408, "request body not received in time")),
            Err(e) => return Err(bad(400, format!("reading the body: {e}"))),
        };
        let want = length - body.len();
        body.extend(chunk.iter().take(n.min(want)));
    }
    request.body = body;
    Ok(request)
}

fn is_timeout(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut
}

/// The offset just past the blank line ending the head, if it arrived.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// `%XX` decoding (and `+` as a space when `plus_is_space`); `None` when an
/// escape is malformed or the result is not UTF-8.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = hex_digit(bytes.next()?)?;
                let lo = hex_digit(bytes.next()?)?;
                out.push(hi * 16 + lo);
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Writes one complete response and closes the exchange
/// (`Connection: close`). A client gone away is not an error to report.
pub(crate) fn write_response(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Connection: close\r\n\r\n",
        reason_phrase(status),
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush());
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding_rejects_bad_escapes_and_decodes_good_ones() {
        assert_eq!(percent_decode("a%2Eb", false).as_deref(), Some("a.b"));
        assert_eq!(percent_decode("a+b", true).as_deref(), Some("a b"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%4", false), None);
        assert_eq!(percent_decode("%ff", false), None);
    }
}
