//! The control file beside `NAME.part` that makes a download resumable:
//! which resource it is (URLs, length, validators) and which byte ranges are
//! safely in the file.
//!
//! It is `NAME.rangeget`, three lines: a magic line, one line of JSON, and the
//! SHA-256 of that JSON line. A torn, edited or foreign file fails the check
//! and is ignored, never trusted. It is replaced through a temporary file and
//! a rename.
//!
//! It keeps two lists. `done` holds ranges whose bytes were synced to disk
//! (`fdatasync`) before they were recorded: true after any crash, power loss
//! included. `written` holds ranges whose writes had returned, recorded often
//! and without syncing, with the kernel's boot id: a killed process cannot
//! lose what it wrote (the page cache keeps it), only a kernel crash or power
//! loss can, and either changes the boot id. So `written` is trusted only when
//! the boot id is still the same, `done` always.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, redact};
use crate::plan;
use crate::probe::Resource;

const MAGIC: &str = "rangeget-state 1";

/// The most ranges a list of a control file may hold: a download records far
/// fewer (they merge as they fill), so more is a forged or foreign file, and
/// it would only make a resume crawl.
pub const MAX_RANGES: usize = 4096;

/// The largest control file read.
pub const MAX_STATE_BYTES: u64 = 1 << 20;

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
    /// The byte ranges that are in the file and synced to disk, sorted and merged.
    pub done: Vec<Range<u64>>,
    /// The byte ranges whose writes had returned (a superset of `done`), valid
    /// while the kernel has not restarted.
    pub written: Vec<Range<u64>>,
    /// The kernel boot id when `written` was recorded.
    pub boot_id: String,
}

