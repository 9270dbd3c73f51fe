//! rangeget's own HTTP/1.1 connections, for plain `http://` without a proxy.
//!
//! On the hot path of a download each byte costs what is done to it: ureq
//! reads the socket into its buffer and copies each body byte once more into
//! the caller's, then the write copies it into the page cache. Here the head
//! is parsed with `httparse` and a length-delimited body goes from the socket
//! into the file with `splice` on Linux (see `splice.rs`), copied once.
//!
//! Connections are kept alive between requests in a small pool, and reused
//! only when they are clean: the last body was read to its end, the server
//! did not say `close`, and no byte is waiting on the socket before the next
//! request is sent (bytes there would be a forged or stray answer, and the
//! connection is discarded). A kept-alive connection that the server closed
//! while idle is replaced by a new one without counting as a failure.
//!
//! Every wait is bounded: connecting by the connect timeout, the whole head
//! (interim `1xx` answers included, at most [`MAX_INTERIM`] of them) by one
//! deadline of the read timeout, each body read by the read timeout.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::splice::{Pipe, Refused};
use super::{Body, Head, MAX_HEAD, MAX_HEADERS, MAX_INTERIM, Request, Response, Settings};
use super::{Transport, fail};
use crate::cancel::Line;
use crate::error::Error;
use crate::http::{self, HeaderMap, HeaderName, HeaderValue};
use crate::output::Sink;

/// The size of each connection's read buffer (heads, chunked and unspliced
/// bodies).
const READ_BUFFER: usize = MAX_HEAD;

/// The longest chunk-size line (with extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// Own connections, with a pool of idle ones.
pub(crate) struct Wire {
    pool: Arc<Pool>,
    settings: Settings,
}

/// Idle connections, by `host:port`.
struct Pool {
    idle: Mutex<Vec<Conn>>,
    max: usize,
}

impl Pool {
    /// An idle connection to `key` that is still clean, if there is one.
    fn take(&self, key: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(i) = idle.iter().rposition(|c| c.key == key) {
            let conn = idle.swap_remove(i);
            if conn.is_clean() {
                return Some(conn);
            }
        }
        None
    }

    fn put(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= self.max {
            idle.remove(0);
        }
        idle.push(conn);
    }
}

impl Wire {
    /// A transport with an empty pool.
    pub fn new(settings: Settings) -> Wire {
        Wire {
            pool: Arc::new(Pool {
                idle: Mutex::new(Vec::new()),
                max: settings.max_connections + 4,
            }),
            settings,
        }
    }
}

impl Transport for Wire {
    fn name(&self) -> &'static str {
        "wire"
    }

    fn send(&self, req: &Request<'_>) -> Result<Response, Error> {
        let url = req.url;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let key = format!("{host}:{port}");
        let request = build_request(req, &authority);
        let head_only = req.method.eq_ignore_ascii_case("HEAD");
        // A reused connection that turns out dead before any answer came is
        // replaced by a new one: nothing was answered, so asking again is
        // safe where asking twice is harmless (RFC 9112 9.3.1).
        let idempotent = matches!(req.method, "GET" | "HEAD");
        let pooled = if req.line.take_fresh() {
            None
        } else {
            self.pool.take(&key)
        };
        if let Some(mut conn) = pooled {
            req.line.set_reused(true);
            req.line.attach(conn.shutdown_handle());
            if let Some(n) = req.line.recv_buffer() {
                super::set_recv_buffer(&conn.stream, n);
            }
            match conn.exchange(&request, url, self.settings.read_timeout, head_only) {
                Ok(answer) => return Ok(self.respond(conn, answer, req)),
                // Garbage where an answer should begin, on a connection that
                // served a body before, belongs to that connection (bytes a
                // server sent past a body): a new one is asked.
                Err(Exchange::Unanswered(_) | Exchange::Garbled(_)) if idempotent => {}
                Err(Exchange::Unanswered(e) | Exchange::Garbled(e) | Exchange::Failed(e)) => {
                    return Err(e);
                }
            }
        }
        req.line.set_reused(false);
        let mut conn = Conn::open(url, host, port, key, &self.settings, req.line)?;
        match conn.exchange(&request, url, self.settings.read_timeout, head_only) {
            Ok(answer) => Ok(self.respond(conn, answer, req)),
            Err(Exchange::Unanswered(e) | Exchange::Garbled(e) | Exchange::Failed(e)) => Err(e),
        }
    }
}

