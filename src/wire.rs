//! The workers' own HTTP/1.1 connections for ranged `GET`s over plain http.
//!
//! On the hot path of a download, each byte costs what is done to it: ureq
//! reads the socket into its buffer and copies each body byte once more into
//! the caller's, then the write copies it into the page cache. Here the
//! response head is read and parsed (`httparse`), and the body moves from the
//! socket into a pipe and from the pipe into the file with `splice`, so it is
//! copied once, by the kernel, into the page cache. Measured on a 1 GiB
//! download from nginx on loopback with 4 connections: about half the CPU time
//! of the ureq path.
//!
//! Only what this path is sure to do as ureq would is sent here: plain
//! `http://`, no proxy, a `206` with a body of known length. Everything else
//! (https, proxies, redirects, chunked bodies) goes through ureq
//! ([`Session::send`]).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ureq::http::{HeaderMap, HeaderName, HeaderValue};
use url::{Origin, Url};

use crate::download::{CancelHandle, Watched};
use crate::error::Error;
use crate::output::PartFile;
use crate::session::Session;

/// The largest response head read.
const MAX_HEAD: usize = 64 << 10;

/// The most header lines in a response head.
const MAX_HEADERS: usize = 128;

/// One keep-alive connection to one `host:port`.
pub(crate) struct Conn {
    stream: TcpStream,
    /// Shuts the stream down if the download is cancelled.
    _watched: Option<Watched>,
    /// `host:port` it is connected to.
    authority: String,
    /// Bytes read past the current response's head (its body's first bytes),
    /// from `start`.
    buf: Vec<u8>,
    start: usize,
    /// Whether the next request may be sent on this connection: the last
    /// body was read whole and the server keeps the connection open. False
    /// from the moment a request is sent until [`Body::write`] has taken the
    /// last byte of its answer, so a body dropped early, or an answer whose
    /// body is never read, leaves it false.
    reusable: bool,
    /// Whether the server keeps the connection open after the current body.
    keep_alive: bool,
    /// The pipe that the body passes through, and whether splicing works here.
    #[cfg(target_os = "linux")]
    pipe: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    #[cfg(target_os = "linux")]
    splice: bool,
}

/// A response's status line and headers.
pub(crate) struct Head {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body's length, when `Content-Length` gives it and no
    /// `Transfer-Encoding` is set: the only bodies this path reads.
    pub length: Option<u64>,
}

/// Whether the workers may fetch `url` on their own connections: plain http
/// that no proxy is configured for.
pub(crate) fn usable(session: &Session, url: &Url) -> bool {
    if url.scheme() != "http" || url.host_str().is_none() {
        return false;
    }
    match session.agent().config().proxy() {
        None => true,
        Some(proxy) => url
            .as_str()
            .parse::<ureq::http::Uri>()
            .is_ok_and(|uri| proxy.is_no_proxy(&uri)),
    }
}

/// Sends `GET url` with `extra` headers on `slot`'s connection (reused when it
/// goes to the same `host:port`, else a new one) and reads the response head.
/// The body is left on the connection for [`Body`]. A new connection is shut
/// down when `cancel` is.
pub(crate) fn get<'s>(
    session: &Session,
    cancel: &CancelHandle,
    slot: &'s mut Option<Conn>,
    url: &Url,
    extra: &[(&str, String)],
    credentials_for: &Origin,
) -> Result<(Head, &'s mut Conn), Error> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let request = build_request(session, url, &authority, extra, credentials_for);
    let key = format!("{host}:{port}");
    let reuse = slot
        .as_ref()
        .is_some_and(|c| c.reusable && c.authority == key);
    let mut answer = None;
    if reuse && let Some(conn) = slot.as_mut() {
        conn.reusable = false;
        match conn.exchange(&request, url) {
            Ok(head) => answer = Some(head),
            // The server closed the idle connection before (or as) it got the
            // request: nothing was answered, so a new connection may ask again.
            Err(Exchange::Unanswered(_)) => {}
            Err(Exchange::Failed(e)) => {
                *slot = None;
                return Err(e);
            }
        }
    }
    if answer.is_none() {
        *slot = None;
    }
    let conn = match slot {
        Some(conn) => conn,
        None => slot.insert(Conn::open(session, cancel, url, host, port, key)?),
    };
    let head = match answer {
        Some(head) => head,
        None => conn.exchange(&request, url).map_err(|e| match e {
            Exchange::Unanswered(e) | Exchange::Failed(e) => e,
        })?,
    };
    Ok((head, conn))
}

