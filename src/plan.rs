//! Planning: how `[0, len)` is split into segments, handed to workers, and
//! re-split when a worker runs dry. Pure code: no I/O, no clocks, no threads.
//!
//! A [`Plan`] is a list of [`Segment`]s that tile `[0, len)` with no gap and no
//! overlap. Each segment has two cursors: bytes `[start, written)` are written
//! to the file, `[start, pos)` are claimed (handed to the worker that writes
//! them; `written <= pos`), `[pos, end)` are still to fetch. A
//! worker asks [`Plan::next`] for work; when no segment is free it *steals*:
//! the second half of the unfinished segment with the most bytes left becomes a
//! new segment, and the victim's `end` shrinks, which its worker learns the next
//! time it calls [`Plan::claim`].
//!
//! Requests ask for part of a segment ([`Plan::ask`]): about the worker's
//! share of the bytes nobody has asked for yet, by its measured rate, over
//! [`SHARE_DIVISOR`]. A steal takes only what lies beyond the bytes a
//! request has asked for: those are on their way (in the server's and the
//! kernel's buffers), and cutting the request would throw them away and
//! fetch them twice. So the requests of a download shrink as its end nears
//! and no connection waits long for another at the end, while no byte is
//! fetched twice on a link that does not fail. A cut happens only with a
//! cause: a request gone silent (below), or a connection [`CUT_SLOWER`]
//! times slower than the others that would need more than [`CUT_SECONDS`]
//! for what it asked.
//!
//! The endgame: a request that has delivered nothing for [`STALLED_AFTER`]
//! (the caller passes the time; the plan has no clock) while the downloader
//! ran (see [`Plan::tick`]: a pause of the whole process, a busy machine,
//! is nobody's silence) is stolen from first and whole, however little it
//! has left, so that a connection hanging on the last bytes does not hold
//! the download until its read timeout. The [`Assignment`] names the worker
//! it was taken from, whose read the caller can interrupt.
//!
//! Retries belong to the bytes: each segment keeps a [`Budget`] of failed
//! attempts. A failed attempt gives the segment back with a time before which
//! no worker takes it (its backoff), a stolen tail and a taken-over rest keep
//! the failures counted so far, and a takeover counts as a failed attempt of
//! the silent request. So the number of tries on some bytes does not depend
//! on which thread, or how many, fetch them.

use std::ops::Range;

use crate::retry::Budget;

/// The default smallest segment: a file is split into at most `len / MIN_SEGMENT`
/// segments, so a small file does not open many connections.
pub const MIN_SEGMENT: u64 = 1024 * 1024;

/// The default smallest piece that stealing will split off: below this, a new
/// request costs more than it saves.
pub const MIN_STEAL: u64 = 128 * 1024;

/// One piece of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// First byte of the segment.
    pub start: u64,
    /// Next byte to fetch: `[start, pos)` is claimed by writers.
    pub pos: u64,
    /// End of what is written: `[start, written)` is in the file.
    pub written: u64,
    /// One past the last byte.
    pub end: u64,
    /// The worker fetching it, if any.
    pub owner: Option<usize>,
    /// The measured rate of its current request, bytes per second, if known.
    pub rate: Option<f64>,
    /// When its request last delivered bytes (or was handed out), in the
    /// caller's seconds: a long silence marks it stalled.
    pub heard: f64,
    /// Where its current request started (the cursor when it was handed out).
    pub attempt_from: u64,
    /// The failed attempts on these bytes.
    pub budget: Budget,
    /// No worker takes it before this time (a retry's backoff).
    pub not_before: f64,
    /// One past the last byte its current request asked for (see
    /// [`Plan::ask`]); `pos` or below when no request is in flight. Bytes
    /// below it are on their way and are not stolen.
    pub asked: u64,
    /// The plan's idle time (see [`Plan::heard`]) when it was last heard from.
    pub idle_mark: f64,
}

impl Segment {
    /// A segment `[start, end)` with nothing fetched and no failure.
    pub fn new(start: u64, end: u64) -> Segment {
        Segment {
            start,
            pos: start,
            written: start,
            end,
            owner: None,
            rate: None,
            heard: 0.0,
            attempt_from: start,
            budget: Budget::default(),
            not_before: 0.0,
            asked: start,
            idle_mark: 0.0,
        }
    }

    /// Bytes still to fetch.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }

    /// Whether every byte has been claimed.
    pub fn is_finished(&self) -> bool {
        self.pos >= self.end
    }
}

/// A piece of work handed to a worker: fetch `[start, end)` of segment `segment`.
/// `end` may shrink later if another worker steals from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Index of the segment in [`Plan::segments`].
    pub segment: usize,
    /// First byte to fetch.
    pub start: u64,
    /// One past the last byte, as of now.
    pub end: u64,
    /// `(worker, segment)` when this is the whole rest of a stalled segment,
    /// taken from that worker: its request can be interrupted.
    pub taken_over: Option<(usize, usize)>,
}

/// A request that delivered nothing for this many seconds (and for at least
/// [`STALL_LATENCIES`] times the measured time to a first byte) is stalled:
/// an idle worker takes over everything it had left (the endgame).
pub const STALLED_AFTER: f64 = 1.0;

/// See [`STALLED_AFTER`].
pub const STALL_LATENCIES: f64 = 4.0;

/// A time longer than this in which the plan heard of nobody (no byte
/// arrived, no idle worker looked, see [`Plan::tick`]: the machine was busy
/// and the process was not scheduled) does not count towards a request's
/// silence: a takeover needs silence while the downloader runs.
pub const IDLE_GAP: f64 = 0.25;

/// The most a request asks for while its connection's rate is unknown.
pub const FIRST_REQUEST: u64 = 4 * 1024 * 1024;

/// A request asks for about its connection's share of the bytes not yet
/// asked for, divided by this: the rest stays free for whichever connection
/// runs dry, so that no steal has to cut a request short.
pub const SHARE_DIVISOR: f64 = 2.0;