impl Wire {
    fn respond(&self, conn: Conn, answer: Answer, req: &Request<'_>) -> Response {
        let _ = conn
            .stream
            .set_read_timeout(Some(nonzero(self.settings.read_timeout)));
        let frame = answer.frame;
        let body = WireBody {
            conn: Some(conn),
            finished: matches!(frame, Frame::Empty | Frame::Length(0)),
            frame,
            keep_alive: answer.keep_alive,
            held: Held::Nothing,
            pool: Arc::clone(&self.pool),
            line: req.line.clone(),
        };
        Response {
            head: answer.head,
            body: Box::new(body),
        }
    }
}

/// The request head: the request line, `Host` unless given, the request's
/// headers as they are, and the framing of its body.
fn build_request(req: &Request<'_>, authority: &str) -> Vec<u8> {
    let url = req.url;
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let mut out = format!("{} {target} HTTP/1.1\r\n", req.method);
    if !has("host") {
        out.push_str(&format!("Host: {authority}\r\n"));
    }
    for (name, value) in req.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(b) = &req.body {
        out.push_str(&format!(
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            b.content_type,
            b.bytes.len()
        ));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(b) = &req.body {
        bytes.extend_from_slice(b.bytes);
    }
    bytes
}

/// How an exchange on a connection failed.
enum Exchange {
    /// Before any byte of an answer came: safe to ask again elsewhere.
    Unanswered(Error),
    /// What came is not an HTTP answer's beginning.
    Garbled(Error),
    /// Any other failure.
    Failed(Error),
}

/// A final answer's head and how its body is framed.
struct Answer {
    head: Head,
    frame: Frame,
    keep_alive: bool,
}

/// How a body ends.
#[derive(Clone, Copy, Debug)]
enum Frame {
    /// No body (HEAD, 204, 304).
    Empty,
    /// `Content-Length`: this many bytes are still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`: bytes left in the current chunk, and
    /// whether a chunk came before (its CRLF is still to read).
    Chunked { left: u64, started: bool },
    /// Until the server closes the connection.
    Close,
}

/// One connection to one `host:port`.
struct Conn {
    stream: TcpStream,
    /// `host:port`.
    key: String,
    /// Bytes read but not yet consumed: `buf[start..end]`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The pipe that bodies pass through, and whether splicing works here.
    pipe: Option<Pipe>,
    splice: bool,
}

fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// A socket read error in the words of the seam: a timeout is `TimedOut`.
fn normalize(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "no data within the read timeout")
    } else {
        e
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Conn {
    /// Connects to `host:port`, attaching the socket to `line` at once.
    fn open(
        url: &Url,
        host: &str,
        port: u16,
        key: String,
        settings: &Settings,
        line: &Line,
    ) -> Result<Conn, Error> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<_> = (bare, port)
            .to_socket_addrs()
            .map_err(|e| fail::unresolved(url, e))?
            .collect();
        let started = Instant::now();
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            let left = settings.connect_timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(&addr, nonzero(left)) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) if timed_out(&e) => {
                return Err(fail::timed_out(url, "connecting"));
            }
            (None, Some(e)) => return Err(fail::refused(url, format!("{key}: {e}"))),
            (None, None) => return Err(fail::unresolved(url, "no address")),
        };
        let conn = Conn {
            stream,
            key,
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            pipe: None,
            splice: true,
        };
        line.attach(conn.shutdown_handle());
        if let Some(n) = line.recv_buffer() {
            super::set_recv_buffer(&conn.stream, n);
        }
        let timeout = Some(nonzero(settings.read_timeout));
        conn.stream
            .set_nodelay(true)
            .and_then(|()| conn.stream.set_write_timeout(timeout))
            .map_err(|e| fail::broke(url, e))?;
        Ok(conn)
    }

    /// A way to shut this connection down from another thread.
    fn shutdown_handle(&self) -> crate::cancel::Shutdown {
        match self.stream.try_clone() {
            Ok(s) => Arc::new(move || {
                let _ = s.shutdown(Shutdown::Both);
            }),
            Err(_) => Arc::new(|| {}),
        }
    }

    /// Whether an idle connection may carry another request: the server has
    /// not closed it and sent nothing unasked.
    fn is_clean(&self) -> bool {
        if self.end > self.start || self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut probe = [0u8; 1];
        let clean =
            matches!(self.stream.peek(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        clean && self.stream.set_nonblocking(false).is_ok()
    }

    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Reads more bytes into the buffer (making room first); 0 when the peer
    /// closed.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "more than the read buffer holds",
            ));
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(normalize(e)),
            }
        }
    }

    /// Sends `request` and reads the answer's head, within one deadline.
    fn exchange(
        &mut self,
        request: &[u8],
        url: &Url,
        timeout: Duration,
        head_only: bool,
    ) -> Result<Answer, Exchange> {
        let deadline = Instant::now() + timeout;
        if let Err(e) = self.stream.write_all(request) {
            return Err(if timed_out(&e) {
                Exchange::Failed(fail::timed_out(url, "sending the request"))
            } else {
                Exchange::Unanswered(fail::broke(url, e))
            });
        }
        self.start = 0;
        self.end = 0;
        let mut interim = 0;
        let mut answered = false;
        loop {
            // Whatever is buffered may already hold a whole head.
            if self.buffered() > 0 {
                answered = true;
                let parsed = parse_head(&self.buf[self.start..self.end])
                    .map_err(|r| Exchange::Garbled(fail::broken_http(url, r)))?;
                match parsed {
                    Some((len, head, _)) if (100..200).contains(&head.status) => {
                        if head.status == 101 {
                            return Err(Exchange::Failed(fail::broken_http(
                                url,
                                "101 Switching Protocols to a request that asked for no upgrade",
                            )));
                        }
                        interim += 1;
                        if interim > MAX_INTERIM {
                            return Err(Exchange::Failed(fail::broken_http(
                                url,
                                format!("more than {MAX_INTERIM} interim (1xx) answers"),
                            )));
                        }
                        self.start += len;
                        continue;
                    }
                    Some((len, head, keep_alive)) => {
                        self.start += len;
                        let frame = framing(&head, head_only)
                            .map_err(|r| Exchange::Failed(fail::broken_http(url, r)))?;
                        return Ok(Answer {
                            head,
                            frame,
                            keep_alive,
                        });
                    }
                    None if self.buffered() >= MAX_HEAD => {
                        return Err(Exchange::Failed(fail::broken_http(
                            url,
                            format!("the response head is longer than {MAX_HEAD} bytes"),
                        )));
                    }
                    None => {}
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Exchange::Failed(fail::timed_out(
                    url,
                    "waiting for the response head",
                )));
            }
            let _ = self.stream.set_read_timeout(Some(nonzero(left)));
            match self.fill() {
                Ok(0) if !answered => {
                    return Err(Exchange::Unanswered(fail::broke(
                        url,
                        "closed before answering",
                    )));
                }
                Ok(0) => {
                    return Err(Exchange::Failed(fail::broke(
                        url,
                        "closed in the middle of the response head",
                    )));
                }
                Ok(_) => {}
                Err(e) if timed_out(&e) => {
                    return Err(Exchange::Failed(fail::timed_out(
                        url,
                        "waiting for the response head",
                    )));
                }
                Err(e) if !answered => return Err(Exchange::Unanswered(fail::broke(url, e))),
                Err(e) => return Err(Exchange::Failed(fail::broke(url, e))),
            }
        }
    }
}

