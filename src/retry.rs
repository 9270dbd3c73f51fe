//! The retry policy, in one place: what a failure means (worth another try or
//! not), how long to wait before the next try (backoff with jitter, or the
//! server's `Retry-After`), what counts as a stalled connection, and the
//! budget of tries.
//!
//! A budget belongs to the bytes, not to the thread that fetches them: the
//! plan keeps one per segment, and a segment keeps its failures when it is
//! stolen from or taken over. Only real progress renews it
//! ([`RENEWING_PROGRESS`]), so a body cut short at the same place again and
//! again ends after `retries` more tries, whatever the number of connections.
//!
//! Ground floor: no I/O here (the stall watch reads the clock).

use std::time::{Duration, Instant};

use url::Url;

use crate::error::Error;
use crate::http::{self, HeaderMap};

/// Whether an HTTP status may go away on its own, so that the request is worth
/// retrying: 408, 429 and every 5xx.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// A failed attempt, judged: the error to report if no retry is left, and
/// whether (and after how long at least) another try may help.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What went wrong.
    pub error: Error,
    /// Whether another try may help.
    pub retry: bool,
    /// The server's `Retry-After`, if it sent one.
    pub after: Option<Duration>,
}

impl Failure {
    /// Judges an error by the one rule: transient network trouble (a reset,
    /// a timeout, a stall, a body cut short) and retryable statuses are worth
    /// another try; a host that does not resolve, a refused connection, a
    /// TLS failure, a broken protocol or a local error are not.
    pub fn judge(error: Error) -> Failure {
        let retry = match &error {
            Error::Network { transient, .. } => *transient,
            Error::HttpStatus { status, .. } => retryable_status(*status),
            _ => false,
        };
        Failure {
            error,
            retry,
            after: None,
        }
    }

    /// An error answer: retried when the status may pass, after the server's
    /// `Retry-After` if it gave one.
    pub fn status(url: &Url, status: u16, headers: &HeaderMap) -> Failure {
        Failure {
            after: http::retry_after(headers),
            ..Failure::judge(Error::HttpStatus {
                url: url.to_string(),
                status,
            })
        }
    }

    /// A failure that is always worth another try (a body cut short).
    pub fn transient(error: Error) -> Failure {
        Failure {
            error,
            retry: true,
            after: None,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::judge(e)
    }
}

/// How many bytes one attempt must deliver for its failure not to count
/// against the retry budget.
pub const RENEWING_PROGRESS: u64 = 1 << 20;

/// The tries spent on some bytes: failed attempts since the last one that
/// delivered [`RENEWING_PROGRESS`] bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    failures: u32,
}

impl Budget {
    /// Records a failed attempt that delivered `progress` bytes, and returns
    /// the number of failures in a row now counted.
    pub fn fail(&mut self, progress: u64) -> u32 {
        if progress >= RENEWING_PROGRESS {
            self.failures = 0;
        }
        self.failures += 1;
        self.failures
    }

    /// Failures counted so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether `retries` retries have been spent: the next failure is final.
    pub fn exhausted(&self, retries: u32) -> bool {
        self.failures > retries
    }
}

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

