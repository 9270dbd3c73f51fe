//! One stream: where ranges are not served, or no length is known, the
//! whole resource is read as it comes and written at increasing offsets.

use std::time::Duration;

use url::Url;

use super::Source;
use crate::checksum::PrefixHasher;
use crate::error::Error;
use crate::http;
use crate::output::Sink;
use crate::progress::Counters;
use crate::retry::{self, Budget, Failure, StallWatch, wait_before_retry};
use crate::session::Fetched;
use crate::transport::buffer_size;

/// How far the checksum may trail the stream before it catches up (it reads
/// back what was written, from the page cache).
const HASH_EVERY: u64 = 8 << 20;

/// Downloads the whole resource as one stream, writing at increasing offsets.
/// Uses `first` (a response already received) for the first try. A failed
/// stream is restarted from byte 0, at most `retries` times (a restart
/// renews nothing: the same bytes are fetched again). Returns the number of
/// bytes written and, when `hash` is set and the sink is a file, their
/// SHA-256 (a stream hashes what it delivers itself).
pub(crate) fn run_single(
    src: &Source<'_>,
    sink: &dyn Sink,
    counters: &Counters,
    mut first: Option<Fetched>,
    hash: bool,
) -> Result<(u64, Option<[u8; 32]>), Error> {
    let line = src.cancel.line();
    line.set_recv_buffer(src.limit.map(|l| l.socket_buffer(1)));
    let mut budget = Budget::default();
    loop {
        if src.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        counters.start_from(0);
        let mut hasher = (hash && sink.as_file().is_some()).then(PrefixHasher::new);
        let out = Out {
            source: src,
            sink,
            counters,
            window: src.session.read_timeout(),
            hasher: &mut hasher,
        };
        counters.set_workers(1);
        counters.request_sent();
        let attempt = match first.take() {
            Some(f) => stream_whole(f, out),
            None => src
                .session
                .fetch("GET", src.url, &[], None, src.origin, &line)
                .map_err(Failure::judge)
                .and_then(|f| stream_whole(f, out)),
        };
        // A cancel shuts the socket: a body without a length then looks
        // complete. It is not.
        if src.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        match attempt {
            Ok(n) => {
                let sha = match (hasher, sink.as_file()) {
                    (Some(mut h), Some(file)) => {
                        h.advance_to(file.file(), n).map_err(|e| {
                            Error::io(file.part_path(), "read back for the checksum", e)
                        })?;
                        Some(h.finish())
                    }
                    _ => None,
                };
                return Ok((n, sha));
            }
            Err(f) => {
                let tries = budget.fail(0);
                if !f.retry || budget.exhausted(src.retries) {
                    return Err(retry::gave_up(f.error, tries));
                }
                let wait = wait_before_retry(tries, f.after);
                (src.tell)(
                    crate::event::NoticeKind::Retry,
                    &format!(
                        "{}; the stream starts again in {:.1} s (retry {tries} of {})",
                        f.error,
                        wait.as_secs_f64(),
                        src.retries
                    ),
                );
                src.cancel.sleep(wait);
            }
        }
    }
}

/// Where a stream's bytes go.
struct Out<'a> {
    source: &'a Source<'a>,
    sink: &'a dyn Sink,
    counters: &'a Counters,
    /// The stall window (the read timeout).
    window: Duration,
    hasher: &'a mut Option<PrefixHasher>,
}

fn stream_whole(mut f: Fetched, out: Out<'_>) -> Result<u64, Failure> {
    let url: &Url = &f.url;
    let status = f.head.status;
    if status == 206 {
        return Err(Failure::judge(Error::protocol(
            url,
            "the server answered a request without Range with 206 Partial Content",
        )));
    }
    if !(200..300).contains(&status) {
        return Err(Failure::status(url, status, &f.head.headers));
    }
    let expected = http::content_length(&f.head.headers)
        .map_err(|r| Failure::judge(Error::protocol(url, r)))?;
    let chunk = buffer_size(1);
    let mut pos = 0u64;
    let mut watch = StallWatch::new(out.window);
    out.counters.connection_started();
    let result = (|| loop {
        let allowed = out.source.allowance(chunk);
        if allowed == 0 {
            return Err(Failure::judge(Error::Cancelled));
        }
        let received = f.body.receive(allowed, out.sink.as_file().is_some());
        out.source
            .unused(allowed - received.as_ref().map_or(0, |n| *n));
        let n = match received {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let short = expected.map(|len| len.saturating_sub(pos));
                return Err(retry::body_failure(&e, url, out.window, short));
            }
        };
        watch.count(n, url)?;
        out.counters.received(n as u64);
        f.body.write(out.sink, n, pos).map_err(Failure::judge)?;
        pos += n as u64;
        out.counters.add(n as u64);
        if let Some(h) = out.hasher.as_mut()
            && let Some(file) = out.sink.as_file()
            && pos >= h.hashed() + HASH_EVERY
        {
            // A read error only defers the work to the end.
            let _ = h.advance_to(file.file(), pos);
        }
    })();
    out.counters.connection_ended();
    result?;
    if let Some(len) = expected
        && pos != len
    {
        return Err(Failure::transient(Error::protocol(
            url,
            format!("the body ended after {pos} of {len} bytes"),
        )));
    }
    Ok(pos)
}
