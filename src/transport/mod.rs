//! The seam between the stages and the network: one request out, one
//! response head and a body back.
//!
//! Two transports sit behind [`Transport`]:
//!
//! - [`Wire`]: rangeget's own HTTP/1.1 connections, for plain `http://`
//!   without a proxy. Kept alive between requests, checked clean before each
//!   reuse, and on Linux the body goes from the socket into the file with
//!   `splice` (copied once, by the kernel).
//! - [`Ureq`]: ureq, for https, proxies, and wherever a session asks for it
//!   ([`crate::Engine::Ureq`]).
//!
//! What a transport does is only the exchange: connect (attaching the socket
//! to the request's [`Line`] at once, so that a cancel or a takeover can shut
//! it), send the request exactly as given (plus `Host` and the framing of a
//! request body), read the head within one deadline, and frame the body.
//! Everything that judges an answer (status, `Content-Range`, lengths,
//! encodings, validators, redirects, cookies, retries) is done above the
//! seam, once, for both.
//!
//! Both report the same faults in the same words ([`fail`]), and both
//! bodies end the same way: `Ok(0)` at the end, `UnexpectedEof` when a
//! length-delimited or chunked body stops early, `TimedOut` when the server
//! goes silent for the read timeout.

use std::io;
use std::time::Duration;

use url::Url;

use crate::cancel::Line;
use crate::error::Error;
use crate::http::HeaderMap;
use crate::output::Sink;

// Linux-only code sits in one file; elsewhere a stand-in with the same API.
#[cfg(target_os = "linux")]
mod splice;
#[cfg(not(target_os = "linux"))]
#[path = "nosplice.rs"]
mod splice;
mod ureq;
mod ureq_tcp;
mod wire;

pub(crate) use self::ureq::{Tls, Ureq, proxy_from};
pub(crate) use self::wire::Wire;

/// The largest response head read (status line to blank line).
pub(crate) const MAX_HEAD: usize = 64 << 10;

/// The most header lines in a response head.
pub(crate) const MAX_HEADERS: usize = 128;

/// The most interim (`1xx`) responses accepted before the real one.
pub(crate) const MAX_INTERIM: usize = 8;

/// The buffers of all connections together stay within this budget: each
/// connection has a transport buffer and a body buffer of [`buffer_size`]
/// bytes.
pub const BUFFER_BUDGET: usize = 12 << 20;

/// The size of each connection's buffers for `connections` connections: 1 MiB
/// up to 6 connections, less beyond (16 connections: 384 KiB), at least 128 KiB.
pub fn buffer_size(connections: usize) -> usize {
    (BUFFER_BUDGET / 2 / connections.max(1)).clamp(128 << 10, 1 << 20)
}

/// The size of ureq's input buffer and of the body buffer above it, for
/// `connections` connections: 1 MiB up to 2 connections, less beyond (16
/// connections: 128 KiB), at least 64 KiB. Over TLS a connection through
/// ureq has three buffers the bytes pass (the socket's ciphertext, kept
/// small, see [`TLS_SOCKET_BUFFER`], ureq's plaintext, and the body's), so
/// the budget is cut in more pieces than [`buffer_size`]'s: measured with
/// heaptrack at 16 connections, 384 KiB each took 17 MiB of heap (25 MiB
/// peak RSS); 128 KiB keeps the whole process near the plain http path's.
pub fn ureq_buffer_size(connections: usize) -> usize {
    (BUFFER_BUDGET / 6 / connections.max(1)).clamp(64 << 10, 1 << 20)
}

/// The socket's buffer under TLS (ciphertext on its way into rustls, a
/// record of at most 16 KiB and change at a time): more only costs memory.
pub const TLS_SOCKET_BUFFER: usize = 64 << 10;

/// ureq's output buffer: a request head (a URL, the cookies of at most
/// 8 KiB, the user's headers) and, under TLS, its ciphertext.
pub const UREQ_OUTPUT_BUFFER: usize = 64 << 10;

/// What both transports are built from.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// How long a connection (TCP, and TLS) may take to set up.
    pub connect_timeout: Duration,
    /// How long a response head may take in all, and a body may stay silent.
    pub read_timeout: Duration,
    /// The most connections used at once (sizes pools and buffers).
    pub max_connections: usize,
}

