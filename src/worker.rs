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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ureq::http::Response;
use url::{Origin, Url};

use crate::download::CancelHandle;
use crate::error::{Error, retryable_status};
use crate::output::PartFile;
use crate::plan::Plan;
use crate::probe::{content_length, header, parse_content_range};
use crate::progress::Counters;
use crate::session::Session;
use crate::wire;

/// The buffers of all connections together stay within this budget: each
/// connection has ureq's input buffer and a worker buffer of
/// [`buffer_size`] bytes.
pub const BUFFER_BUDGET: usize = 12 << 20;

/// The size of each connection's buffers for `connections` connections: 1 MiB
/// up to 6 connections, less beyond (16 connections: 384 KiB), at least 128 KiB.
pub fn buffer_size(connections: usize) -> usize {
    (BUFFER_BUDGET / 2 / connections.max(1)).clamp(128 << 10, 1 << 20)
}

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
    /// The validators for `If-Range` and for checking each answer.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The probe's `Content-Encoding`: every `206` must have the same.
    pub content_encoding: Option<String>,
    /// Set when a worker fails or falls back: the others stop at their next chunk.
    pub stop: AtomicBool,
    /// The size of each worker's buffer.
    pub buffer: usize,
    /// Workers still running.
    pub active: AtomicUsize,
    /// No request before this moment: a server's `Retry-After` (or a backoff
    /// after a 429/503) speaks to the whole client, not one connection.
    pub not_before: Mutex<Option<Instant>>,
    /// Whether workers fetch on their own connections ([`crate::wire`]);
    /// cleared when the server answers in a way only ureq reads (a chunked
    /// `206`).
    pub direct: AtomicBool,
    /// When the download began: the plan's clock.
    pub began: Instant,
    /// Idle workers wait here (with the plan's lock) for a segment to be given
    /// back or the plan to complete, and look for stalls meanwhile.
    pub idle: std::sync::Condvar,
    /// Each worker's current connection of its own and the segment it
    /// fetches there, so that another worker that takes the segment over can
    /// wake it from a read on a silent server.
    pub reading: Mutex<Vec<Option<(usize, std::net::TcpStream)>>>,
}

/// Why a worker stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The server does not serve ranges as asked: download as one stream.
    Fallback(String),
    /// The resource is not the version the probe saw: start over.
    Changed {
        /// What showed it.
        why: String,
        /// Whether it was the length (then the probe's HEAD is not trusted again).
        length: bool,
    },
    /// The download cannot go on.
    Failed(Error),
}

/// How one request ended, when it did not fetch its whole range.
enum Attempt {
    /// Worth another try (network trouble, 5xx, short body), after at least the
    /// server's `Retry-After`, if it sent one.
    Retry(Error, Option<Duration>),
    Stop(Stop),
}