/// A request is never so small that its bytes take less than this many
/// round trips (measured latencies) to arrive...
pub const REQUEST_LATENCIES: f64 = 4.0;

/// ...or less than this many seconds at its connection's rate: the tail a
/// download may wait for at its end, against a new request per piece.
pub const REQUEST_SECONDS: f64 = 0.05;

/// A steal cuts into a request's asked bytes only when its connection is
/// this many times slower than the mean, and would need more than
/// [`CUT_SECONDS`] for them: a cut throws away what is in flight.
pub const CUT_SLOWER: f64 = 4.0;

/// See [`CUT_SLOWER`]. Short: a slow connection has few bytes in flight,
/// and the others would wait for it (measured: the request covering byte
/// 0 at 2 MB/s while seven others had 20 MB/s held 256 MiB at 2.07 s
/// with 2 s here, where the bytes alone take 1.5 s).
pub const CUT_SECONDS: f64 = 0.25;

/// The split of a file into segments and who fetches which.
#[derive(Clone, Debug)]
pub struct Plan {
    total: u64,
    min_steal: u64,
    segments: Vec<Segment>,
    /// Seconds from sending a request to its first byte, as measured.
    latency: f64,
    /// Failed attempts anywhere since the last byte was written anywhere.
    stale_failures: u32,
    /// Lowest bytes first (a stream).
    ordered: bool,
    /// When the plan last heard of anyone (see [`Plan::tick`]).
    last_seen: f64,
    /// Seconds in which the plan heard of no one, beyond [`IDLE_GAP`] each
    /// time: not counted as anyone's silence.
    idle: f64,
    /// The last measured rate of each worker's requests.
    worker_rates: Vec<Option<f64>>,
    /// The shortest a request's bytes may take at its rate (see
    /// [`REQUEST_SECONDS`], [`Plan::set_request_seconds`]).
    request_seconds: f64,
}

/// How many segments `total` bytes should start with for `connections`
/// connections when no segment may be smaller than `min_segment` (the last one
/// aside). Always at least 1.
pub fn segment_count(total: u64, connections: usize, min_segment: u64) -> usize {
    let by_size = total.div_ceil(min_segment.max(1)).max(1);
    (connections.max(1) as u64).min(by_size) as usize
}

impl Plan {
    /// Splits `[0, total)` into [`segment_count`] segments of nearly equal size.
    pub fn new(total: u64, connections: usize, min_segment: u64, min_steal: u64) -> Plan {
        let n = segment_count(total, connections, min_segment) as u64;
        let segments = (0..n)
            .map(|i| Segment::new(total * i / n, total * (i + 1) / n))
            .collect();
        Plan {
            total,
            min_steal: min_steal.max(1),
            segments,
            latency: 0.0,
            stale_failures: 0,
            ordered: false,
            last_seen: 0.0,
            idle: 0.0,
            worker_rates: Vec::new(),
            request_seconds: REQUEST_SECONDS,
        }
    }

    /// A plan for a file of which the `done` ranges are already fetched (for
    /// resuming): the holes between them become segments, each split further so
    /// that `connections` workers have work. `done` may be unsorted or overlap.
    pub fn resume(
        total: u64,
        done: &[Range<u64>],
        connections: usize,
        min_segment: u64,
        min_steal: u64,
    ) -> Plan {
        let holes = complement(total, done);
        let mut plan = Plan {
            total,
            min_steal: min_steal.max(1),
            segments: Vec::new(),
            latency: 0.0,
            stale_failures: 0,
            ordered: false,
            last_seen: 0.0,
            idle: 0.0,
            worker_rates: Vec::new(),
            request_seconds: REQUEST_SECONDS,
        };
        let missing: u64 = holes.iter().map(|r| r.end - r.start).sum();
        // The done part: finished segments, so the plan still tiles [0, total).
        for r in merge(done, total) {
            plan.segments.push(Segment {
                pos: r.end,
                written: r.end,
                ..Segment::new(r.start, r.end)
            });
        }
        for hole in holes {
            let len = hole.end - hole.start;
            // Give each hole its share of the connections.
            let share = if missing == 0 {
                1
            } else {
                ((connections as u64 * len).div_ceil(missing)).max(1) as usize
            };
            let n = segment_count(len, share, min_segment) as u64;
            for i in 0..n {
                plan.segments.push(Segment::new(
                    hole.start + len * i / n,
                    hole.start + len * (i + 1) / n,
                ));
            }
        }
        plan.segments.sort_by_key(|s| s.start);
        plan
    }

    /// The file's length.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The segments, in no particular order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Bytes claimed so far.
    pub fn claimed(&self) -> u64 {
        self.segments.iter().map(|s| s.pos - s.start).sum()
    }

    /// Whether every byte has been claimed.
    pub fn is_complete(&self) -> bool {
        self.segments.iter().all(Segment::is_finished)
    }

    /// The claimed ranges, merged and sorted.
    pub fn claimed_ranges(&self) -> Vec<Range<u64>> {
        let ranges: Vec<Range<u64>> = self.segments.iter().map(|s| s.start..s.pos).collect();
        merge(&ranges, self.total)
    }

    /// The written ranges, merged and sorted: what a resume may keep once the
    /// file has been synced.
    pub fn written_ranges(&self) -> Vec<Range<u64>> {
        let ranges: Vec<Range<u64>> = self.segments.iter().map(|s| s.start..s.written).collect();
        merge(&ranges, self.total)
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.segments.iter().map(|s| s.written - s.start).sum()
    }

    /// The next piece of work for `worker`: the unowned unfinished segment with
    /// the most bytes left, or else the second half of the owned segment with the
    /// most bytes left, if that half is at least `min_steal` bytes. `None` when
    /// there is nothing worth taking.
    pub fn next(&mut self, worker: usize) -> Option<Assignment> {
        self.next_at(worker, 0.0)
    }