/// The request head, as ureq would send it: the session's headers (credentials
/// only to their origin) and cookies, `extra`, then what ureq adds itself.
fn build_request(
    session: &Session,
    url: &Url,
    authority: &str,
    extra: &[(&str, String)],
    credentials_for: &Origin,
) -> Vec<u8> {
    let headers = session.request_headers(url, extra, credentials_for);
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let mut out = format!("GET {target} HTTP/1.1\r\n");
    if !has("host") {
        out.push_str(&format!("Host: {authority}\r\n"));
    }
    if !has("user-agent") {
        out.push_str(&format!("User-Agent: {}\r\n", session.user_agent()));
    }
    if !has("accept") {
        out.push_str("Accept: */*\r\n");
    }
    out.push_str("Accept-Encoding: identity\r\n");
    if !has("authorization")
        && let Some(basic) = basic_auth(url)
    {
        out.push_str(&format!("Authorization: {basic}\r\n"));
    }
    for (name, value) in &headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// `Basic` credentials from the URL's user information, as ureq sends them.
fn basic_auth(url: &Url) -> Option<String> {
    use base64::Engine;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let pair = format!("{}:{}", url.username(), url.password().unwrap_or_default());
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

/// How an exchange on a connection failed.
enum Exchange {
    /// Before any byte of an answer came: safe to ask again elsewhere.
    Unanswered(Error),
    /// Any other failure.
    Failed(Error),
}

impl Conn {
    /// The socket.
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn open(
        session: &Session,
        cancel: &CancelHandle,
        url: &Url,
        host: &str,
        port: u16,
        authority: String,
    ) -> Result<Conn, Error> {
        let fail = |reason: String, transient: bool| Error::Network {
            url: url.to_string(),
            reason,
            transient,
        };
        let addrs: Vec<_> = (host.trim_start_matches('[').trim_end_matches(']'), port)
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve {host}: {e}"), false))?
            .collect();
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, session.connect_timeout()) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = stream.ok_or_else(|| {
            let e = last.map_or_else(|| "no address".to_string(), |e| e.to_string());
            fail(format!("cannot connect to {authority}: {e}"), false)
        })?;
        let timeout = Some(session.read_timeout().max(Duration::from_millis(1)));
        let setup = stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(timeout))
            .and_then(|()| stream.set_write_timeout(timeout));
        setup.map_err(|e| fail(format!("cannot set up the connection: {e}"), true))?;
        Ok(Conn {
            _watched: cancel.watch(&stream),
            stream,
            authority,
            buf: Vec::new(),
            start: 0,
            reusable: false,
            keep_alive: false,
            #[cfg(target_os = "linux")]
            pipe: None,
            #[cfg(target_os = "linux")]
            splice: true,
        })
    }

    /// Sends `request` and reads the answer's head.
    fn exchange(&mut self, request: &[u8], url: &Url) -> Result<Head, Exchange> {
        let broke = |e: io::Error| Error::Network {
            url: url.to_string(),
            reason: format!("connection broke: {e}"),
            transient: true,
        };
        self.stream
            .write_all(request)
            .map_err(|e| Exchange::Unanswered(broke(e)))?;
        self.buf.clear();
        self.start = 0;
        let mut chunk = [0u8; 16 << 10];
        loop {
            let n = match self.stream.read(&mut chunk) {
                Ok(0) if self.buf.is_empty() => {
                    let e = io::Error::from(io::ErrorKind::UnexpectedEof);
                    return Err(Exchange::Unanswered(broke(e)));
                }
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "in the response head");
                    return Err(Exchange::Failed(broke(e)));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if self.buf.is_empty() && !timed_out(&e) => {
                    return Err(Exchange::Unanswered(broke(e)));
                }
                Err(e) if timed_out(&e) => {
                    return Err(Exchange::Failed(Error::Network {
                        url: url.to_string(),
                        reason: "timed out waiting for the response".into(),
                        transient: true,
                    }));
                }
                Err(e) => return Err(Exchange::Failed(broke(e))),
            };
            self.buf.extend_from_slice(&chunk[..n]);
            loop {
                let parsed =
                    parse_head(&self.buf).map_err(|r| Exchange::Failed(Error::protocol(url, r)))?;
                match parsed {
                    // An interim answer (100 Continue): the real one follows.
                    Some((len, head, _)) if head.status < 200 => {
                        self.buf.drain(..len);
                    }
                    Some((len, head, keep_alive)) => {
                        self.start = len;
                        // Reusable once its body has been read whole.
                        self.keep_alive = keep_alive;
                        return Ok(head);
                    }
                    None if self.buf.len() > MAX_HEAD => {
                        return Err(Exchange::Failed(Error::protocol(
                            url,
                            format!("the response head is longer than {MAX_HEAD} bytes"),
                        )));
                    }
                    None => break,
                }
            }
        }
    }
}