impl Job<'_> {
    pub(crate) fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        // The plan's state stays consistent at every unlock; a panic elsewhere
        // does not make it unusable.
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds since the download began.
    fn now(&self) -> f64 {
        self.began.elapsed().as_secs_f64()
    }

    fn reading(&self) -> std::sync::MutexGuard<'_, Vec<Option<(usize, std::net::TcpStream)>>> {
        self.reading.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records (or, with `None`, forgets) the connection `worker` reads
    /// segment `seg` from.
    fn read_from(&self, worker: usize, seg: usize, stream: Option<&std::net::TcpStream>) {
        let mut reading = self.reading();
        if reading.len() <= worker {
            reading.resize_with(worker + 1, || None);
        }
        reading[worker] = stream.and_then(|s| s.try_clone().ok()).map(|s| (seg, s));
    }

    /// Shuts down the connection `worker` reads segment `seg` from, if it
    /// still does: the segment was taken over, its request stalled.
    fn interrupt(&self, worker: usize, seg: usize) {
        if let Some(Some((s, stream))) = self.reading().get(worker)
            && *s == seg
        {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn halt(&self) {
        self.stop.store(true, Ordering::Release);
    }

    fn halted(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.source.cancel.is_cancelled()
    }
}

/// Runs one ranged worker until the plan has nothing left for it (or the
/// server asked for fewer connections).
///
/// `active` counts running workers and changes only under the plan's lock,
/// together with the decision it records: "nothing left, I stop" and "I
/// retire and give my segment back" cannot interleave, so a segment given
/// back is always seen by a worker that is still running.
pub(crate) fn run_ranged(job: &Job<'_>, worker: usize) -> Result<(), Stop> {
    let result = run_worker(job, worker);
    // Whatever this worker leaves, the idle ones should look at it now.
    job.idle.notify_all();
    result
}

fn run_worker(job: &Job<'_>, worker: usize) -> Result<(), Stop> {
    let mut means = Means {
        worker,
        conn: None,
        buf: Vec::new(),
    };
    loop {
        if job.halted() {
            return job.leave(None, Ok(()));
        }
        let next = {
            let mut plan = job.plan();
            match plan.next_at(worker, job.now()) {
                Some(a) => Some(a),
                None if plan.is_complete() => {
                    job.active.fetch_sub(1, Ordering::AcqRel);
                    return Ok(());
                }
                None => None,
            }
        };
        // Nothing to take now, but not everything is fetched: a request may
        // stall, or fail and give its segment back. Look again then, or in a
        // while.
        let Some(a) = next else {
            let plan = job.plan();
            if !plan.is_complete() {
                let _ = job.idle.wait_timeout(plan, IDLE_LOOK);
            }
            continue;
        };
        if let Some((w, seg)) = a.taken_over {
            job.interrupt(w, seg);
        }
        match fetch_segment(job, a.segment, &mut means) {
            Ok(Done::Segment) => {
                job.plan().release(a.segment);
                job.idle.notify_all();
            }
            // The segment went back to the plan when the worker retired.
            Ok(Done::Retired) => return Ok(()),
            Err(stop) => {
                job.halt();
                return job.leave(Some(a.segment), Err(stop));
            }
        }
    }
}

/// How often a worker with nothing to do looks for a stalled request to take
/// over (see [`crate::plan::STALLED_AFTER`]).
pub const IDLE_LOOK: Duration = Duration::from_millis(100);

/// What a worker fetches with: its own connection (plain http, kept alive
/// from one request to the next) and the buffer for bodies read through ureq
/// (allocated on first use).
struct Means {
    worker: usize,
    conn: Option<wire::Conn>,
    buf: Vec<u8>,
}

/// How a worker left a segment.
enum Done {
    /// The segment is fetched (or the download stopped).
    Segment,
    /// The server asked for fewer connections: the segment went back to the
    /// plan for the workers that remain, and this one ends.
    Retired,
}

impl Job<'_> {
    /// Holds every request of this download back for `wait`.
    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut nb = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        *nb = Some(nb.map_or(until, |t| t.max(until)));
    }

    /// Waits until requests may be sent again.
    fn wait_turn(&self) {
        let until = *self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = until {
            self.source
                .cancel
                .sleep(t.saturating_duration_since(Instant::now()));
        }
    }

    /// Ends this worker, giving `seg` back.
    fn leave(&self, seg: Option<usize>, result: Result<(), Stop>) -> Result<(), Stop> {
        let mut plan = self.plan();
        if let Some(s) = seg {
            plan.release(s);
        }
        self.active.fetch_sub(1, Ordering::AcqRel);
        drop(plan);
        self.idle.notify_all();
        result
    }

    /// Ends this worker and gives `seg` back if others are still running;
    /// false (and nothing changes) when it is the last one.
    fn retire(&self, seg: usize) -> bool {
        let mut plan = self.plan();
        if self.active.load(Ordering::Acquire) <= 1 {
            return false;
        }
        plan.release(seg);
        self.active.fetch_sub(1, Ordering::AcqRel);
        drop(plan);
        self.idle.notify_all();
        true
    }
}

