//! rangeget downloads a file over HTTP(S) with many connections at once.
//!
//! The flow runs one way, one module per stage:
//!
//! ```text
//! URL ──► probe ──► plan ──► workers (N threads) ──► output file ──► finish
//!          └── session: one ureq Agent + one cookie jar, shared by all ──┘
//! progress: workers bump atomic counters; a timer thread polls them
//! ```
//!
//! - [`probe`]: one request learns the length, range support, validators,
//!   final URL and `Content-Disposition`.
//! - [`plan`]: pure code that splits `[0, len)` into segments and re-splits
//!   them when a worker runs dry (work stealing).
//! - `worker`: threads that fetch ranges and write them at their offsets
//!   (`FileExt::write_all_at`), or one stream when ranges are not served.
//! - [`output`]: `NAME.part`, renamed to `NAME` only when complete.
//! - [`session`]: the agent and cookie jar; [`progress`]: counters, a timer,
//!   snapshots and the terminal bar; [`urlparse`]: Python's `urllib.parse`.
//!
//! # Example
//!
//! Download a file from a local server over four connections, watching the
//! progress:
//!
//! ```
//! use rangeget::Download;
//! use rangeget_fixture::{FixtureServer, FileOptions, pseudo_random_bytes};
//!
//! let server = FixtureServer::start().unwrap();
//! let body = pseudo_random_bytes(3_000_000, 7);
//! server.file("/data.bin", body.clone(), FileOptions::default());
//! let dir = tempfile::tempdir().unwrap();
//!
//! let summary = Download::new(server.url("/data.bin"))
//!     .connections(4)
//!     .dir(dir.path())
//!     .progress(|s| {
//!         if s.finished {
//!             println!("{} of {:?} bytes", s.downloaded, s.total);
//!         }
//!     })
//!     .run()?;
//!
//! assert_eq!(summary.path, dir.path().join("data.bin"));
//! assert_eq!(std::fs::read(&summary.path).unwrap(), body);
//! assert!(summary.segmented);
//! # Ok::<(), rangeget::Error>(())
//! ```

#![warn(missing_docs)]

pub mod checksum;
pub mod cookies;
mod download;
mod error;
pub mod output;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod session;
pub mod state;
pub mod urlparse;
mod wire;
mod worker;

pub use checksum::Checksum;
pub use download::{
    CHECKPOINT_EVERY, CancelHandle, DEFAULT_CONNECTIONS, DEFAULT_RETRIES, Download,
    MAX_CONNECTIONS, NoticeFn, SYNC_EVERY, Summary, parse_url,
};
pub use error::Error;
pub use progress::{Snapshot, TerminalBar};
pub use session::{Page, Session};
