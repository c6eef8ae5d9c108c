//! A tiny blocking HTTP/1.1 client for `bosun ctl`: one request per
//! connection (`Connection: close`), over std's `UnixStream` or `TcpStream`.
//!
//! Why not hyper: `ctl status` is run by humans, scripts and health checks,
//! often in a loop; starting a tokio runtime and a client stack costs more than
//! the whole request. This client is a write, a read and a JSON parse, which
//! keeps `ctl status` well under a millisecond.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// A `--url` that ctl cannot use.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// `https://`: ctl speaks plain HTTP.
    #[error("{0}: bosun ctl speaks plain http; put TLS in front of bosun and call that proxy with a TLS-capable client, or use the socket")]
    Https(String),
    /// Not an `http://` URL.
    #[error("{0}: expected http://HOST:PORT")]
    NotHttp(String),
    /// `http://` and nothing after it.
    #[error("{0}: no host")]
    NoHost(String),
}

/// Where bosun listens.
pub enum Endpoint {
    /// The control socket.
    Unix(PathBuf),
    /// The TCP API: `http://host:port[/prefix]` and its bearer token.
    Tcp {
        /// As the user gave it, for messages.
        url: String,
        /// `host:port`.
        authority: String,
        /// A path prefix (a reverse proxy's), without a trailing slash.
        prefix: String,
        /// The bearer token.
        token: Option<String>,
    },
}

impl Endpoint {
    /// Parses `http://host[:port][/prefix]`.
    pub fn tcp(url: &str, token: Option<String>) -> Result<Endpoint, EndpointError> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(EndpointError::Https(url.to_string()));
        } else {
            return Err(EndpointError::NotHttp(url.to_string()));
        };
        let (host, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(EndpointError::NoHost(url.to_string()));
        }
        let has_port = match host.rfind(':') {
            Some(i) => !host[i..].contains(']'),
            None => false,
        };
        let authority = if has_port {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        Ok(Endpoint::Tcp {
            url: url.to_string(),
            authority,
            prefix: prefix.to_string(),
            token,
        })
    }

    /// Where, for messages.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Unix(p) => p.display().to_string(),
            Endpoint::Tcp { url, .. } => url.clone(),
        }
    }
}

/// Why a request did not get an answer: ctl exits 2 for these.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An answer: status code and a body to read.
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Body,
}

impl Response {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The whole body.
    pub fn bytes(mut self) -> Result<Vec<u8>, Unreachable> {
        let broke = |e: io::Error| Unreachable(format!("bosun's answer broke off: {e}"));
        if let Framing::Length(n) = self.body.kind {
            // One allocation of the announced size, read straight from the
            // socket (past the small header buffer): no regrowth, no copies.
            let n = usize::try_from(n).map_err(|_| Unreachable("absurd Content-Length".into()))?;
            let mut v = vec![0; n];
            self.body.read_exact(&mut v).map_err(broke)?;
            return Ok(v);
        }
        let mut v = Vec::new();
        self.body.read_to_end(&mut v).map_err(broke)?;
        Ok(v)
    }
}

/// A response body: `Content-Length`, chunked, or until the connection closes.
pub struct Body {
    r: BufReader<Conn>,
    kind: Framing,
}