/// Fetches what is left of segment `seg`, retrying as needed.
fn fetch_segment(job: &Job<'_>, seg: usize, means: &mut Means) -> Result<Done, Stop> {
    let mut failures = 0u32;
    loop {
        if job.halted() {
            return Ok(Done::Segment);
        }
        let (pos, end) = job.plan().position(seg);
        if pos >= end {
            return Ok(Done::Segment);
        }
        match fetch_range(job, seg, pos, end, means) {
            Ok(()) => {}
            Err(Attempt::Stop(s)) => return Err(s),
            // "Too many requests" or "unavailable": one connection fewer, if
            // others remain to carry on; the last one waits and retries.
            Err(Attempt::Retry(
                Error::HttpStatus {
                    status: 429 | 503, ..
                },
                retry_after,
            )) if job.retire(seg) => {
                job.pause(wait_before_retry(1, retry_after));
                return Ok(Done::Retired);
            }
            Err(Attempt::Retry(e, retry_after)) => {
                // Only real progress renews the retry budget: a body cut short
                // again and again after a few bytes must end, not crawl on.
                let (now, end_now) = job.plan().position(seg);
                if now >= end_now {
                    // Taken over (or stolen) while it failed: nothing is left.
                    return Ok(Done::Segment);
                }
                if now - pos >= RETRY_RENEWING_PROGRESS {
                    failures = 0;
                }
                failures += 1;
                if failures > job.source.retries {
                    return Err(Stop::Failed(e));
                }
                let wait = wait_before_retry(failures, retry_after);
                if retry_after.is_some() {
                    job.pause(wait);
                }
                job.source.cancel.sleep(wait);
            }
        }
    }
}

/// A connection that delivers fewer bytes than this within the read timeout
/// counts as stalled, even if it never goes fully silent (a server dripping
/// a byte at a time must not hang the download): curl's `--speed-limit`.
pub const FLOOR_BYTES: u64 = 1024;

/// Watches one response for a stall: fewer than [`FLOOR_BYTES`] in a window
/// of the read timeout.
struct StallWatch {
    window: Duration,
    since: Instant,
    bytes: u64,
}

impl StallWatch {
    fn new(window: Duration) -> StallWatch {
        StallWatch {
            window,
            since: Instant::now(),
            bytes: 0,
        }
    }

    /// Counts `n` bytes; true when the window closed with too few.
    fn stalled(&mut self, n: usize) -> bool {
        self.bytes += n as u64;
        if self.since.elapsed() < self.window {
            return false;
        }
        let slow = self.bytes < FLOOR_BYTES;
        self.since = Instant::now();
        self.bytes = 0;
        slow
    }
}

fn too_slow(url: &Url, window: Duration) -> Error {
    Error::Network {
        url: url.to_string(),
        reason: format!(
            "the connection stalled: fewer than {FLOOR_BYTES} bytes in {:.0} s",
            window.as_secs_f64()
        ),
        transient: true,
    }
}

/// How many bytes one attempt must deliver for its failure not to count
/// against the retry budget.
pub const RETRY_RENEWING_PROGRESS: u64 = 1 << 20;

/// The wait before retry number `n` (from 1): 250 ms doubling, at most 4 s.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(250u64 << n.saturating_sub(1).min(4))
}

/// The longest single wait before a retry, whatever the server asks.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// The wait before retry number `n`: the backoff with up to 25 % jitter (so
/// that connections do not retry in lockstep), or the server's `Retry-After`
/// when that is longer, never more than [`MAX_RETRY_WAIT`].
pub(crate) fn wait_before_retry(n: u32, retry_after: Option<Duration>) -> Duration {
    let base = backoff(n);
    let jitter = base.mul_f64(jitter_fraction() * 0.25);
    (base + jitter)
        .max(retry_after.unwrap_or_default())
        .min(MAX_RETRY_WAIT)
}

