//! `-o -`: the download, in order, to a writer (standard output), in
//! bounded memory.
//!
//! Workers write what they fetch at its offset as with a file; the sink
//! keeps what came early in a reorder window of a fixed size and a writer
//! thread delivers the bytes from the head, as they become contiguous. A
//! worker reads from the network only as much as fits in the window
//! ([`Sink::room`]), so a slow reader holds the download back (it never
//! grows the memory), and the plan hands out the lowest bytes first, so the
//! head is fetched first. What was delivered is hashed as it passes.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::output::Sink;

/// The default reorder window.
pub const DEFAULT_WINDOW: u64 = 64 << 20;

/// The ordered sink.
pub(crate) struct StreamSink {
    window: u64,
    state: Mutex<State>,
    /// The head moved (or the writer failed): room for workers.
    moved: Condvar,
    /// Bytes arrived (or the transfer ended): work for the writer.
    arrived: Condvar,
}

/// The most one delivery copies out of the window at once.
const DELIVERY: u64 = 1 << 20;

#[derive(Default)]
struct State {
    /// Bytes delivered: the next one to write out.
    base: u64,
    /// The window's memory, a ring: byte `o` sits at `o % window`. One
    /// allocation, its pages touched as they fill: memory is the window,
    /// however the bytes come.
    ring: Vec<u8>,
    /// The ranges of the window that hold bytes, `start -> end`, merged.
    filled: BTreeMap<u64, u64>,
    /// The most bytes the window ever held.
    peak: u64,
    /// Set when the writer failed (a closed pipe): everyone stops.
    failed: Option<io::ErrorKind>,
    /// Set when no more bytes will come.
    ended: bool,
}

impl State {
    fn held(&self) -> u64 {
        self.filled.iter().map(|(a, b)| b - a).sum()
    }

    /// Records `[a, b)` as held, merged with its neighbours.
    fn fill(&mut self, mut a: u64, mut b: u64) {
        if let Some((&s, &e)) = self.filled.range(..=a).next_back()
            && e >= a
        {
            self.filled.remove(&s);
            a = s;
            b = b.max(e);
        }
        while let Some((&s, &e)) = self.filled.range(a..=b).next() {
            self.filled.remove(&s);
            b = b.max(e);
        }
        self.filled.insert(a, b);
    }
}

