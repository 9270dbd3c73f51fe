//! Workers: the threads that fetch bytes and write them at their offsets.
//!
//! A ranged worker takes an [`Assignment`](crate::plan::Assignment) from the
//! shared plan, sends `GET` with `Range: bytes=a-b` (and `If-Range` with the
//! validator), accepts the body only if the answer is `206` with exactly the
//! `Content-Range` it asked for, and streams it through a fixed buffer into the
//! `.part` file with positional writes. A dropped or stalled connection is
//! retried from the last byte written, with backoff. A `200` to a ranged request
//! stops every worker: its bytes are never written at a range's offset, and the
//! download falls back to one stream.

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ureq::http::Response;
use url::{Origin, Url};

use crate::download::CancelHandle;
use crate::error::Error;
use crate::output::PartFile;
use crate::plan::Plan;
use crate::probe::{content_length, header, parse_content_range};
use crate::progress::Counters;
use crate::session::Session;

/// The size of each worker's buffer.
pub const BUFFER_SIZE: usize = 256 * 1024;

/// Where the bytes come from, and how hard to try: shared by the ranged
/// workers and the single stream.
pub(crate) struct Source<'a> {
    pub session: &'a Session,
    /// The URL to fetch (the probe's final URL).
    pub url: &'a Url,
    /// The origin of the URL the user gave: only it gets the user's credentials.
    pub origin: &'a Origin,
    /// Retries of one range (or of the stream) without progress.
    pub retries: u32,
    /// The user's cancel: everyone stops.
    pub cancel: &'a CancelHandle,
}

/// What all workers of one download share.
pub(crate) struct Job<'a> {
    pub source: Source<'a>,
    pub total: u64,
    pub file: &'a PartFile,
    pub plan: Mutex<Plan>,
    pub counters: &'a Counters,
    /// The validator for `If-Range` and for checking each answer.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Set when a worker fails or falls back: the others stop at their next chunk.
    pub stop: AtomicBool,
}

/// Why a worker stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The server ignored the range: download as one stream instead.
    Fallback(String),
    /// The download cannot go on.
    Failed(Error),
}

/// How one request ended, when it did not fetch its whole range.
enum Attempt {
    /// Worth another try (network trouble, 5xx, short body).
    Retry(Error),
    Stop(Stop),
}

impl Job<'_> {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        // The plan's state stays consistent at every unlock; a panic elsewhere
        // does not make it unusable.
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn halt(&self) {
        self.stop.store(true, Ordering::Release);
    }

    fn halted(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.source.cancel.is_cancelled()
    }
}

/// Runs one ranged worker until the plan has nothing left for it.
pub(crate) fn run_ranged(job: &Job<'_>, worker: usize) -> Result<(), Stop> {
    let mut buf = vec![0u8; BUFFER_SIZE];
    loop {
        if job.halted() {
            return Ok(());
        }
        let Some(a) = job.plan().next(worker) else {
            return Ok(());
        };
        let result = fetch_segment(job, a.segment, &mut buf);
        job.plan().release(a.segment);
        if let Err(stop) = result {
            job.halt();
            return Err(stop);
        }
    }
}

/// Fetches what is left of segment `seg`, retrying as needed.
fn fetch_segment(job: &Job<'_>, seg: usize, buf: &mut [u8]) -> Result<(), Stop> {
    let mut failures = 0u32;
    loop {
        if job.halted() {
            return Ok(());
        }
        let (pos, end) = job.plan().position(seg);
        if pos >= end {
            return Ok(());
        }
        match fetch_range(job, seg, pos, end, buf) {
            Ok(()) => {}
            Err(Attempt::Stop(s)) => return Err(s),
            Err(Attempt::Retry(e)) => {
                let (now, _) = job.plan().position(seg);
                if now > pos {
                    failures = 0;
                }
                failures += 1;
                if failures > job.source.retries {
                    return Err(Stop::Failed(e));
                }
                job.source.cancel.sleep(backoff(failures));
            }
        }
    }
}

