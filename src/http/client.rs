//! A minimal blocking HTTP/1.1 client for `eddy list|stop|cancel|savepoint` (and the tests): one request
//! per connection, plain `http://` only (put a TLS-terminating proxy in front of a remote job).
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a request failed before a response arrived.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://HOST[:PORT][/PATH]`.
    #[error("bad URL `{0}`: expected http://HOST[:PORT][/PATH]")]
    Url(String),
    /// Connecting, sending or receiving failed.
    #[error("cannot reach {url}: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The error.
        source: std::io::Error,
    },
    /// The server's answer is not HTTP.
    #[error("bad response from {url}: {reason}")]
    Response {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// A response: status code, headers (names lower-cased) and body.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header (lower-cased name, value) pairs.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl Response {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

/// Joins a base URL and a path.
pub fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// Sends one request (`body` as JSON when given) with an optional bearer token.
pub fn request(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> Result<Response, ClientError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| ClientError::Url(url.to_string()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(ClientError::Url(url.to_string()));
    }
    let target = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let io = |source| ClientError::Io { url: url.to_string(), source };
    let addrs: Vec<_> = target.to_socket_addrs().map_err(io)?.collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "the host resolves to no address");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or(last).map_err(io)?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(io)?;
    stream.set_write_timeout(Some(Duration::from_secs(30))).map_err(io)?;
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: */*\r\n\
         User-Agent: eddy/{}\r\nContent-Length: {}\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse(&raw).map_err(|reason| ClientError::Response { url: url.to_string(), reason })
}

/// GET with an optional token.
pub fn get(url: &str, token: Option<&str>) -> Result<Response, ClientError> {
    request("GET", url, token, None)
}

/// POST without a body, with an optional token.
pub fn post(url: &str, token: Option<&str>) -> Result<Response, ClientError> {
    request("POST", url, token, None)
}

fn parse(raw: &[u8]) -> Result<Response, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line `{status_line}`"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = &raw[end + 4..];
    let chunked;
    let mut response = Response { status, headers, body: String::new() };
    if response.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        chunked = dechunk(body)?;
        body = &chunked;
    } else if let Some(len) = response.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = body.get(..len).ok_or("the body is shorter than its content-length")?;
    }
    response.body = String::from_utf8_lossy(body).into_owned();
    Ok(response)
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size `{size_text}`"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or("truncated chunk")?);
        b = b.get(size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sized_and_chunked_bodies() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi").expect("parses");
        assert_eq!((r.status, r.body.as_str(), r.header("x-a")), (200, "hi", Some("b")));
        let r =
            parse(b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n")
                .expect("parses");
        assert_eq!((r.status, r.body.as_str()), (401, "abcde"));
        assert!(parse(b"garbage").is_err());
        assert!(matches!(get("https://x", None), Err(ClientError::Url(_))));
        assert_eq!(join("http://a:1/", "/api"), "http://a:1/api");
    }
}
