//! Where `splice(2)` does not exist: no pipe is ever made, so bodies are
//! read through the connection's buffer (the same API as `splice.rs`).

use std::io;
use std::net::TcpStream;

use crate::error::Error;
use crate::output::PartFile;

/// A pipe that body bytes would pass through: never made here.
pub(crate) enum Pipe {}

/// Why a splice from the socket did not move bytes.
pub(crate) enum Refused {
    /// Always: read the socket instead.
    Unsupported,
    /// An I/O error (never, here).
    #[allow(dead_code)]
    Io(io::Error),
}

impl Pipe {
    /// No pipe.
    pub fn new(_size: usize) -> Option<Pipe> {
        None
    }

    /// Never called: there is no pipe.
    pub fn fill_from(&self, _socket: &TcpStream, _max: usize) -> Result<usize, Refused> {
        match *self {}
    }

    /// Never called: there is no pipe.
    pub fn drain_into(&self, _file: &PartFile, _offset: u64, _len: usize) -> Result<(), Error> {
        match *self {}
    }
}
