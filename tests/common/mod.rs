//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use rangeget_fixture::LoggedRequest;
use sha2::{Digest, Sha256};

/// The SHA-256 of `bytes`, in hex.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The SHA-256 of a file's content, in hex.
pub fn sha256_file(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// The names of the entries of a directory, sorted.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `(first, last)` of a `Range: bytes=a-b` header.
pub fn parse_range(r: &LoggedRequest) -> Option<(u64, u64)> {
    let spec = r.range()?.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The ranges of the `206` answers in `log`, sorted by start.
pub fn served_ranges(log: &[LoggedRequest]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = log
        .iter()
        .filter(|r| r.method == "GET" && r.status == 206)
        .filter_map(parse_range)
        .collect();
    v.sort();
    v
}

/// Runs the `rangeget` binary in `cwd` (with `SSL_CERT_FILE` cleared, then
/// `env` set).
pub fn rangeget_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rangeget"));
    c.args(args).current_dir(cwd).env_remove("SSL_CERT_FILE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run rangeget")
}

/// Runs the `rangeget` binary in `cwd`.
pub fn rangeget(args: &[&str], cwd: &Path) -> Output {
    rangeget_env(args, cwd, &[])
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny deterministic generator (xorshift64) for seeded random tests.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Whether one of the notices a download gave contains `text`.
pub fn noticed(notices: &[String], text: &str) -> bool {
    notices.iter().any(|n| n.contains(text))
}
