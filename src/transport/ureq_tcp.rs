//! The TCP transport under ureq: what ureq's own `TcpTransport` does (it is
//! not public), on a socket we keep a handle to, so that a request's line
//! can shut it and set its receive buffer (see `ureq.rs`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use ::ureq::unversioned::transport::{Buffers, LazyBuffers, NextTimeout, Transport};
use ::ureq::{Error, Timeout};

/// A plain TCP connection for ureq.
pub(super) struct Tcp {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// The most one read takes off the socket (a rate limit's socket
    /// buffer): what ureq buffers never runs far ahead of what is read.
    pub read_cap: Option<usize>,
}

impl std::fmt::Debug for Tcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tcp")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

impl Tcp {
    /// A transport over `stream` with ureq's buffers of these sizes.
    pub fn new(stream: Arc<TcpStream>, input: usize, output: usize) -> Tcp {
        Tcp {
            stream,
            buffers: LazyBuffers::new(input, output),
            read_timeout: None,
            write_timeout: None,
            read_cap: None,
        }
    }
}

/// The timeout to apply before I/O, or the error when it ran out.
fn due(timeout: NextTimeout) -> Result<(Option<Duration>, Timeout), Error> {
    if timeout.after.is_zero() {
        return Err(Error::Timeout(timeout.reason));
    }
    Ok((timeout.not_zero().map(|d| *d), timeout.reason))
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

impl Transport for Tcp {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let (limit, reason) = due(timeout.for_write())?;
        if limit != self.write_timeout {
            self.stream.set_write_timeout(limit)?;
            self.write_timeout = limit;
        }
        let output = &self.buffers.output()[..amount];
        match (&*self.stream).write_all(output) {
            Ok(()) => Ok(()),
            Err(e) if timed_out(&e) => Err(Error::Timeout(reason)),
            Err(e) => Err(e.into()),
        }
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let (limit, reason) = due(timeout.for_read())?;
        if limit != self.read_timeout {
            self.stream.set_read_timeout(limit)?;
            self.read_timeout = limit;
        }
        let cap = self.read_cap.unwrap_or(usize::MAX);
        let input = self.buffers.input_append_buf();
        let len = input.len().min(cap);
        let input = &mut input[..len];
        let amount = loop {
            match (&*self.stream).read(input) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if timed_out(&e) => return Err(Error::Timeout(reason)),
                Err(e) => return Err(e.into()),
                Ok(n) => break n,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // Open, and nothing waiting that nobody asked for.
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut probe = [0u8; 1];
        let open =
            matches!(self.stream.peek(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        open && self.stream.set_nonblocking(false).is_ok()
    }
}
