//! ureq behind the seam: https, proxies (from the environment), and every
//! request of a session that asks for it.
//!
//! ureq follows no redirect here (`max_redirects(0)`), turns no status into
//! an error, decodes nothing (no `gzip` feature: a compressed answer ignores
//! `Range`), and adds no header of its own beyond `Host` and a body's
//! framing, since every request arrives complete from above the seam.
//!
//! Its sockets are attached to the request's [`Line`] like ours: the agent's
//! connector chain has a tap after the TCP step that keeps the socket's
//! shutdown handle, and every time the connection sends (a new request, or a
//! kept-alive one reused) it attaches that handle to the line of the request
//! being sent on this thread. So a takeover or a cancel shuts a stalled https
//! read at once instead of waiting for its read timeout.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, Weak};

use ::ureq::Agent;
use ::ureq::http;
use ::ureq::unversioned::resolver::DefaultResolver;
use ::ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, NextTimeout,
    RustlsConnector, ShutdownHandle, SocksConnector, Transport as UreqTransport,
};
use url::Url;

use super::ureq_tcp::Tcp;
use super::{
    Body, Head, ProxyChoice, Request, Response, Settings, TLS_SOCKET_BUFFER, Transport,
    UREQ_OUTPUT_BUFFER, fail, ureq_buffer_size,
};
use crate::cancel::Line;
use crate::error::Error;
use crate::output::Sink;

/// How https certificates are checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tls {
    /// The only roots to trust (`--cacert`), instead of the system's.
    pub roots: Option<Vec<::ureq::tls::Certificate<'static>>>,
    /// Whether to skip verification (`-k`).
    pub insecure: bool,
}

/// The ureq transport: one agent (its pool shared by every clone).
pub(crate) struct Ureq {
    agent: Agent,
    /// Body buffers given back by finished bodies, for the next ones.
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
    buffer: usize,
}

/// The proxy `choice` and `no_proxy` make, as ureq takes it; an error in
/// words when the proxy URL cannot be used.
pub(crate) fn proxy_from(
    choice: &ProxyChoice,
    no_proxy: Option<&str>,
) -> Result<Option<::ureq::Proxy>, String> {
    use ::ureq::ProxyProtocol as P;
    let text = match choice {
        ProxyChoice::Url(u) if u.trim().is_empty() => return Ok(None),
        ProxyChoice::Url(u) => u.clone(),
        ProxyChoice::Env => {
            let from_env = [
                "ALL_PROXY",
                "all_proxy",
                "HTTPS_PROXY",
                "https_proxy",
                "HTTP_PROXY",
                "http_proxy",
            ]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|v| !v.trim().is_empty()));
            match from_env {
                Some(v) => v,
                None => return Ok(None),
            }
        }
    };
    let exceptions = match no_proxy {
        Some(list) => list.to_string(),
        None => std::env::var("NO_PROXY")
            .or_else(|_| std::env::var("no_proxy"))
            .unwrap_or_default(),
    };
    let with_scheme = if text.contains("://") {
        text.clone()
    } else {
        format!("http://{text}")
    };
    let bad = |why: &str| format!("proxy {:?}: {why}", crate::error::redact(&with_scheme));
    let url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    let protocol = match url.scheme() {
        "http" => P::Http,
        "https" => P::Https,
        "socks4" => P::Socks4,
        "socks4a" => P::Socks4A,
        "socks5" | "socks" => P::Socks5,
        "socks5h" => P::Socks5h,
        other => return Err(bad(&format!("unsupported scheme {other:?}"))),
    };
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    let mut b =
        ::ureq::Proxy::builder(protocol).host(host.trim_start_matches('[').trim_end_matches(']'));
    if let Some(port) = url.port() {
        b = b.port(port);
    }
    if !url.username().is_empty() {
        b = b.username(&crate::urlparse::unquote(url.username()));
    }
    if let Some(p) = url.password() {
        b = b.password(&crate::urlparse::unquote(p));
    }
    for rule in exceptions
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        b = b.no_proxy(rule);
    }
    b.build().map(Some).map_err(|e| bad(&e.to_string()))
}