/// The longest any `retries` retries can wait in all, by the backoff alone.
pub fn max_backoff_total(retries: u32) -> Duration {
    (1..=retries).map(|n| backoff(n).mul_f64(1.25)).sum()
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

/// A connection that delivers fewer bytes than this within the read timeout
/// counts as stalled, even if it never goes fully silent (a server dripping
/// a byte at a time must not hang the download): curl's `--speed-limit`.
pub const FLOOR_BYTES: u64 = 1024;

/// Watches one response body for a stall: fewer than [`FLOOR_BYTES`] in a
/// window of the read timeout.
pub(crate) struct StallWatch {
    window: Duration,
    since: Instant,
    bytes: u64,
}

impl StallWatch {
    /// A watch over windows of `window` (the read timeout).
    pub fn new(window: Duration) -> StallWatch {
        StallWatch {
            window,
            since: Instant::now(),
            bytes: 0,
        }
    }

    /// Starts a new window: the time before did not count (the reader
    /// waited, not the connection).
    pub fn restart(&mut self) {
        self.since = Instant::now();
        self.bytes = 0;
    }

    /// Counts `n` bytes; the error to retry with when the window closed
    /// with too few.
    pub fn count(&mut self, n: usize, url: &Url) -> Result<(), Failure> {
        self.bytes += n as u64;
        if self.since.elapsed() < self.window {
            return Ok(());
        }
        let slow = self.bytes < FLOOR_BYTES;
        self.since = Instant::now();
        self.bytes = 0;
        if slow {
            return Err(Failure::transient(Error::Network {
                url: url.to_string(),
                reason: format!(
                    "the connection stalled: fewer than {FLOOR_BYTES} bytes in {:.0} s",
                    self.window.as_secs_f64()
                ),
                transient: true,
            }));
        }
        Ok(())
    }
}

/// What a failed body read means: a timeout is a stall, an early end a body
/// cut short (`short` bytes missing, when known), anything else a broken
/// connection. All of them are worth another try.
pub(crate) fn body_failure(
    e: &std::io::Error,
    url: &Url,
    window: Duration,
    short: Option<u64>,
) -> Failure {
    use std::io::ErrorKind::*;
    match e.kind() {
        TimedOut | WouldBlock => Failure::transient(Error::Network {
            url: url.to_string(),
            reason: format!(
                "the connection stalled: no data for {:.0} s",
                window.as_secs_f64()
            ),
            transient: true,
        }),
        UnexpectedEof => Failure::transient(cut_short(url, short)),
        _ => Failure::transient(Error::Network {
            url: url.to_string(),
            reason: format!("connection broke: {e}"),
            transient: true,
        }),
    }
}

/// A body that ended before its last byte: the server broke its promise.
pub(crate) fn cut_short(url: &Url, short: Option<u64>) -> Error {
    Error::protocol(
        url,
        match short {
            Some(n) => format!("the body ended early, {n} bytes short"),
            None => "the body ended early".to_string(),
        },
    )
}

/// The error to report when the tries on some bytes are spent: the last
/// one's, saying how many tries failed in a row.
pub(crate) fn gave_up(e: Error, tries: u32) -> Error {
    let again = |reason: String| {
        if tries > 1 {
            format!("{reason} ({tries} tries in a row failed)")
        } else {
            reason
        }
    };
    match e {
        Error::Network {
            url,
            reason,
            transient,
        } => Error::Network {
            url,
            reason: again(reason),
            transient,
        },
        Error::Protocol { url, reason } => Error::Protocol {
            url,
            reason: again(reason),
        },
        other => other,
    }
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
        assert_eq!(
            max_backoff_total(2),
            Duration::from_millis(937) + Duration::from_micros(500)
        );
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
    }

    #[test]
    fn one_rule_for_what_is_retried() {
        let url = Url::parse("http://h/f").unwrap();
        let net = |transient| Error::Network {
            url: url.to_string(),
            reason: "x".into(),
            transient,
        };
        assert!(Failure::judge(net(true)).retry);
        assert!(!Failure::judge(net(false)).retry);
        for (s, r) in [
            (503, true),
            (429, true),
            (408, true),
            (500, true),
            (404, false),
            (403, false),
        ] {
            assert_eq!(Failure::status(&url, s, &HeaderMap::new()).retry, r, "{s}");
        }
        assert!(!Failure::judge(Error::protocol(&url, "bad")).retry);
        assert!(Failure::transient(cut_short(&url, Some(3))).retry);
    }

    #[test]
    fn only_progress_renews_a_budget() {
        let mut b = Budget::default();
        assert_eq!(b.fail(10), 1);
        assert_eq!(b.fail(RENEWING_PROGRESS - 1), 2);
        assert!(b.exhausted(1));
        assert!(!b.exhausted(2));
        assert_eq!(b.fail(RENEWING_PROGRESS), 1);
        assert_eq!(b.failures(), 1);
    }
}
