//! Progress: workers bump atomic counters; one timer thread polls them about ten
//! times a second and hands a [`Snapshot`] to a callback. The command line's
//! callback draws an `indicatif` bar ([`TerminalBar`]); a library caller can pass
//! any closure and never touch indicatif.
//!
//! The speed is the rate over the last few seconds ([`RATE_WINDOW`]) of the
//! bytes fetched by this run (not those a resume found on disk), so it falls
//! to zero when nothing arrives, and the ETA comes from it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the timer polls the counters.
pub const TICK: Duration = Duration::from_millis(100);

/// The window the speed is measured over.
pub const RATE_WINDOW: Duration = Duration::from_secs(3);

/// How long bytes must have flowed before a speed is told at all: the first
/// instants of a transfer say little (a burst from the socket buffers).
pub const RATE_SETTLES: Duration = Duration::from_millis(500);

/// A progress callback: called on every tick and once more at the end.
pub type ProgressFn = Box<dyn FnMut(&Snapshot) + Send>;

/// The state of a download at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    /// Bytes in the file so far: fetched by this run, and found there by a
    /// resume.
    pub downloaded: u64,
    /// Bytes fetched by this run.
    pub fetched: u64,
    /// The total, when known.
    pub total: Option<u64>,
    /// Time since the transfer started.
    pub elapsed: Duration,
    /// Connections transferring right now.
    pub connections: usize,
    /// Bytes per second over the last [`RATE_WINDOW`]; `None` until bytes
    /// have flowed for [`RATE_SETTLES`]. Zero when nothing arrives.
    pub rate: Option<f64>,
    /// Whether this is the last snapshot (the download has ended, well or not).
    pub finished: bool,
}

impl Snapshot {
    /// The fraction done, from 0.0 to 1.0, when the total is known (1.0 for an
    /// empty file).
    pub fn complete_rate(&self) -> Option<f64> {
        self.total.map(|t| {
            if t == 0 {
                1.0
            } else {
                (self.downloaded as f64 / t as f64).min(1.0)
            }
        })
    }

    /// The recent speed in bytes per second (see [`Snapshot::rate`]); 0
    /// before it settles.
    pub fn bytes_per_second(&self) -> f64 {
        self.rate.unwrap_or(0.0)
    }

    /// The average speed of this run so far, in bytes fetched per second.
    pub fn average_bytes_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.fetched as f64 / secs
        } else {
            0.0
        }
    }

    /// The time left at the recent speed, when the total is known and bytes
    /// are arriving.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.total?.saturating_sub(self.downloaded);
        match self.rate {
            _ if left == 0 => Some(Duration::ZERO),
            Some(r) if r > 0.0 => Duration::try_from_secs_f64(left as f64 / r).ok(),
            _ => None,
        }
    }
}

/// The counters that workers bump. Lock-free.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    downloaded: AtomicU64,
    /// What the file held before this run (a resume).
    kept: AtomicU64,
    total: AtomicU64,
    total_known: AtomicBool,
    active: AtomicUsize,
    /// The most connections transferring at once.
    peak: AtomicUsize,
    workers: AtomicUsize,
    requests: AtomicUsize,
    /// Body bytes read from the network this run, kept or not.
    received: AtomicU64,
    /// CPU the workers' threads spent on requests (see [`CpuMeter`]).
    cpu_nanos: AtomicU64,
    cpu_known: AtomicBool,
}

impl Counters {
    pub fn add(&self, n: u64) {
        self.downloaded.fetch_add(n, Ordering::Relaxed);
    }

    /// The file holds `n` bytes before this run fetches any (0 afresh).
    pub fn start_from(&self, n: u64) {
        self.kept.store(n, Ordering::Relaxed);
        self.downloaded.store(n, Ordering::Relaxed);
    }