impl Ureq {
    /// An agent with `settings` and `tls`; `proxy` as [`proxy_from`] made it.
    pub fn new(settings: &Settings, tls: &Tls, proxy: Option<::ureq::Proxy>) -> Ureq {
        // The system's trust store by default, as curl and wget use it.
        let roots = match &tls.roots {
            Some(certs) => ::ureq::tls::RootCerts::new_with_certs(certs),
            None => ::ureq::tls::RootCerts::PlatformVerifier,
        };
        let tls = ::ureq::tls::TlsConfig::builder()
            .root_certs(roots)
            .disable_verification(tls.insecure)
            .build();
        let buffer = ureq_buffer_size(settings.max_connections);
        let config = Agent::config_builder()
            // Redirects are followed above the seam, so that every hop sees
            // the jar and the credential rule.
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(settings.connect_timeout))
            // The whole head within one deadline, and a body silent for no
            // longer than the read timeout.
            .timeout_recv_response(Some(settings.read_timeout))
            .timeout_per_read(Some(settings.read_timeout))
            // Bigger reads cost less per byte (measured: 1 MiB against 256 KiB
            // cut CPU by about 15 % on a 1 GiB download), within a memory budget.
            .input_buffer_size(buffer)
            .output_buffer_size(UREQ_OUTPUT_BUFFER)
            .max_idle_connections_per_host(settings.max_connections + 4)
            .max_idle_connections(2 * settings.max_connections + 8)
            .tls_config(tls)
            .proxy(proxy)
            .build();
        let connector =
            ().chain(SocksConnector::default())
                .chain(ConnectProxyConnector::default())
                .chain(Tap)
                .chain(RustlsConnector::default());
        Ureq {
            agent: Agent::with_parts(config, connector, DefaultResolver::default()),
            spare: Arc::default(),
            buffer,
        }
    }

    /// A failure to connect, told as the proxy's when the request went
    /// through one: it is the proxy that did not answer, not the site.
    fn blame(&self, url: &Url, e: Error) -> Error {
        match (e, self.proxy_for(url)) {
            (
                Error::Network {
                    url: u,
                    reason,
                    transient,
                },
                Some(proxy),
            ) if reason.starts_with("cannot connect")
                || reason.starts_with("host not found")
                || reason.starts_with("timed out connecting") =>
            {
                Error::Network {
                    url: u,
                    reason: format!("the proxy {proxy}: {reason}"),
                    transient,
                }
            }
            (e, _) => e,
        }
    }

    /// The proxy requests to `url` go through, as `host:port`, if any.
    fn proxy_for(&self, url: &Url) -> Option<String> {
        let proxy = self.agent.config().proxy()?;
        self.proxied(url)
            .then(|| format!("{}:{}", proxy.host(), proxy.port()))
    }

    /// Whether requests to `url` go through a proxy.
    pub fn proxied(&self, url: &Url) -> bool {
        match self.agent.config().proxy() {
            None => false,
            Some(proxy) => !url
                .as_str()
                .parse::<http::Uri>()
                .is_ok_and(|uri| proxy.is_no_proxy(&uri)),
        }
    }
}

thread_local! {
    /// The line of the request this thread is sending through ureq.
    static SENDING: RefCell<Option<Line>> = const { RefCell::new(None) };
}