/// Where the proxy comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum ProxyChoice {
    /// `ALL_PROXY`, `HTTPS_PROXY` or `HTTP_PROXY` (and lowercase), the first
    /// set, as ureq reads them.
    #[default]
    Env,
    /// This one, an empty string for none (`http://`, `https://`, `socks4://`, `socks4a://`,
    /// `socks5://`, `socks5h://`; credentials in the URL).
    Url(String),
}

/// A request body and its content type.
#[derive(Clone, Copy)]
pub(crate) struct SendBody<'a> {
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// One request, complete: every header is given here but `Host` (and the
/// framing of `body`), which the transport adds.
pub(crate) struct Request<'a> {
    pub method: &'a str,
    pub url: &'a Url,
    pub headers: &'a [(String, String)],
    pub body: Option<SendBody<'a>>,
    /// Where the socket is attached for cancel and takeover.
    pub line: &'a Line,
}

/// A response's status and headers.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub status: u16,
    pub headers: HeaderMap,
}

/// A response body, read either into the file ([`Body::receive`] then
/// [`Body::write`], which a transport may do without copying) or into memory
/// ([`Body::read`]); one body is read one way only.
pub(crate) trait Body: Send {
    /// Receives up to `max` more bytes and holds them for [`Body::write`];
    /// `Ok(0)` at the end of the body. With `zero_copy`, the bytes may be
    /// held outside user space (a pipe), for a sink that is a file.
    fn receive(&mut self, max: usize, zero_copy: bool) -> io::Result<usize>;

    /// Writes the first `n` held bytes at `offset` of `sink` and lets go of
    /// the rest of them.
    fn write(&mut self, sink: &dyn Sink, n: usize, offset: u64) -> Result<(), Error>;

    /// Reads up to `buf.len()` bytes into `buf`; `Ok(0)` at the end.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

/// A response: its head and its body.
pub(crate) struct Response {
    pub head: Head,
    pub body: Box<dyn Body>,
}

/// One way of exchanging a request for a response.
pub(crate) trait Transport: Send + Sync {
    /// Sends `req` and reads the response head. Any status is a response:
    /// judging it is the caller's job.
    fn send(&self, req: &Request<'_>) -> Result<Response, Error>;

    /// `"wire"` or `"ureq"`, for messages and tests.
    fn name(&self) -> &'static str;
}

/// Gives `socket` a receive buffer of about `bytes` (the kernel doubles
/// it for its bookkeeping and keeps a floor), turning off the kernel's
/// own growth of it. A failure only leaves the buffer as it was.
pub(crate) fn set_recv_buffer(socket: &std::net::TcpStream, bytes: usize) {
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(socket, bytes);
}

/// Reads a whole body into memory, at most `limit` bytes (the rest is left).
pub(crate) fn read_to_vec(body: &mut dyn Body, limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    while out.len() < limit {
        let want = chunk.len().min(limit - out.len());
        match body.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The faults of an exchange, in the same words whichever transport met them.
pub(crate) mod fail {
    use super::*;

    /// The host name does not resolve: not worth retrying.
    pub fn unresolved(url: &Url, detail: impl std::fmt::Display) -> Error {
        Error::Network {
            url: url.to_string(),
            reason: format!("host not found: check the host name ({detail})"),
            transient: false,
        }
    }

    /// Nothing listens there, or it cannot be reached: not worth retrying.
    pub fn refused(url: &Url, detail: impl std::fmt::Display) -> Error {
        Error::Network {
            url: url.to_string(),
            reason: format!("cannot connect: {detail}"),
            transient: false,
        }
    }

    /// A phase took longer than its timeout.
    pub fn timed_out(url: &Url, what: &str) -> Error {
        Error::Network {
            url: url.to_string(),
            reason: format!("timed out {what}"),
            transient: true,
        }
    }

    /// The connection broke (reset, closed early, an I/O error).
    pub fn broke(url: &Url, e: impl std::fmt::Display) -> Error {
        Error::Network {
            url: url.to_string(),
            reason: format!("connection broke: {e}"),
            transient: true,
        }
    }

    /// TLS failed (certificate, handshake): not worth retrying.
    pub fn tls(url: &Url, e: impl std::fmt::Display) -> Error {
        Error::Network {
            url: url.to_string(),
            reason: format!("TLS error: {e}"),
            transient: false,
        }
    }

    /// The server's answer is not HTTP as it must be.
    pub fn broken_http(url: &Url, e: impl std::fmt::Display) -> Error {
        Error::protocol(url, format!("the server broke HTTP: {e}"))
    }
}