/// This boot's id (Linux's `/proc/sys/kernel/random/boot_id`), or an empty
/// string where there is none: then only synced ranges are ever trusted.
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
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
            // Never a password on disk.
            url: redact(resource.url.as_str()),
            final_url: redact(resource.final_url.as_str()),
            length,
            etag: resource.etag.clone(),
            last_modified: resource.last_modified.clone(),
            done: Vec::new(),
            written: Vec::new(),
            boot_id: boot_id(),
        }
    }

    /// The ranges a resume may keep: `written` when the kernel has not
    /// restarted since they were recorded, else only the synced `done`.
    pub fn usable(&self) -> &[Range<u64>] {
        if !self.boot_id.is_empty() && self.boot_id == boot_id() {
            &self.written
        } else {
            &self.done
        }
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let list = |v: &[Range<u64>]| -> Vec<Value> {
            v.iter().map(|r| json!([r.start, r.end])).collect()
        };
        let body = json!({
            "url": self.url,
            "final_url": self.final_url,
            "length": self.length,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "done": list(&self.done),
            "written": list(&self.written),
            "boot_id": self.boot_id,
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
        let list = |key: &str| -> Option<Vec<Range<u64>>> {
            let mut out = Vec::new();
            let list = v.get(key)?.as_array()?;
            if list.len() > MAX_RANGES {
                return None;
            }
            for r in list {
                let (a, b) = (r.get(0)?.as_u64()?, r.get(1)?.as_u64()?);
                if a > b || b > length {
                    return None;
                }
                out.push(a..b);
            }
            Some(plan::merge(&out, length))
        };
        Some(State {
            url: text_field("url")?,
            final_url: text_field("final_url")?,
            length,
            etag: text_field("etag"),
            last_modified: text_field("last_modified"),
            done: list("done")?,
            written: list("written")?,
            boot_id: text_field("boot_id")?,
        })
    }

    /// Reads the control file at `path`; `None` when it is missing, larger
    /// than [`MAX_STATE_BYTES`] or not valid.
    pub fn load(path: &Path) -> Option<State> {
        use std::io::Read;
        let mut text = String::new();
        fs::File::open(path)
            .ok()?
            .take(MAX_STATE_BYTES + 1)
            .read_to_string(&mut text)
            .ok()?;
        if text.len() as u64 > MAX_STATE_BYTES {
            return None;
        }
        State::from_text(&text)
    }

    /// Replaces the control file through a temporary file (a random name,
    /// created exclusively) and a rename; with `durable`, the file and the
    /// rename are synced too.
    pub fn save(&self, path: &Path, durable: bool) -> Result<(), Error> {
        crate::output::replace_file(path, self.to_text().as_bytes(), durable)
            .map_err(|e| Error::io(path, "save the download state", e))
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

    /// Bytes a resume may keep.
    pub fn usable_bytes(&self) -> u64 {
        self.usable().iter().map(|r| r.end - r.start).sum()
    }
}

/// Removes the control file, ignoring absence.
pub fn remove(path: &Path) {
    let _ = fs::remove_file(path);
}

#[cfg(test)]
// Lists holding one range are what these tests mean.
#[allow(clippy::single_range_in_vec_init)]
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
        s.written = vec![0..20, 500..700];
        let text = s.to_text();
        assert_eq!(State::from_text(&text), Some(s.clone()));
        // A changed byte, a torn file, a foreign file: all refused.
        assert_eq!(State::from_text(&text.replace("600", "700")), None);
        assert_eq!(State::from_text(&text[..text.len() / 2]), None);
        assert_eq!(State::from_text("hello\n"), None);
        assert_eq!(State::from_text(""), None);
    }

    #[test]
    fn written_ranges_count_only_within_the_same_boot() {
        let mut s = State::new(&resource(Some("\"v1\""), None, 1000), 1000);
        s.done = vec![0..10];
        s.written = vec![0..50];
        if !boot_id().is_empty() {
            assert_eq!(s.usable(), &[0..50]);
        }
        s.boot_id = "another-boot".into();
        assert_eq!(s.usable(), &[0..10]);
        s.boot_id = String::new();
        assert_eq!(s.usable(), &[0..10]);
    }

    #[test]
    fn fuzz_control_files() {
        // Mutated whole files (the checksum refuses nearly all), and mutated
        // bodies under a checksum that fits (the JSON reader's turn): never
        // a panic, and what is accepted is consistent.
        let mut m = crate::fuzz::Mutator::new(0x57a7e);
        let check = |s: &State| {
            for list in [&s.done, &s.written] {
                assert!(list.len() <= MAX_RANGES);
                assert!(list.windows(2).all(|w| w[0].end < w[1].start), "{list:?}");
                assert!(list.iter().all(|r| r.start < r.end && r.end <= s.length));
            }
        };
        for seed in crate::fuzz::corpus("states") {
            let text = String::from_utf8_lossy(&seed).into_owned();
            let body = text.lines().nth(1).unwrap_or_default().as_bytes().to_vec();
            for _ in 0..crate::fuzz::rounds() {
                let whole = String::from_utf8_lossy(&m.mutate(&seed)).into_owned();
                if let Some(s) = State::from_text(&whole) {
                    check(&s);
                }
                let b = String::from_utf8_lossy(&m.mutate(&body)).replace('\n', "");
                let signed = format!(
                    "{MAGIC}\n{b}\nsha256 {}\n",
                    hex(&Sha256::digest(b.as_bytes()))
                );
                if let Some(s) = State::from_text(&signed) {
                    check(&s);
                }
            }
        }
    }

    #[test]
    fn a_state_with_too_many_ranges_is_refused() {
        let mut s = State::new(&resource(Some("\"v1\""), None, 1 << 30), 1 << 30);
        s.written = (0..MAX_RANGES as u64).map(|i| i * 4..i * 4 + 1).collect();
        assert!(State::from_text(&s.to_text()).is_some());
        s.written = (0..MAX_RANGES as u64 + 1)
            .map(|i| i * 4..i * 4 + 1)
            .collect();
        assert_eq!(State::from_text(&s.to_text()), None);
    }

    #[test]
    fn ranges_beyond_the_length_are_refused() {
        let s = State {
            done: vec![0..2000],
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
