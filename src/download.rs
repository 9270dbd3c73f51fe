//! The flow, end to end: URL → probe → plan → workers → output file → finish.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use url::Url;

use crate::cancel::CancelHandle;
use crate::checkpoint::{CHECKPOINT_EVERY, Checkpoint, SYNC_EVERY};
use crate::checksum::{Checksum, PrefixHasher};
use crate::controller::Controller;
use crate::error::Error;
use crate::event::{Event, NoticeKind, Status};
use crate::http::parse_url;
use crate::output::{self, Allocation, PartFile};
use crate::plan::{self, Plan};
use crate::probe::{self, Resource};
use crate::progress::{self, Counters, ProgressFn, Snapshot};
use crate::ratelimit::RateLimit;
use crate::schedule::Ticket;
use crate::session::{Fetched, Session};
use crate::state::{self, State};
use crate::stream::StreamSink;
use crate::transport::buffer_size;
use crate::worker::{self, Expect, Job, Mirror, Source, Stop};

/// The most connections one download may use.
pub const MAX_CONNECTIONS: usize = 64;

/// The default number of connections.
pub const DEFAULT_CONNECTIONS: usize = 16;

/// The default number of retries of the same bytes (or of the single
/// stream) without progress before the download fails.
pub const DEFAULT_RETRIES: u32 = 5;

/// A notice callback: told things the user should know ("server does not
/// support ranges: using 1 connection").
pub type NoticeFn = Box<dyn Fn(&str) + Send + Sync>;

/// Where events go: the caller's closure, one event at a time.
type EventSink = Arc<Mutex<Box<dyn FnMut(&Event) + Send>>>;

/// Under `--limit-rate`, the shortest a request's bytes take at its rate:
/// a download under a limit is long anyway, and every new request's first
/// bytes fill a socket buffer ahead of the limit (with a twentieth of a
/// second, the rate test saw 7 % over the limit in one 2-second window at
/// 16 connections).
const LIMITED_REQUEST_SECONDS: f64 = 1.0;

fn emit(events: &Option<EventSink>, e: &Event) {
    if let Some(sink) = events {
        (sink.lock().unwrap_or_else(|p| p.into_inner()))(e);
    }
}

/// Tells a notice to the notice callback and as an event.
fn tell(notice: &Option<NoticeFn>, events: &Option<EventSink>, kind: NoticeKind, msg: &str) {
    if let Some(f) = notice {
        f(msg);
    }
    emit(
        events,
        &Event::Notice {
            kind,
            message: msg.to_string(),
        },
    );
}

/// How a transfer ended, when it did not fail.
enum Outcome {
    /// Every byte is in the file (and here is its SHA-256, when one was expected).
    Done {
        bytes: u64,
        segmented: bool,
        sha256: Option<[u8; 32]>,
    },
    /// The resource is not the version the probe saw: start over.
    Changed { why: String, length: bool },
}

/// Turns "no space left on device" into an error that says how much is needed.
fn disk_full_hint(e: Error, remaining: u64) -> Error {
    match e {
        Error::Io { path, source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
            Error::DiskFull {
                path,
                needed: remaining,
            }
        }
        other => other,
    }
}

/// A download, configured with builder methods and started with [`Download::run`].
///
/// ```no_run
/// let summary = rangeget::Download::new("https://example.com/big.iso")
///     .connections(8)
///     .output("big.iso")
///     .run()?;
/// println!("{} bytes in {:?}", summary.bytes, summary.elapsed);
/// # Ok::<(), rangeget::Error>(())
/// ```
pub struct Download {
    url: String,
    connections: usize,
    /// Whether `connections` is a ceiling for the controller (else exact).
    adaptive: bool,
    output: Option<PathBuf>,
    dir: Option<PathBuf>,
    content_disposition: bool,
    force: bool,
    keep_complete: bool,
    allocation: Allocation,
    limit_rate: Option<u64>,
    stream: Option<Box<dyn Write + Send>>,
    window: u64,
    retries: u32,
    min_segment: u64,
    min_steal: u64,
    resume: bool,
    sync_every: Option<Duration>,
    checksum: Option<Checksum>,
    session: Option<Session>,
    progress: Option<ProgressFn>,
    notice: Option<NoticeFn>,
    events: Option<EventSink>,
    cancel: CancelHandle,
    /// In a list: the right to more connections than the first.
    ticket: Option<Ticket>,
    /// In a list: the rate limit all its downloads share.
    shared_limit: Option<Arc<RateLimit>>,
    /// Other URLs of the same file.
    mirrors: Vec<String>,
    /// The mirrors whose probe agreed with the first URL's, for this run.
    agreed: Vec<Resource>,
}

/// What a finished download did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Where the file was saved.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The bytes fetched by this run (less than `bytes` after a resume).
    pub fetched: u64,
    /// Wall time from the probe to the rename.
    pub elapsed: Duration,
    /// The connections the download used: its workers (at most that many
    /// at once), 1 for a single stream.
    pub connections: usize,
    /// The requests for bytes sent (ranged `GET`s, or the stream's).
    pub requests: usize,
    /// The body bytes read from the network by this run, written or thrown
    /// away: above `fetched` by what was fetched twice (the rest of a cut
    /// request, an attempt that failed and was asked again).
    pub received: u64,
    /// Whether the file was fetched in ranges (false: one stream).
    pub segmented: bool,
    /// Whether the file was complete already, and nothing was fetched
    /// ([`Download::keep_complete`]).
    pub already_complete: bool,
    /// The file's SHA-256 in hex, when it was computed (a checksum was
    /// expected, from the user or the server).
    pub sha256: Option<String>,
    /// The transport that carried the probe: `"wire"` (rangeget's own
    /// connections) or `"ureq"`.
    pub transport: &'static str,
    /// What the probe learned.
    pub resource: Resource,
}

