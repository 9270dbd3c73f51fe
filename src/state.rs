//! The control file beside `NAME.part` that makes a download resumable:
//! which resource it is (URLs, length, validators) and which byte ranges are
//! safely in the file.
//!
//! It is `NAME.rangeget`, three lines: a magic line, one line of JSON, and the
//! SHA-256 of that JSON line. A torn, edited or foreign file fails the check
//! and is ignored, never trusted. It is written through a temporary file,
//! fsync and rename, and only ever lists ranges whose bytes were synced to
//! disk first (see `download.rs`), so a crash at any moment leaves a state that
//! is true.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::plan;
use crate::probe::Resource;

const MAGIC: &str = "rangeget-state 1";

/// What a control file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The URL the user gave.
    pub url: String,
    /// The URL that answered.
    pub final_url: String,
    /// The resource's length.
    pub length: u64,
    /// Its `ETag`, if any.
    pub etag: Option<String>,
    /// Its `Last-Modified`, if any.
    pub last_modified: Option<String>,
    /// The byte ranges that are in the file (synced), sorted and merged.
    pub done: Vec<Range<u64>>,
}

/// The control file of the download saved as `path`: `path` + `.rangeget`.
pub fn state_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".rangeget");
    PathBuf::from(s)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl State {
    /// A state for `resource` with nothing done yet.
    pub fn new(resource: &Resource, length: u64) -> State {
        State {
            url: resource.url.to_string(),
            final_url: resource.final_url.to_string(),
            length,
            etag: resource.etag.clone(),
            last_modified: resource.last_modified.clone(),
            done: Vec::new(),
        }
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let done: Vec<Value> = self.done.iter().map(|r| json!([r.start, r.end])).collect();
        let body = json!({
            "url": self.url,
            "final_url": self.final_url,
            "length": self.length,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "done": done,
        })
        .to_string();
        let sum = hex(&Sha256::digest(body.as_bytes()));
        format!("{MAGIC}\n{body}\nsha256 {sum}\n")
    }

    /// Parses a file's text; `None` unless it is whole and consistent.
    pub fn from_text(text: &str) -> Option<State> {
        let mut lines = text.split('\n');
        if lines.next()? != MAGIC {
            return None;
        }
        let body = lines.next()?;
        let sum = lines.next()?.strip_prefix("sha256 ")?;
        if hex(&Sha256::digest(body.as_bytes())) != sum {
            return None;
        }
        let v: Value = serde_json::from_str(body).ok()?;
        let text_field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let length = v.get("length")?.as_u64()?;
        let mut done = Vec::new();
        for r in v.get("done")?.as_array()? {
            let (a, b) = (r.get(0)?.as_u64()?, r.get(1)?.as_u64()?);
            if a > b || b > length {
                return None;
            }
            done.push(a..b);
        }
        Some(State {
            url: text_field("url")?,
            final_url: text_field("final_url")?,
            length,
            etag: text_field("etag"),
            last_modified: text_field("last_modified"),
            done: plan::merge(&done, length),
        })
    }

    /// Reads the control file at `path`; `None` when it is missing or not valid.
    pub fn load(path: &Path) -> Option<State> {
        State::from_text(&fs::read_to_string(path).ok()?)
    }

    /// Writes the control file atomically: temporary file, fsync, rename.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let tmp = {
            let mut s = path.as_os_str().to_owned();
            s.push(".tmp");
            PathBuf::from(s)
        };
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(self.to_text().as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            // The rename itself is durable once the directory is synced.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| Error::io(path, "save the download state", e))
    }

    /// Whether this state describes the same version of the resource the probe
    /// found: same length, and a validator that proves it (a strong `ETag` that
    /// matches, else a `Last-Modified` that matches). Without any validator
    /// nothing can be proven, and the answer is no.
    pub fn matches(&self, resource: &Resource) -> bool {
        if resource.length != Some(self.length) {
            return false;
        }
        let strong = |e: &Option<String>| e.clone().filter(|e| !e.starts_with("W/"));
        match (strong(&self.etag), strong(&resource.etag)) {
            (Some(a), Some(b)) => return a == b,
            (Some(_), None) | (None, Some(_)) => return false,
            (None, None) => {}
        }
        matches!((&self.last_modified, &resource.last_modified), (Some(a), Some(b)) if a == b)
    }

    /// Bytes already done.
    pub fn done_bytes(&self) -> u64 {
        self.done.iter().map(|r| r.end - r.start).sum()
    }
}

/// Removes the control file (and a stray temporary file), ignoring absence.
pub fn remove(path: &Path) {
    let _ = fs::remove_file(path);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let _ = fs::remove_file(PathBuf::from(tmp));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::RangeSupport;

    fn resource(etag: Option<&str>, lm: Option<&str>, len: u64) -> Resource {
        let url = url::Url::parse("http://h/f").unwrap();
        Resource {
            url: url.clone(),
            final_url: url,
            length: Some(len),
            ranges: RangeSupport::Yes,
            etag: etag.map(str::to_string),
            last_modified: lm.map(str::to_string),
            content_disposition: None,
            content_encoding: None,
            digest: None,
        }
    }

    #[test]
    fn round_trip_and_tamper_detection() {
        let mut s = State::new(&resource(Some("\"v1\""), None, 1000), 1000);
        s.done = vec![0..10, 500..600];
        let text = s.to_text();
        assert_eq!(State::from_text(&text), Some(s.clone()));
        // A changed byte, a torn file, a foreign file: all refused.
        assert_eq!(State::from_text(&text.replace("600", "700")), None);
        assert_eq!(State::from_text(&text[..text.len() / 2]), None);
        assert_eq!(State::from_text("hello\n"), None);
        assert_eq!(State::from_text(""), None);
    }

    #[test]
    fn ranges_beyond_the_length_are_refused() {
        let s = State {
            done: std::iter::once(0..2000).collect(),
            ..State::new(&resource(None, Some("d"), 1000), 1000)
        };
        assert_eq!(State::from_text(&s.to_text()), None);
    }

    #[test]
    fn only_a_proven_version_matches() {
        let s = State::new(&resource(Some("\"v1\""), Some("d1"), 100), 100);
        assert!(s.matches(&resource(Some("\"v1\""), Some("d2"), 100)));
        assert!(!s.matches(&resource(Some("\"v2\""), Some("d1"), 100)));
        assert!(!s.matches(&resource(Some("\"v1\""), None, 99)));
        assert!(!s.matches(&resource(None, Some("d1"), 100)));
        let lm = State::new(&resource(None, Some("d1"), 100), 100);
        assert!(lm.matches(&resource(None, Some("d1"), 100)));
        assert!(!lm.matches(&resource(None, Some("d2"), 100)));
        let weak = State::new(&resource(Some("W/\"v1\""), Some("d1"), 100), 100);
        assert!(weak.matches(&resource(Some("W/\"v1\""), Some("d1"), 100)));
        let none = State::new(&resource(None, None, 100), 100);
        assert!(!none.matches(&resource(None, None, 100)));
    }
}