/// How the body of an answer with `head` is framed (RFC 9112 6.3).
fn framing(head: &Head, head_only: bool) -> Result<Frame, String> {
    if head_only || head.status == 204 || head.status == 304 {
        return Ok(Frame::Empty);
    }
    let codings = http::tokens(&head.headers, "transfer-encoding");
    if let Some(last) = codings.last() {
        return Ok(if last == "chunked" {
            Frame::Chunked {
                left: 0,
                started: false,
            }
        } else {
            Frame::Close
        });
    }
    Ok(match http::content_length(&head.headers)? {
        Some(n) => Frame::Length(n),
        None => Frame::Close,
    })
}

/// Parses a response head at the start of `buf`: its length, the head, and
/// whether the connection stays open after the body. `None`: not all here yet.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head, bool)>, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.code.unwrap_or(0);
    let mut headers = HeaderMap::new();
    for h in resp.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("bad header name {:?}", http::clip(h.name)))?;
        let value =
            HeaderValue::from_bytes(h.value).map_err(|_| format!("bad value for header {name}"))?;
        headers.append(name, value);
    }
    let connection = http::tokens(&headers, "connection");
    let keep_alive = if resp.version == Some(1) {
        !connection.iter().any(|t| t == "close")
    } else {
        connection.iter().any(|t| t == "keep-alive")
    };
    Ok(Some((len, Head { status, headers }, keep_alive)))
}

