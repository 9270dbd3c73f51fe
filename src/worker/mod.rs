//! Workers: the threads that fetch bytes and write them at their offsets.
//!
//! A ranged worker takes an [`Assignment`](crate::plan::Assignment) from the
//! shared plan, sends `GET` with `Range: bytes=a-b` (and `If-Range` with the
//! validator) through the session, whichever transport carries it, accepts
//! the body only if the answer passes [`Expect::ranged`], and streams it into
//! the `.part` file at its offset, claiming each chunk from the plan first
//! (stealing may have moved the segment's end).
//!
//! A failed request gives its segment back to the plan with the failure
//! counted on those bytes and a backoff before anyone takes it again (see
//! [`crate::retry`]); meanwhile the worker takes other work. A `200` to a
//! ranged request stops every worker: its bytes are never written at a
//! range's offset, and the download falls back to one stream.

mod check;
mod single;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use url::{Origin, Url};

pub(crate) use self::check::Expect;
pub(crate) use self::single::run_single;
use crate::cancel::{CancelHandle, Line};
use crate::error::Error;
use crate::event::NoticeKind;
use crate::output::Sink;
use crate::plan::Plan;
use crate::progress::{Counters, CpuMeter};
use crate::ratelimit::RateLimit;
use crate::retry::{self, Failure, StallWatch, wait_before_retry};
use crate::schedule::{Permit, Ticket};
use crate::session::Session;
use crate::transport::Body;

/// Where the bytes come from, and how hard to try: shared by the ranged
/// workers and the single stream.
pub(crate) struct Source<'a> {
    pub session: &'a Session,
    /// The URL to fetch (the probe's final URL).
    pub url: &'a Url,
    /// The origin of the URL the user gave: only it gets the user's credentials.
    pub origin: &'a Origin,
    /// Retries of the same bytes without progress.
    pub retries: u32,
    /// The user's cancel: everyone stops.
    pub cancel: &'a CancelHandle,
    /// `--limit-rate`, shared by every connection.
    pub limit: Option<&'a RateLimit>,
    /// Tells the user (a retry, a takeover).
    pub tell: &'a (dyn Fn(NoticeKind, &str) + Sync),
}

impl Source<'_> {
    /// How many bytes the next read may take, at most `want`: all of them
    /// without a limit, else what the limit allows (waiting for it); 0 when
    /// cancelled meanwhile.
    pub(crate) fn allowance(&self, want: usize) -> usize {
        match self.limit {
            Some(l) => l.take(want, self.cancel),
            None => want,
        }
    }

    /// Gives back what a read was allowed and did not take.
    pub(crate) fn unused(&self, n: usize) {
        if let Some(l) = self.limit {
            l.give_back(n);
        }
    }
}

/// What all workers of one download share.
pub(crate) struct Job<'a> {
    pub source: Source<'a>,
    /// Where the bytes go: `NAME.part`, or the ordered stream.
    pub sink: &'a dyn Sink,
    pub plan: Mutex<Plan>,
    pub counters: &'a Counters,
    /// The servers that have the file: the probe's first, then its mirrors;
    /// each answer must agree with what that server's probe found.
    pub mirrors: Vec<Mirror>,
    /// Set when a worker fails or falls back: the others stop at their next chunk.
    pub stop: AtomicBool,
    /// The most bytes one read takes.
    pub buffer: usize,
    /// Workers still running.
    pub active: AtomicUsize,
    /// No request before this moment: a server's `Retry-After` (or a backoff
    /// after a 429/503) speaks to the whole client, not one connection.
    pub not_before: Mutex<Option<Instant>>,
    /// When the download began: the plan's clock.
    pub began: Instant,
    /// Idle workers wait here (with the plan's lock) for a segment to be given
    /// back, a backoff to pass, or the plan to complete.
    pub idle: Condvar,
    /// In a list: where workers after the first get a permit for each
    /// request (the first has the download's own).
    pub extra: Option<&'a Ticket>,
    /// Workers allowed to take work (the connection-count controller's
    /// target; all of them without one): those numbered from it on wait.
    pub allowed: AtomicUsize,
    /// Times the server pushed back (`429`, `503`): the controller listens.
    pub pushbacks: AtomicUsize,
    /// Requests under way, against `allowed`.
    pub busy: AtomicUsize,
    /// Each worker's line: its current request's socket, which a worker that
    /// takes the request's bytes over shuts down.
    pub lines: Vec<Line>,
}

