//! Many downloads under one budget: a list (`rangeget URL URL…`, `-i FILE`).
//!
//! A [`Batch`] runs its downloads on a few threads (`parallel`), sharing one
//! [`Session`] (so connections to a host are reused from one file to the
//! next, and one cookie jar) and the connection budgets of
//! `crate::schedule`: a global ceiling and a ceiling per host that every
//! download to that host shares. Each download is a [`Download`] as on its
//! own: its `.part` and state, its resume, its checks.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::cancel::CancelHandle;
use crate::download::{Download, Summary};
use crate::error::Error;
use crate::http::parse_url;
use crate::progress::{RateWindow, Snapshot};
use crate::ratelimit::RateLimit;
use crate::schedule::{Budgets, Slots, host_key};
use crate::session::Session;

/// Downloads run at once by default (aria2c's `-j` default).
pub const DEFAULT_PARALLEL: usize = 5;
/// Connections to one host at once by default, all its downloads together:
/// what one download takes by default, so that a list is no harder on a
/// server than one large file.
pub const DEFAULT_MAX_PER_HOST: usize = 8;
/// Connections at once by default, all hosts together.
pub const DEFAULT_MAX_CONNECTIONS: usize = 32;

/// What a list's progress callback is told, each time one of its downloads
/// reports (about ten times a second per running download).
#[derive(Clone, Copy, Debug)]
pub struct BatchProgress {
    /// The download that reported (its place in the list, from 0).
    pub index: usize,
    /// Its snapshot.
    pub snapshot: Snapshot,
    /// All the list together: bytes on disk of the downloads started so
    /// far, the total when the length of every download is known, the sum
    /// of the current speeds, the time since the list began, the
    /// connections in use.
    pub overall: Snapshot,
    /// Downloads in the list.
    pub count: usize,
    /// Downloads that ended well (complete already included).
    pub done: usize,
    /// Downloads that failed.
    pub failed: usize,
    /// Downloads running.
    pub running: usize,
}

type BatchProgressFn = Box<dyn FnMut(&BatchProgress) + Send>;
type FinishFn = Box<dyn FnMut(usize, &Result<Summary, Error>) + Send>;
type StartFn = Box<dyn FnMut(usize) + Send>;

/// Many downloads, run under one budget of connections.
///
/// ```no_run
/// use rangeget::{Batch, Download};
///
/// let urls = ["https://example.com/a.iso", "https://example.com/b.iso"];
/// let mut batch = Batch::new().parallel(2).max_per_host(8);
/// for url in urls {
///     batch = batch.download(Download::new(url).dir("downloads").keep_complete(true));
/// }
/// let cancel = batch.cancel_handle(); // stops every download of the list
/// let report = batch
///     .on_finish(|i, result| match result {
///         Ok(s) => println!("{i}: saved {}", s.path.display()),
///         Err(e) => eprintln!("{i}: {e}"),
///     })
///     .run();
/// println!("{} done, {} failed", report.done(), report.failed());
/// std::process::exit(report.exit_code());
/// ```
pub struct Batch {
    downloads: Vec<Download>,
    parallel: usize,
    max_per_host: usize,
    max_connections: usize,
    session: Option<Session>,
    cancel: CancelHandle,
    progress: Option<BatchProgressFn>,
    on_start: Option<StartFn>,
    on_finish: Option<FinishFn>,
    limit_rate: Option<u64>,
}

/// How each download of a list ended.
#[derive(Debug)]
pub struct BatchSummary {
    /// One result per download, in the order they were added.
    pub results: Vec<Result<Summary, Error>>,
    /// Wall time of the whole list.
    pub elapsed: Duration,
}

impl BatchSummary {
    /// Downloads that ended well (complete already included).
    pub fn done(&self) -> usize {
        self.results.iter().filter(|r| r.is_ok()).count()
    }

    /// Downloads that failed (cancelled ones not counted).
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r, Err(e) if !matches!(e, Error::Cancelled)))
            .count()
    }

    /// Downloads stopped by a cancel, or never started because of one.
    pub fn cancelled(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r, Err(Error::Cancelled)))
            .count()
    }

    /// Bytes fetched by this run, all downloads together.
    pub fn fetched(&self) -> u64 {
        self.results.iter().flatten().map(|s| s.fetched).sum()
    }

    /// 0 when every download ended well; else 130 after a cancel, else the
    /// most severe class among the failures (the highest of their
    /// [`Error::exit_code`]s: a checksum mismatch over a protocol error
    /// over a local one over an HTTP status over a network failure).
    pub fn exit_code(&self) -> i32 {
        if self.cancelled() > 0 {
            return 130;
        }
        self.results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| e.exit_code() as i32)
            .max()
            .unwrap_or(0)
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