impl StreamSink {
    /// A sink with a reorder window of `window` bytes.
    pub fn new(window: u64) -> StreamSink {
        StreamSink {
            window: window.max(64 << 10),
            state: Mutex::new(State::default()),
            moved: Condvar::new(),
            arrived: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most bytes the window ever held.
    #[cfg(test)]
    pub fn peak(&self) -> u64 {
        self.state().peak
    }

    /// No more bytes will come: the writer ends once it has written what it
    /// holds in order.
    pub fn end(&self) {
        self.state().ended = true;
        self.arrived.notify_all();
    }

    fn broken(kind: io::ErrorKind) -> Error {
        Error::Io {
            path: "-".into(),
            action: "write to the output",
            source: io::Error::from(kind),
        }
    }

    /// Copies `out.len()` bytes at offset `at` out of the ring.
    fn copy_out(&self, st: &State, at: u64, out: &mut [u8]) {
        let w = self.window as usize;
        let start = (at % self.window) as usize;
        let first = out.len().min(w - start);
        out[..first].copy_from_slice(&st.ring[start..start + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&st.ring[..rest]);
    }

    /// Writes the bytes out in order to `out` until the transfer ends (or
    /// `out` fails, which stops the workers): the bytes delivered, and their
    /// SHA-256 when `hash` is set.
    pub fn deliver(
        &self,
        out: &mut dyn Write,
        hash: bool,
    ) -> Result<(u64, Option<[u8; 32]>), Error> {
        let mut sha = hash.then(Sha256::new);
        let mut chunk = Vec::new();
        loop {
            let ready = {
                let mut st = self.state();
                loop {
                    let base = st.base;
                    if let Some(&end) = st.filled.get(&base) {
                        let n = (end - base).min(DELIVERY);
                        chunk.resize(n as usize, 0);
                        self.copy_out(&st, base, &mut chunk);
                        st.filled.remove(&base);
                        if base + n < end {
                            st.filled.insert(base + n, end);
                        }
                        st.base += n;
                        break true;
                    }
                    if st.ended || st.failed.is_some() {
                        break false;
                    }
                    st = self
                        .arrived
                        .wait_timeout(st, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            self.moved.notify_all();
            if !ready {
                let _ = out.flush();
                let st = self.state();
                return match st.failed {
                    Some(kind) => Err(StreamSink::broken(kind)),
                    None => Ok((st.base, sha.map(|s| s.finalize().into()))),
                };
            }
            if let Err(e) = out.write_all(&chunk) {
                self.state().failed = Some(e.kind());
                self.moved.notify_all();
                return Err(Error::Io {
                    path: "-".into(),
                    action: "write to the output",
                    source: e,
                });
            }
            if let Some(s) = sha.as_mut() {
                s.update(&chunk);
            }
        }
    }
}

impl Sink for StreamSink {
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), Error> {
        let mut st = self.state();
        // What was delivered already (a stream fetched again from its
        // start) is not delivered twice.
        let skip = st.base.saturating_sub(offset).min(buf.len() as u64) as usize;
        let (offset, buf) = (offset + skip as u64, &buf[skip..]);
        if buf.is_empty() {
            return Ok(());
        }
        // Workers read only what fits (see `room`); this only waits when a
        // caller did not ask first.
        while offset + buf.len() as u64 > st.base + self.window {
            if let Some(kind) = st.failed {
                return Err(StreamSink::broken(kind));
            }
            st = self
                .moved
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if let Some(kind) = st.failed {
            return Err(StreamSink::broken(kind));
        }
        if st.ring.is_empty() {
            st.ring = vec![0; self.window as usize];
        }
        let w = self.window as usize;
        let start = (offset % self.window) as usize;
        let first = buf.len().min(w - start);
        st.ring[start..start + first].copy_from_slice(&buf[..first]);
        let rest = buf.len() - first;
        st.ring[..rest].copy_from_slice(&buf[first..]);
        st.fill(offset, offset + buf.len() as u64);
        let held = st.held();
        st.peak = st.peak.max(held);
        drop(st);
        self.arrived.notify_one();
        Ok(())
    }

    fn room(&self, offset: u64) -> u64 {
        let st = self.state();
        if st.failed.is_some() {
            return 0;
        }
        (st.base + self.window).saturating_sub(offset)
    }

    fn wait_for_room(&self, offset: u64, timeout: Duration) {
        let st = self.state();
        if st.failed.is_none() && st.base + self.window <= offset {
            let _ = self.moved.wait_timeout(st, timeout);
        }
    }

    fn failed(&self) -> Option<Error> {
        self.state().failed.map(StreamSink::broken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bytes_come_out_in_order_and_once() {
        let sink = Arc::new(StreamSink::new(64 << 10));
        let writer = {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let (n, sha) = sink.deliver(&mut out, true).unwrap();
                (out, n, sha)
            })
        };
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        // Out of order, in pieces, a restart from 0 that repeats delivered bytes.
        for (a, b) in [
            (50_000, 60_000),
            (0, 50_000),
            (60_000, 120_000),
            (0, 130_000),
            (130_000, 200_000),
        ] {
            let mut at = a;
            while at < b {
                let room = sink.room(at as u64) as usize;
                if room == 0 {
                    sink.wait_for_room(at as u64, Duration::from_millis(50));
                    continue;
                }
                let n = room.min(b - at).min(7_000);
                sink.write_at(&data[at..at + n], at as u64).unwrap();
                at += n;
            }
        }
        sink.end();
        let (out, n, sha) = writer.join().unwrap();
        assert_eq!(n, 200_000);
        assert_eq!(out, data);
        assert_eq!(sha.unwrap(), <[u8; 32]>::from(Sha256::digest(&data)));
        assert!(sink.peak() <= 64 << 10, "{}", sink.peak());
    }

    #[test]
    fn a_closed_output_stops_the_writers() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = StreamSink::new(64 << 10);
        sink.write_at(b"abc", 0).unwrap();
        let e = sink.deliver(&mut Closed, false).unwrap_err();
        assert!(
            matches!(&e, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
        );
        assert!(sink.write_at(b"def", 3).is_err());
        assert_eq!(sink.room(3), 0);
        assert!(sink.failed().is_some());
    }
}