/// A server that has the file: the one probed first, or a mirror of it.
pub(crate) struct Mirror {
    /// Where its bytes are asked for (its probe's final URL).
    pub url: Url,
    /// The origin of its URL as given: only it gets the user's credentials.
    pub origin: Origin,
    /// What its answers must agree with.
    pub expect: Expect,
    /// Taken out of the download: it failed while others could go on.
    retired: AtomicBool,
    /// Its failed requests in a row.
    strikes: AtomicU32,
}

impl Mirror {
    pub(crate) fn new(url: Url, origin: Origin, expect: Expect) -> Mirror {
        Mirror {
            url,
            origin,
            expect,
            retired: AtomicBool::new(false),
            strikes: AtomicU32::new(0),
        }
    }
}

/// Failed requests in a row after which a mirror is retired, while another
/// one can go on: fewer than the retries of one range, so that a dead
/// mirror is dropped before any range's budget is spent on it.
pub const MIRROR_STRIKES: u32 = 3;

/// One of the requests at once the controller allows.
struct Busy<'j>(&'j Job<'j>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        self.0.idle.notify_all();
    }
}

impl Busy<'_> {
    /// Gives the place back without waking anyone: its worker found
    /// nothing to take, so a worker woken for the place would find nothing
    /// either, give it back, and wake the next (measured: 35,000 futex
    /// calls and 1.4 CPU s in 2 s while seven workers waited for the last
    /// request). Work that appears wakes them by itself.
    fn quietly(self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        std::mem::forget(self);
    }
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
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Worth another try, by the retry policy.
    Retry(Failure),
    Stop(Stop),
}

impl From<Failure> for Attempt {
    fn from(f: Failure) -> Attempt {
        if f.retry {
            Attempt::Retry(f)
        } else {
            Attempt::Stop(Stop::Failed(f.error))
        }
    }
}

/// In a list, how long a worker that closed a connection with its answer
/// unread holds its permit before the next request.
pub const CLOSE_GRACE: Duration = Duration::from_millis(100);

/// How often a worker with nothing to do looks for a stalled request to take
/// over (see [`crate::plan::STALLED_AFTER`]).
pub const IDLE_LOOK: Duration = Duration::from_millis(100);

impl Job<'_> {
    pub(crate) fn plan(&self) -> MutexGuard<'_, Plan> {
        // The plan's state stays consistent at every unlock; a panic elsewhere
        // does not make it unusable.
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds since the download began.
    fn now(&self) -> f64 {
        self.began.elapsed().as_secs_f64()
    }

    fn halt(&self) {
        self.stop.store(true, Ordering::Release);
    }

    fn halted(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.source.cancel.is_cancelled()
    }

    /// The most failed attempts in a row, anywhere, with no byte written
    /// anywhere: a bound for the whole download, whatever moves between
    /// segments.
    fn stale_limit(&self) -> u32 {
        (self.source.retries + 1).saturating_mul(self.lines.len().max(1) as u32)
    }

    /// A place among the `allowed` requests at once, if one is free; given
    /// back when dropped.
    fn busy_slot(&self) -> Option<Busy<'_>> {
        self.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b < self.allowed.load(Ordering::Acquire).max(1)).then_some(b + 1)
            })
            .ok()
            .map(|_| Busy(self))
    }

    /// The mirror worker `worker` asks next: its own (the workers are dealt
    /// out over the mirrors in turn) or, if that one is retired, the next
    /// one still in. `None` when every mirror is retired.
    fn mirror_for(&self, worker: usize) -> Option<usize> {
        let n = self.mirrors.len();
        (0..n)
            .map(|i| (worker + i) % n)
            .find(|&m| !self.mirrors[m].retired.load(Ordering::Acquire))
    }

    fn live_mirrors(&self) -> usize {
        self.mirrors
            .iter()
            .filter(|m| !m.retired.load(Ordering::Acquire))
            .count()
    }

    /// Retires mirror `m` if another one is still in; whether it did.
    fn retire_mirror(&self, m: usize, why: &str) -> bool {
        if self.mirrors.len() < 2 || self.live_mirrors() < 2 {
            return false;
        }
        if self.mirrors[m].retired.swap(true, Ordering::AcqRel) {
            return true; // another worker did, just now
        }
        (self.source.tell)(
            NoticeKind::Retry,
            &format!(
                "mirror {} retired ({why}); {} left",
                crate::error::redact(self.mirrors[m].url.as_str()),
                self.live_mirrors()
            ),
        );
        true
    }

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
    job.lines[worker].end();
    // Whatever this worker leaves, the idle ones should look at it now.
    job.idle.notify_all();
    result
}