/// The latest figures of each download, for the overall progress.
#[derive(Default)]
struct Table {
    rows: Vec<Option<Snapshot>>,
    /// The list's speed.
    window: RateWindow,
    done: usize,
    failed: usize,
    running: usize,
}

impl Batch {
    /// An empty list with the default budgets: [`DEFAULT_PARALLEL`]
    /// downloads at once, [`DEFAULT_MAX_PER_HOST`] connections per host,
    /// [`DEFAULT_MAX_CONNECTIONS`] in all.
    pub fn new() -> Batch {
        Batch {
            downloads: Vec::new(),
            parallel: DEFAULT_PARALLEL,
            max_per_host: DEFAULT_MAX_PER_HOST,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            session: None,
            cancel: CancelHandle::new(),
            progress: None,
            on_start: None,
            on_finish: None,
            limit_rate: None,
        }
    }

    /// Adds a download (it keeps its own options: connections, output,
    /// checksum, progress callback…). A download with its own
    /// [`Download::session`] keeps it, and shares no connection with the
    /// others.
    pub fn download(mut self, download: Download) -> Self {
        self.downloads.push(download);
        self
    }

    /// Downloads run at once (at least 1).
    pub fn parallel(mut self, n: usize) -> Self {
        self.parallel = n.max(1);
        self
    }

    /// Connections to one host at once, every download to it together (at
    /// least 1). A host is a name (or address) and a port, as in the URL
    /// given: a redirect to another host is counted under the first.
    pub fn max_per_host(mut self, n: usize) -> Self {
        self.max_per_host = n.max(1);
        self
    }

