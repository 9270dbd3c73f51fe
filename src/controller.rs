//! How many connections a download uses: a controller that starts with a
//! few, adds more while each step raises the aggregate rate, gives back
//! those that bring nothing, and backs off when the server pushes back.
//!
//! Pure: it is told the time and the bytes so far, and answers with a
//! target; the workers above the target take no new work (a request in
//! flight is never cut for it). The plan still decides which bytes.
//!
//! The algorithm, and why:
//!
//! 1. **Start** at [`START`] connections (8, or the ceiling if lower):
//!    half of the default ceiling of 16, so that a link that caps each
//!    connection reaches the ceiling in one step, and few enough that a
//!    fast link the client cannot keep up with sheds little.
//! 2. **Measure** each level over [`WINDOW`] (60 ms) after it has settled
//!    for [`SETTLE`] (40 ms: new connections need their first round trips).
//!    Both are short: a download may last well under a second on a fast
//!    link, and a decision that comes after the end is worth nothing.
//!    Measured on a link capped at 20 MB/s per connection (256 MiB, the
//!    fixture server): 0.89 to 0.90 s against 0.84 to 0.88 s for a fixed 16
//!    and 1.68 s for a fixed 8; with 80 + 120 ms the same took 1.10 s.
//! 3. **Double** while the rate rises, unless the client is CPU-bound: its
//!    process used [`CPU_BOUND`] of the machine's cores or more over the
//!    window (more connections then add work, not bytes: measured on 2
//!    cores against nginx on loopback, 1 GiB, http: 8 connections 0.48 s,
//!    16 0.77 s; https: 1 connection 1.33 s, 16 1.73 s, the client using
//!    about one core in both). A CPU-bound level sheds instead, as below.
//!    A step from `n` to `2n` is kept when
//!    the rate rose by at least [`GAIN`] (25 %) of what perfect scaling
//!    would give (a per-connection cap: each connection adds its cap). A
//!    step that brings less is undone, and the controller **sheds**: it
//!    halves while the rate stays within [`SHED_LOSS`] (5 %) of the best
//!    seen, down to 1 (a link capped in total needs one connection, and
//!    fewer connections leave the CPU to the ones that work).
//! 4. **Hold** then, and look again every [`RECHECK`] (the link may have
//!    changed): one step up, kept only if it pays as in 3.
//! 5. **Back off** when the server says "too many" (`429`, `503`, a reset
//!    while others go on): the target drops to one fewer than were running,
//!    and that becomes the ceiling for the rest of the download.

use std::collections::VecDeque;

/// Connections at the start.
pub const START: usize = 8;
/// Seconds a new level runs before it is measured.
pub const SETTLE: f64 = 0.04;
/// Seconds over which a level's rate is measured.
pub const WINDOW: f64 = 0.06;
/// The part of perfect scaling a step up must bring to be kept.
pub const GAIN: f64 = 0.25;
/// How much of the best rate a step down may lose and still be kept.
pub const SHED_LOSS: f64 = 0.05;
/// Seconds between looks at a higher level while holding.
pub const RECHECK: f64 = 3.0;
/// Seconds the first level runs, when it is CPU-bound, before shedding
/// begins: its first measurement comes while connections open and pages
/// are first touched, and would make any lower level look as good.
pub const CPU_LOOK: f64 = 0.25;
/// The share of the machine's cores whose use by the client makes it
/// CPU-bound: 0.4, on 2 cores 0.8 of a core (a server on the same machine, the
/// kernel's network stack and the disk take the rest).
pub const CPU_BOUND: f64 = 0.4;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Doubling while it pays.
    Up,
    /// Halving while it costs nothing.
    Down,
    /// Steady; `since` the hold began.
    Hold { since: f64 },
    /// Trying one more while holding.
    Probe,
}

/// The controller (see the module docs).
#[derive(Debug)]
pub struct Controller {
    ceiling: usize,
    target: usize,
    phase: Phase,
    /// When the target last changed.
    changed: f64,
    /// The level before this one and its rate.
    before: Option<(usize, f64)>,
    /// The best (level, rate) seen since the last hold ended.
    best: Option<(usize, f64)>,

    samples: VecDeque<(f64, u64, Option<f64>)>,
    /// CPU seconds per second at which the client is CPU-bound.
    cpu_limit: f64,
}

impl Controller {
    /// A controller for at most `ceiling` connections, started at `now`, on
    /// a machine of `cores` cores.
    pub fn new(ceiling: usize, now: f64, cores: usize) -> Controller {
        let ceiling = ceiling.max(1);
        Controller {
            ceiling,
            target: START.min(ceiling),
            phase: Phase::Up,
            changed: now,
            before: None,
            best: None,
            samples: VecDeque::new(),
            cpu_limit: CPU_BOUND * cores.max(1) as f64,
        }
    }

    /// Connections wanted now.
    #[cfg(test)]
    pub fn target(&self) -> usize {
        self.target
    }

    /// The most connections it will ask for (lowered by push-back).
    #[cfg(test)]
    pub fn ceiling(&self) -> usize {
        self.ceiling
    }