fn run_worker(job: &Job<'_>, worker: usize) -> Result<(), Stop> {
    let line = &job.lines[worker];
    loop {
        // A pause the server asked for is waited out before taking work:
        // bytes held by a worker that waits would look stalled to others.
        job.wait_turn();
        if job.halted() {
            return job.leave(None, Ok(()));
        }
        // At most the controller's target of requests at once, whichever
        // workers send them: a worker finds a place or waits.
        // A request gone silent is taken over whatever the target: it
        // holds a place and moves nothing.
        let busy = job.busy_slot();
        if busy.is_none() {
            let mut plan = job.plan();
            if plan.is_complete() {
                job.active.fetch_sub(1, Ordering::AcqRel);
                return Ok(());
            }
            let now = job.now();
            plan.tick(now);
            if !plan.any_stalled(now) {
                let _ = job.idle.wait_timeout(plan, IDLE_LOOK);
                continue;
            }
        }
        let mut busy = busy;
        // In a list, each request of a worker after the first holds a permit
        // of the list's budget, given back after it (or while idle).
        let mut permit: Option<Permit> = None;
        if let Some(ticket) = job.extra.filter(|_| worker > 0) {
            permit = ticket.extra(IDLE_LOOK);
            if permit.is_none() {
                let plan = job.plan();
                if plan.is_complete() {
                    job.active.fetch_sub(1, Ordering::AcqRel);
                    return Ok(());
                }
                continue;
            }
        }
        let next = {
            let mut plan = job.plan();
            let now = job.now();
            match plan.next_at(worker, now) {
                Some(a) => Some(a),
                None if plan.is_complete() => {
                    job.active.fetch_sub(1, Ordering::AcqRel);
                    return Ok(());
                }
                // Nothing to take now, but not everything is fetched: a
                // request may stall, fail or finish its backoff. Look again
                // then, or in a while.
                None => {
                    drop(permit.take());
                    if let Some(b) = busy.take() {
                        b.quietly();
                    }
                    let wait = plan.next_ready(now).map_or(IDLE_LOOK, |t| {
                        Duration::from_secs_f64((t - now).max(0.001)).min(IDLE_LOOK)
                    });
                    let _ = job.idle.wait_timeout(plan, wait);
                    None
                }
            }
        };
        let Some(a) = next else {
            continue;
        };
        if let Some((w, seg)) = a.taken_over
            && let Some(l) = job.lines.get(w)
        {
            l.interrupt(seg);
            (job.source.tell)(
                NoticeKind::Takeover,
                &format!(
                    "bytes {}-{} went silent: another connection takes them over",
                    a.start,
                    a.end.saturating_sub(1)
                ),
            );
        }
        let seg = a.segment;
        let failures = job.plan().failures(seg);
        if failures > job.source.retries {
            // Taken over again and again: its requests always go silent.
            job.halt();
            let e = Error::Network {
                url: job.source.url.to_string(),
                reason: format!(
                    "the requests for bytes {}-{} went silent {failures} times in a row",
                    a.start,
                    a.end.saturating_sub(1)
                ),
                transient: true,
            };
            return job.leave(Some(seg), Err(Stop::Failed(e)));
        }
        let Some(m) = job.mirror_for(worker) else {
            job.halt();
            let e = Error::Network {
                url: job.source.url.to_string(),
                reason: "every mirror was retired".into(),
                transient: false,
            };
            return job.leave(Some(seg), Err(Stop::Failed(e)));
        };
        let result = attempt(job, seg, line, m);
        let mirror = &job.mirrors[m];
        match &result {
            Ok(_) => mirror.strikes.store(0, Ordering::Release),
            // Another server may serve these bytes: this one is retired, the
            // bytes go back to the plan uncounted (at most MIRROR_STRIKES
            // failures per mirror, each mirror retired once).
            Err(Attempt::Stop(s)) if job.mirrors.len() > 1 => {
                let why = match s {
                    Stop::Failed(e) => e.to_string(),
                    Stop::Fallback(why) => why.clone(),
                    Stop::Changed { why, .. } => why.clone(),
                };
                if job.retire_mirror(m, &why) {
                    job.plan().release(seg);
                    job.idle.notify_all();
                    continue;
                }
            }
            Err(Attempt::Retry(f)) if job.mirrors.len() > 1 => {
                let strikes = mirror.strikes.fetch_add(1, Ordering::AcqRel) + 1;
                if strikes >= MIRROR_STRIKES
                    && job.retire_mirror(m, &format!("{strikes} failures in a row: {}", f.error))
                {
                    job.plan().release(seg);
                    job.idle.notify_all();
                    continue;
                }
            }
            _ => {}
        }
        // In a list, a connection closed with its answer unread is still
        // open at the server until it sees the close: the permit is held
        // a moment longer (after the segment is given back), so that the
        // host's ceiling holds where the server counts too.
        let closed = job.extra.is_some() && !matches!(result, Ok(true));
        let grace = || {
            if closed {
                job.source.cancel.sleep(CLOSE_GRACE);
            }
        };
        match result {
            Ok(_) => {
                job.plan().release(seg);
                job.idle.notify_all();
                grace();
            }
            Err(Attempt::Stop(s)) => {
                job.halt();
                return job.leave(Some(seg), Err(s));
            }
            Err(Attempt::Retry(f)) => {
                let ended = failed(job, seg, f);
                grace();
                if let Some(result) = ended {
                    return result;
                }
            }
        }
    }
}