    /// Connections at once, all hosts together (at least 1).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// At most this many bytes per second, all downloads together (those
    /// with a [`Download::limit_rate`] of their own keep it instead).
    pub fn limit_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.limit_rate = bytes_per_second.filter(|&r| r > 0);
        self
    }

    /// The session every download without its own shares (default: a new
    /// one whose pools hold the list's connections).
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    /// Called as the downloads report, with the list's figures too.
    pub fn progress(mut self, f: impl FnMut(&BatchProgress) + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Called when download `index` starts.
    pub fn on_start(mut self, f: impl FnMut(usize) + Send + 'static) -> Self {
        self.on_start = Some(Box::new(f));
        self
    }

    /// Called when download `index` ends, with its result.
    pub fn on_finish(
        mut self,
        f: impl FnMut(usize, &Result<Summary, Error>) + Send + 'static,
    ) -> Self {
        self.on_finish = Some(Box::new(f));
        self
    }

    /// A handle that cancels every download of the list: those running
    /// stop and save their state (a later run resumes them), the others
    /// do not start.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Runs the list; returns when every download has ended.
    pub fn run(self) -> BatchSummary {
        let began = Instant::now();
        let Batch {
            downloads,
            parallel,
            max_per_host,
            max_connections,
            session,
            cancel,
            progress,
            mut on_start,
            mut on_finish,
            limit_rate,
        } = self;
        let limit = limit_rate.map(|r| Arc::new(RateLimit::new(r)));
        let count = downloads.len();
        let global = max_connections.max(parallel);
        let session = session.unwrap_or_else(|| {
            Session::builder()
                .max_connections(global.min(crate::MAX_CONNECTIONS))
                .build()
        });
        let runners = parallel.min(count).max(1);
        let mut budgets = Budgets::new(global, max_per_host, runners);
        let mut results: Vec<Option<Result<Summary, Error>>> = (0..count).map(|_| None).collect();
        let mut queued: Vec<Option<Download>> = Vec::with_capacity(count);
        for (i, d) in downloads.into_iter().enumerate() {
            let parsed = if d.is_stream() {
                Err(Error::InvalidOption(
                    "a list cannot write to standard output".into(),
                ))
            } else {
                parse_url(d.url())
            };
            match parsed {
                Ok(url) => {
                    budgets.enqueue(i, &host_key(&url));
                    queued.push(Some(d));
                }
                Err(e) => {
                    results[i] = Some(Err(e));
                    queued.push(None);
                }
            }
        }
        let slots = Slots::new(budgets);
        let table = Arc::new(Mutex::new(Table {
            rows: vec![None; count],
            failed: results.iter().filter(|r| r.is_some()).count(),
            ..Table::default()
        }));
        let progress = progress.map(|p| Arc::new(Mutex::new(p)));
        for (i, r) in results.iter().enumerate() {
            if let (Some(r), Some(f)) = (r, on_finish.as_mut()) {
                f(i, r);
            }
        }
        let hooks = Mutex::new((on_start.take(), on_finish.take()));
        let queued = Mutex::new(queued);
        let results = Mutex::new(results);
        thread::scope(|scope| {
            for _ in 0..runners {
                let (slots, cancel, session) = (&slots, &cancel, &session);
                let (queued, results, hooks) = (&queued, &results, &hooks);
                let (table, progress, limit) = (&table, &progress, &limit);
                scope.spawn(move || {
                    while let Some(permit) = slots.start_next(cancel) {
                        let i = permit.id();
                        let Some(mut d) = lock(queued)[i].take() else {
                            continue;
                        };
                        d.join_list(session, cancel, permit.ticket(), limit.as_ref());
                        let mut own = d.take_progress();
                        let (t, p) = (Arc::clone(table), progress.clone());
                        let d = d.progress(move |s: &Snapshot| {
                            if let Some(f) = own.as_mut() {
                                f(s);
                            }
                            let mut t = lock(&t);
                            t.rows[i] = Some(*s);
                            if let Some(p) = &p {
                                let figures = overall(&mut t, i, *s, count, began, false);
                                drop(t);
                                (lock(p))(&figures);
                            }
                        });
                        lock(table).running += 1;
                        if let Some(f) = lock(hooks).0.as_mut() {
                            f(i);
                        }
                        let result = d.run();
                        drop(permit);
                        {
                            let mut t = lock(table);
                            t.running -= 1;
                            let last = t.rows[i];
                            let bytes = match &result {
                                Ok(s) => s.bytes,
                                Err(_) => last.map_or(0, |s| s.downloaded),
                            };
                            // Its share of the list's figures from now on.
                            t.rows[i] = Some(Snapshot {
                                downloaded: bytes,
                                fetched: match &result {
                                    Ok(s) => s.fetched,
                                    Err(_) => last.map_or(0, |s| s.fetched),
                                },
                                total: Some(bytes),
                                elapsed: last.map_or(Duration::ZERO, |s| s.elapsed),
                                connections: 0,
                                rate: None,
                                finished: true,
                            });
                            if result.is_ok() {
                                t.done += 1;
                            } else {
                                t.failed += 1;
                            }
                            // The list's figures with this one ended.
                            if let (Some(p), Some(s)) = (progress, t.rows[i]) {
                                let figures = overall(&mut t, i, s, count, began, false);
                                drop(t);
                                (lock(p))(&figures);
                            }
                        }
                        if let Some(f) = lock(hooks).1.as_mut() {
                            f(i, &result);
                        }
                        lock(results)[i] = Some(result);
                    }
                });
            }
        });
        // The last report: the list has ended.
        if let Some(p) = &progress {
            let mut t = lock(&table);
            let last = t.rows.iter().rposition(Option::is_some);
            if let Some(i) = last
                && let Some(s) = t.rows[i]
            {
                let figures = overall(&mut t, i, s, count, began, true);
                drop(t);
                (lock(p))(&figures);
            }
        }
        // What a cancel kept from starting.
        let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        for i in slots.drain() {
            results[i] = Some(Err(Error::Cancelled));
        }
        BatchSummary {
            results: results
                .into_iter()
                .map(|r| r.unwrap_or(Err(Error::Cancelled)))
                .collect(),
            elapsed: began.elapsed(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The list's figures after download `index` reported `s`.
fn overall(
    t: &mut Table,
    index: usize,
    s: Snapshot,
    count: usize,
    began: Instant,
    finished: bool,
) -> BatchProgress {
    let rows = t.rows.iter().flatten();
    let downloaded = rows.clone().map(|r| r.downloaded).sum();
    let fetched = rows.clone().map(|r| r.fetched).sum();
    let all_known = t.rows.iter().all(|r| r.is_some_and(|r| r.total.is_some()));
    let total = all_known.then(|| rows.clone().filter_map(|r| r.total).sum());
    let connections = rows.filter(|r| !r.finished).map(|r| r.connections).sum();
    let elapsed = began.elapsed();
    let rate = t.window.push(elapsed, fetched);
    BatchProgress {
        index,
        snapshot: s,
        overall: Snapshot {
            downloaded,
            fetched,
            total,
            elapsed,
            connections,
            rate,
            finished,
        },
        count,
        done: t.done,
        failed: t.failed,
        running: t.running,
    }
}