/// A number in [0, 1) that differs between calls and threads; not for secrets.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A `Retry-After` value: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Some(secs) = crate::probe::parse_decimal(v) {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// One request for `[pos, end)` of segment `seg`: on the worker's own
/// connection where [`wire`] can take it, else through ureq.
fn fetch_range(
    job: &Job<'_>,
    seg: usize,
    pos: u64,
    end: u64,
    means: &mut Means,
) -> Result<(), Attempt> {
    let mut headers = vec![("range", format!("bytes={}-{}", pos, end - 1))];
    if let Some(v) = if_range_value(job.etag.as_deref(), job.last_modified.as_deref()) {
        headers.push(("if-range", v));
    }
    job.wait_turn();
    let src = &job.source;
    let sent = Instant::now();
    if job.direct.load(Ordering::Relaxed) {
        let (head, conn) = wire::get(
            src.session,
            src.cancel,
            &mut means.conn,
            src.url,
            &headers,
            src.origin,
        )
        .map_err(classify)?;
        src.session.store_cookies(src.url, &head.headers);
        let redirect = (300..400).contains(&head.status) && head.headers.contains_key("location");
        if !redirect && (head.status != 206 || head.length.is_some()) {
            job.plan().set_latency(sent.elapsed().as_secs_f64());
            check_status(job, head.status, &head.headers, src.url)?;
            check_partial(&head.headers, pos, end, job)?;
            if head.length != Some(end - pos) {
                return Err(Attempt::Stop(Stop::Fallback(format!(
                    "asked for {} bytes, the server answered Content-Length {:?}",
                    end - pos,
                    head.length
                ))));
            }
            job.read_from(means.worker, seg, Some(conn.stream()));
            let mut body = wire::Body::new(conn, end - pos, job.buffer);
            job.counters.connection_started();
            let result = stream_range(job, seg, pos, &mut body, src.url);
            job.counters.connection_ended();
            job.read_from(means.worker, seg, None);
            return result;
        }
        // A redirect, or a body only ureq reads (chunked): ureq takes it from
        // here, and takes the rest of the download too when it was the body.
        if !redirect {
            job.direct.store(false, Ordering::Relaxed);
        }
        means.conn = None;
    }
    let fetched = src
        .session
        .send("GET", src.url, &headers, src.origin)
        .map_err(classify)?;
    job.plan().set_latency(sent.elapsed().as_secs_f64());
    let url = &fetched.url;
    let resp = fetched.response;
    check_status(job, resp.status().as_u16(), resp.headers(), url)?;
    check_partial(resp.headers(), pos, end, job)?;
    if means.buf.is_empty() {
        means.buf = vec![0; job.buffer];
    }
    let mut body = UreqBody {
        reader: resp.into_body().into_reader(),
        buf: &mut means.buf,
        held: 0,
    };
    job.counters.connection_started();
    let result = stream_range(job, seg, pos, &mut body, url);
    job.counters.connection_ended();
    result
}

/// What an answer's status means for a ranged request: `Ok` for a `206`.
fn check_status(
    job: &Job<'_>,
    status: u16,
    h: &ureq::http::HeaderMap,
    url: &Url,
) -> Result<(), Attempt> {
    match status {
        206 => Ok(()),
        200 => {
            // With If-Range, a 200 means either "changed" or "I ignore ranges":
            // the validators on the answer tell which.
            let changed = match (&job.etag, header(h, "etag")) {
                (Some(a), Some(b)) => *a != b,
                _ => {
                    matches!((&job.last_modified, header(h, "last-modified")), (Some(a), Some(b)) if *a != b)
                }
            };
            Err(Attempt::Stop(if changed {
                Stop::Changed {
                    why: "the file changed on the server during the download".into(),
                    length: false,
                }
            } else {
                Stop::Fallback("server ignored the byte range request".into())
            }))
        }
        // The range no longer exists: the file shrank.
        416 => Err(Attempt::Stop(Stop::Changed {
            why: "the file changed on the server: the range asked for is no longer there (416)"
                .into(),
            length: true,
        })),
        s if retryable_status(s) => {
            let retry_after = header(h, "retry-after")
                .as_deref()
                .and_then(parse_retry_after);
            Err(Attempt::Retry(
                Error::HttpStatus {
                    url: url.to_string(),
                    status: s,
                },
                retry_after,
            ))
        }
        s => Err(Attempt::Stop(Stop::Failed(Error::HttpStatus {
            url: url.to_string(),
            status: s,
        }))),
    }
}

