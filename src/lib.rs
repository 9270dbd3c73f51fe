//! rangeget downloads a file over HTTP(S) with many connections at once.
//!
//! ```no_run
//! use rangeget::Download;
//!
//! let summary = Download::new("https://example.com/big.iso")
//!     .connections(8)
//!     .dir("downloads")
//!     .progress(|s| {
//!         if let Some(done) = s.complete_rate() {
//!             eprint!("\r{:5.1} %", done * 100.0);
//!         }
//!     })
//!     .run()?;
//! println!("saved {} ({} bytes)", summary.path.display(), summary.bytes);
//! # Ok::<(), rangeget::Error>(())
//! ```
//!
//! Every failure is one [`Error`]; its [`Error::exit_code`] is what the
//! `rangeget` command exits with. A [`Session`] (headers, timeouts, TLS, one
//! cookie jar) can be shared by several downloads, and a [`CancelHandle`]
//! stops a running one from another thread.
//!
//! # How a download flows
//!
//! The data runs one way, one module per stage:
//!
//! ```text
//! URL ──► probe ──► plan ──► workers (N threads) ──► output file ──► finish
//!          └── session: headers, cookie jar, redirects ──► transport (own connections | ureq)
//! progress: workers bump atomic counters; a timer thread polls them
//! ```
//!
//! 1. `probe`: one request learns the length, range support, validators,
//!    final URL and `Content-Disposition`.
//! 2. `plan`: pure code that splits `[0, len)` into segments, re-splits them
//!    when a worker runs dry (work stealing), takes a silent request over
//!    (the endgame), and keeps each segment's retry budget.
//! 3. `worker`: threads that fetch ranges, judge each answer once for every
//!    transport, and write the bytes at their offsets; or one stream when
//!    ranges are not served.
//! 4. `output` and `checkpoint`: `NAME.part`, preallocated, and its control
//!    file `NAME.rangeget` (`state`), recorded as the download goes.
//! 5. `download`: the finish: checksums, the rename to `NAME`.
//!
//! How many workers fetch at once is the `controller`'s to say (pure code:
//! start with 8, double while the aggregate rate rises by at least a
//! quarter of perfect scaling, shed those that bring nothing, back off on
//! `429`/`503`), unless [`Download::connections`] asks for an exact count.
//!
//! Many downloads run as a [`Batch`] (`batch`, the command's list and
//! `-i FILE`, whose format `list` reads): up to `parallel` at once, one
//! session, and the connection budgets of `schedule` (a global ceiling and
//! one per host that all downloads to the host share).
//!
//! Beside the flow: `session` (headers, cookies, redirects) over
//! `transport` (the seam: rangeget's own HTTP/1.1 connections for plain
//! http, ureq for https and proxies), `progress` (counters, a timer,
//! [`Snapshot`], [`TerminalBar`]), and [`urlparse`] (Python's
//! `urllib.parse`). Under everything, the ground floor that every stage
//! shares: `error`, `cancel`, `http` (header rules), `retry` (the one
//! retry policy) and `schedule` (connection budgets, pure).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The ground floor: what every stage shares.
mod cancel;
mod error;
mod http;
mod ratelimit;
mod retry;
mod schedule;

// Beside the flow.
mod cookies;
mod event;
mod progress;
mod session;
mod transport;
pub mod urlparse;

// The stages, in the order data passes through them.
mod batch;
mod checkpoint;
mod checksum;
mod controller;
mod download;
mod list;
mod stream;

#[cfg(test)]
mod fuzz;
mod output;
mod plan;
mod probe;
mod state;
mod worker;

pub use batch::{
    Batch, BatchProgress, BatchSummary, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_HOST,
    DEFAULT_PARALLEL,
};
pub use cancel::CancelHandle;
pub use checkpoint::{CHECKPOINT_EVERY, SYNC_EVERY};
pub use checksum::Checksum;
pub use download::{
    DEFAULT_CONNECTIONS, DEFAULT_RETRIES, Download, MAX_CONNECTIONS, NoticeFn, Summary,
};
pub use error::Error;
pub use event::{Event, NoticeKind, Status};
pub use http::parse_url;
pub use list::{Entry, MAX_LINE, MAX_LIST_BYTES, parse_list};
pub use output::Allocation;
pub use probe::{RangeSupport, Resource};
pub use progress::{BarGroup, ProgressFn, RATE_SETTLES, RATE_WINDOW, Snapshot, TerminalBar};
pub use ratelimit::parse_rate;
pub use session::{
    Cookie, DEFAULT_USER_AGENT, Engine, MAX_REDIRECTS, Page, Session, SessionBuilder,
};

/// Internals with no stability promise: what the download's stages are made
/// of, for tests, tools and the curious. They may change in any release, as
/// ureq's `unversioned` does.
pub mod unversioned {
    pub use crate::controller::{
        CPU_BOUND, CPU_LOOK, GAIN, RECHECK, SETTLE, SHED_LOSS, START, WINDOW,
    };
    pub use crate::output::{
        DEFAULT_NAME, MAX_NAME, name_from_content_disposition, name_from_url, part_path, sanitize,
    };
    pub use crate::plan::{
        Assignment, CUT_SECONDS, CUT_SLOWER, FIRST_REQUEST, IDLE_GAP, MIN_SEGMENT, MIN_STEAL, Plan,
        REQUEST_LATENCIES, REQUEST_SECONDS, SHARE_DIVISOR, STALL_LATENCIES, STALLED_AFTER, Segment,
        segment_count,
    };
    pub use crate::retry::{
        Budget, FLOOR_BYTES, MAX_RETRY_WAIT, RENEWING_PROGRESS, max_backoff_total,
    };
    pub use crate::state::{MAX_RANGES, MAX_STATE_BYTES, State, state_path};
    pub use crate::transport::{
        BUFFER_BUDGET, TLS_SOCKET_BUFFER, UREQ_OUTPUT_BUFFER, buffer_size, ureq_buffer_size,
    };
    pub use crate::worker::{CLOSE_GRACE, IDLE_LOOK, MIRROR_STRIKES};
}
