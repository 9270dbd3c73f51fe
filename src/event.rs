//! What a download tells as it goes, as typed events for library callers
//! ([`crate::Download::on_event`]) and as one JSON object per line for
//! `--json` ([`Event::to_json`]). The JSON field names are stable; the
//! README documents them.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::progress::Snapshot;

/// What a notice is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoticeKind {
    /// Fewer connections than asked, or one stream: how the server serves.
    Fallback,
    /// A partial download found and resumed, or not.
    Resume,
    /// The file changed on the server: starting over.
    Restart,
    /// A request failed and its bytes will be asked again.
    Retry,
    /// A silent request's bytes were taken over by another connection.
    Takeover,
    /// Anything else worth knowing (a URL without a scheme, cookies left
    /// out, a file complete already, progress not recorded).
    Info,
}

impl NoticeKind {
    /// The name in JSON: `fallback`, `resume`, `restart`, `retry`,
    /// `takeover` or `info`.
    pub fn name(self) -> &'static str {
        match self {
            NoticeKind::Fallback => "fallback",
            NoticeKind::Resume => "resume",
            NoticeKind::Restart => "restart",
            NoticeKind::Retry => "retry",
            NoticeKind::Takeover => "takeover",
            NoticeKind::Info => "info",
        }
    }
}

/// How a download ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every byte is in the file (or it was complete already).
    Ok,
    /// Stopped by its cancel handle (Ctrl-C).
    Cancelled,
    /// Failed: the error, as the command prints it.
    Error(String),
}

/// One event of a download.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// The probe is done and the transfer begins.
    Start {
        /// The URL asked for.
        url: String,
        /// The URL that answered, after redirects.
        final_url: String,
        /// The file's length, when the server gave one.
        length: Option<u64>,
        /// The connections the transfer uses (1: one stream).
        connections: usize,
        /// Bytes a resume found in the file already.
        resumed: u64,
        /// Where the file goes (`NAME`, written as `NAME.part` until done).
        path: PathBuf,
    },
    /// About ten times a second, and once at the end of the transfer.
    Progress(Snapshot),
    /// Something the user should know.
    Notice {
        /// What it is about.
        kind: NoticeKind,
        /// In words.
        message: String,
    },
    /// The download ended, well or not: always the last event.
    End {
        /// How.
        status: Status,
        /// The file, when there is one.
        path: Option<PathBuf>,
        /// Its size, when it is complete.
        bytes: Option<u64>,
        /// Bytes fetched by this run.
        fetched: u64,
        /// Body bytes read from the network by this run, kept or thrown
        /// away ([`Summary::received`](crate::Summary::received)), when the
        /// download ended well.
        received: Option<u64>,
        /// Its SHA-256 in hex, when one was computed (a checksum was
        /// expected).
        sha256: Option<String>,
        /// What the command exits with.
        exit_code: u8,
    },
}

fn secs(d: std::time::Duration) -> Value {
    json!((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl Event {
    /// The event as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        let v = match self {
            Event::Start {
                url,
                final_url,
                length,
                connections,
                resumed,
                path,
            } => json!({
                "event": "start",
                "url": crate::error::redact(url),
                "final_url": crate::error::redact(final_url),
                "length": length,
                "connections": connections,
                "resumed": resumed,
                "path": path.to_string_lossy(),
            }),
            Event::Progress(s) => json!({
                "event": "progress",
                "downloaded": s.downloaded,
                "fetched": s.fetched,
                "total": s.total,
                "speed": s.rate.map(|r| r.round() as u64),
                "eta": s.eta().map(secs),
                "elapsed": secs(s.elapsed),
                "connections": s.connections,
            }),
            Event::Notice { kind, message } => json!({
                "event": "notice",
                "kind": kind.name(),
                "message": message,
            }),
            Event::End {
                status,
                path,
                bytes,
                fetched,
                received,
                sha256,
                exit_code,
            } => {
                let (name, error) = match status {
                    Status::Ok => ("ok", None),
                    Status::Cancelled => ("cancelled", None),
                    Status::Error(e) => ("error", Some(e.as_str())),
                };
                json!({
                    "event": "end",
                    "status": name,
                    "error": error,
                    "path": path.as_ref().map(|p| p.to_string_lossy()),
                    "bytes": bytes,
                    "fetched": fetched,
                    "received": received,
                    "sha256": sha256,
                    "exit_code": exit_code,
                })
            }
        };
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn events_are_one_line_of_json_each_with_stable_names() {
        let start = Event::Start {
            url: "http://ann:pw@h/f".into(),
            final_url: "http://h/f".into(),
            length: Some(10),
            connections: 4,
            resumed: 2,
            path: "f".into(),
        };
        let j: Value = serde_json::from_str(&start.to_json()).unwrap();
        assert_eq!(j["event"], "start");
        assert_eq!(j["url"], "http://ann:***@h/f", "no password in the output");
        assert_eq!(
            (j["length"].as_u64(), j["connections"].as_u64()),
            (Some(10), Some(4))
        );
        let progress = Event::Progress(Snapshot {
            downloaded: 5,
            fetched: 3,
            total: Some(10),
            elapsed: Duration::from_millis(1500),
            connections: 2,
            rate: Some(2.5),
            finished: false,
        });
        let j: Value = serde_json::from_str(&progress.to_json()).unwrap();
        assert_eq!(j["eta"], 2.0);
        assert_eq!(j["speed"], 3);
        assert_eq!(j["elapsed"], 1.5);
        let end = Event::End {
            status: Status::Error("x\ny".into()),
            path: None,
            bytes: None,
            fetched: 0,
            received: None,
            sha256: None,
            exit_code: 4,
        };
        let line = end.to_json();
        assert!(!line.contains('\n'), "{line}");
        let j: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (j["status"].as_str(), j["exit_code"].as_u64()),
            (Some("error"), Some(4))
        );
    }
}