/// What a [`WireBody`] holds between [`Body::receive`] and [`Body::write`].
#[derive(Clone, Copy)]
enum Held {
    Nothing,
    /// In the connection's buffer: `buf[at..at + n]`.
    Memory {
        at: usize,
        n: usize,
    },
    /// In the pipe.
    Pipe(usize),
}

/// A body on one of our connections. Read to its end on a connection the
/// server keeps open, the connection goes back to the pool when this is
/// dropped; dropped early, the connection is closed.
struct WireBody {
    conn: Option<Conn>,
    frame: Frame,
    keep_alive: bool,
    /// Whether the last byte of the body has been received.
    finished: bool,
    held: Held,
    pool: Arc<Pool>,
    line: Line,
}

fn eof(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the body ended early ({what})"),
    )
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl WireBody {
    /// Takes up to `max` buffered bytes (reading more first if none are),
    /// for `Memory`; 0 when the peer closed.
    fn take_buffered(conn: &mut Conn, max: usize) -> io::Result<(usize, usize)> {
        if conn.buffered() == 0 && conn.fill()? == 0 {
            return Ok((conn.start, 0));
        }
        let n = conn.buffered().min(max);
        let at = conn.start;
        conn.start += n;
        Ok((at, n))
    }

    /// Reads one CRLF-terminated line (without it).
    fn line(conn: &mut Conn, max: usize) -> io::Result<Vec<u8>> {
        loop {
            let window = &conn.buf[conn.start..conn.end];
            if let Some(i) = window.windows(2).position(|w| w == b"\r\n") {
                let line = window[..i].to_vec();
                conn.start += i + 2;
                return Ok(line);
            }
            // (+ 2: a CR may have come without its LF yet.)
            if window.len() > max + 2 {
                return Err(invalid(format!(
                    "a chunked-body line longer than {max} bytes"
                )));
            }
            if conn.fill()? == 0 {
                return Err(eof("in a chunk header"));
            }
        }
    }

    /// Starts the next chunk: its size, or at the last chunk (0) the
    /// trailers; `u64::MAX` when the server closed right after the last
    /// chunk.
    fn next_chunk(conn: &mut Conn, started: bool) -> io::Result<u64> {
        if started && !Self::line(conn, 0)?.is_empty() {
            return Err(invalid("a chunk longer than its size".into()));
        }
        let line = Self::line(conn, MAX_CHUNK_LINE)?;
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size).unwrap_or("").trim();
        let n =
            (size.len() <= 16 && !size.is_empty() && size.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(size, 16).ok())
                .flatten()
                .ok_or_else(|| invalid(format!("a bad chunk size {:?}", http::clip(size))))?;
        if n == 0 {
            // Trailers, up to the blank line, within the head's limit.
            let mut seen = 0;
            loop {
                let l = match Self::line(conn, MAX_HEAD) {
                    Ok(l) => l,
                    // The last chunk came, then the server closed without the
                    // final blank line: every byte is here (ureq agrees). The
                    // connection is not reused (the caller sees no keep-alive).
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Ok(u64::MAX);
                    }
                    Err(e) => return Err(e),
                };
                seen += l.len() + 2;
                if l.is_empty() {
                    break;
                }
                if seen > MAX_HEAD {
                    return Err(invalid(format!("trailers longer than {MAX_HEAD} bytes")));
                }
            }
        }
        Ok(n)
    }

    /// Receives up to `max` bytes; into the pipe when `splice` is allowed
    /// and the body is length-delimited.
    fn receive_with(&mut self, max: usize, splice: bool) -> io::Result<usize> {
        self.held = Held::Nothing;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(0);
        };
        if self.finished || max == 0 {
            return Ok(0);
        }
        match self.frame {
            Frame::Empty => Ok(0),
            Frame::Length(left) => {
                let max = max.min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = if conn.buffered() > 0 {
                    let (at, n) = Self::take_buffered(conn, max)?;
                    self.held = Held::Memory { at, n };
                    n
                } else {
                    match Self::splice_in(conn, max, splice)? {
                        Some(n) => {
                            if n > 0 {
                                self.held = Held::Pipe(n);
                            }
                            n
                        }
                        None => {
                            let (at, n) = Self::take_buffered(conn, max)?;
                            self.held = Held::Memory { at, n };
                            n
                        }
                    }
                };
                if n == 0 {
                    return Err(eof(&format!("{left} bytes short")));
                }
                let left = left - n as u64;
                self.frame = Frame::Length(left);
                self.finished = left == 0;
                Ok(n)
            }
            Frame::Chunked { left, started } => {
                let left = if left == 0 {
                    let n = Self::next_chunk(conn, started)?;
                    if n == 0 || n == u64::MAX {
                        self.finished = true;
                        // Closed after the last chunk: not for another request.
                        self.keep_alive &= n == 0;
                        return Ok(0);
                    }
                    n
                } else {
                    left
                };
                let max = max.min(usize::try_from(left).unwrap_or(usize::MAX));
                let (at, n) = Self::take_buffered(conn, max)?;
                if n == 0 {
                    return Err(eof("in a chunk"));
                }
                self.held = Held::Memory { at, n };
                self.frame = Frame::Chunked {
                    left: left - n as u64,
                    started: true,
                };
                Ok(n)
            }
            Frame::Close => {
                let (at, n) = Self::take_buffered(conn, max)?;
                if n == 0 {
                    self.finished = true;
                    self.keep_alive = false;
                }
                self.held = Held::Memory { at, n };
                Ok(n)
            }
        }
    }

    /// Splices up to `max` bytes from the socket into the pipe; `None` when
    /// splicing is not allowed or not possible here (then read instead).
    fn splice_in(conn: &mut Conn, max: usize, allowed: bool) -> io::Result<Option<usize>> {
        if !allowed || !conn.splice {
            return Ok(None);
        }
        if conn.pipe.is_none() {
            conn.pipe = Pipe::new(max.max(64 << 10));
        }
        let Some(pipe) = &conn.pipe else {
            conn.splice = false;
            return Ok(None);
        };
        match pipe.fill_from(&conn.stream, max) {
            Ok(n) => Ok(Some(n)),
            Err(Refused::Unsupported) => {
                conn.splice = false;
                conn.pipe = None;
                Ok(None)
            }
            Err(Refused::Io(e)) => Err(normalize(e)),
        }
    }
}