/// The wait before retry number `n` (from 1): 250 ms doubling, at most 4 s.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(250u64 << n.saturating_sub(1).min(4))
}

/// One request for `[pos, end)` of segment `seg`.
fn fetch_range(
    job: &Job<'_>,
    seg: usize,
    pos: u64,
    end: u64,
    buf: &mut [u8],
) -> Result<(), Attempt> {
    let mut headers = vec![("range", format!("bytes={}-{}", pos, end - 1))];
    if let Some(v) = if_range_value(job.etag.as_deref(), job.last_modified.as_deref()) {
        headers.push(("if-range", v));
    }
    let src = &job.source;
    let fetched = src
        .session
        .send("GET", src.url, &headers, src.origin)
        .map_err(classify)?;
    let url = &fetched.url;
    let resp = fetched.response;
    match resp.status().as_u16() {
        206 => {}
        200 => {
            return Err(Attempt::Stop(Stop::Fallback(
                "server ignored the byte range request".into(),
            )));
        }
        s @ (408 | 429 | 500..=599) => {
            return Err(Attempt::Retry(Error::HttpStatus {
                url: url.to_string(),
                status: s,
            }));
        }
        s => {
            return Err(Attempt::Stop(Stop::Failed(Error::HttpStatus {
                url: url.to_string(),
                status: s,
            })));
        }
    }
    check_partial(&resp, url, pos, end, job)?;

    let mut reader = resp.into_body().into_reader();
    job.counters.connection_started();
    let result = stream_range(job, seg, pos, &mut reader, buf, url);
    job.counters.connection_ended();
    result
}

/// Checks a `206` before any of its bytes are written: `Content-Range` must be
/// exactly the range asked for, with the known total, and the validator must
/// not have changed.
fn check_partial(
    resp: &Response<ureq::Body>,
    url: &Url,
    pos: u64,
    end: u64,
    job: &Job<'_>,
) -> Result<(), Attempt> {
    let h = resp.headers();
    let cr = header(h, "content-range").unwrap_or_default();
    let parsed = parse_content_range(&cr);
    let wanted = (Some((pos, end - 1)), Some(job.total));
    if parsed.map(|c| (c.range, c.total)) != Some(wanted) {
        if parsed.and_then(|c| c.total).is_some_and(|t| t != job.total) {
            return Err(Attempt::Stop(Stop::Failed(Error::protocol(
                url,
                format!(
                    "the file's length changed on the server (Content-Range {cr:?}, expected total {})",
                    job.total
                ),
            ))));
        }
        return Err(Attempt::Retry(Error::protocol(
            url,
            format!(
                "asked for bytes {}-{}, the server answered Content-Range {cr:?}",
                pos,
                end - 1
            ),
        )));
    }
    if let (Some(want), Some(got)) = (&job.etag, header(h, "etag"))
        && *want != got
    {
        return Err(Attempt::Stop(Stop::Failed(Error::protocol(
            url,
            format!(
                "the file changed on the server during the download (ETag {want} became {got})"
            ),
        ))));
    }
    if let Some(enc) = header(h, "content-encoding")
        && !enc.eq_ignore_ascii_case("identity")
    {
        return Err(Attempt::Stop(Stop::Fallback(format!(
            "server sent ranges with Content-Encoding {enc}"
        ))));
    }
    Ok(())
}

/// Streams a validated `206` body into the file at `pos`, claiming each chunk
/// from the plan first (the segment's end may have moved down by stealing).
fn stream_range(
    job: &Job<'_>,
    seg: usize,
    mut pos: u64,
    reader: &mut impl Read,
    buf: &mut [u8],
    url: &Url,
) -> Result<(), Attempt> {
    loop {
        if job.halted() {
            return Ok(());
        }
        let n = match reader.read(buf) {
            Ok(0) => {
                let (_, end) = job.plan().position(seg);
                if pos < end {
                    return Err(Attempt::Retry(Error::protocol(
                        url,
                        format!("the body ended early, {} bytes short", end - pos),
                    )));
                }
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Attempt::Retry(Error::Network {
                    url: url.to_string(),
                    reason: format!("connection broke: {e}"),
                }));
            }
        };
        let (take, finished) = {
            let mut plan = job.plan();
            let take = plan.claim(seg, n as u64);
            let (now, end) = plan.position(seg);
            (take, now >= end)
        };
        if take > 0 {
            job.file
                .write_at(&buf[..take as usize], pos)
                .map_err(|e| Attempt::Stop(Stop::Failed(e)))?;
            job.counters.add(take);
            pos += take;
        }
        if finished {
            return Ok(());
        }
    }
}