impl Transport for Ureq {
    fn name(&self) -> &'static str {
        "ureq"
    }

    fn send(&self, req: &Request<'_>) -> Result<Response, Error> {
        let url = req.url;
        let builder = || {
            let mut b = http::Request::builder()
                .method(req.method)
                .uri(url.as_str());
            for (name, value) in req.headers {
                b = b.header(name.as_str(), value.as_str());
            }
            b
        };
        let bad = |e: http::Error| Error::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let run = || match &req.body {
            Some(b) => {
                let request = builder()
                    .header("content-type", b.content_type)
                    .body(b.bytes)
                    .map_err(bad)?;
                Ok(sending(req.line, || self.agent.run(request)))
            }
            None => {
                let request = builder().body(()).map_err(bad)?;
                Ok(sending(req.line, || self.agent.run(request)))
            }
        };
        let mut result = run()?;
        req.line.take_fresh();
        // A kept-alive connection that the server closed while it was idle
        // fails before any answer: asked again on a new one, as our own
        // connections do. Only where asking twice is harmless.
        if matches!(req.method, "GET" | "HEAD") && unanswered(&result) {
            result = run()?;
        }
        let response = result.map_err(|e| self.blame(url, error(url, e)))?;
        let (parts, body) = response.into_parts();
        let buf = self
            .spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        Ok(Response {
            head: Head {
                status: parts.status.as_u16(),
                headers: parts.headers,
            },
            body: Box::new(UreqBody {
                reader: body.into_reader(),
                buf,
                size: self.buffer,
                held: 0,
                spare: Arc::clone(&self.spare),
                line: req.line.clone(),
            }),
        })
    }
}

/// Whether a request failed as a connection closed before answering does.
fn unanswered(result: &Result<http::Response<::ureq::Body>, ::ureq::Error>) -> bool {
    matches!(result, Err(::ureq::Error::Io(e)) if matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    ))
}

/// Runs `f` with `line` as the line of the request this thread sends.
fn sending<R>(line: &Line, f: impl FnOnce() -> R) -> R {
    SENDING.with(|s| *s.borrow_mut() = Some(line.clone()));
    let r = f();
    SENDING.with(|s| *s.borrow_mut() = None);
    r
}

/// A ureq error in the words of the seam.
fn error(url: &Url, e: ::ureq::Error) -> Error {
    use ::ureq::Error as E;
    use ::ureq::Timeout as T;
    match e {
        E::HostNotFound => fail::unresolved(url, "no address"),
        E::ConnectionFailed => fail::refused(url, "connection refused or unreachable"),
        E::Timeout(t) => fail::timed_out(
            url,
            match t {
                T::Connect | T::Resolve => "connecting",
                T::SendRequest | T::SendBody | T::PerWrite => "sending the request",
                T::RecvResponse => "waiting for the response head",
                _ => "waiting for the server",
            },
        ),
        E::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable => fail::refused(url, e),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                fail::timed_out(url, "waiting for the server")
            }
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::Interrupted => fail::broke(url, e),
            // rustls reports a refused certificate or handshake as bad data.
            io::ErrorKind::InvalidData if url.scheme() == "https" => fail::tls(url, e),
            _ => Error::Network {
                url: url.to_string(),
                reason: format!("connection error: {e}"),
                transient: false,
            },
        },
        E::Tls(e) => fail::tls(url, e),
        E::Rustls(e) => fail::tls(url, e),
        E::Pem(e) => fail::tls(url, e),
        E::Protocol(e) => fail::broken_http(url, e),
        E::LargeResponseHeader(..) | E::BodyExceedsLimit(_) => fail::broken_http(url, e),
        other => Error::Network {
            url: url.to_string(),
            reason: other.to_string(),
            transient: false,
        },
    }
}

/// A body read error in the words of the seam: a timeout is `TimedOut`, a
/// body that stopped early `UnexpectedEof`.
fn body_error(e: io::Error) -> io::Error {
    use ::ureq::Error as E;
    if e.kind() != io::ErrorKind::Other {
        return e;
    }
    match E::from(e) {
        E::Io(e) => e,
        E::Timeout(_) | E::BodyStalled => {
            io::Error::new(io::ErrorKind::TimedOut, "no data within the read timeout")
        }
        E::Protocol(p) => io::Error::new(io::ErrorKind::InvalidData, p.to_string()),
        other => io::Error::other(other.to_string()),
    }
}

/// A body read through ureq, into a buffer of ours.
struct UreqBody {
    reader: ::ureq::BodyReader<'static>,
    buf: Vec<u8>,
    size: usize,
    held: usize,
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
    line: Line,
}