/// Parses a response head at the start of `buf`: its length, the head, and
/// whether the connection stays open after the body. `None`: not all here yet.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head, bool)>, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("the server broke HTTP: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let mut headers = HeaderMap::new();
    for h in resp.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("the server broke HTTP: bad header name {:?}", h.name))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| format!("the server broke HTTP: bad value for header {name}"))?;
        headers.append(name, value);
    }
    let text = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase()
    };
    let connection = text("connection");
    let tokens: Vec<&str> = connection.split(',').map(str::trim).collect();
    let keep_alive = if resp.version == Some(1) {
        !tokens.contains(&"close")
    } else {
        tokens.contains(&"keep-alive")
    };
    let lengths = text("content-length");
    let chunked = headers.contains_key("transfer-encoding");
    let length = if chunked {
        None
    } else {
        // Several equal values are one length (RFC 9110 8.6); anything else is none.
        let mut values = lengths.split(',').map(str::trim).filter(|v| !v.is_empty());
        let first = values.next().and_then(crate::probe::parse_decimal);
        first.filter(|f| values.all(|v| crate::probe::parse_decimal(v) == Some(*f)))
    };
    Ok(Some((
        len,
        Head {
            status,
            headers,
            length,
        },
        keep_alive,
    )))
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// What a [`Body`] holds between [`Body::receive`] and [`Body::write`].
#[derive(Clone, Copy)]
enum Held {
    Nothing,
    /// In the connection's buffer, from `start`.
    Memory(usize),
    /// In the pipe.
    #[cfg(target_os = "linux")]
    Pipe(usize),
}

/// The body of a response read by [`get`]: `left` bytes still to come on the
/// connection. Dropped before the end, it leaves the connection unusable
/// (see [`Conn`]'s `reusable`).
pub(crate) struct Body<'c> {
    conn: &'c mut Conn,
    left: u64,
    held: Held,
    /// Where bytes go when splicing does not work: sized on first use.
    scratch: Vec<u8>,
    scratch_size: usize,
}

