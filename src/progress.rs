//! Progress: workers bump atomic counters; one timer thread polls them about ten
//! times a second and hands a [`Snapshot`] to a callback. The command line's
//! callback draws an `indicatif` bar ([`TerminalBar`]); a library caller can pass
//! any closure and never touch indicatif.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the timer polls the counters.
pub const TICK: Duration = Duration::from_millis(100);

/// A progress callback: called on every tick and once more at the end.
pub type ProgressFn = Box<dyn FnMut(&Snapshot) + Send>;

/// The state of a download at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    /// Bytes received and written so far.
    pub downloaded: u64,
    /// The total, when known.
    pub total: Option<u64>,
    /// Time since the transfer started.
    pub elapsed: Duration,
    /// Connections transferring right now.
    pub connections: usize,
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

    /// The average speed so far, in bytes per second.
    pub fn bytes_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.downloaded as f64 / secs
        } else {
            0.0
        }
    }
}

/// The counters that workers bump. Lock-free.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    downloaded: AtomicU64,
    total: AtomicU64,
    total_known: AtomicBool,
    active: AtomicUsize,
    max_active: AtomicUsize,
}

impl Counters {
    pub fn add(&self, n: u64) {
        self.downloaded.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set_downloaded(&self, n: u64) {
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
        self.max_active.fetch_max(now, Ordering::Relaxed);
    }

    /// A connection stops transferring.
    pub fn connection_ended(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// The most connections that transferred at once.
    pub fn max_connections(&self) -> usize {
        self.max_active.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self, started: Instant, finished: bool) -> Snapshot {
        Snapshot {
            downloaded: self.downloaded(),
            total: self
                .total_known
                .load(Ordering::Relaxed)
                .then(|| self.total.load(Ordering::Relaxed)),
            elapsed: started.elapsed(),
            connections: self.active.load(Ordering::Relaxed),
            finished,
        }
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
    while !done.load(Ordering::Acquire) {
        callback(&counters.snapshot(started, false));
        thread::park_timeout(interval);
    }
    callback(&counters.snapshot(started, true));
}

/// An `indicatif` progress bar on stderr, fed by snapshots: bytes, total, speed
/// and ETA, or a spinner with bytes and speed when the total is unknown. It
/// draws nothing when stderr is not a terminal.
pub struct TerminalBar {
    bar: Option<ProgressBar>,
    hidden: bool,
}

impl TerminalBar {
    /// A bar on stderr.
    pub fn new() -> TerminalBar {
        TerminalBar {
            bar: None,
            hidden: false,
        }
    }

    /// A bar that draws nothing (for `-q`).
    pub fn hidden() -> TerminalBar {
        TerminalBar {
            bar: None,
            hidden: true,
        }
    }

    /// Updates the bar from a snapshot. The bar is created at the first snapshot
    /// with bytes in it, so that its speed estimate starts with the transfer.
    pub fn update(&mut self, s: &Snapshot) {
        if self.hidden {
            return;
        }
        if self.bar.is_none() && (s.downloaded > 0 || s.finished) {
            self.bar = Some(make_bar(s.total));
        }
        let Some(bar) = &self.bar else { return };
        if let Some(t) = s.total
            && bar.length() != Some(t)
        {
            bar.set_length(t);
        }
        bar.set_position(s.downloaded);
        if s.finished {
            bar.finish_and_clear();
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

fn make_bar(total: Option<u64>) -> ProgressBar {
    let target = ProgressDrawTarget::stderr_with_hz(10);
    match total {
        Some(t) => {
            let bar = ProgressBar::with_draw_target(Some(t), target);
            // The template is a literal that is known to parse.
            let style = ProgressStyle::with_template(
                "{bar:40.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} ",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        }
        None => {
            let bar = ProgressBar::with_draw_target(None, target);
            let style =
                ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec} {elapsed} ")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn complete_rate() {
        let mut s = Snapshot {
            downloaded: 50,
            total: Some(200),
            elapsed: Duration::from_secs(2),
            connections: 1,
            finished: false,
        };
        assert_eq!(s.complete_rate(), Some(0.25));
        assert_eq!(s.bytes_per_second(), 25.0);
        s.total = Some(0);
        assert_eq!(s.complete_rate(), Some(1.0));
        s.total = None;
        assert_eq!(s.complete_rate(), None);
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