    /// [`Plan::next`] at time `now` (seconds, the clock of [`Plan::heard`]): a
    /// stalled segment (see [`STALLED_AFTER`]) is stolen from first, and
    /// whole, however little it has left.
    pub fn next_at(&mut self, worker: usize, now: f64) -> Option<Assignment> {
        self.tick(now);
        let free = self
            .segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.owner.is_none() && !s.is_finished() && s.not_before <= now);
        let pick = if self.ordered {
            free.min_by_key(|(_, s)| s.pos).map(|(i, _)| i)
        } else {
            free.max_by_key(|(i, s)| (s.remaining(), std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
        };
        if let Some(i) = pick {
            return Some(self.assign(i, worker, now));
        }
        self.steal(worker, now)
    }

    /// Records that segment `i`'s request delivered bytes at `now`.
    pub fn heard(&mut self, i: usize, now: f64) {
        self.tick(now);
        let s = &mut self.segments[i];
        s.heard = now;
        s.idle_mark = self.idle;
    }

    /// Records that the downloader ran at `now`: a worker received bytes,
    /// or an idle one looked for work (they look every 0.1 s). A longer
    /// time than [`IDLE_GAP`] without one is a pause of the whole process,
    /// not a silence of any request.
    pub fn tick(&mut self, now: f64) {
        self.idle = self.idle_at(now);
        self.last_seen = self.last_seen.max(now);
    }

    /// The idle time counted up to `now`.
    fn idle_at(&self, now: f64) -> f64 {
        self.idle + (now - self.last_seen - IDLE_GAP).max(0.0)
    }

    /// How long segment `s`'s request has been silent at `now` while others
    /// delivered bytes.
    fn silence(&self, s: &Segment, now: f64) -> f64 {
        (now - s.heard) - (self.idle_at(now) - s.idle_mark).max(0.0)
    }

    /// Whether a request in flight has gone silent at `now` (see
    /// [`STALLED_AFTER`]): another worker may take it over.
    pub fn any_stalled(&self, now: f64) -> bool {
        self.segments
            .iter()
            .any(|s| s.owner.is_some() && !s.is_finished() && self.stalled(s, now))
    }

    fn stalled(&self, s: &Segment, now: f64) -> bool {
        self.silence(s, now) >= STALLED_AFTER.max(STALL_LATENCIES * self.latency)
    }

    /// Starts a request for segment `i` at its cursor, and returns one past
    /// the last byte it should ask for: about the worker's share of what no
    /// request has asked for yet (its measured rate against the others',
    /// over [`SHARE_DIVISOR`]), at most [`FIRST_REQUEST`] while its rate is
    /// unknown, never under the plan's smallest steal or
    /// [`REQUEST_LATENCIES`] round trips, and never leaving a tail too small
    /// to steal. Bytes below it are not stolen while the request runs.
    pub fn ask(&mut self, i: usize) -> u64 {
        let (pos, end) = (self.segments[i].pos, self.segments[i].end);
        let left = end - pos;
        let rate_of = |s: &Segment| {
            s.owner
                .and_then(|w| self.worker_rates.get(w).copied().flatten())
                .filter(|r| *r > 0.0)
        };
        let rate = rate_of(&self.segments[i]);
        let unasked: u64 = self
            .segments
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let from = if s.owner.is_some() && j != i {
                    s.pos.max(s.asked)
                } else {
                    s.pos
                };
                s.end.saturating_sub(from)
            })
            .sum();
        let owners: Vec<Option<f64>> = self
            .segments
            .iter()
            .enumerate()
            .filter(|(j, s)| *j == i || (s.owner.is_some() && !s.is_finished()))
            .map(|(_, s)| rate_of(s))
            .collect();
        let known: Vec<f64> = owners.iter().flatten().copied().collect();
        let share = match rate {
            Some(r) => {
                let mean = known.iter().sum::<f64>() / known.len() as f64;
                let total: f64 = owners.iter().map(|o| o.unwrap_or(mean)).sum();
                unasked as f64 * r / total / SHARE_DIVISOR
            }
            None => (unasked as f64 / owners.len().max(1) as f64 / SHARE_DIVISOR)
                .min(FIRST_REQUEST as f64),
        };
        let floor = match rate {
            Some(r) => (r * (REQUEST_LATENCIES * self.latency).max(self.request_seconds))
                .max(self.min_steal as f64),
            None => self.min_steal as f64,
        };
        let mut want = share.max(floor).round() as u64;
        if left.saturating_sub(want) < self.min_steal {
            want = left;
        }
        let asked = pos + want.min(left);
        self.segments[i].asked = asked;
        asked
    }

    /// Splits the owned segment expected to finish last and gives its tail to
    /// `worker`.
    fn steal(&mut self, worker: usize, now: f64) -> Option<Assignment> {
        let known: Vec<f64> = self
            .segments
            .iter()
            .filter(|s| s.owner.is_some() && !s.is_finished())
            .filter_map(|s| s.rate)
            .filter(|r| *r > 0.0)
            .collect();
        let mean = (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64);
        // Expected seconds to finish, or (without rates) bytes left.
        let cost = |s: &Segment| match (s.rate.filter(|r| *r > 0.0).or(mean), mean) {
            (Some(r), Some(_)) => s.remaining() as f64 / r,
            _ => s.remaining() as f64,
        };
        // A stalled request will never finish by itself: it goes first; a
        // stream's head next.
        let total = self.total as f64;
        // Bytes a request has asked for are on their way: a steal takes what
        // lies beyond them, unless the request went silent, or its
        // connection is so much slower than the others that waiting for it
        // costs more than the bytes in flight.
        // The others' speed: every worker's last measured rate, the idle
        // ones' too (at the end only the slow one may still be busy).
        let rates: Vec<f64> = self.worker_rates.iter().flatten().copied().collect();
        let fleet = (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64);
        let from = |s: &Segment| -> u64 {
            let asked = s.asked.max(s.pos).min(s.end);
            if self.stalled(s, now) {
                return s.pos;
            }
            match (s.rate.filter(|r| *r > 0.0), fleet) {
                (Some(rv), Some(m))
                    if rv * CUT_SLOWER < m && (asked - s.pos) as f64 / rv > CUT_SECONDS =>
                {
                    s.pos
                }
                _ => asked,
            }
        };
        let min_steal = self.min_steal;
        let (victim, _) = self
            .segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.owner.is_some() && !s.is_finished())
            .filter(|(_, s)| self.stalled(s, now) || s.end - from(s) >= min_steal)
            .map(|(i, s)| {
                let c = if self.stalled(s, now) {
                    f64::INFINITY
                } else if self.ordered {
                    total - s.pos as f64
                } else {
                    cost(s)
                };
                (i, c)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
        let v = &self.segments[victim];
        let remaining = v.remaining();
        let stalled = self.stalled(v, now);
        // The thief's own last rate where it has one, else the others'.
        let thief = self
            .worker_rates
            .get(worker)
            .copied()
            .flatten()
            .filter(|r| *r > 0.0)
            .or(mean);
        let keep = match (v.rate.filter(|r| *r > 0.0).or(mean), thief) {
            _ if stalled => 0,
            (Some(rv), Some(rt)) => split_keep(remaining, rv, rt, self.latency),
            _ => remaining - remaining / 2,
        };
        let keep = keep.max(from(v) - v.pos);
        let take = remaining - keep;
        if take == 0 || (take < self.min_steal && !stalled) {
            return None;
        }
        let taken_over = stalled.then(|| (v.owner.unwrap_or(usize::MAX), victim));
        let v = &mut self.segments[victim];
        let mid = v.end - take;
        let end = v.end;
        v.end = mid;
        // The tail keeps the failures of its bytes; a silent request taken
        // over is one more.
        let mut budget = v.budget;
        if stalled {
            budget.fail(v.pos - v.attempt_from);
            self.stale_failures += 1;
        }
        self.segments.push(Segment {
            budget,
            ..Segment::new(mid, end)
        });
        let i = self.segments.len() - 1;
        Some(Assignment {
            taken_over,
            ..self.assign(i, worker, now)
        })
    }

    /// Requests whose bytes take at least `seconds` at their connection's
    /// rate (instead of [`REQUEST_SECONDS`]): for a download under a rate
    /// limit, which is long anyway, and where each new request's first
    /// bytes fill a socket buffer ahead of the limit.
    pub fn set_request_seconds(&mut self, seconds: f64) {
        self.request_seconds = seconds.max(0.0);
    }

    /// Records the measured rate (bytes per second) of segment `i`'s request
    /// (and of its worker, for the size of its next request).
    pub fn set_rate(&mut self, i: usize, bytes_per_second: f64) {
        self.segments[i].rate = Some(bytes_per_second);
        if let Some(w) = self.segments[i].owner {
            if self.worker_rates.len() <= w {
                self.worker_rates.resize(w + 1, None);
            }
            self.worker_rates[w] = Some(bytes_per_second);
        }
    }

    /// Records how long a request took to start (seconds to its first byte),
    /// averaged with what was measured before.
    pub fn set_latency(&mut self, seconds: f64) {
        self.latency = if self.latency == 0.0 {
            seconds
        } else {
            0.7 * self.latency + 0.3 * seconds
        };
    }

    fn assign(&mut self, i: usize, worker: usize, now: f64) -> Assignment {
        let idle = self.idle_at(now);
        let s = &mut self.segments[i];
        s.owner = Some(worker);
        s.rate = None;
        s.heard = now;
        s.idle_mark = idle;
        s.attempt_from = s.pos;
        s.asked = s.pos;
        Assignment {
            segment: i,
            start: s.pos,
            end: s.end,
            taken_over: None,
        }
    }

    /// Where segment `i` stands: `(pos, end)`.
    pub fn position(&self, i: usize) -> (u64, u64) {
        let s = &self.segments[i];
        (s.pos, s.end)
    }

    /// Claims up to `n` bytes at the cursor of segment `i` for writing, and
    /// returns how many may be written there (fewer than `n` when the segment's
    /// end has moved, 0 when it is finished). The caller writes exactly that many
    /// bytes at the old cursor.
    pub fn claim(&mut self, i: usize, n: u64) -> u64 {
        let s = &mut self.segments[i];
        let take = n.min(s.end - s.pos);
        s.pos += take;
        take
    }

    /// Records that `n` claimed bytes at the write cursor of segment `i` are now
    /// in the file. Never moves past the claim cursor.
    pub fn commit(&mut self, i: usize, n: u64) {
        let s = &mut self.segments[i];
        s.written = (s.written + n).min(s.pos);
        if n > 0 {
            self.stale_failures = 0;
        }
    }

    /// Records that the current request of segment `i` failed, and gives the
    /// segment back: the number of failures in a row now counted on its
    /// bytes (see [`Budget`]). The caller then [defers](Plan::defer) it.
    pub fn failed(&mut self, i: usize) -> u32 {
        let s = &mut self.segments[i];
        s.owner = None;
        self.stale_failures += 1;
        s.budget.fail(s.pos - s.attempt_from)
    }

    /// No worker takes segment `i` before `when` (the caller's seconds).
    pub fn defer(&mut self, i: usize, when: f64) {
        self.segments[i].not_before = when;
    }

    /// The failures counted on segment `i`'s bytes.
    pub fn failures(&self, i: usize) -> u32 {
        self.segments[i].budget.failures()
    }

    /// Failed attempts (and takeovers) anywhere since a byte was last written.
    pub fn stale_failures(&self) -> u32 {
        self.stale_failures
    }

    /// Whether an unfinished segment that starts before `pos` has no worker
    /// and may be taken at `now` (for a stream, which waits on it).
    pub fn waiting_before(&self, pos: u64, now: f64) -> bool {
        self.segments
            .iter()
            .any(|s| s.start < pos && s.owner.is_none() && !s.is_finished() && s.not_before <= now)
    }

    /// Hands out the lowest bytes first, and steals from the lowest owned
    /// segment (for a stream, which delivers from the head).
    pub fn set_ordered(&mut self, yes: bool) {
        self.ordered = yes;
    }

    /// When the next deferred segment may be taken, if one waits beyond `now`.
    pub fn next_ready(&self, now: f64) -> Option<f64> {
        self.segments
            .iter()
            .filter(|s| s.owner.is_none() && !s.is_finished() && s.not_before > now)
            .map(|s| s.not_before)
            .min_by(f64::total_cmp)
    }

    /// Gives segment `i` back: its owner stops (it failed, or was cancelled). The
    /// unclaimed rest may be handed to another worker.
    pub fn release(&mut self, i: usize) {
        self.segments[i].owner = None;
    }

    /// Gives back every segment (all workers stopped).
    pub fn release_all(&mut self) {
        for s in &mut self.segments {
            s.owner = None;
        }
    }
}