/// Counts a failed request of segment `seg` and gives the segment back with
/// its backoff. `Some` when this worker ends: the budget is spent (the
/// download fails), or the server asked for fewer connections (it retires).
fn failed(job: &Job<'_>, seg: usize, f: Failure) -> Option<Result<(), Stop>> {
    let mut plan = job.plan();
    let (pos, end) = plan.position(seg);
    if pos >= end || job.halted() {
        // Taken over (or stolen) while it failed, or everyone stops: no
        // failure of these bytes.
        plan.release(seg);
        drop(plan);
        job.idle.notify_all();
        return None;
    }
    let n = plan.failed(seg);
    let wait = wait_before_retry(n, f.after);
    plan.defer(seg, job.now() + wait.as_secs_f64());
    if n <= job.source.retries {
        (job.source.tell)(
            NoticeKind::Retry,
            &format!(
                "bytes {pos}-{}: {}; asked again in {:.1} s (retry {n} of {})",
                end - 1,
                f.error,
                wait.as_secs_f64(),
                job.source.retries
            ),
        );
    }
    if n > job.source.retries || plan.stale_failures() > job.stale_limit() {
        drop(plan);
        job.halt();
        return Some(job.leave(None, Err(Stop::Failed(retry::gave_up(f.error, n)))));
    }
    // "Too many requests" or "unavailable": one connection fewer, if others
    // remain to carry on, and no request before the server's time.
    let retire = matches!(
        f.error,
        Error::HttpStatus {
            status: 429 | 503,
            ..
        }
    ) && job.active.load(Ordering::Acquire) > 1;
    if f.after.is_some() || retire {
        job.pause(wait);
    }
    if matches!(
        f.error,
        Error::HttpStatus {
            status: 429 | 503,
            ..
        }
    ) {
        job.pushbacks.fetch_add(1, Ordering::AcqRel);
    }
    if retire {
        job.active.fetch_sub(1, Ordering::AcqRel);
    }
    drop(plan);
    job.idle.notify_all();
    retire.then_some(Ok(()))
}

/// One request for what is left of segment `seg`: whether its connection
/// was kept (the whole answer read), or closed with bytes unread.
fn attempt(job: &Job<'_>, seg: usize, line: &Line, mirror: usize) -> Result<bool, Attempt> {
    // From here on a takeover of `seg` reaches this request: begun before
    // the position is read, so that none can slip in between.
    line.begin(seg);
    let (pos, asked) = {
        let mut plan = job.plan();
        let (pos, end) = plan.position(seg);
        (pos, if pos < end { plan.ask(seg) } else { end })
    };
    let result = if pos >= asked || job.halted() {
        Ok(true)
    } else {
        fetch_range(job, seg, (pos, asked), line, &job.mirrors[mirror])
    };
    line.end();
    result
}

/// Sends the ranged `GET` for `[pos, end)` (the bytes the plan asked for,
/// see [`Plan::ask`](crate::plan::Plan::ask)) and streams its body.
fn fetch_range(
    job: &Job<'_>,
    seg: usize,
    (pos, end): (u64, u64),
    line: &Line,
    mirror: &Mirror,
) -> Result<bool, Attempt> {
    let src = &job.source;
    let mut headers = vec![("Range", format!("bytes={}-{}", pos, end - 1))];
    if let Some(v) = mirror.expect.if_range() {
        headers.push(("If-Range", v));
    }
    let mut asked_again = false;
    let mut fetched = loop {
        let sent = Instant::now();
        job.counters.request_sent();
        let fetched =
            match src
                .session
                .fetch("GET", &mirror.url, &headers, None, &mirror.origin, line)
            {
                Ok(f) => f,
                // Garbage where an answer should begin, on a kept-alive
                // connection: the same (ours ask again by themselves; ureq's
                // are asked again here).
                Err(Error::Protocol { .. }) if line.reused() && !asked_again => {
                    asked_again = true;
                    line.want_fresh();
                    continue;
                }
                Err(e) => return Err(Attempt::from(Failure::judge(e))),
            };
        job.plan().set_latency(sent.elapsed().as_secs_f64());
        let head = &fetched.head;
        match mirror
            .expect
            .ranged(head.status, &head.headers, &fetched.url, pos, end)
        {
            Ok(()) => break fetched,
            // An answer on a kept-alive connection that says the file
            // changed, or that ranges are not served, may be bytes the
            // server sent after the last body, there before this request:
            // asked again on a new connection before it is believed.
            Err(Attempt::Stop(Stop::Changed { .. } | Stop::Fallback(_)))
                if line.reused() && !asked_again =>
            {
                asked_again = true;
                line.want_fresh();
            }
            Err(e) => return Err(e),
        }
    };
    job.counters.connection_started();
    let result = stream_range(job, seg, (pos, end), &mut *fetched.body, &fetched.url);
    job.counters.connection_ended();
    result
}