    fn set(&mut self, target: usize, now: f64) {
        self.target = target.clamp(1, self.ceiling);
        self.changed = now;
        self.samples.clear();
    }

    /// Bytes per second over the window ending now, once the level has
    /// settled and been measured for a whole window.
    /// Bytes per second over the window ending now, and whether the client
    /// was CPU-bound over it.
    fn rate(&self, now: f64) -> Option<(f64, bool)> {
        if now - self.changed < SETTLE + WINDOW {
            return None;
        }
        let from = now - WINDOW;
        let first = self.samples.iter().find(|(t, ..)| *t >= from)?;
        let last = self.samples.back()?;
        let span = last.0 - first.0;
        let bound = match (first.2, last.2) {
            (Some(a), Some(b)) => (b - a) / span >= self.cpu_limit,
            _ => false,
        };
        (span >= WINDOW * 0.8).then(|| ((last.1 - first.1) as f64 / span, bound))
    }

    /// Tells the controller that `bytes` had arrived in all at `now`, and
    /// the CPU seconds the process had used by then, where known; the
    /// target then.
    pub fn observe(&mut self, now: f64, bytes: u64, cpu: Option<f64>) -> usize {
        if now - self.changed >= SETTLE {
            self.samples.push_back((now, bytes, cpu));
        }
        while self
            .samples
            .front()
            .is_some_and(|(t, ..)| now - *t > 2.0 * WINDOW)
        {
            self.samples.pop_front();
        }
        let Some((rate, cpu_bound)) = self.rate(now) else {
            return self.target;
        };
        if self.best.is_none_or(|(_, r)| rate > r) {
            self.best = Some((self.target, rate));
        }
        match self.phase {
            Phase::Up | Phase::Probe => {
                let kept = match self.before {
                    None => true,
                    Some((n, r)) => {
                        let perfect = r * (self.target as f64 / n as f64 - 1.0);
                        rate - r >= GAIN * perfect
                    }
                };
                if kept && cpu_bound && self.before.is_none() && now - self.changed < CPU_LOOK {
                    // The first level already keeps the client busy: its
                    // first instants (new connections, fresh pages) say
                    // too little of its rate to shed against yet.
                } else if kept && cpu_bound && self.before.is_none() && self.target > 1 {
                    // The first level keeps the client busy: see whether
                    // fewer do as well.
                    self.phase = Phase::Down;
                    self.before = Some((self.target, rate));
                    let t = self.target / 2;
                    self.set(t, now);
                } else if kept && cpu_bound {
                    let t = self.target;
                    self.hold(t, now);
                } else if !kept {
                    let (n, r) = self.before.expect("a level before");
                    self.before = Some((n, r));
                    if self.phase == Phase::Probe || n <= 1 {
                        self.hold(n, now);
                    } else {
                        // Undone; now see whether fewer do as well.
                        self.phase = Phase::Down;
                        self.before = Some((n, r));
                        self.set(n / 2, now);
                    }
                } else if self.target >= self.ceiling {
                    let t = self.target;
                    self.hold(t, now);
                } else {
                    // A probe that paid goes on doubling.
                    self.phase = Phase::Up;
                    self.before = Some((self.target, rate));
                    let t = self.target * 2;
                    self.set(t, now);
                }
            }
            Phase::Down => {
                let best = self.best.map_or(rate, |b| b.1);
                let (n, _) = self.before.expect("a level before");
                if rate >= best * (1.0 - SHED_LOSS) {
                    if self.target <= 1 {
                        self.hold(1, now);
                    } else {
                        self.before = Some((self.target, rate));
                        let t = self.target / 2;
                        self.set(t, now);
                    }
                } else {
                    // Fewer cost too much: back to the level above.
                    self.hold(n, now);
                }
            }
            Phase::Hold { since } => {
                if now - since >= RECHECK && self.target < self.ceiling && !cpu_bound {
                    // Against the rate of now, not of an older regime.
                    self.before = Some((self.target, rate));
                    self.best = Some((self.target, rate));
                    self.phase = Phase::Probe;
                    let t = self.target + 1;
                    self.set(t, now);
                }
            }
        }
        self.target
    }

    fn hold(&mut self, n: usize, now: f64) {
        self.phase = Phase::Hold { since: now };
        if n != self.target {
            self.set(n, now);
        }
    }