impl Summary {
    /// The average speed of this run, in bytes fetched per second.
    pub fn bytes_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.fetched as f64 / s
        } else {
            0.0
        }
    }
}

impl Download {
    /// A download of `url` with the defaults: as many connections as pay, at
    /// most 16 (see [`Download::max_connections`]), the name from the URL,
    /// the current directory.
    pub fn new(url: impl Into<String>) -> Download {
        Download {
            url: url.into(),
            connections: DEFAULT_CONNECTIONS,
            adaptive: true,
            output: None,
            dir: None,
            content_disposition: false,
            force: false,
            keep_complete: false,
            allocation: Allocation::Reserve,
            limit_rate: None,
            stream: None,
            window: crate::stream::DEFAULT_WINDOW,
            retries: DEFAULT_RETRIES,
            min_segment: plan::MIN_SEGMENT,
            min_steal: plan::MIN_STEAL,
            resume: true,
            sync_every: Some(SYNC_EVERY),
            checksum: None,
            session: None,
            progress: None,
            notice: None,
            events: None,
            cancel: CancelHandle::new(),
            ticket: None,
            shared_limit: None,
            mirrors: Vec::new(),
            agreed: Vec::new(),
        }
    }

    /// Exactly this many connections (1 to [`MAX_CONNECTIONS`]), started at
    /// once, as aria2c's and axel's `-n`; files under 1 MiB per connection
    /// use fewer. See [`Download::max_connections`] for the default.
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n;
        self.adaptive = false;
        self
    }

    /// At most this many connections (1 to [`MAX_CONNECTIONS`]; default
    /// [`DEFAULT_CONNECTIONS`]), as many as pay: the connection-count
    /// controller starts with a few, doubles while the rate rises, sheds
    /// those that bring nothing and backs off when the server pushes back
    /// (see the crate docs).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.connections = n;
        self.adaptive = true;
        self
    }

    /// The output file. A relative path is taken inside [`Download::dir`] when
    /// one is set.
    pub fn output(mut self, path: impl Into<PathBuf>) -> Self {
        self.output = Some(path.into());
        self
    }

    /// The directory to save into (default: the current directory).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Use the name the server proposes in `Content-Disposition` (sanitised)
    /// when no output file is given.
    pub fn content_disposition(mut self, yes: bool) -> Self {
        self.content_disposition = yes;
        self
    }

    /// Overwrite an existing output file.
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }

    /// When the output file exists already and is the server's file (its
    /// length, not older than the server's `Last-Modified`, and the
    /// checksum when one is expected), leave it and succeed, fetching
    /// nothing: `-c`, as `wget -c` and `aria2c -c` do. One that differs is
    /// an error, and is kept. [`Download::force`] wins.
    pub fn keep_complete(mut self, yes: bool) -> Self {
        self.keep_complete = yes;
        self
    }

    /// Retries of the same bytes without progress before giving up (default
    /// 5): the budget belongs to the bytes, whichever connection fetches
    /// them, and 1 MiB of progress renews it.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// How `NAME.part` takes its space: reserved up front (the default) or
    /// as bytes arrive (see [`Allocation`]).
    pub fn allocation(mut self, a: Allocation) -> Self {
        self.allocation = a;
        self
    }

    /// Fetch at most this many bytes per second in all, every connection
    /// together (`--limit-rate`): one token bucket for the download, and
    /// what the server sends follows it.
    pub fn limit_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.limit_rate = bytes_per_second.filter(|&r| r > 0);
        self
    }

    /// Writes the file, in order, to `out` (`-o -`: standard output)
    /// instead of saving it: ranges are still fetched on many connections,
    /// the head first, and what comes early waits in a reorder window of
    /// [`Download::stream_window`] bytes (memory stays within it; a slow
    /// reader holds the download back). Nothing is written to disk, so
    /// nothing resumes. A checksum is checked as the bytes pass: a
    /// mismatch is an error, but the bytes have been written already.
    pub fn output_stream(mut self, out: impl Write + Send + 'static) -> Self {
        self.stream = Some(Box::new(out));
        self
    }

    /// The reorder window of [`Download::output_stream`] (default 64 MiB).
    pub fn stream_window(mut self, bytes: u64) -> Self {
        self.window = bytes;
        self
    }

    /// The smallest segment the file is split into (default 1 MiB).
    pub fn min_segment(mut self, bytes: u64) -> Self {
        self.min_segment = bytes.max(1);
        self
    }

    /// The smallest piece that work stealing splits off an unfinished segment
    /// for an idle connection (default 128 KiB); `u64::MAX` turns stealing off.
    pub fn min_steal(mut self, bytes: u64) -> Self {
        self.min_steal = bytes;
        self
    }

    /// Resume from `NAME.part` and its control file when an earlier run left
    /// them and they match the server's file (default true); false starts afresh.
    pub fn resume(mut self, yes: bool) -> Self {
        self.resume = yes;
        self
    }

    /// How often the partial file is synced to disk (`fdatasync`) while a ranged
    /// download runs, so that its resume state survives a power loss (default
    /// [`SYNC_EVERY`]). `None` never syncs: the state still survives a killed
    /// process (the page cache keeps what was written), not a crash of the
    /// machine, and long downloads save the sync's CPU and disk time.
    pub fn sync_every(mut self, every: Option<Duration>) -> Self {
        self.sync_every = every;
        self
    }

    /// The SHA-256 the file must have (`--checksum sha256:HEX`). It is checked
    /// while the download runs; a mismatch keeps nothing. A SHA-256 the server
    /// announces (`Repr-Digest`, `Digest`) is checked as well.
    pub fn checksum(mut self, c: Checksum) -> Self {
        self.checksum = Some(c);
        self
    }

    /// The session to use (agent, headers, timeouts, cookie jar). Without one, a
    /// default session is made for this download.
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    /// Called about ten times a second from a timer thread, and once at the end,
    /// with the download's progress.
    pub fn progress(mut self, f: impl FnMut(&Snapshot) + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Called with every [`Event`] of the download, from whichever thread
    /// the event happens on (one at a time): the start, progress about ten
    /// times a second, notices, and the end (always the last). `--json`
    /// writes these.
    pub fn on_event(mut self, f: impl FnMut(&Event) + Send + 'static) -> Self {
        self.events = Some(Arc::new(Mutex::new(Box::new(f))));
        self
    }

    /// Called with notices for the user, such as a fallback to one connection.
    pub fn on_notice(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.notice = Some(Box::new(f));
        self
    }

    /// A handle that cancels this download from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// The connections a download used: its workers; in a list, where
    /// its workers wait for permits, the most that transferred at once.
    fn connections_used(&self, counters: &Counters) -> usize {
        if self.ticket.is_some() || self.adaptive {
            counters.peak().max(1)
        } else {
            counters.workers()
        }
    }

    /// Other URLs of the same file (mirrors): each is probed, and one whose
    /// length (or digest, or content coding) is not the first URL's, or
    /// that serves no ranges, is dropped with a notice. Ranges are then
    /// fetched from all of them at once, the workers dealt out over them in
    /// turn; a faster one steals work from a slower one, and one that fails
    /// ([`MIRROR_STRIKES`](crate::unversioned::MIRROR_STRIKES) requests in a
    /// row, or an answer that cannot be used) is retired while the others
    /// finish. The file is the first URL's: its name, its resume state.
    pub fn mirrors<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.mirrors = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Probes the mirrors (at once, one thread each); those that agree with
    /// `first`.
    fn probe_mirrors(&self, session: &Session, first: &Resource) -> Vec<Resource> {
        if self.mirrors.is_empty() || !first.can_split() {
            if !self.mirrors.is_empty() {
                self.notify(
                    NoticeKind::Fallback,
                    "the first URL serves no ranges: its mirrors are not used",
                );
            }
            return Vec::new();
        }
        let found: Vec<(String, Result<Resource, Error>)> = thread::scope(|s| {
            let handles: Vec<_> = self
                .mirrors
                .iter()
                .map(|m| {
                    let (retries, cancel) = (self.retries.min(1), &self.cancel);
                    s.spawn(move || {
                        let r = parse_url(m)
                            .and_then(|u| probe::probe(session, &u, true, retries, cancel));
                        (m.clone(), r.map(|p| p.resource))
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        self.pass_on(session);
        let mut agreed = Vec::new();
        for (given, r) in found {
            let shown = crate::error::redact(&given);
            let why = match r {
                Err(e) => Some(format!("its probe failed: {e}")),
                Ok(r) if r.length != first.length => Some(format!(
                    "its length is {}, not {}",
                    r.length.map_or("unknown".to_string(), |l| l.to_string()),
                    first.length.unwrap_or(0)
                )),
                Ok(r) if !r.can_split() => Some("it serves no ranges".to_string()),
                Ok(r) if r.content_encoding != first.content_encoding => {
                    Some("its content coding differs".to_string())
                }
                Ok(r) if matches!((&r.digest, &first.digest), (Some(a), Some(b)) if a != b) => {
                    Some("its digest differs".to_string())
                }
                Ok(r) => {
                    agreed.push(r);
                    None
                }
            };
            if let Some(why) = why {
                self.notify(
                    NoticeKind::Fallback,
                    &format!("mirror {shown} dropped: {why}"),
                );
            }
        }
        agreed
    }

    /// The servers the workers fetch from: `first`, then the mirrors that agreed.
    fn servers(&self, first: &Resource, total: u64) -> Vec<Mirror> {
        std::iter::once(first)
            .chain(self.agreed.iter())
            .map(|r| {
                Mirror::new(
                    r.final_url.clone(),
                    r.url.origin(),
                    Expect {
                        total,
                        etag: r.etag.clone(),
                        last_modified: r.last_modified.clone(),
                        content_encoding: r.content_encoding.clone(),
                    },
                )
            })
            .collect()
    }

    /// The URL as given.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Joins a list: `session` unless it has its own, cancelled with
    /// `cancel`, and more connections than its first only as `ticket` allows.
    pub(crate) fn join_list(
        &mut self,
        session: &Session,
        cancel: &CancelHandle,
        ticket: Ticket,
        limit: Option<&Arc<RateLimit>>,
    ) {
        if self.session.is_none() {
            self.session = Some(session.clone());
        }
        if self.limit_rate.is_none() {
            self.shared_limit = limit.cloned();
        }
        cancel.adopt(&self.cancel);
        self.ticket = Some(ticket);
    }

    /// Takes the progress callback out (a list calls it beside its own).
    pub(crate) fn take_progress(&mut self) -> Option<ProgressFn> {
        self.progress.take()
    }

    /// Whether it writes to a stream rather than a file.
    pub(crate) fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    fn notify(&self, kind: NoticeKind, msg: &str) {
        tell(&self.notice, &self.events, kind, msg);
    }

    /// Runs the download. The file appears under its final name only when it
    /// is complete.
    pub fn run(self) -> Result<Summary, Error> {
        let cancel = self.cancel.clone();
        let events = self.events.clone();
        let result = self.run_inner().map_err(|e| {
            if cancel.is_cancelled() {
                Error::Cancelled
            } else {
                e
            }
        });
        let end = match &result {
            Ok(s) => Event::End {
                status: Status::Ok,
                path: Some(s.path.clone()),
                bytes: Some(s.bytes),
                fetched: s.fetched,
                received: Some(s.received),
                sha256: s.sha256.clone(),
                exit_code: 0,
            },
            Err(e) => Event::End {
                status: match e {
                    Error::Cancelled => Status::Cancelled,
                    e => Status::Error(e.to_string()),
                },
                path: None,
                bytes: None,
                fetched: 0,
                received: None,
                sha256: None,
                exit_code: e.exit_code(),
            },
        };
        emit(&events, &end);
        result
    }

    fn run_inner(mut self) -> Result<Summary, Error> {
        let started = Instant::now();
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return Err(Error::InvalidOption(format!(
                "connections must be between 1 and {MAX_CONNECTIONS}, not {}",
                self.connections
            )));
        }
        let url = parse_url(&self.url)?;
        if crate::http::lacks_scheme(&self.url) {
            self.notify(
                NoticeKind::Info,
                &format!("no scheme given: downloading {url}"),
            );
        }
        let session = match self.session.take() {
            Some(s) => s,
            None => Session::builder().max_connections(self.connections).build(),
        };
        let mut progress = self.progress.take();
        // Progress events come after the start event, whatever the timer's
        // first tick races: the sink holds them back until it has seen it.
        if let Some(inner) = self.events.take() {
            let begun = AtomicBool::new(false);
            let gated: Box<dyn FnMut(&Event) + Send> = Box::new(move |e: &Event| {
                match e {
                    Event::Start { .. } => begun.store(true, Ordering::Relaxed),
                    Event::Progress(_) if !begun.load(Ordering::Relaxed) => return,
                    _ => {}
                }
                (inner.lock().unwrap_or_else(|p| p.into_inner()))(e);
            });
            self.events = Some(Arc::new(Mutex::new(gated)));
        }
        let events = self.events.clone();
        // What the timer calls: the caller's progress, and the event.
        let wanted = progress.is_some() || events.is_some();
        let mut tick = wanted.then_some(move |s: &Snapshot| {
            if let Some(p) = progress.as_mut() {
                p(s);
            }
            emit(&events, &Event::Progress(*s));
        });
        let counters = Counters::default();
        if let Some(out) = self.stream.take() {
            return self.run_stream(&session, &url, out, &counters, tick, started);
        }

        // At most two rounds: a resource that changes under us is fetched again
        // from scratch once; one that changes again is an error.
        let mut trust_head = true;
        let mut restarted = false;
        loop {
            let probed = probe::probe(&session, &url, trust_head, self.retries, &self.cancel);
            self.pass_on(&session);
            let probed = probed?;
            let resource = probed.resource;
            self.agreed = self.probe_mirrors(&session, &resource);
            let path = self.choose_path(&url, &resource);
            if self.keep_complete
                && !self.force
                && let Some(done) = self.complete(&path, &resource)?
            {
                return Ok(Summary {
                    path,
                    bytes: done,
                    fetched: 0,
                    elapsed: started.elapsed(),
                    connections: 0,
                    requests: 0,
                    received: 0,
                    segmented: false,
                    already_complete: true,
                    sha256: None,
                    transport: probed.transport,
                    resource,
                });
            }
            let state_file = state::state_path(&path);
            let resume = if self.resume && !restarted {
                self.resumable(&path, &state_file, &resource)?
            } else {
                None
            };
            let file = match &resume {
                Some(st) => PartFile::reopen(&path, st.length, self.force)?,
                None => {
                    state::remove(&state_file);
                    match PartFile::create(&path, resource.length, self.force, self.allocation) {
                        // A HEAD may lie: let GET confirm a length too large for the disk.
                        Err(Error::DiskFull { .. }) if probed.from_head => {
                            trust_head = false;
                            continue;
                        }
                        other => other?,
                    }
                }
            };
            counters.set_total(resource.length);
            let kept = resume.as_ref().map_or(0, State::usable_bytes);
            counters.start_from(kept);

            let done = AtomicBool::new(false);
            let result = thread::scope(|scope| {
                let ticker = tick.as_mut().map(|cb| {
                    let (counters, done) = (&counters, &done);
                    scope.spawn(move || {
                        progress::poll(counters, Instant::now(), progress::TICK, done, cb)
                    })
                });
                let result = self.transfer(
                    &session,
                    &resource,
                    probed.body,
                    &file,
                    &counters,
                    resume.as_ref(),
                    &state_file,
                );
                done.store(true, Ordering::Release);
                if let Some(t) = ticker {
                    t.thread().unpark();
                }
                result
            });
            self.pass_on(&session);
            match result? {
                Outcome::Done {
                    bytes,
                    segmented,
                    sha256,
                } => {
                    for expected in self.expected_digests(&resource) {
                        let got = sha256.unwrap_or_default();
                        if let Err(e) = expected.verify(&got) {
                            file.discard();
                            state::remove(&state_file);
                            return Err(e);
                        }
                    }
                    let path = file.finish(bytes, self.force)?;
                    state::remove(&state_file);
                    output::remove_stale_temps(&state_file);
                    return Ok(Summary {
                        path,
                        bytes,
                        fetched: bytes.saturating_sub(kept),
                        elapsed: started.elapsed(),
                        connections: self.connections_used(&counters),
                        requests: counters.requests(),
                        received: counters.bytes_received(),
                        segmented,
                        already_complete: false,
                        sha256: sha256.map(|d| crate::checksum::to_hex(&d)),
                        transport: probed.transport,
                        resource,
                    });
                }
                Outcome::Changed { why, length } => {
                    state::remove(&state_file);
                    if restarted {
                        return Err(Error::protocol(
                            &resource.final_url,
                            format!("the file keeps changing on the server: {why}"),
                        ));
                    }
                    self.notify(NoticeKind::Restart, &format!("{why}: starting over"));
                    restarted = true;
                    // A HEAD that gave another length than GET is not asked again.
                    trust_head &= !length;
                }
            }
        }
    }

    /// With [`Download::keep_complete`]: the length of the file at `path` if
    /// it is the server's file already; `None` when there is no file there.
    fn complete(&self, path: &Path, resource: &Resource) -> Result<Option<u64>, Error> {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Ok(None);
        };
        let differs = |reason: String| {
            Err(Error::ExistsDiffers {
                path: path.to_path_buf(),
                reason,
            })
        };
        if !meta.is_file() {
            return differs("not a regular file".into());
        }
        match resource.length {
            Some(len) if len == meta.len() => {}
            Some(len) => {
                return differs(format!("{} bytes, the server's has {len}", meta.len()));
            }
            None => return differs("the server gives no length to compare".into()),
        }
        let newer = resource
            .last_modified
            .as_deref()
            .and_then(|lm| httpdate::parse_http_date(lm).ok())
            .zip(meta.modified().ok())
            .is_some_and(|(server, ours)| server > ours);
        if newer {
            return differs("the server's copy is newer (Last-Modified)".into());
        }
        let digests: Vec<&Checksum> = self.expected_digests(resource).collect();
        if !digests.is_empty() {
            let file = std::fs::File::open(path)
                .map_err(|e| Error::io(path, "read the file for its checksum", e))?;
            let mut h = PrefixHasher::new();
            h.advance_to(&file, meta.len())
                .map_err(|e| Error::io(path, "read the file for its checksum", e))?;
            let got = h.finish();
            for d in digests {
                if d.verify(&got).is_err() {
                    return differs(format!("its SHA-256 is not the one {} gives", d.source));
                }
            }
        }
        self.notify(
            NoticeKind::Info,
            &format!(
                "{} is complete already ({} bytes): nothing to fetch",
                path.display(),
                meta.len()
            ),
        );
        Ok(Some(meta.len()))
    }

    /// Passes on what the session has to tell the user.
    fn pass_on(&self, session: &Session) {
        for note in session.take_notes() {
            self.notify(NoticeKind::Info, &note);
        }
    }

    /// The download to a stream: probe, then the ranges in order through a
    /// [`StreamSink`] (or one stream), a writer thread delivering them.
    fn run_stream(
        &mut self,
        session: &Session,
        url: &Url,
        mut out: Box<dyn Write + Send>,
        counters: &Counters,
        mut tick: Option<impl FnMut(&Snapshot) + Send>,
        started: Instant,
    ) -> Result<Summary, Error> {
        let probed = probe::probe(session, url, true, self.retries, &self.cancel);
        self.pass_on(session);
        let probed = probed?;
        let resource = probed.resource;
        self.agreed = self.probe_mirrors(session, &resource);
        counters.set_total(resource.length);
        counters.start_from(0);
        let sink = StreamSink::new(self.window);
        let hash = self.expected_digests(&resource).next().is_some();
        let done = AtomicBool::new(false);
        let (moved, segmented) = thread::scope(|scope| {
            let ticker = tick.as_mut().map(|cb| {
                let (counters, done) = (&counters, &done);
                scope.spawn(move || {
                    progress::poll(counters, Instant::now(), progress::TICK, done, cb)
                })
            });
            let writer = scope.spawn(|| sink.deliver(&mut out, hash));
            let fetched = self.transfer_stream(session, &resource, probed.body, &sink, counters);
            sink.end();
            let delivered = writer
                .join()
                .unwrap_or_else(|_| Err(Error::protocol(url, "the writer thread panicked")));
            done.store(true, Ordering::Release);
            if let Some(t) = ticker {
                t.thread().unpark();
            }
            // The writer's failure (a closed pipe) is why the workers stopped.
            match (fetched, delivered) {
                (_, Err(e)) | (Err(e), _) => Err(e),
                (Ok(segmented), Ok(moved)) => Ok((moved, segmented)),
            }
        })?;
        let (bytes, sha256) = moved;
        if let Some(len) = resource.length
            && bytes != len
        {
            return Err(Error::protocol(
                &resource.final_url,
                format!("the stream ended after {bytes} of {len} bytes"),
            ));
        }
        for expected in self.expected_digests(&resource) {
            expected.verify(&sha256.unwrap_or_default())?;
        }
        Ok(Summary {
            path: PathBuf::from("-"),
            bytes,
            fetched: bytes,
            elapsed: started.elapsed(),
            connections: self.connections_used(counters),
            requests: counters.requests(),
            received: counters.bytes_received(),
            segmented,
            already_complete: false,
            sha256: sha256.map(|d| crate::checksum::to_hex(&d)),
            transport: probed.transport,
            resource,
        })
    }

    /// Fetches every byte into the stream `sink`: in ranges, lowest first,
    /// where the server serves them, else as one stream. Whether in ranges.
    fn transfer_stream(
        &self,
        session: &Session,
        resource: &Resource,
        probe_body: Option<Fetched>,
        sink: &StreamSink,
        counters: &Counters,
    ) -> Result<bool, Error> {
        let url = &resource.final_url;
        let origin = resource.url.origin();
        let own_limit = self.limit_rate.map(RateLimit::new);
        let limit = self.shared_limit.as_deref().or(own_limit.as_ref());
        let (notice, events) = (&self.notice, &self.events);
        let told = move |kind: NoticeKind, msg: &str| tell(notice, events, kind, msg);
        let source = || Source {
            session,
            url,
            origin: &origin,
            retries: self.retries,
            cancel: &self.cancel,
            limit,
            tell: &told,
        };
        let start = |connections: usize| {
            emit(
                events,
                &Event::Start {
                    url: resource.url.to_string(),
                    final_url: resource.final_url.to_string(),
                    length: resource.length,
                    connections,
                    resumed: 0,
                    path: PathBuf::from("-"),
                },
            );
        };
        let single = |why: &str, body| {
            self.notify(NoticeKind::Fallback, &format!("{why}: using 1 connection"));
            start(1);
            worker::run_single(&source(), sink, counters, body, false).map(|_| false)
        };
        let Some(total) = resource.length else {
            return single("server gave no length", probe_body);
        };
        if !resource.can_split() || probe_body.is_some() {
            return single("server does not support ranges", probe_body);
        }
        if total == 0 {
            start(0);
            return Ok(true);
        }
        // Pieces small enough that the connections' pieces in flight fit
        // the window together (the head is never far behind), and at least
        // one for each connection.
        let n = self.connections as u64;
        let piece = (self.window / (2 * n))
            .min(total.div_ceil(n))
            .min(16 << 20)
            .max(self.min_segment.min(total))
            .max(1);
        let mut plan = Plan::new(total, total.div_ceil(piece) as usize, piece, self.min_steal);
        plan.set_ordered(true);
        if limit.is_some() {
            plan.set_request_seconds(LIMITED_REQUEST_SECONDS);
        }
        let workers = self.connections.min(plan.segments().len()).max(1);
        counters.set_workers(workers);
        start(workers);
        let job = Job {
            source: source(),
            sink,
            plan: Mutex::new(plan),
            counters,
            mirrors: self.servers(resource, total),
            stop: AtomicBool::new(false),
            buffer: buffer_size(self.connections),
            active: AtomicUsize::new(workers),
            not_before: Mutex::new(None),
            began: Instant::now(),
            idle: std::sync::Condvar::new(),
            extra: self.ticket.as_ref(),
            allowed: AtomicUsize::new(usize::MAX),
            pushbacks: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            lines: (0..workers)
                .map(|_| {
                    let line = self.cancel.line();
                    line.set_recv_buffer(limit.map(|l| l.socket_buffer(workers)));
                    line
                })
                .collect(),
        };
        let outcomes: Vec<Result<(), Stop>> = thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let job = &job;
                    s.spawn(move || worker::run_ranged(job, w))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Stop::Failed(Error::protocol(
                            url,
                            "a worker thread panicked",
                        )))
                    })
                })
                .collect()
        });
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let mut fallback = None;
        for o in outcomes {
            match o {
                Ok(()) => {}
                Err(Stop::Failed(e)) => return Err(e),
                // Bytes of the old version may have been written out already:
                // nothing can start over.
                Err(Stop::Changed { why, .. }) => {
                    return Err(Error::protocol(
                        url,
                        format!("{why}; what was written to the output is not all of one version"),
                    ));
                }
                Err(Stop::Fallback(why)) => fallback = Some(why),
            }
        }
        if let Some(why) = fallback {
            // One stream from the start; what was delivered is not repeated.
            return single(&why, None);
        }
        if !job.plan().is_complete() {
            return Err(Error::protocol(
                url,
                "the download stopped before every range was fetched",
            ));
        }
        Ok(true)
    }

    /// The digests the download must match: the user's and the server's.
    fn expected_digests<'r>(
        &'r self,
        resource: &'r Resource,
    ) -> impl Iterator<Item = &'r Checksum> {
        self.checksum.iter().chain(resource.digest.iter())
    }

    /// The saved state of an earlier run of this download, if `NAME.part` and
    /// its control file are there and prove to be the same version of the same
    /// file: the same URL, or another URL (a mirror, a presigned link with a
    /// new query) serving a file of the same length and strong `ETag` (or,
    /// without an `ETag`, the same `Last-Modified`). Says why when there is a
    /// `.part` it cannot use. A `.part` that another download (another URL,
    /// another file) left unfinished is never discarded unasked: an error,
    /// unless resuming is off.
    fn resumable(
        &self,
        path: &Path,
        state_file: &Path,
        resource: &Resource,
    ) -> Result<Option<State>, Error> {
        let part = output::part_path(path);
        let Ok(meta) = std::fs::symlink_metadata(&part) else {
            return Ok(None);
        };
        let name = part.display();
        if !meta.is_file() {
            self.notify(
                NoticeKind::Resume,
                &format!("{name} is not a regular file: replacing it"),
            );
            return Ok(None);
        }
        let Some(st) = State::load(state_file) else {
            self.notify(
                NoticeKind::Resume,
                &format!("{name} has no valid state file: starting over"),
            );
            return Ok(None);
        };
        let same_url = st.url == crate::error::redact(resource.url.as_str())
            || st.final_url == crate::error::redact(resource.final_url.as_str());
        if st.matches(resource) && meta.len() == st.length {
            if !same_url {
                self.notify(
                    NoticeKind::Resume,
                    &format!(
                        "{name} was started from {}: the same file (length and {} match)",
                        st.url,
                        if st.etag.is_some() {
                            "ETag"
                        } else {
                            "Last-Modified"
                        }
                    ),
                );
            }
            self.notify(
                NoticeKind::Resume,
                &format!(
                    "resuming {name}: {} of {} bytes already there",
                    st.usable_bytes(),
                    st.length
                ),
            );
            return Ok(Some(st));
        }
        if same_url {
            self.notify(NoticeKind::Resume, &format!(
                "{name} holds another version of the file (length or ETag/Last-Modified differ, or none to compare): starting over"
            ));
            return Ok(None);
        }
        Err(Error::Occupied {
            path: part,
            url: st.url,
        })
    }

    /// Fetches every byte into `file`.
    #[allow(clippy::too_many_arguments)] // each is one stage's input; a struct would only rename them
    fn transfer(
        &self,
        session: &Session,
        resource: &Resource,
        probe_body: Option<Fetched>,
        file: &PartFile,
        counters: &Counters,
        resume: Option<&State>,
        state_file: &Path,
    ) -> Result<Outcome, Error> {
        let url = &resource.final_url;
        // The user's credentials go only to the origin of the URL they gave.
        let origin = resource.url.origin();
        let own_limit = self.limit_rate.map(RateLimit::new);
        let limit = self.shared_limit.as_deref().or(own_limit.as_ref());
        let (notice, events) = (&self.notice, &self.events);
        let told = move |kind: NoticeKind, msg: &str| tell(notice, events, kind, msg);
        let start = |connections: usize, resumed: u64| {
            emit(
                events,
                &Event::Start {
                    url: resource.url.to_string(),
                    final_url: resource.final_url.to_string(),
                    length: resource.length,
                    connections,
                    resumed,
                    path: file.path().to_path_buf(),
                },
            );
        };
        let source = || Source {
            session,
            url,
            origin: &origin,
            retries: self.retries,
            cancel: &self.cancel,
            limit,
            tell: &told,
        };
        let hash = self.expected_digests(resource).next().is_some();
        let single = |why: &str, body| {
            self.notify(NoticeKind::Fallback, &format!("{why}: using 1 connection"));
            start(1, 0);
            let (bytes, sha256) = worker::run_single(&source(), file, counters, body, hash)?;
            file.set_len(bytes)?;
            Ok(Outcome::Done {
                bytes,
                segmented: false,
                sha256,
            })
        };
        let Some(total) = resource.length else {
            return single("server gave no length", probe_body);
        };
        if !resource.can_split() || probe_body.is_some() {
            return single("server does not support ranges", probe_body);
        }
        if total == 0 {
            return Ok(Outcome::Done {
                bytes: 0,
                segmented: true,
                sha256: hash.then(|| PrefixHasher::new().finish()),
            });
        }
        let plan = match resume {
            Some(st) => Plan::resume(
                total,
                st.usable(),
                self.connections,
                self.min_segment,
                self.min_steal,
            ),
            None => Plan::new(total, self.connections, self.min_segment, self.min_steal),
        };
        let mut plan = plan;
        if limit.is_some() {
            // Under a limit: fewer, longer requests (see set_request_seconds).
            plan.set_request_seconds(LIMITED_REQUEST_SECONDS);
        }
        let workers = plan
            .segments()
            .iter()
            .filter(|s| !s.is_finished())
            .count()
            .clamp(1, self.connections);
        counters.set_workers(workers);
        let adaptive = self.adaptive && workers > 1;
        start(workers, resume.map_or(0, State::usable_bytes));
        let job = Job {
            source: source(),
            sink: file,
            plan: Mutex::new(plan),
            counters,
            mirrors: self.servers(resource, total),
            stop: AtomicBool::new(false),
            buffer: buffer_size(self.connections),
            active: AtomicUsize::new(workers),
            not_before: Mutex::new(None),
            began: Instant::now(),
            idle: std::sync::Condvar::new(),
            extra: self.ticket.as_ref(),
            allowed: AtomicUsize::new(if adaptive {
                crate::controller::START.min(workers)
            } else {
                usize::MAX
            }),
            pushbacks: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            lines: (0..workers)
                .map(|_| {
                    let line = self.cancel.line();
                    line.set_recv_buffer(limit.map(|l| l.socket_buffer(workers)));
                    line
                })
                .collect(),
        };
        let mut start = State::new(resource, total);
        if let Some(st) = resume {
            // Synced stays synced; what was only written (same boot) is kept as
            // written until the next sync covers it.
            start.done = st.done.clone();
            start.written = st.usable().to_vec();
        }
        let notice = &self.notice;
        let tell = move |m: &str| {
            if let Some(f) = notice {
                f(m)
            }
        };
        let checkpoint =
            Checkpoint::new(&job.plan, file, start, state_file, &tell, self.sync_every);
        let workers_done = AtomicBool::new(false);
        let mut hasher = hash.then(PrefixHasher::new);
        let outcomes: Vec<Result<(), Stop>> = thread::scope(|s| {
            // The connection-count controller: every 10 ms it is told the
            // bytes so far, and its target is the workers allowed.
            if adaptive {
                let (job, workers_done) = (&job, &workers_done);
                s.spawn(move || {
                    let began = Instant::now();
                    let cores = thread::available_parallelism().map_or(1, |n| n.get());
                    let mut c = Controller::new(workers, 0.0, cores);
                    let mut pushbacks = 0;
                    while !workers_done.load(Ordering::Acquire) {
                        thread::park_timeout(Duration::from_millis(10));
                        let now = began.elapsed().as_secs_f64();
                        let pb = job.pushbacks.load(Ordering::Acquire);
                        if pb != pushbacks {
                            pushbacks = pb;
                            c.pushed_back(now, job.active.load(Ordering::Acquire));
                        }
                        let before = job.allowed.load(Ordering::Acquire);
                        let t = c.observe(now, counters.downloaded(), counters.cpu_seconds());
                        if t != before {
                            job.allowed.store(t, Ordering::Release);
                            job.idle.notify_all();
                        }
                    }
                });
            }
            let saver = s.spawn(|| {
                while !workers_done.load(Ordering::Acquire) {
                    thread::park_timeout(CHECKPOINT_EVERY);
                    if !workers_done.load(Ordering::Acquire) {
                        checkpoint.save(false);
                    }
                }
            });
            // Hashes the file as its prefix fills, so that checking costs little
            // time at the end. A read error only defers the work to the end.
            let follower = hasher.as_mut().map(|h| {
                let (job, workers_done) = (&job, &workers_done);
                s.spawn(move || {
                    while !workers_done.load(Ordering::Acquire) {
                        thread::park_timeout(progress::TICK);
                        let prefix = job
                            .plan()
                            .written_ranges()
                            .first()
                            .filter(|r| r.start == 0)
                            .map_or(0, |r| r.end);
                        if h.advance_to(file.file(), prefix).is_err() {
                            return;
                        }
                    }
                })
            });
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let job = &job;
                    s.spawn(move || worker::run_ranged(job, w))
                })
                .collect();
            let outcomes = handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Stop::Failed(Error::protocol(
                            url,
                            "a worker thread panicked",
                        )))
                    })
                })
                .collect();
            workers_done.store(true, Ordering::Release);
            saver.thread().unpark();
            if let Some(f) = follower {
                f.thread().unpark();
            }
            outcomes
        });
        let complete = job.plan().is_complete();
        if self.cancel.is_cancelled() {
            checkpoint.save(true);
            return Err(Error::Cancelled);
        }
        let mut fallback = None;
        for o in outcomes {
            match o {
                Ok(()) => {}
                Err(Stop::Failed(e)) => {
                    // Keep what is done for the next run.
                    checkpoint.save(true);
                    return Err(disk_full_hint(e, total - job.plan().written()));
                }
                Err(Stop::Changed { why, length }) => return Ok(Outcome::Changed { why, length }),
                Err(Stop::Fallback(why)) => fallback = Some(why),
            }
        }
        if let Some(why) = fallback {
            state::remove(state_file);
            return single(&why, None);
        }
        if !complete {
            checkpoint.save(true);
            return Err(Error::protocol(
                url,
                "the download stopped before every range was fetched",
            ));
        }
        let sha256 = match hasher {
            Some(mut h) => {
                h.advance_to(file.file(), total)
                    .map_err(|e| Error::io(file.part_path(), "read back for the checksum", e))?;
                Some(h.finish())
            }
            None => None,
        };
        Ok(Outcome::Done {
            bytes: total,
            segmented: true,
            sha256,
        })
    }

    fn choose_path(&self, url: &Url, resource: &Resource) -> PathBuf {
        let name = match &self.output {
            Some(p) => p.clone(),
            None => {
                let proposed = self
                    .content_disposition
                    .then_some(resource.content_disposition.as_deref())
                    .flatten()
                    .and_then(output::name_from_content_disposition);
                PathBuf::from(proposed.unwrap_or_else(|| output::name_from_url(url)))
            }
        };
        match &self.dir {
            Some(d) if name.is_relative() => d.join(name),
            _ => name,
        }
    }
}