/// Streams a validated `206` body into the file at `pos`, claiming each chunk
/// from the plan first (the segment's end may have moved down by stealing).
fn stream_range(
    job: &Job<'_>,
    seg: usize,
    (mut pos, asked_end): (u64, u64),
    body: &mut dyn Body,
    url: &Url,
) -> Result<bool, Attempt> {
    let started = Instant::now();
    let mut received = 0u64;
    let window = job.source.session.read_timeout();
    let mut watch = StallWatch::new(window);
    // The CPU this request costs, for the connection-count controller:
    // looked at every few reads, and when the request ends.
    let mut cpu = CpuMeter::new(job.counters);
    let mut reads = 0u32;
    loop {
        reads = reads.wrapping_add(1);
        if reads % 16 == 0 {
            cpu.look();
        }
        if job.halted() {
            return Ok(false);
        }
        // A stream takes only what fits in its reorder window.
        let room = job.sink.room(pos);
        if room == 0 {
            if let Some(e) = job.sink.failed() {
                return Err(Attempt::Stop(Stop::Failed(e)));
            }
            {
                let mut plan = job.plan();
                // Bytes before these wait for a worker (a request waiting
                // out its backoff): this one goes to fetch them first.
                if plan.waiting_before(pos, job.now()) {
                    return Ok(false);
                }
                // Waiting on the reader, not silent: not to be taken over.
                plan.heard(seg, job.now());
            }
            job.sink.wait_for_room(pos, IDLE_LOOK);
            watch.restart();
            continue;
        }
        let want = job.buffer.min(usize::try_from(room).unwrap_or(usize::MAX));
        let allowed = job.source.allowance(want);
        if allowed == 0 {
            return Ok(false);
        }
        let received_now = body.receive(allowed, job.sink.as_file().is_some());
        job.source
            .unused(allowed - received_now.as_ref().map_or(0, |n| *n));
        let n = match received_now {
            Ok(0) => {
                let (_, end) = job.plan().position(seg);
                let end = end.min(asked_end);
                if pos < end {
                    return Err(Attempt::Retry(Failure::transient(retry::cut_short(
                        url,
                        Some(end - pos),
                    ))));
                }
                return Ok(true);
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let (_, end) = job.plan().position(seg);
                let short = end.min(asked_end).saturating_sub(pos);
                return Err(Attempt::Retry(retry::body_failure(
                    &e,
                    url,
                    window,
                    Some(short),
                )));
            }
        };
        watch.count(n, url).map_err(Attempt::Retry)?;
        received += n as u64;
        job.counters.received(n as u64);
        let elapsed = started.elapsed().as_secs_f64();
        let (take, finished) = {
            let mut plan = job.plan();
            let take = plan.claim(seg, (n as u64).min(asked_end - pos));
            plan.heard(seg, job.now());
            // The rate steers stealing; the first instants are too noisy to tell.
            if elapsed >= 0.05 {
                plan.set_rate(seg, received as f64 / elapsed);
            }
            let (now, end) = plan.position(seg);
            (take, now >= end.min(asked_end))
        };
        body.write(job.sink, take as usize, pos)
            .map_err(|e| Attempt::Stop(Stop::Failed(e)))?;
        if take > 0 {
            job.plan().commit(seg, take);
            job.counters.add(take);
            pos += take;
        }
        if finished {
            if pos == asked_end {
                // Every byte asked for came: let the transport see the body's
                // end, so that its connection can carry the next request.
                let _ = body.receive(1, false);
                return Ok(true);
            }
            // The rest of the answer is not wanted: its connection closes.
            return Ok(false);
        }
    }
}