/// How many of `remaining` bytes a victim fetching at `victim_rate` should
/// keep when a thief fetching at `thief_rate` (after `latency` seconds to start)
/// takes the rest, so that both finish together: the `keep` that solves
/// `keep / victim_rate = latency + (remaining - keep) / thief_rate`, within
/// `[0, remaining]`.
pub fn split_keep(remaining: u64, victim_rate: f64, thief_rate: f64, latency: f64) -> u64 {
    let r = remaining as f64;
    let keep = (latency + r / thief_rate) / (1.0 / victim_rate + 1.0 / thief_rate);
    if keep.is_finite() {
        (keep.max(0.0).round() as u64).min(remaining)
    } else {
        remaining
    }
}

/// Sorts and merges `ranges` (clipped to `[0, total)`), dropping empty ones.
pub fn merge(ranges: &[Range<u64>], total: u64) -> Vec<Range<u64>> {
    let mut v: Vec<Range<u64>> = ranges
        .iter()
        .map(|r| r.start.min(total)..r.end.min(total))
        .filter(|r| r.start < r.end)
        .collect();
    v.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// The parts of `[0, total)` not covered by `ranges`.
pub fn complement(total: u64, ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut at = 0;
    for r in merge(ranges, total) {
        if r.start > at {
            out.push(at..r.start);
        }
        at = r.end;
    }
    if at < total {
        out.push(at..total);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that the segments tile [0, total) exactly: sorted by start, each
    /// begins where the previous ended, the first at 0, the last at total.
    /// Idle workers looking for work every 0.1 s from `from` to `to`, as
    /// they do: the plan sees the downloader run.
    fn looks(plan: &mut Plan, from: f64, to: f64) {
        let mut t = from;
        while t < to {
            plan.tick(t);
            t += 0.1;
        }
        plan.tick(to);
    }

    fn assert_tiles(plan: &Plan) {
        let mut segs = plan.segments().to_vec();
        segs.sort_by_key(|s| s.start);
        let mut at = 0;
        for s in &segs {
            assert_eq!(s.start, at, "gap or overlap at {at}: {segs:?}");
            assert!(s.start <= s.pos && s.pos <= s.end, "bad cursor {s:?}");
            assert!(
                s.start <= s.written && s.written <= s.pos,
                "bad write cursor {s:?}"
            );
            at = s.end;
        }
        assert_eq!(
            at,
            plan.total(),
            "segments end at {at}, not {}",
            plan.total()
        );
    }

    #[test]
    fn segment_count_respects_minimum_and_connections() {
        assert_eq!(segment_count(0, 8, MIN_SEGMENT), 1);
        assert_eq!(segment_count(1, 8, MIN_SEGMENT), 1);
        assert_eq!(segment_count(100_000, 16, MIN_SEGMENT), 1);
        assert_eq!(segment_count(MIN_SEGMENT, 8, MIN_SEGMENT), 1);
        assert_eq!(segment_count(MIN_SEGMENT + 1, 8, MIN_SEGMENT), 2);
        assert_eq!(segment_count(4 * MIN_SEGMENT, 8, MIN_SEGMENT), 4);
        assert_eq!(segment_count(1 << 30, 8, MIN_SEGMENT), 8);
        assert_eq!(segment_count(1 << 30, 0, MIN_SEGMENT), 1);
        assert_eq!(segment_count(10, 3, 0), 3);
    }

    #[test]
    fn new_splits_evenly() {
        let plan = Plan::new(10, 3, 1, 1);
        let bounds: Vec<_> = plan.segments().iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(bounds, vec![(0, 3), (3, 6), (6, 10)]);
        assert_tiles(&plan);
    }

    #[test]
    fn empty_file_is_one_finished_segment() {
        let mut plan = Plan::new(0, 8, MIN_SEGMENT, MIN_STEAL);
        assert_eq!(plan.segments().len(), 1);
        assert!(plan.is_complete());
        assert_eq!(plan.next(0), None);
    }

    #[test]
    fn next_hands_out_each_segment_once_then_steals() {
        let mut plan = Plan::new(400, 4, 100, 10);
        let mut got = Vec::new();
        for w in 0..4 {
            got.push(plan.next(w).expect("work"));
        }
        let mut starts: Vec<_> = got.iter().map(|a| a.start).collect();
        starts.sort();
        assert_eq!(starts, vec![0, 100, 200, 300]);
        // A fifth worker steals half of a 100-byte segment.
        let a = plan.next(4).expect("steal");
        assert_eq!(a.end - a.start, 50);
        assert_tiles(&plan);
        // The victim's end moved to where the thief starts.
        let victim = plan
            .segments()
            .iter()
            .find(|s| s.end == a.start)
            .expect("victim");
        assert_eq!(victim.end - victim.start, 50);
    }

    #[test]
    fn claim_is_clamped_to_a_moved_end() {
        let mut plan = Plan::new(100, 1, 1, 10);
        let a = plan.next(0).unwrap();
        assert_eq!((a.start, a.end), (0, 100));
        assert_eq!(plan.claim(a.segment, 30), 30);
        // Thief takes [65, 100).
        let b = plan.next(1).unwrap();
        assert_eq!((b.start, b.end), (65, 100));
        assert_eq!(plan.claim(a.segment, 50), 35);
        assert_eq!(plan.claim(a.segment, 50), 0);
        assert_eq!(plan.claim(b.segment, 100), 35);
        assert!(plan.is_complete());
        assert_eq!(plan.claimed(), 100);
        assert_tiles(&plan);
    }

    #[test]
    fn written_trails_claimed_until_committed() {
        let mut plan = Plan::new(100, 2, 1, 1000);
        let a = plan.next(0).unwrap();
        assert_eq!(plan.claim(a.segment, 20), 20);
        assert_eq!(plan.claimed(), 20);
        assert_eq!(plan.written(), 0);
        assert!(plan.written_ranges().is_empty());
        plan.commit(a.segment, 20);
        assert_eq!(plan.written_ranges(), vec![0..20]);
        // Commit never passes the claim cursor.
        plan.commit(a.segment, 500);
        assert_eq!(plan.written(), 20);
    }

    #[test]
    fn no_steal_below_minimum() {
        let mut plan = Plan::new(100, 1, 1, 60);
        let a = plan.next(0).unwrap();
        assert_eq!(plan.next(1), None, "half of 100 is below min_steal 60");
        plan.claim(a.segment, 10);
        assert_eq!(plan.next(1), None);
    }

    #[test]
    fn released_segment_is_picked_up_where_it_stopped() {
        let mut plan = Plan::new(100, 1, 1, 1000);
        let a = plan.next(0).unwrap();
        plan.claim(a.segment, 40);
        plan.release(a.segment);
        let b = plan.next(1).unwrap();
        assert_eq!((b.segment, b.start, b.end), (a.segment, 40, 100));
    }

    #[test]
    fn steals_from_the_segment_with_most_left() {
        let mut plan = Plan::new(300, 3, 1, 1);
        let a: Vec<_> = (0..3).map(|w| plan.next(w).unwrap()).collect();
        plan.claim(a[0].segment, 90);
        plan.claim(a[1].segment, 10);
        plan.claim(a[2].segment, 50);
        let s = plan.next(3).unwrap();
        // Segment 1 ([100,200)) has 90 left: the thief takes [155, 200).
        assert_eq!((s.start, s.end), (155, 200));
    }

    #[test]
    fn split_keep_balances_finishing_times() {
        // Equal speeds, no latency: halves.
        assert_eq!(split_keep(1000, 10.0, 10.0, 0.0), 500);
        // A victim ten times slower keeps one eleventh.
        assert_eq!(split_keep(1100, 2.0, 20.0, 0.0), 100);
        // Latency makes the victim keep more; too much and it keeps everything.
        assert!(split_keep(1000, 10.0, 10.0, 10.0) > 500);
        assert_eq!(split_keep(1000, 10.0, 10.0, 1000.0), 1000);
        assert_eq!(split_keep(1000, 0.0, 10.0, 0.0), 0);
    }

    #[test]
    fn a_slow_segment_is_stolen_from_first_and_keeps_little() {
        let mut plan = Plan::new(3000, 3, 1, 10);
        let a: Vec<_> = (0..3).map(|w| plan.next(w).unwrap()).collect();
        // Segment 0 crawls at 1 B/s, the others run at 100 B/s.
        plan.set_rate(a[0].segment, 1.0);
        plan.set_rate(a[1].segment, 100.0);
        plan.set_rate(a[2].segment, 100.0);
        plan.claim(a[1].segment, 900);
        plan.claim(a[2].segment, 900);
        let s = plan.next(3).unwrap();
        // The mean rate is 67 B/s: segment 0 keeps about 1000 / 68 bytes.
        assert_eq!(s.end, 1000);
        assert!(s.start < 30, "victim kept {} bytes", s.start);
    }

    #[test]
    fn a_stalled_segment_is_taken_over_whole() {
        let mut plan = Plan::new(1000, 2, 100, 200);
        let a = plan.next_at(0, 0.0).unwrap();
        let b = plan.next_at(1, 0.0).unwrap();
        // b goes silent after 450 bytes; a finishes its 500 at 0.9 s.
        plan.claim(b.segment, 450);
        plan.heard(b.segment, 0.1);
        plan.claim(a.segment, 500);
        looks(&mut plan, 0.1, 0.9);
        plan.heard(a.segment, 0.9);
        plan.release(a.segment);
        // 50 bytes left in b, far below min_steal: not stolen while it is heard from...
        assert_eq!(plan.next_at(0, 1.0), None);
        // ...but taken whole once silent for STALLED_AFTER.
        let t = plan.next_at(0, 0.1 + STALLED_AFTER).expect("take over");
        assert_eq!((t.start, t.end), (950, 1000));
        assert_eq!(t.taken_over, Some((1, b.segment)));
        assert_eq!(plan.position(b.segment), (950, 950));
        assert_tiles(&plan);
        // The thief's own request is fresh: not stalled at once.
        assert_eq!(plan.next_at(1, 0.2 + STALLED_AFTER), None);
    }

    #[test]
    fn slow_first_bytes_stretch_the_stall_limit() {
        // Halves of 500 are below min_steal: only a stall lets anything be taken.
        let mut plan = Plan::new(1000, 2, 100, 400);
        plan.set_latency(0.5);
        plan.next_at(0, 0.0).unwrap();
        plan.next_at(1, 0.0).unwrap();
        // 4 x 0.5 s: silent for 1.5 s is not yet stalled, 2 s is.
        looks(&mut plan, 0.0, 1.5);
        assert_eq!(plan.next_at(2, 1.5), None);
        looks(&mut plan, 1.5, 2.0);
        assert!(plan.next_at(2, 2.0).is_some_and(|a| a.taken_over.is_some()));
    }

    #[test]
    fn a_pause_of_the_whole_process_is_no_stall() {
        // Two requests; the process is not scheduled from 0.2 s to 1.5 s:
        // nobody received, nobody looked. Then b delivers, a not yet.
        let mut plan = Plan::new(1000, 2, 100, 400);
        let a = plan.next_at(0, 0.0).unwrap();
        let b = plan.next_at(1, 0.0).unwrap();
        looks(&mut plan, 0.0, 0.2);
        plan.heard(a.segment, 0.2);
        plan.heard(b.segment, 0.2);
        plan.heard(b.segment, 1.5);
        assert_eq!(
            plan.next_at(2, 1.5),
            None,
            "a was silent only while all were"
        );
        // Silent on while b delivers: IDLE_GAP of the pause counted, a
        // second of silence in all 0.75 s after the process ran again.
        looks(&mut plan, 1.5, 2.1);
        assert_eq!(plan.next_at(2, 2.1), None);
        looks(&mut plan, 2.1, 2.3);
        assert!(
            plan.next_at(2, 2.3)
                .is_some_and(|t| t.taken_over == Some((0, a.segment)))
        );
    }

    #[test]
    fn asked_bytes_are_not_stolen() {
        // One segment, its request asks for the first 600 bytes: a thief
        // takes only from what lies beyond.
        let mut plan = Plan::new(1000, 1, 1000, 100);
        let a = plan.next_at(0, 0.0).unwrap();
        plan.segments[a.segment].asked = 600;
        let t = plan.next_at(1, 0.0).expect("the rest beyond the request");
        assert!(t.start >= 600, "{t:?}");
        assert_eq!(plan.position(a.segment), (0, t.start));
        // Everything asked: nothing to steal while it delivers.
        let mut plan = Plan::new(1000, 1, 1000, 100);
        let a = plan.next_at(0, 0.0).unwrap();
        plan.segments[a.segment].asked = 1000;
        assert_eq!(plan.next_at(1, 0.0), None);
    }

    #[test]
    fn a_far_slower_request_is_cut_when_the_others_run_dry() {
        // Two workers: a's request asked for everything it has and runs at
        // 1 kB/s; b ran at 100 kB/s and is idle now.
        let mut plan = Plan::new(100_000, 2, 1000, 1000);
        let a = plan.next_at(0, 0.0).unwrap();
        let b = plan.next_at(1, 0.0).unwrap();
        plan.set_rate(b.segment, 100_000.0);
        plan.claim(b.segment, u64::MAX);
        plan.release(b.segment);
        plan.segments[a.segment].asked = plan.segments[a.segment].end;
        plan.set_rate(a.segment, 1000.0);
        plan.heard(a.segment, 0.0);
        // 50 s of bytes left at its rate: b takes most of them.
        let t = plan.next_at(1, 0.0).expect("cut with a cause");
        assert!(t.end - t.start > 40_000, "{t:?}");
        // As fast as the others: its asked bytes are left alone.
        let mut plan = Plan::new(100_000, 2, 1000, 1000);
        let a = plan.next_at(0, 0.0).unwrap();
        let b = plan.next_at(1, 0.0).unwrap();
        plan.set_rate(b.segment, 1000.0);
        plan.claim(b.segment, u64::MAX);
        plan.release(b.segment);
        plan.segments[a.segment].asked = plan.segments[a.segment].end;
        plan.set_rate(a.segment, 1000.0);
        assert_eq!(plan.next_at(1, 0.0), None);
    }

    #[test]
    fn a_request_asks_for_part_of_its_share_and_leaves_the_rest_free() {
        let mut plan = Plan::new(64 << 20, 4, 1 << 20, 128 << 10);
        let a = plan.next_at(0, 0.0).unwrap();
        // Rate unknown: at most FIRST_REQUEST.
        let asked = plan.ask(a.segment);
        assert_eq!(asked - a.start, FIRST_REQUEST);
        // Known and equal rates for all four: about an eighth of what no
        // request has asked for.
        for w in 1..4 {
            let s = plan.next_at(w, 0.0).unwrap().segment;
            plan.set_rate(s, 1e6);
            plan.ask(s);
        }
        plan.set_rate(a.segment, 1e6);
        plan.claim(a.segment, FIRST_REQUEST);
        let unasked: u64 = plan
            .segments()
            .iter()
            .enumerate()
            .map(|(j, s)| s.end - if j == a.segment { s.pos } else { s.asked })
            .sum();
        let asked = plan.ask(a.segment) - FIRST_REQUEST;
        let want = unasked / 8;
        assert!(asked.abs_diff(want) < want / 100, "{asked} against {want}");
        // A connection four times faster than the three others asks for
        // its share of the rates, 4 of 7, halved.
        plan.set_rate(a.segment, 4e6);
        let faster = plan.ask(a.segment) - FIRST_REQUEST;
        let want = unasked * 4 / 7 / 2;
        assert!(
            faster.abs_diff(want) < want / 100,
            "{faster} against {want}"
        );
        // Never a tail below the smallest steal: the last bytes come whole.
        let mut small = Plan::new(1 << 20, 1, 1 << 20, 600 << 10);
        let s = small.next_at(0, 0.0).unwrap().segment;
        assert_eq!(small.ask(s), 1 << 20);
    }

    #[test]
    fn a_failed_segment_waits_for_its_backoff_and_keeps_its_failures() {
        let mut plan = Plan::new(1000, 1, 1000, 10);
        let a = plan.next_at(0, 0.0).unwrap();
        plan.claim(a.segment, 100);
        plan.commit(a.segment, 100);
        assert_eq!(plan.failed(a.segment), 1);
        plan.defer(a.segment, 2.0);
        // No worker, itself included, takes it before its time.
        assert_eq!(plan.next_at(1, 1.0), None);
        assert_eq!(plan.next_ready(1.0), Some(2.0));
        let b = plan.next_at(1, 2.0).expect("after the backoff");
        assert_eq!((b.segment, b.start), (a.segment, 100));
        assert_eq!(plan.failed(b.segment), 2, "the count stays with the bytes");
        assert_eq!(plan.stale_failures(), 2);
        plan.defer(b.segment, 0.0);
        let c = plan.next_at(0, 3.0).unwrap();
        plan.claim(c.segment, 1);
        plan.commit(c.segment, 1);
        assert_eq!(
            plan.stale_failures(),
            0,
            "a written byte resets the download's count"
        );
        assert_eq!(plan.failures(c.segment), 2);
    }

    #[test]
    fn stolen_and_taken_over_bytes_keep_their_failures() {
        let mut plan = Plan::new(1000, 1, 1000, 10);
        let a = plan.next_at(0, 0.0).unwrap();
        assert_eq!(plan.failed(a.segment), 1);
        plan.defer(a.segment, 0.0);
        let a = plan.next_at(0, 0.0).unwrap();
        // A thief splits it: the tail has the same failures.
        let t = plan.next_at(1, 0.1).unwrap();
        assert_eq!(t.taken_over, None);
        assert_eq!(plan.failures(t.segment), 1);
        // The thief's request goes silent and is taken over: one failure more.
        plan.release(a.segment);
        let _ = plan.claim(a.segment, u64::MAX);
        looks(&mut plan, 0.1, 0.1 + STALLED_AFTER);
        let o = plan.next_at(2, 0.1 + STALLED_AFTER).expect("take over");
        assert_eq!(o.taken_over, Some((1, t.segment)));
        assert_eq!(plan.failures(o.segment), 2);
        assert_eq!(plan.stale_failures(), 2);
    }

    #[test]
    // A list holding one range is what these cases mean, not a range of numbers.
    #[allow(clippy::single_range_in_vec_init)]
    fn merge_and_complement() {
        assert_eq!(
            merge(&[5..7, 0..2, 1..3, 7..9, 20..30], 25),
            vec![0..3, 5..9, 20..25]
        );
        assert_eq!(complement(10, &[2..4, 6..8]), vec![0..2, 4..6, 8..10]);
        assert_eq!(complement(10, &[]), vec![0..10]);
        assert_eq!(complement(10, &[0..10]), Vec::<Range<u64>>::new());
        assert_eq!(complement(0, &[]), Vec::<Range<u64>>::new());
    }

    #[test]
    fn resume_plans_only_the_holes() {
        let plan = Plan::resume(1000, &[0..100, 500..600], 4, 50, 10);
        assert_tiles(&plan);
        let claimed = plan.claimed_ranges();
        assert_eq!(claimed, vec![0..100, 500..600]);
        let open: u64 = plan.segments().iter().map(Segment::remaining).sum();
        assert_eq!(open, 800);
        assert!(plan.segments().iter().filter(|s| !s.is_finished()).count() >= 4);
    }

    /// A tiny deterministic generator for the property tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// Simulates workers that claim random amounts, steal, and fail at random,
    /// and checks after every step that the plan tiles the file, that no byte is
    /// claimed twice, and that at the end every byte was claimed exactly once.
    #[test]
    fn property_random_workers_cover_every_byte_exactly_once() {
        let mut rng = Rng(0x5eed);
        for round in 0..500 {
            let total = match round % 5 {
                0 => rng.below(10),
                1 => rng.below(1000),
                _ => rng.below(10_000_000),
            };
            let workers = 1 + rng.below(20) as usize;
            let min_segment = 1 + rng.below(2_000_000);
            let min_steal = 1 + rng.below(300_000);
            let mut plan = Plan::new(total, workers, min_segment, min_steal);
            assert!(plan.segments().len() <= workers);
            assert_tiles(&plan);
            let mut owned: Vec<Option<usize>> = vec![None; workers];
            let mut claimed: Vec<Range<u64>> = Vec::new();
            let mut steps = 0;
            // A clock that runs at random speed: silent workers get taken over.
            let mut now = 0.0;
            loop {
                steps += 1;
                assert!(steps < 1_000_000, "no progress");
                now += rng.below(100) as f64 / 1000.0;
                let w = rng.below(workers as u64) as usize;
                match owned[w] {
                    None => {
                        owned[w] = plan.next_at(w, now).map(|a| a.segment);
                        if owned.iter().all(Option::is_none) {
                            break;
                        }
                    }
                    Some(seg) => {
                        if rng.below(50) == 0 {
                            plan.release(seg);
                            owned[w] = None;
                            continue;
                        }
                        let (pos, _) = plan.position(seg);
                        let n = plan.claim(seg, 1 + rng.below(400_000));
                        if n == 0 {
                            plan.release(seg);
                            owned[w] = None;
                        } else {
                            claimed.push(pos..pos + n);
                            plan.heard(seg, now);
                            plan.commit(seg, n);
                        }
                    }
                }
                assert_tiles(&plan);
            }
            assert!(plan.is_complete(), "round {round}: workers gave up early");
            assert_eq!(plan.written(), total, "round {round}");
            // Everything written, as one range (none for an empty file).
            assert_eq!(
                complement(total, &plan.written_ranges()),
                Vec::<Range<u64>>::new()
            );
            claimed.sort_by_key(|r| r.start);
            let mut at = 0;
            for r in &claimed {
                assert_eq!(r.start, at, "round {round}: byte claimed twice or skipped");
                at = r.end;
            }
            assert_eq!(at, total);
        }
    }
}
