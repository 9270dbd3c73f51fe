//! `--limit-rate`: one token bucket for all the connections of a download.
//!
//! A reader asks for up to as many bytes as it would read; it gets what the
//! bucket holds (waiting until it holds something), reads at most that
//! much, and gives back what it did not read. The bucket fills at the rate
//! and holds at most a tenth of a second of it (at least 16 KiB): a stall
//! shorter than that (the machine busy elsewhere) is caught up at once, a
//! longer pause never turns into a burst of more than that. The kernel is kept from pulling far ahead
//! of the limit by a small receive buffer on each socket
//! ([`RateLimit::socket_buffer`]): what the server sees is the rate.
//!
//! Ground floor: the bucket is pure; [`RateLimit::take`] sleeps.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cancel::CancelHandle;

/// A rate limit shared by every connection of a download.
#[derive(Debug)]
pub(crate) struct RateLimit {
    rate: f64,
    bucket: Mutex<Bucket>,
    started: Instant,
}

/// The bucket, on the caller's clock (seconds).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: f64,
}

impl Bucket {
    /// A bucket filling at `rate` bytes per second, empty at time `now`.
    pub fn new(rate: f64, now: f64) -> Bucket {
        Bucket {
            rate,
            capacity: (rate / 10.0).max(16.0 * 1024.0),
            tokens: 0.0,
            at: now,
        }
    }

    fn fill(&mut self, now: f64) {
        if now > self.at {
            self.tokens = (self.tokens + (now - self.at) * self.rate).min(self.capacity);
            self.at = now;
        }
    }

    /// Takes up to `want` bytes at `now`: how many may be read now, or how
    /// long to wait (seconds) before asking again.
    pub fn take(&mut self, want: usize, now: f64) -> Result<usize, f64> {
        self.fill(now);
        if self.tokens >= 1.0 {
            let n = (self.tokens.floor() as usize).min(want).max(1);
            self.tokens -= n as f64;
            Ok(n)
        } else {
            Err((1.0 - self.tokens) / self.rate)
        }
    }

    /// Gives back `n` bytes taken but not read.
    pub fn give_back(&mut self, n: usize) {
        self.tokens = (self.tokens + n as f64).min(self.capacity);
    }
}

impl RateLimit {
    /// A limit of `bytes_per_second` in all.
    pub fn new(bytes_per_second: u64) -> RateLimit {
        let rate = bytes_per_second.max(1) as f64;
        RateLimit {
            rate,
            bucket: Mutex::new(Bucket::new(rate, 0.0)),
            started: Instant::now(),
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until some bytes may be read, and takes up to `want` of them;
    /// 0 when cancelled meanwhile.
    pub fn take(&self, want: usize, cancel: &CancelHandle) -> usize {
        loop {
            let now = self.started.elapsed().as_secs_f64();
            match self.bucket().take(want, now) {
                Ok(n) => return n,
                Err(wait) => {
                    if cancel.is_cancelled() {
                        return 0;
                    }
                    std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.0005, 0.05)));
                }
            }
        }
    }

    /// Gives back bytes taken but not read.
    pub fn give_back(&self, n: usize) {
        if n > 0 {
            self.bucket().give_back(n);
        }
    }

    /// The receive buffer for each of `connections` sockets: about a tenth
    /// of a second of the limit between them, so that the kernel does not
    /// take far more than the limit off the wire.
    pub fn socket_buffer(&self, connections: usize) -> usize {
        ((self.rate / 10.0) as usize / connections.max(1)).clamp(8 << 10, 1 << 20)
    }
}

/// Parses a rate as `--limit-rate` takes it: bytes per second, with an
/// optional `K`, `M` or `G` (powers of 1024, as curl and wget read them).
pub fn parse_rate(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((i, _)) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    };
    let n: f64 = digits.parse().ok()?;
    let mul = match unit
        .to_ascii_lowercase()
        .trim_end_matches("b")
        .trim_end_matches("i")
    {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = n * mul;
    (v >= 1.0 && v.is_finite()).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_the_rate_on_a_simulated_clock() {
        // Readers that always want 64 KiB, at 10 MB/s, over 10 simulated
        // seconds: what they get is the rate, and never a burst.
        let rate = 10e6;
        let mut b = Bucket::new(rate, 0.0);
        let mut now = 0.0;
        let mut got = 0u64;
        let mut per_second = [0u64; 10];
        while now < 10.0 {
            match b.take(64 << 10, now) {
                Ok(n) => {
                    got += n as u64;
                    per_second[now as usize] += n as u64;
                    assert!(n as f64 <= (rate / 10.0).max(16384.0) + 1.0);
                }
                Err(wait) => now += wait.max(0.0005),
            }
        }
        assert!((got as f64 - 10.0 * rate).abs() < rate * 0.01, "{got}");
        for (s, n) in per_second.iter().enumerate() {
            assert!((*n as f64 - rate).abs() < rate * 0.02, "second {s}: {n}");
        }
    }

    #[test]
    fn a_long_pause_is_no_burst() {
        let mut b = Bucket::new(1e6, 0.0);
        assert!(b.take(1 << 20, 0.0).is_err());
        let n = b.take(1 << 20, 3600.0).unwrap();
        assert!(n <= 100_000, "{n}");
        b.give_back(n);
        assert_eq!(b.take(1 << 20, 3600.0).unwrap(), n);
    }

    #[test]
    fn rates_parse_as_curl_reads_them() {
        assert_eq!(parse_rate("500K"), Some(512_000));
        assert_eq!(parse_rate("10M"), Some(10 << 20));
        assert_eq!(parse_rate("1.5m"), Some(1_572_864));
        assert_eq!(parse_rate("2G"), Some(2 << 30));
        assert_eq!(parse_rate("12345"), Some(12345));
        assert_eq!(parse_rate("10MB"), Some(10 << 20));
        assert_eq!(parse_rate("10MiB"), Some(10 << 20));
        assert_eq!(parse_rate("0"), None);
        assert_eq!(parse_rate("fast"), None);
        assert_eq!(parse_rate("10X"), None);
    }
}