/// Checks a `206` before any of its bytes are written: `Content-Range` must be
/// exactly the range asked for, with the known total; the validators and the
/// `Content-Encoding` must be the probe's.
fn check_partial(
    h: &ureq::http::HeaderMap,
    pos: u64,
    end: u64,
    job: &Job<'_>,
) -> Result<(), Attempt> {
    let cr = header(h, "content-range").unwrap_or_default();
    let parsed = parse_content_range(&cr);
    if let Some(total) = parsed.and_then(|c| c.total)
        && total != job.total
    {
        return Err(Attempt::Stop(Stop::Changed {
            why: format!(
                "the file changed on the server: its length is now {total}, not {} (Content-Range {cr:?})",
                job.total
            ),
            length: true,
        }));
    }
    if parsed.map(|c| (c.range, c.total)) != Some((Some((pos, end - 1)), Some(job.total))) {
        // Never written anywhere: a server that mislabels ranges gets one stream.
        return Err(Attempt::Stop(Stop::Fallback(format!(
            "asked for bytes {}-{}, the server answered Content-Range {cr:?}",
            pos,
            end - 1
        ))));
    }
    let changed = |what: &str, want: &str, got: &str| {
        Err(Attempt::Stop(Stop::Changed {
            why: format!("the file changed on the server ({what} {want} became {got})"),
            length: false,
        }))
    };
    if let (Some(want), Some(got)) = (&job.etag, header(h, "etag"))
        && *want != got
    {
        return changed("ETag", want, &got);
    }
    if let (Some(want), Some(got)) = (&job.last_modified, header(h, "last-modified"))
        && *want != got
    {
        return changed("Last-Modified", want, &got);
    }
    let encoding = header(h, "content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity"));
    if encoding != job.content_encoding {
        return Err(Attempt::Stop(Stop::Fallback(format!(
            "server sent a range with Content-Encoding {}",
            encoding.as_deref().unwrap_or("identity")
        ))));
    }
    Ok(())
}

/// A response body on its way into the file: bytes are received first, then
/// written once the plan says how many of them are still wanted.
trait Incoming {
    /// Receives up to `max` more bytes; 0 when the body ended.
    fn receive(&mut self, max: usize) -> std::io::Result<usize>;
    /// Writes the first `n` received bytes at `offset`; the rest are dropped.
    fn write(&mut self, file: &PartFile, n: usize, offset: u64) -> Result<(), Error>;
}

/// A body read through ureq, into the worker's buffer.
struct UreqBody<'b, R> {
    reader: R,
    buf: &'b mut [u8],
    held: usize,
}

impl<R: Read> Incoming for UreqBody<'_, R> {
    fn receive(&mut self, max: usize) -> std::io::Result<usize> {
        let max = max.min(self.buf.len());
        self.held = self.reader.read(&mut self.buf[..max])?;
        Ok(self.held)
    }

    fn write(&mut self, file: &PartFile, n: usize, offset: u64) -> Result<(), Error> {
        let n = n.min(std::mem::take(&mut self.held));
        file.write_at(&self.buf[..n], offset)
    }
}

impl Incoming for wire::Body<'_> {
    fn receive(&mut self, max: usize) -> std::io::Result<usize> {
        wire::Body::receive(self, max)
    }

    fn write(&mut self, file: &PartFile, n: usize, offset: u64) -> Result<(), Error> {
        wire::Body::write(self, file, n, offset)
    }
}

/// Streams a validated `206` body into the file at `pos`, claiming each chunk
/// from the plan first (the segment's end may have moved down by stealing).
fn stream_range(
    job: &Job<'_>,
    seg: usize,
    mut pos: u64,
    body: &mut impl Incoming,
    url: &Url,
) -> Result<(), Attempt> {
    let started = Instant::now();
    let mut received = 0u64;
    let window = job.source.session.read_timeout();
    let mut watch = StallWatch::new(window);
    loop {
        if job.halted() {
            return Ok(());
        }
        let n = match body.receive(job.buffer) {
            Ok(0) => {
                let (_, end) = job.plan().position(seg);
                if pos < end {
                    return Err(Attempt::Retry(
                        Error::protocol(
                            url,
                            format!("the body ended early, {} bytes short", end - pos),
                        ),
                        None,
                    ));
                }
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let reason = if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    format!(
                        "the connection stalled: no data for {:.0} s",
                        window.as_secs_f64()
                    )
                } else {
                    format!("connection broke: {e}")
                };
                return Err(Attempt::Retry(
                    Error::Network {
                        url: url.to_string(),
                        reason,
                        transient: true,
                    },
                    None,
                ));
            }
        };
        if watch.stalled(n) {
            return Err(Attempt::Retry(too_slow(url, window), None));
        }
        received += n as u64;
        let elapsed = started.elapsed().as_secs_f64();
        let (take, finished) = {
            let mut plan = job.plan();
            let take = plan.claim(seg, n as u64);
            plan.heard(seg, job.now());
            // The rate steers stealing; the first instants are too noisy to tell.
            if elapsed >= 0.05 {
                plan.set_rate(seg, received as f64 / elapsed);
            }
            let (now, end) = plan.position(seg);
            (take, now >= end)
        };
        body.write(job.file, take as usize, pos)
            .map_err(|e| Attempt::Stop(Stop::Failed(e)))?;
        if take > 0 {
            job.plan().commit(seg, take);
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
        Error::Network { .. } => Attempt::Retry(e, None),
        other => Attempt::Stop(Stop::Failed(other)),
    }
}