    pub fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }

    pub fn set_total(&self, total: Option<u64>) {
        self.total.store(total.unwrap_or(0), Ordering::Relaxed);
        self.total_known.store(total.is_some(), Ordering::Relaxed);
    }

    /// A connection starts transferring.
    pub fn connection_started(&self) {
        let now = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    /// The most connections that transferred at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// A connection stops transferring.
    pub fn connection_ended(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// The download runs `n` workers (connections at most at once).
    pub fn set_workers(&self, n: usize) {
        self.workers.store(n, Ordering::Relaxed);
    }

    /// How many workers the download ran.
    pub fn workers(&self) -> usize {
        self.workers.load(Ordering::Relaxed)
    }

    /// A request for bytes is sent.
    pub fn request_sent(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` body bytes were read from the network (written or thrown away).
    pub fn received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    /// The body bytes read from the network this run.
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The CPU seconds the workers spent on requests so far, where the
    /// platform says.
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.cpu_known
            .load(Ordering::Relaxed)
            .then(|| self.cpu_nanos.load(Ordering::Relaxed) as f64 * 1e-9)
    }

    /// How many requests for bytes were sent.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// A snapshot at `elapsed` since the start, with the recent `rate`.
    pub fn snapshot(&self, elapsed: Duration, rate: Option<f64>, finished: bool) -> Snapshot {
        let downloaded = self.downloaded();
        Snapshot {
            downloaded,
            fetched: downloaded.saturating_sub(self.kept.load(Ordering::Relaxed)),
            total: self
                .total_known
                .load(Ordering::Relaxed)
                .then(|| self.total.load(Ordering::Relaxed)),
            elapsed,
            connections: self.active.load(Ordering::Relaxed),
            rate,
            finished,
        }
    }
}

/// The speed over a sliding window. Pure: it is told the time.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    /// `(time, bytes fetched)` samples, oldest first.
    samples: VecDeque<(Duration, u64)>,
    /// When the first byte was seen.
    first_byte: Option<Duration>,
}

impl RateWindow {
    /// Records that `fetched` bytes had arrived at `now`; the rate then.
    pub fn push(&mut self, now: Duration, fetched: u64) -> Option<f64> {
        if fetched > 0 && self.first_byte.is_none() {
            self.first_byte = Some(now);
        }
        // A restart (a single stream fetched again from its start) begins anew.
        if self.samples.back().is_some_and(|&(_, b)| b > fetched) {
            self.samples.clear();
            self.first_byte = (fetched > 0).then_some(now);
        }
        self.samples.push_back((now, fetched));
        // Keep one sample at or before the window's start.
        while self.samples.len() > 2 && now.saturating_sub(self.samples[1].0) >= RATE_WINDOW {
            self.samples.pop_front();
        }
        let since = self.first_byte?;
        if now.saturating_sub(since) < RATE_SETTLES {
            return None;
        }
        let &(t0, b0) = self.samples.front()?;
        // Bytes that came before the first one seen count from that moment.
        let t0 = t0.max(since.saturating_sub(TICK));
        let span = now.saturating_sub(t0).as_secs_f64();
        (span > 0.0).then(|| fetched.saturating_sub(b0) as f64 / span)
    }
}

/// Runs `callback` every `interval` until `done` is set, then once more with
/// `finished: true`. Sleeps with `park_timeout`, so whoever sets `done` should
/// `unpark` this thread to end it at once.
pub(crate) fn poll(
    counters: &Counters,
    started: Instant,
    interval: Duration,
    done: &AtomicBool,
    callback: &mut (dyn FnMut(&Snapshot) + Send),
) {
    let mut window = RateWindow::default();
    let mut snap = |finished| {
        let elapsed = started.elapsed();
        let fetched = counters.snapshot(elapsed, None, false).fetched;
        let rate = window.push(elapsed, fetched);
        counters.snapshot(elapsed, rate, finished)
    };
    while !done.load(Ordering::Acquire) {
        callback(&snap(false));
        thread::park_timeout(interval);
    }
    callback(&snap(true));
}

/// An `indicatif` progress bar on stderr, fed by snapshots: the name, the
/// percentage, a bar, bytes of the total, the recent speed, the ETA and the
/// time so far, the less needed fields left out so that the line fits the
/// terminal's width. It draws nothing when stderr is not a terminal.
pub struct TerminalBar {
    bar: Option<ProgressBar>,
    hidden: bool,
    name: String,
    width: usize,
    /// The group it is drawn in, if any, and whether it is the group's
    /// overall line (always the last).
    group: Option<(BarGroup, bool)>,
}

/// The bars of a list on stderr: a line per running download, and the
/// list's overall line under them; lines printed through it go above the
/// bars. Cheap to clone. Draws nothing when stderr is not a terminal (then
/// [`BarGroup::println`] prints plainly).
#[derive(Clone)]
pub struct BarGroup {
    multi: indicatif::MultiProgress,
    overall_shown: Arc<AtomicBool>,
}

impl BarGroup {
    /// A group on stderr.
    pub fn new() -> BarGroup {
        BarGroup {
            multi: indicatif::MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(
                10,
            )),
            overall_shown: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A bar for one download, shown above the overall line.
    pub fn bar(&self, name: impl Into<String>) -> TerminalBar {
        TerminalBar {
            group: Some((self.clone(), false)),
            ..TerminalBar::named(name)
        }
    }

    /// The overall line (fed with the list's figures).
    pub fn overall(&self, name: impl Into<String>) -> TerminalBar {
        TerminalBar {
            group: Some((self.clone(), true)),
            ..TerminalBar::named(name)
        }
    }

    /// Prints `line` on stderr above the bars.
    pub fn println(&self, line: &str) {
        if self.multi.is_hidden() || self.multi.println(line).is_err() {
            eprintln!("{line}");
        }
    }
}

impl Default for BarGroup {
    fn default() -> Self {
        BarGroup::new()
    }
}

impl TerminalBar {
    /// A bar on stderr.
    pub fn new() -> TerminalBar {
        TerminalBar {
            bar: None,
            hidden: false,
            name: String::new(),
            width: terminal_width(),
            group: None,
        }
    }

    /// A bar on stderr that shows `name` (the file's, say).
    pub fn named(name: impl Into<String>) -> TerminalBar {
        TerminalBar {
            name: name.into(),
            ..TerminalBar::new()
        }
    }

    /// Changes the name shown (from the next update).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// A bar that draws nothing (for `-q`).
    pub fn hidden() -> TerminalBar {
        TerminalBar {
            hidden: true,
            ..TerminalBar::new()
        }
    }

    /// Updates the bar from a snapshot. The bar is created at the first snapshot
    /// with bytes in it.
    pub fn update(&mut self, s: &Snapshot) {
        if self.hidden {
            return;
        }
        // One message holds the whole line, the bar drawn in it, so that
        // every frame indicatif draws is whole and fits the width.
        let (prefix, msg, bar_width) = line(&self.name, s, self.width);
        let text = format!("{prefix}{}{msg}", bar_glyphs(s, bar_width));
        if self.bar.is_none() && (s.downloaded > 0 || s.finished) {
            let bar = ProgressBar::with_draw_target(s.total, ProgressDrawTarget::hidden());
            let style = ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(text.clone());
            let bar = match &self.group {
                None => {
                    bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
                    bar
                }
                Some((g, true)) => {
                    g.overall_shown.store(true, Ordering::Release);
                    g.multi.add(bar)
                }
                Some((g, false)) if g.overall_shown.load(Ordering::Acquire) => {
                    g.multi.insert_from_back(1, bar)
                }
                Some((g, false)) => g.multi.add(bar),
            };
            self.bar = Some(bar);
        }
        let Some(bar) = &self.bar else { return };
        bar.set_message(text);
        if s.finished {
            bar.finish_and_clear();
            if let Some((g, _)) = &self.group {
                g.multi.remove(bar);
            }
        }
    }

    /// This bar as a progress callback.
    pub fn into_callback(mut self) -> ProgressFn {
        Box::new(move |s| self.update(s))
    }
}

impl Default for TerminalBar {
    fn default() -> Self {
        TerminalBar::new()
    }
}

/// The width of the terminal on stderr (80 when it cannot tell).
fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .ok()
        .map(|w| w.ws_col as usize)
        .filter(|&w| w > 0)
        .unwrap_or(80)
}

/// The bar itself, `width` columns: `=====>     `.
fn bar_glyphs(s: &Snapshot, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let done = s.complete_rate().unwrap_or(0.0);
    let full = ((width as f64) * done).floor() as usize;
    let mut out = "=".repeat(full.min(width));
    if full < width {
        out.push('>');
        out.push_str(&" ".repeat(width - full - 1));
    }
    out
}

/// `h:mm:ss` or `m:ss`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The text before and after the bar for `s` in `width` columns, and the
/// bar's width: fields dropped, least needed first, until the line (with a
/// bar of at least 10 columns, or none) fits, with two columns spare (one
/// for the space indicatif puts after a line, one so that the terminal
/// never wraps).
fn line(name: &str, s: &Snapshot, width: usize) -> (String, String, usize) {
    let room = width.saturating_sub(2);
    let percent = s
        .complete_rate()
        .map(|r| format!("{:3.0}% ", (r * 100.0).floor()));
    let bytes = match s.total {
        Some(t) => format!(" {}/{}", BinaryBytes(s.downloaded), BinaryBytes(t)),
        None => format!(" {}", BinaryBytes(s.downloaded)),
    };
    let speed = format!(
        " {}/s",
        s.rate
            .map_or("--".to_string(), |r| BinaryBytes(r as u64).to_string())
    );
    let eta = s.total.map(|_| match s.eta() {
        Some(d) => format!(" ETA {}", clock(d)),
        None => " ETA --".to_string(),
    });
    let elapsed = format!(" {}", clock(s.elapsed));
    let named = |max: usize| -> Option<String> {
        if name.is_empty() || max == 0 {
            return None;
        }
        let mut short: String = name.chars().take(max).collect();
        if short.chars().count() < name.chars().count() {
            short.pop();
            short.push('…');
        }
        Some(format!("{short} "))
    };
    // From the fullest line to the barest: the first that leaves a bar of
    // 10 columns wins. (name length, elapsed, bytes, ETA, speed)
    const LAYOUTS: [(usize, bool, bool, bool, bool); 9] = [
        (32, true, true, true, true),
        (20, true, true, true, true),
        (20, false, true, true, true),
        (12, false, true, true, true),
        (12, false, false, true, true),
        (0, false, false, true, true),
        (0, false, false, false, true),
        (0, false, false, false, false),
        (0, false, false, false, false),
    ];
    let build = |(n, el, by, et, sp): (usize, bool, bool, bool, bool)| {
        let prefix: String = [named(n), percent.clone()].into_iter().flatten().collect();
        let msg: String = [
            by.then(|| bytes.clone()),
            sp.then(|| speed.clone()),
            if et { eta.clone() } else { None },
            el.then(|| elapsed.clone()),
        ]
        .into_iter()
        .flatten()
        .collect();
        (prefix, msg)
    };
    let fits = |(p, m): &(String, String)| p.chars().count() + m.chars().count() + 10 <= room;
    let (prefix, msg) = LAYOUTS
        .iter()
        .map(|&l| build(l))
        .find(fits)
        .unwrap_or_else(|| build(LAYOUTS[LAYOUTS.len() - 1]));
    let used = prefix.chars().count() + msg.chars().count();
    let bar = if s.total.is_some() && used + 10 <= room {
        room - used
    } else {
        0
    };
    (prefix, msg, bar)
}

/// The CPU seconds the calling thread has used (user and system), for the
/// connection-count controller: `None` where the platform does not say.
/// Per thread, so that what else the process runs (a library caller's
/// work, a test's server) does not count as the download's.
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Some(t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A worker's share of [`Counters::cpu_seconds`]: it adds the CPU its
/// thread spent since the last look.
pub(crate) struct CpuMeter<'a> {
    counters: &'a Counters,
    last: Option<f64>,
}

impl<'a> CpuMeter<'a> {
    /// Starts counting the calling thread's CPU into `counters`.
    pub fn new(counters: &'a Counters) -> CpuMeter<'a> {
        CpuMeter {
            counters,
            last: thread_cpu_seconds(),
        }
    }

    /// Adds what the thread spent since the last look.
    pub fn look(&mut self) {
        if let (Some(last), Some(now)) = (self.last, thread_cpu_seconds()) {
            let nanos = ((now - last).max(0.0) * 1e9) as u64;
            self.counters.cpu_nanos.fetch_add(nanos, Ordering::Relaxed);
            self.counters.cpu_known.store(true, Ordering::Relaxed);
            self.last = Some(now);
        }
    }
}

impl Drop for CpuMeter<'_> {
    fn drop(&mut self) {
        self.look();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn snap(downloaded: u64, total: Option<u64>, rate: Option<f64>) -> Snapshot {
        Snapshot {
            downloaded,
            fetched: downloaded,
            total,
            elapsed: Duration::from_secs(2),
            connections: 1,
            rate,
            finished: false,
        }
    }

    #[test]
    fn complete_rate_speed_and_eta() {
        let mut s = snap(50, Some(200), Some(25.0));
        assert_eq!(s.complete_rate(), Some(0.25));
        assert_eq!(s.bytes_per_second(), 25.0);
        assert_eq!(s.average_bytes_per_second(), 25.0);
        assert_eq!(s.eta(), Some(Duration::from_secs(6)));
        s.rate = Some(0.0);
        assert_eq!(s.eta(), None, "no ETA when nothing arrives");
        s.total = Some(0);
        assert_eq!(s.complete_rate(), Some(1.0));
        s.total = None;
        assert_eq!(s.complete_rate(), None);
        assert_eq!(s.eta(), None);
    }

    #[test]
    fn the_rate_is_recent_settles_first_and_decays_to_zero() {
        let ms = Duration::from_millis;
        let mut w = RateWindow::default();
        // A burst in the first instant says nothing yet.
        assert_eq!(w.push(ms(0), 0), None);
        assert_eq!(w.push(ms(100), 5_000_000), None);
        // Then 1 MB every 100 ms: 10 MB/s.
        let mut rate = None;
        for i in 2..=40u64 {
            rate = w.push(ms(100 * i), 5_000_000 + (i - 1) * 1_000_000);
        }
        let r = rate.unwrap();
        assert!((r - 10e6).abs() < 0.5e6, "{r}");
        // Silence: within the window the rate falls, after it, it is zero.
        let last = 5_000_000 + 39 * 1_000_000;
        let mut t = 4000;
        let mut seen = Vec::new();
        while t < 8000 {
            t += 100;
            seen.push(w.push(ms(t), last).unwrap());
        }
        assert!(seen.windows(2).all(|p| p[1] <= p[0]), "{seen:?}");
        assert_eq!(*seen.last().unwrap(), 0.0);
    }

    #[test]
    fn a_resume_is_not_counted_as_speed() {
        // 12 MB were on disk; 200 KB/s come in.
        let c = Counters::default();
        c.set_total(Some(100_000_000));
        c.start_from(12_000_000);
        let mut w = RateWindow::default();
        let mut rate = None;
        for i in 0..=30u64 {
            c.add(if i == 0 { 0 } else { 20_000 });
            let s = c.snapshot(Duration::from_millis(100 * i), None, false);
            rate = w.push(Duration::from_millis(100 * i), s.fetched);
        }
        let s = c.snapshot(Duration::from_secs(3), rate, false);
        assert_eq!(s.fetched, 600_000);
        assert_eq!(s.downloaded, 12_600_000);
        let r = s.rate.unwrap();
        assert!((r - 200_000.0).abs() < 20_000.0, "{r}");
        let eta = s.eta().unwrap().as_secs();
        assert!((400..500).contains(&eta), "{eta} s");
    }

    #[test]
    fn the_line_fits_the_width() {
        let big = snap(157 << 20, Some(1 << 40), Some(157.15 * 1048576.0));
        for width in [40, 50, 60, 70, 80, 100, 200] {
            let (p, m, bar) = line("a-rather-long-file-name-of-a-download.iso", &big, width);
            let used = p.chars().count() + m.chars().count() + bar;
            assert_eq!(used, width - 2, "{width}: {p:?} {m:?} {bar}");
            assert!(bar >= 10, "{width}: {bar}");
        }
        let (p, m, _) = line("f.iso", &big, 80);
        assert!(p.contains("f.iso") && p.contains('%'), "{p}");
        assert!(m.contains("MiB/s") && m.contains("ETA"), "{m}");
        // Narrow: the percentage stays, the rest goes.
        let (p, m, _) = line("f.iso", &big, 30);
        assert!(p.contains('%'), "{p:?} {m:?}");
        assert_eq!(bar_glyphs(&snap(1, Some(4), None), 8), "==>     ");
        assert_eq!(bar_glyphs(&snap(4, Some(4), None), 8), "========");
    }

    #[test]
    fn poller_ends_at_once_when_unparked_and_reports_final_state() {
        let counters = Arc::new(Counters::default());
        counters.set_total(Some(10));
        let done = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, d, s) = (counters.clone(), done.clone(), seen.clone());
        let started = Instant::now();
        let h = thread::spawn(move || {
            let mut cb = |snap: &Snapshot| s.lock().unwrap().push(*snap);
            // An hour between ticks: only the unpark can end this in time.
            poll(&c, started, Duration::from_secs(3600), &d, &mut cb);
        });
        counters.add(10);
        done.store(true, Ordering::Release);
        let t = Instant::now();
        h.thread().unpark();
        h.join().unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "poller slept past the end"
        );
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert!(last.finished);
        assert_eq!(last.downloaded, 10);
        assert_eq!(seen.iter().filter(|s| s.finished).count(), 1);
    }
}