enum Framing {
    Length(u64),
    /// Bytes left in the current chunk; `None` before the first size line.
    Chunked(Option<u64>),
    Eof,
    Done,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.kind {
                Framing::Done => return Ok(0),
                Framing::Eof => return self.r.read(buf),
                Framing::Length(0) => {
                    self.kind = Framing::Done;
                }
                Framing::Length(left) => {
                    let max = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = self.r.read(&mut buf[..max])?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
                Framing::Chunked(Some(0)) => {
                    // The CRLF after a chunk's data, then the next size line.
                    let mut crlf = String::new();
                    self.r.read_line(&mut crlf)?;
                    self.kind = Framing::Chunked(None);
                }
                Framing::Chunked(None) => {
                    let mut line = String::new();
                    if self.r.read_line(&mut line)? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let hex = line.trim().split(';').next().unwrap_or("");
                    let size = u64::from_str_radix(hex, 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if size == 0 {
                        // Trailers (none from bosun) up to the empty line.
                        loop {
                            line.clear();
                            if self.r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                                break;
                            }
                        }
                        self.kind = Framing::Done;
                    } else {
                        self.kind = Framing::Chunked(Some(size));
                    }
                }
                Framing::Chunked(Some(left)) => {
                    let max = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = self.r.read(&mut buf[..max])?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

/// Sends requests to one endpoint.
pub struct Client {
    /// Where.
    pub endpoint: Endpoint,
    /// How long to wait for an answer; `None`: forever (`logs -f`, `stop`).
    pub timeout: Option<Duration>,
}

impl Client {
    fn connect(&self) -> Result<Conn, Unreachable> {
        let conn = match &self.endpoint {
            Endpoint::Unix(path) => UnixStream::connect(path).map(Conn::Unix).map_err(|e| {
                let hint = match e.kind() {
                    io::ErrorKind::PermissionDenied => {
                        "— the socket is for root (mode 0600): run as root, or set control_group in [bosun] and join that group"
                    }
                    _ => "— is bosun running? set --socket or BOSUN_SOCKET",
                };
                Unreachable(format!("cannot reach bosun at {}: {} {hint}", path.display(), os_error(&e)))
            }),
            Endpoint::Tcp { url, authority, .. } => connect_tcp(authority).map(Conn::Tcp).map_err(|e| {
                Unreachable(format!(
                    "cannot reach bosun at {url}: {} — is bosun running with http_listen set? check --url",
                    os_error(&e)
                ))
            }),
        }?;
        let timeout = self.timeout;
        let set = match &conn {
            Conn::Unix(s) => s
                .set_read_timeout(timeout)
                .and_then(|_| s.set_write_timeout(timeout)),
            Conn::Tcp(s) => s
                .set_read_timeout(timeout)
                .and_then(|_| s.set_write_timeout(timeout)),
        };
        set.map_err(|e| Unreachable(format!("cannot set a timeout: {e}")))?;
        Ok(conn)
    }

    /// Sends one request and reads the status line and headers of the answer.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, Unreachable> {
        let mut conn = self.connect()?;
        let req = self.encode(method, path, body);
        conn.write_all(&req).map_err(|e| self.broke(e))?;
        let mut r = BufReader::with_capacity(16 * 1024, conn);
        let status = self.read_status(&mut r)?;
        let (mut kind, headers) = self.read_framing(&mut r)?;
        if method == "HEAD" || status == 204 || status == 304 {
            kind = Framing::Done;
        }
        Ok(Response {
            status,
            headers,
            body: Body { r, kind },
        })
    }

    /// The request's bytes: request line, headers (the bearer token over TCP),
    /// and the JSON body if any.
    fn encode(&self, method: &str, path: &str, body: Option<&[u8]>) -> Vec<u8> {
        let (host, prefix, token) = match &self.endpoint {
            Endpoint::Unix(_) => ("bosun", "", None),
            Endpoint::Tcp {
                authority,
                prefix,
                token,
                ..
            } => (authority.as_str(), prefix.as_str(), token.as_deref()),
        };
        // One buffer, one write: the request fits in a single packet.
        let mut req = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
        let _ = write!(
            req,
            "{method} {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bosun-ctl/{}\r\nConnection: close\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(t) = token {
            let _ = write!(req, "Authorization: Bearer {t}\r\n");
        }
        match body {
            Some(b) => {
                let _ = write!(
                    req,
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    b.len()
                );
                req.extend_from_slice(b);
            }
            None if method == "POST" => req.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
            None => req.extend_from_slice(b"\r\n"),
        }
        req
    }

    /// The error for a connection that broke (or timed out) mid-exchange.
    fn broke(&self, e: io::Error) -> Unreachable {
        let what = if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut {
            "no answer in time (bosun busy or stuck? raise --timeout)".to_string()
        } else {
            os_error(&e)
        };
        Unreachable(format!("bosun at {}: {what}", self.endpoint.describe()))
    }

    /// The status code from the answer's first line (`HTTP/1.x NNN ...`).
    fn read_status(&self, r: &mut BufReader<Conn>) -> Result<u16, Unreachable> {
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| self.broke(e))?;
        line.strip_prefix("HTTP/1.")
            .and_then(|l| l.get(2..5))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| {
                Unreachable(format!(
                    "{} did not answer like bosun (got {:?})",
                    self.endpoint.describe(),
                    line.trim_end()
                ))
            })
    }

    /// Reads the headers up to the blank line: how the body is framed (chunked
    /// wins over `Content-Length`; neither: until the connection closes), and the
    /// headers themselves.
    fn read_framing(
        &self,
        r: &mut BufReader<Conn>,
    ) -> Result<(Framing, Vec<(String, String)>), Unreachable> {
        let mut line = String::new();
        let mut kind = Framing::Eof;
        let mut headers = Vec::new();
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| self.broke(e))? == 0 {
                return Err(Unreachable("bosun closed the connection mid-answer".into()));
            }
            let l = line.trim_end();
            if l.is_empty() {
                return Ok((kind, headers));
            }
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let v = v.trim();
            headers.push((k.to_ascii_lowercase(), v.to_string()));
            if k.eq_ignore_ascii_case("content-length") {
                if let Ok(n) = v.parse() {
                    if !matches!(kind, Framing::Chunked(_)) {
                        kind = Framing::Length(n);
                    }
                }
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.eq_ignore_ascii_case("chunked")
            {
                kind = Framing::Chunked(None);
            }
        }
    }
}

fn connect_tcp(authority: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
    for addr in authority.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// "No such file or directory", without Rust's " (os error 2)".
fn os_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_urls_parse() {
        let Ok(Endpoint::Tcp {
            authority, prefix, ..
        }) = Endpoint::tcp("http://127.0.0.1:9001/", None)
        else {
            panic!("no endpoint")
        };
        assert_eq!(
            (authority.as_str(), prefix.as_str()),
            ("127.0.0.1:9001", "")
        );
        let Ok(Endpoint::Tcp {
            authority, prefix, ..
        }) = Endpoint::tcp("http://host/bosun/", None)
        else {
            panic!("no endpoint")
        };
        assert_eq!((authority.as_str(), prefix.as_str()), ("host:80", "/bosun"));
        let Ok(Endpoint::Tcp { authority, .. }) = Endpoint::tcp("http://[::1]", None) else {
            panic!("no endpoint")
        };
        assert_eq!(authority, "[::1]:80");
        assert!(Endpoint::tcp("https://x", None).is_err());
        assert!(Endpoint::tcp("x:1", None).is_err());
    }

    fn body(kind: Framing, wire: &[u8]) -> Vec<u8> {
        let (mut a, b) = UnixStream::pair().expect("pair");
        a.write_all(wire).expect("write");
        drop(a);
        let mut body = Body {
            r: BufReader::new(Conn::Unix(b)),
            kind,
        };
        let mut out = Vec::new();
        body.read_to_end(&mut out).expect("read");
        out
    }

    #[test]
    fn chunked_and_length_bodies_decode() {
        assert_eq!(
            body(
                Framing::Chunked(None),
                b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
            ),
            b"hello world"
        );
        assert_eq!(body(Framing::Length(3), b"abcdef"), b"abc");
        assert_eq!(body(Framing::Eof, b"abcdef"), b"abcdef");
    }
}