impl Body for UreqBody {
    fn receive(&mut self, max: usize, _zero_copy: bool) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.buf = vec![0; self.size];
        }
        let max = max.min(self.buf.len());
        self.held = 0;
        self.held = self.reader.read(&mut self.buf[..max]).map_err(body_error)?;
        Ok(self.held)
    }

    fn write(&mut self, sink: &dyn Sink, n: usize, offset: u64) -> Result<(), Error> {
        let n = n.min(std::mem::take(&mut self.held));
        sink.write_at(&self.buf[..n], offset)
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf).map_err(body_error)
    }
}

impl Drop for UreqBody {
    fn drop(&mut self) {
        self.line.detach();
        if !self.buf.is_empty() {
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            if spare.len() < 8 {
                spare.push(std::mem::take(&mut self.buf));
            }
        }
    }
}

/// The TCP step of the connector chain: connects (as ureq's own
/// `TcpConnector` does), registers the socket with the agent for its
/// shutdown, and keeps a handle to the socket, which [`Tracked`] attaches
/// to each request's line and gives its receive buffer (see the module
/// docs).
#[derive(Default)]
struct Tap;

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tap")
    }
}

impl<In: UreqTransport> Connector<In> for Tap {
    type Out = Either<In, Tracked>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ::ureq::Error> {
        if let Some(c) = chained {
            // A proxy's connection, made (and tapped) by a run of this chain.
            return Ok(Some(Either::A(c)));
        }
        let config = details.config;
        let budget = details.timeout.not_zero().map(|d| *d);
        let started = std::time::Instant::now();
        let mut last = None;
        let mut stream = None;
        for addr in details.addrs.iter() {
            let left = budget.map(|b| b.saturating_sub(started.elapsed()));
            if left.is_some_and(|l| l.is_zero()) {
                break;
            }
            let attempt = match left {
                Some(l) => TcpStream::connect_timeout(addr, l),
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                return Err(::ureq::Error::Timeout(::ureq::Timeout::Connect));
            }
            (None, Some(e)) => return Err(::ureq::Error::Io(e)),
            (None, None) => return Err(::ureq::Error::ConnectionFailed),
        };
        if config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let socket = Arc::new(stream);
        let weak: Weak<dyn ShutdownHandle> = Arc::downgrade(&socket) as Weak<dyn ShutdownHandle>;
        (details.register_shutdown)(weak)?;
        // Under TLS these buffers carry ciphertext into rustls, whose
        // transport has buffers of the configured sizes above them.
        let tcp = if details.uri.scheme_str() == Some("https") {
            Tcp::new(Arc::clone(&socket), TLS_SOCKET_BUFFER, TLS_SOCKET_BUFFER)
        } else {
            Tcp::new(
                Arc::clone(&socket),
                config.input_buffer_size(),
                config.output_buffer_size(),
            )
        };
        let mut tracked = Tracked {
            inner: tcp,
            socket,
            used: false,
        };
        tracked.attach();
        Ok(Some(Either::B(tracked)))
    }
}

/// A TCP transport whose socket is attached to the line of each request it
/// sends.
struct Tracked {
    inner: Tcp,
    /// The same socket as `inner`'s: to shut it down, to set its options.
    socket: Arc<TcpStream>,
    /// Whether an answer has been read on it (the next request is a reuse).
    used: bool,
}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Tracked {
    fn attach(&mut self) {
        SENDING.with(|s| {
            if let Some(line) = &*s.borrow() {
                line.set_reused(self.used);
                let socket = Arc::clone(&self.socket);
                line.attach(Arc::new(move || {
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                }));
                self.inner.read_cap = line.recv_buffer();
                if let Some(n) = line.recv_buffer() {
                    super::set_recv_buffer(&self.socket, n);
                }
            }
        });
    }
}

impl UreqTransport for Tracked {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> Result<(), ::ureq::Error> {
        self.attach();
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ::ureq::Error> {
        self.used = true;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        // A request that asked for a new connection does not get this one.
        let fresh = SENDING.with(|s| s.borrow().as_ref().is_some_and(Line::wants_fresh));
        !fresh && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}