/// The `If-Range` value: a strong `ETag`, else the `Last-Modified` date.
fn if_range_value(etag: Option<&str>, last_modified: Option<&str>) -> Option<String> {
    match etag {
        Some(e) if !e.starts_with("W/") => Some(e.to_string()),
        _ => last_modified.map(str::to_string),
    }
}

fn classify(e: Error) -> Attempt {
    match e {
        Error::Network { .. } => Attempt::Retry(e),
        other => Attempt::Stop(Stop::Failed(other)),
    }
}

/// Downloads the whole resource as one stream, writing at increasing offsets.
/// Uses `first` (a response already received) for the first try. A failed
/// stream is restarted from byte 0, at most `retries` times. Returns the
/// number of bytes written.
pub(crate) fn run_single(
    src: &Source<'_>,
    file: &PartFile,
    counters: &Counters,
    mut first: Option<Response<ureq::Body>>,
) -> Result<u64, Error> {
    let (url, cancel, retries) = (src.url, src.cancel, src.retries);
    let mut buf = vec![0u8; BUFFER_SIZE];
    let mut failures = 0u32;
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        counters.set_downloaded(0);
        let attempt = match first.take() {
            Some(resp) => stream_whole(url, resp, file, counters, &mut buf),
            None => src
                .session
                .send("GET", url, &[], src.origin)
                .and_then(|f| stream_whole(&f.url, f.response, file, counters, &mut buf)),
        };
        match attempt {
            Ok(n) => return Ok(n),
            Err(e @ (Error::Network { .. } | Error::Protocol { .. })) => {
                failures += 1;
                if failures > retries {
                    return Err(e);
                }
                cancel.sleep(backoff(failures));
            }
            Err(e @ Error::HttpStatus { status, .. })
                if status == 408 || status == 429 || status >= 500 =>
            {
                failures += 1;
                if failures > retries {
                    return Err(e);
                }
                cancel.sleep(backoff(failures));
            }
            Err(e) => return Err(e),
        }
    }
}

fn stream_whole(
    url: &Url,
    resp: Response<ureq::Body>,
    file: &PartFile,
    counters: &Counters,
    buf: &mut [u8],
) -> Result<u64, Error> {
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) || status == 206 {
        return Err(Error::HttpStatus {
            url: url.to_string(),
            status,
        });
    }
    let fetched = crate::session::Fetched {
        url: url.clone(),
        response: resp,
    };
    let expected = content_length(&fetched)?;
    let mut reader = fetched.response.into_body().into_reader();
    let mut pos = 0u64;
    counters.connection_started();
    let result = (|| loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Network {
                    url: url.to_string(),
                    reason: format!("connection broke after {pos} bytes: {e}"),
                });
            }
        };
        file.write_at(&buf[..n], pos)?;
        pos += n as u64;
        counters.add(n as u64);
    })();
    counters.connection_ended();
    result?;
    if let Some(len) = expected
        && pos != len
    {
        return Err(Error::protocol(
            url,
            format!("the body ended after {pos} of {len} bytes"),
        ));
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(5), Duration::from_secs(4));
        assert_eq!(backoff(50), Duration::from_secs(4));
    }

    #[test]
    fn if_range_prefers_a_strong_etag() {
        assert_eq!(
            if_range_value(Some("\"a\""), Some("d")),
            Some("\"a\"".into())
        );
        assert_eq!(if_range_value(Some("W/\"a\""), Some("d")), Some("d".into()));
        assert_eq!(if_range_value(None, None), None);
    }
}