impl Body for WireBody {
    fn receive(&mut self, max: usize, zero_copy: bool) -> io::Result<usize> {
        self.receive_with(max, zero_copy)
    }

    fn write(&mut self, sink: &dyn Sink, n: usize, offset: u64) -> Result<(), Error> {
        let held = std::mem::replace(&mut self.held, Held::Nothing);
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        match held {
            Held::Nothing => Ok(()),
            Held::Memory { at, n: k } => sink.write_at(&conn.buf[at..at + n.min(k)], offset),
            Held::Pipe(k) => {
                let Some(pipe) = &conn.pipe else {
                    return Ok(());
                };
                let done = match (n, sink.as_file()) {
                    (0, _) => Ok(()),
                    (n, Some(file)) => pipe.drain_into(file, offset, n.min(k)),
                    // Only received into a pipe for a file (zero_copy).
                    (_, None) => Err(Error::Io {
                        path: "-".into(),
                        action: "write",
                        source: io::Error::other("a body spliced for a sink that is not a file"),
                    }),
                };
                // Whatever stays in the pipe (the bytes not wanted, or all of
                // them after an error) must not reach the next body.
                if n < k || done.is_err() {
                    conn.pipe = None;
                }
                done
            }
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.receive_with(buf.len(), false)?;
        if let (Held::Memory { at, n: k }, Some(conn)) = (self.held, &self.conn) {
            buf[..k].copy_from_slice(&conn.buf[at..at + k]);
        }
        self.held = Held::Nothing;
        Ok(n)
    }
}

impl Drop for WireBody {
    fn drop(&mut self) {
        self.line.detach();
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if matches!(self.held, Held::Pipe(_)) {
            conn.pipe = None;
        }
        if self.finished && self.keep_alive && conn.buffered() == 0 && !self.line.interrupted() {
            self.pool.put(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_with_keep_alive() {
        let raw = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/100\r\n\r\nBODY";
        let (len, head, keep) = parse_head(raw).unwrap().unwrap();
        assert_eq!(len, raw.len() - 4);
        assert_eq!((head.status, keep), (206, true));
        assert_eq!(head.headers["content-range"], "bytes 0-9/100");
        assert!(matches!(framing(&head, false), Ok(Frame::Length(10))));
        assert!(matches!(framing(&head, true), Ok(Frame::Empty)));
    }

    #[test]
    fn framing_by_rfc_9112() {
        let head = |raw: &[u8]| parse_head(raw).unwrap().unwrap();
        let (_, h, keep) =
            head(b"HTTP/1.1 206 OK\r\nConnection: close\r\nContent-Length: 5, 5\r\n\r\n");
        assert!(!keep);
        assert!(matches!(framing(&h, false), Ok(Frame::Length(5))));
        let (_, h, _) =
            head(b"HTTP/1.1 206 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
        assert!(matches!(framing(&h, false), Ok(Frame::Chunked { .. })));
        let (_, h, _) = head(b"HTTP/1.1 206 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert!(framing(&h, false).is_err());
        let (_, h, _) = head(b"HTTP/1.1 200 OK\r\n\r\n");
        assert!(matches!(framing(&h, false), Ok(Frame::Close)));
        let (_, h, keep) = head(b"HTTP/1.0 206 OK\r\nContent-Length: 5\r\n\r\n");
        assert!(!keep);
        assert!(matches!(framing(&h, false), Ok(Frame::Length(5))));
        let (_, h, _) = head(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n");
        assert!(matches!(framing(&h, false), Ok(Frame::Empty)));
    }

    #[test]
    fn fuzz_response_heads() {
        // Whatever a server sends, the parser answers (a head, not yet, or
        // an error) without panicking, and a head it accepts is framed.
        let mut m = crate::fuzz::Mutator::new(0x4ead);
        for seed in crate::fuzz::corpus("heads") {
            for _ in 0..crate::fuzz::rounds() {
                let input = m.mutate(&seed);
                if let Ok(Some((len, head, _))) = parse_head(&input) {
                    assert!(len <= input.len());
                    let _ = framing(&head, false);
                    let _ = framing(&head, true);
                }
            }
        }
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
    fn request_heads_have_one_host_and_the_headers_as_given() {
        let url = Url::parse("http://127.0.0.1:8080/a%20b?x=1").unwrap();
        let line = Line::detached();
        let headers = vec![("range".to_string(), "bytes=0-9".to_string())];
        let req = Request {
            method: "GET",
            url: &url,
            headers: &headers,
            body: None,
            line: &line,
        };
        let head = String::from_utf8(build_request(&req, "127.0.0.1:8080")).unwrap();
        assert_eq!(
            head,
            "GET /a%20b?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nrange: bytes=0-9\r\n\r\n"
        );
        let headers = vec![("Host".to_string(), "example.org".to_string())];
        let req = Request {
            headers: &headers,
            ..req
        };
        let head = String::from_utf8(build_request(&req, "127.0.0.1:8080")).unwrap();
        assert_eq!(head.matches("ost:").count(), 1, "{head}");
        assert!(head.contains("Host: example.org\r\n"), "{head}");
    }
}