/// Where a single stream's bytes go, and its stall window.
struct StreamOut<'a> {
    file: &'a PartFile,
    counters: &'a Counters,
    window: Duration,
}

/// Downloads the whole resource as one stream, writing at increasing offsets.
/// Uses `first` (a response already received) for the first try. A failed
/// stream is restarted from byte 0, at most `retries` times. Returns the
/// number of bytes written and, when `hash` is set, their SHA-256 (computed
/// on the bytes as they pass).
pub(crate) fn run_single(
    src: &Source<'_>,
    file: &PartFile,
    counters: &Counters,
    mut first: Option<Response<ureq::Body>>,
    hash: bool,
) -> Result<(u64, Option<[u8; 32]>), Error> {
    let (url, cancel, retries) = (src.url, src.cancel, src.retries);
    let mut buf = vec![0u8; buffer_size(1)];
    let mut failures = 0u32;
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        counters.set_downloaded(0);
        let mut sha = hash.then(Sha256::new);
        let out = StreamOut {
            file,
            counters,
            window: src.session.read_timeout(),
        };
        let attempt = match first.take() {
            Some(resp) => stream_whole(url, resp, &out, &mut buf, &mut sha),
            None => src
                .session
                .send("GET", url, &[], src.origin)
                .and_then(|f| stream_whole(&f.url, f.response, &out, &mut buf, &mut sha)),
        };
        match attempt {
            Ok(n) => return Ok((n, sha.map(|s| s.finalize().into()))),
            Err(e) => {
                let again = match &e {
                    Error::Network { .. } | Error::Protocol { .. } => true,
                    Error::HttpStatus { status, .. } => retryable_status(*status),
                    _ => false,
                };
                failures += 1;
                if !again || failures > retries {
                    return Err(e);
                }
                cancel.sleep(wait_before_retry(failures, None));
            }
        }
    }
}

fn stream_whole(
    url: &Url,
    resp: Response<ureq::Body>,
    out: &StreamOut<'_>,
    buf: &mut [u8],
    sha: &mut Option<Sha256>,
) -> Result<u64, Error> {
    let (file, counters, window) = (out.file, out.counters, out.window);
    let status = resp.status().as_u16();
    if status == 206 {
        return Err(Error::protocol(
            url,
            "the server answered a request without Range with 206 Partial Content",
        ));
    }
    if !(200..300).contains(&status) {
        return Err(Error::HttpStatus {
            url: url.to_string(),
            status,
        });
    }
    let expected = content_length(url, resp.headers())?;
    let mut reader = resp.into_body().into_reader();
    let mut pos = 0u64;
    let mut watch = StallWatch::new(window);
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
                    transient: true,
                });
            }
        };
        if watch.stalled(n) {
            return Err(too_slow(url, window));
        }
        file.write_at(&buf[..n], pos)?;
        if let Some(sha) = sha.as_mut() {
            sha.update(&buf[..n]);
        }
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
    fn buffers_shrink_with_more_connections() {
        assert_eq!(buffer_size(1), 1 << 20);
        assert_eq!(buffer_size(6), 1 << 20);
        assert_eq!(buffer_size(16), 384 << 10);
        assert_eq!(buffer_size(64), 128 << 10);
        assert!(16 * 2 * buffer_size(16) <= BUFFER_BUDGET);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(5), Duration::from_secs(4));
        assert_eq!(backoff(50), Duration::from_secs(4));
    }

    #[test]
    fn retry_waits_honour_retry_after_within_the_cap() {
        for n in 1..8 {
            let w = wait_before_retry(n, None);
            assert!(
                w >= backoff(n) && w <= backoff(n).mul_f64(1.25),
                "{n}: {w:?}"
            );
        }
        assert_eq!(
            wait_before_retry(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            wait_before_retry(1, Some(Duration::from_secs(3600))),
            MAX_RETRY_WAIT
        );
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
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