    /// The server pushed back (a `429`, a `503`, a reset while `running`
    /// others went on): one fewer than were running, from now on at most.
    pub fn pushed_back(&mut self, now: f64, running: usize) {
        self.ceiling = running.saturating_sub(1).max(1).min(self.ceiling);
        let t = self.target.min(self.ceiling);
        self.hold(t, now);
        self.target = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1e6;

    /// Runs the controller against a link whose rate at `n` connections is
    /// `link(n)`, for `secs` seconds in steps of 10 ms (the timer's pace);
    /// `push(n)` says whether the server pushes back at `n`. The target at
    /// the end, and the bytes moved.
    fn simulate(
        ceiling: usize,
        secs: f64,
        link: impl Fn(usize) -> f64,
        push: impl Fn(usize) -> bool,
    ) -> (usize, f64, Controller) {
        simulate_cpu(ceiling, secs, link, push, 0.0).0
    }

    /// As [`simulate`], with a client that spends `cpu_per_byte` seconds of
    /// CPU on each byte, on 2 cores; also the most connections it asked for.
    fn simulate_cpu(
        ceiling: usize,
        secs: f64,
        link: impl Fn(usize) -> f64,
        push: impl Fn(usize) -> bool,
        cpu_per_byte: f64,
    ) -> ((usize, f64, Controller), usize) {
        let mut c = Controller::new(ceiling, 0.0, 2);
        let (mut t, mut bytes, mut most) = (0.0, 0.0, c.target());
        while t < secs {
            t += 0.01;
            let n = c.target();
            if push(n) {
                c.pushed_back(t, n);
            }
            bytes += link(c.target()) * 0.01;
            c.observe(t, bytes as u64, Some(bytes * cpu_per_byte));
            most = most.max(c.target());
        }
        ((c.target(), bytes, c), most)
    }

    #[test]
    fn a_cap_per_connection_takes_it_to_the_ceiling_fast() {
        let (n, bytes, _) = simulate(16, 2.0, |n| n as f64 * 20.0 * MB, |_| false);
        assert_eq!(n, 16);
        // Two doublings of 0.2 s each: at least 85 % of 16 connections' worth.
        assert!(bytes >= 0.85 * 2.0 * 320.0 * MB, "{}", bytes / MB);
    }

    #[test]
    fn a_cap_in_total_ends_with_one_connection() {
        let (n, _, _) = simulate(16, 3.0, |_| 100.0 * MB, |_| false);
        assert_eq!(n, 1);
    }

    #[test]
    fn a_fast_link_the_client_cannot_keep_up_with_gets_few() {
        // The CPU is the limit: 2 connections do best, more cost a little.
        let link = |n: usize| match n {
            1 => 1500.0 * MB,
            2 => 2000.0 * MB,
            n => 2000.0 * MB * (1.0 - 0.02 * (n as f64 - 2.0)),
        };
        let (n, _, _) = simulate(16, 2.0, link, |_| false);
        assert!((1..=4).contains(&n), "{n}");
    }

    #[test]
    fn a_cpu_bound_client_sheds_without_probing_up() {
        // Unlimited http on loopback, as measured: 1 connection 1.7 GB/s,
        // 4 2.0, 8 2.2, 16 1.4; the client spends 0.46 s of CPU a GB (a
        // whole core at 8). It never tries 16, and ends at 4 or 8.
        let link = |n: usize| match n {
            1 => 1700.0 * MB,
            2 => 1850.0 * MB,
            3..=4 => 2000.0 * MB,
            5..=8 => 2200.0 * MB,
            _ => 1400.0 * MB,
        };
        let ((n, _, _), most) = simulate_cpu(16, 1.0, link, |_| false, 0.46e-9);
        assert_eq!(most, START, "probed {most}");
        assert!((4..=8).contains(&n), "{n}");
        // Over https one connection does best (1.33 s a GiB against 1.73
        // at 16): the client sheds down to it.
        let tls = |n: usize| if n == 1 { 800.0 * MB } else { 620.0 * MB };
        let ((n, _, _), most) = simulate_cpu(16, 1.0, tls, |_| false, 1.7e-9);
        assert_eq!((n, most), (1, START));
        // The same links with a client far from CPU-bound: it probes 16.
        let ((_, _, _), most) = simulate_cpu(16, 1.0, link, |_| false, 0.05e-9);
        assert_eq!(most, 16);
    }

    #[test]
    fn one_slow_connection_among_many_still_scales() {
        let link = |n: usize| (n as f64 - 1.0) * 20.0 * MB + 2.0 * MB;
        let (n, _, _) = simulate(16, 2.0, link, |_| false);
        assert_eq!(n, 16);
    }

    #[test]
    fn a_server_that_refuses_above_k_is_obeyed() {
        let (n, _, c) = simulate(16, 3.0, |n| n.min(6) as f64 * 20.0 * MB, |n| n > 6);
        assert!(n <= 6, "{n}");
        assert!(c.ceiling() <= 7);
    }

    #[test]
    fn holding_looks_up_again_later() {
        // Total cap for 4 s, then per-connection: after RECHECK it climbs.
        let mut c = Controller::new(16, 0.0, 2);
        let (mut t, mut bytes) = (0.0, 0.0);
        while t < 12.0 {
            t += 0.01;
            let n = c.target() as f64;
            bytes += if t < 4.0 { 100.0 * MB } else { n * 20.0 * MB } * 0.01;
            c.observe(t, bytes as u64, None);
        }
        assert!(c.target() >= 4, "{}", c.target());
    }

    #[test]
    fn a_ceiling_under_the_start_is_kept() {
        let (n, _, _) = simulate(2, 1.0, |n| n as f64 * 20.0 * MB, |_| false);
        assert_eq!(n, 2);
        let (n, _, _) = simulate(1, 1.0, |n| n as f64 * 20.0 * MB, |_| false);
        assert_eq!(n, 1);
    }
}