impl<'c> Body<'c> {
    /// The body of the answer just read on `conn`, `length` bytes long; reads
    /// at most `chunk` bytes at a time.
    pub(crate) fn new(conn: &'c mut Conn, length: u64, chunk: usize) -> Body<'c> {
        #[cfg(target_os = "linux")]
        if conn.splice && conn.pipe.is_none() {
            conn.pipe = new_pipe(chunk);
        }
        Body {
            conn,
            left: length,
            held: Held::Nothing,
            scratch: Vec::new(),
            scratch_size: chunk.max(4096),
        }
    }

    /// Receives up to `max` more bytes of the body and holds them for
    /// [`Body::write`]; 0 when the body is over (or the server closed early).
    pub(crate) fn receive(&mut self, max: usize) -> io::Result<usize> {
        let max = max.min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(0);
        }
        let conn = &mut *self.conn;
        let buffered = conn.buf.len() - conn.start;
        if buffered > 0 {
            let n = buffered.min(max);
            self.held = Held::Memory(n);
            return Ok(n);
        }
        #[cfg(target_os = "linux")]
        if conn.splice
            && let Some((_, w)) = &conn.pipe
        {
            match rustix::pipe::splice(
                &conn.stream,
                None,
                w,
                None,
                max,
                rustix::pipe::SpliceFlags::MOVE,
            ) {
                Ok(n) => {
                    self.held = Held::Pipe(n);
                    return Ok(n);
                }
                Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                    // Not a socket the kernel splices from: plain reads.
                    conn.splice = false;
                    conn.pipe = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if self.scratch.is_empty() {
            self.scratch = vec![0; self.scratch_size];
        }
        let want = max.min(self.scratch.len());
        let n = conn.stream.read(&mut self.scratch[..want])?;
        conn.buf.clear();
        conn.buf.extend_from_slice(&self.scratch[..n]);
        conn.start = 0;
        self.held = Held::Memory(n);
        Ok(n)
    }

    /// Writes the first `n` held bytes at `offset` of `file` and lets go of
    /// the rest of them (the connection is then of no further use).
    pub(crate) fn write(&mut self, file: &PartFile, n: usize, offset: u64) -> Result<(), Error> {
        let held = std::mem::replace(&mut self.held, Held::Nothing);
        let conn = &mut *self.conn;
        match held {
            Held::Nothing => return Ok(()),
            Held::Memory(k) => {
                let at = conn.start;
                conn.start += k;
                self.left -= k as u64;
                file.write_at(&conn.buf[at..at + n.min(k)], offset)?;
            }
            #[cfg(target_os = "linux")]
            Held::Pipe(k) => {
                self.left -= k as u64;
                let Some((r, _)) = &conn.pipe else {
                    return Ok(());
                };
                let done = file.splice_at(std::os::fd::AsFd::as_fd(r), offset, n.min(k));
                // Whatever stays in the pipe (the bytes not wanted, or all of
                // them after an error) must not reach the next body.
                if n < k || done.is_err() {
                    conn.pipe = None;
                }
                done?;
            }
        }
        if self.left == 0 {
            // Bytes past the body would be a server's error: never reused.
            conn.reusable = conn.keep_alive && conn.start == conn.buf.len();
            conn.buf.clear();
            conn.start = 0;
        }
        Ok(())
    }
}

impl Drop for Body<'_> {
    fn drop(&mut self) {
        // Bytes received but never written must not reach the next body.
        #[cfg(target_os = "linux")]
        if matches!(self.held, Held::Pipe(_)) {
            self.conn.pipe = None;
        }
    }
}

/// A pipe of (up to) `size` bytes for splicing, or `None` if none can be made.
#[cfg(target_os = "linux")]
fn new_pipe(size: usize) -> Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use rustix::pipe::{PipeFlags, fcntl_setpipe_size, pipe_with};
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).ok()?;
    // The default is 64 KiB; a bigger pipe means fewer calls per byte. Refused
    // (a per-user limit), the default still works.
    let _ = fcntl_setpipe_size(&w, size);
    Some((r, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_with_length_and_keep_alive() {
        let raw = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/100\r\n\r\nBODY";
        let (len, head, keep) = parse_head(raw).unwrap().unwrap();
        assert_eq!(len, raw.len() - 4);
        assert_eq!((head.status, head.length, keep), (206, Some(10), true));
        assert_eq!(head.headers["content-range"], "bytes 0-9/100");
    }

    #[test]
    fn close_chunked_and_conflicting_lengths() {
        let (_, head, keep) =
            parse_head(b"HTTP/1.1 206 OK\r\nConnection: close\r\nContent-Length: 5, 5\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!((head.length, keep), (Some(5), false));
        let (_, head, _) = parse_head(
            b"HTTP/1.1 206 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.length, None);
        let (_, head, _) =
            parse_head(b"HTTP/1.1 206 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(head.length, None);
        let (_, _, keep) = parse_head(b"HTTP/1.0 206 OK\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!keep);
    }

    #[test]
    fn partial_and_broken_heads() {
        assert!(
            parse_head(b"HTTP/1.1 206 OK\r\nContent-Le")
                .unwrap()
                .is_none()
        );
        assert!(parse_head(b"HTTP/1.1 2x6 OK\r\n\r\n").is_err());
    }

    #[test]
    fn request_heads_have_one_host_and_the_users_headers() {
        let url = Url::parse("http://127.0.0.1:8080/a%20b?x=1").unwrap();
        let plain = Session::builder().build();
        let head = String::from_utf8(build_request(
            &plain,
            &url,
            "127.0.0.1:8080",
            &[("range", "bytes=0-9".into())],
            &url.origin(),
        ))
        .unwrap();
        assert!(
            head.starts_with("GET /a%20b?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"),
            "{head}"
        );
        assert!(
            head.contains("\r\nrange: bytes=0-9\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        // A Host (and User-Agent) of the user's replaces ours, as with ureq.
        let custom = Session::builder()
            .header("Host", "example.org")
            .header("User-Agent", "me/1")
            .build();
        let head = String::from_utf8(build_request(
            &custom,
            &url,
            "127.0.0.1:8080",
            &[],
            &url.origin(),
        ))
        .unwrap();
        let lines: Vec<&str> = head.lines().collect();
        let named = |n: &str| {
            lines
                .iter()
                .filter(|l| l.to_ascii_lowercase().starts_with(n))
                .count()
        };
        assert_eq!((named("host:"), named("user-agent:")), (1, 1), "{head}");
        assert!(
            head.contains("Host: example.org\r\n") && head.contains("User-Agent: me/1\r\n"),
            "{head}"
        );
    }

    #[test]
    fn basic_auth_as_ureq_sends_it() {
        let url = Url::parse("http://martin:secret@example.com/").unwrap();
        assert_eq!(basic_auth(&url).unwrap(), "Basic bWFydGluOnNlY3JldA==");
        assert_eq!(
            basic_auth(&Url::parse("http://example.com/").unwrap()),
            None
        );
    }
}
