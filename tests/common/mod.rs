//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use rangeget::{Download, Engine, Error, Session, SessionBuilder, Summary};
use rangeget_fixture::{FixtureServer, LoggedRequest};
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

/// A port free on loopback now (for a server that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// Which transport, over which scheme, a test runs on: every download and
/// fault test runs on each, as ripgrep runs each test on both regex engines
/// (see [`transport_test!`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// rangeget's own connections, plain http.
    Wire,
    /// ureq, plain http.
    Ureq,
    /// ureq, https (the fixture's TLS, its CA trusted).
    UreqTls,
}

impl Via {
    /// A fixture server speaking this scheme.
    pub fn server(self) -> FixtureServer {
        match self {
            Via::UreqTls => FixtureServer::start_tls(),
            _ => FixtureServer::start(),
        }
        .expect("start the fixture server")
    }

    /// A session on this transport that trusts `server`'s CA.
    pub fn session(self, server: &FixtureServer) -> SessionBuilder {
        self.session_trusting(&[server])
    }

    /// A session on this transport that trusts the CAs of `servers`.
    pub fn session_trusting(self, servers: &[&FixtureServer]) -> SessionBuilder {
        let b = Session::builder().engine(match self {
            Via::Wire => Engine::Auto,
            _ => Engine::Ureq,
        });
        let pems: String = servers.iter().filter_map(|s| s.ca_pem()).collect();
        if pems.is_empty() {
            b
        } else {
            b.ca_pem(pems.as_bytes()).expect("the fixtures' CAs")
        }
    }

    /// `Download::new(server.url(path))` on this transport's default session.
    pub fn download(self, server: &FixtureServer, path: &str) -> Download {
        Download::new(server.url(path)).session(self.session(server).build())
    }

    /// The transport that must have sent every request: `"wire"` or `"ureq"`.
    pub fn client(self) -> &'static str {
        match self {
            Via::Wire => "wire",
            _ => "ureq",
        }
    }

    /// Checks, from the server's log, that every request came from this
    /// transport (see [`sent_by`]), and that there was at least one.
    pub fn assert_served(self, server: &FixtureServer) {
        let log = server.log();
        assert!(!log.is_empty(), "no request reached the server");
        for r in &log {
            assert_eq!(sent_by(r), self.client(), "{self:?}: {r:?}");
        }
    }
}

/// Which client sent a request, told by the spelling of its header names:
/// ureq sends them lowercased (`host`), rangeget's own connections as
/// `Host`.
pub fn sent_by(r: &LoggedRequest) -> &'static str {
    if r.header_names.iter().any(|n| n == "Host") {
        "wire"
    } else if r.header_names.iter().any(|n| n == "host") {
        "ureq"
    } else {
        "unknown"
    }
}

/// Runs a download, collecting its notices: the result and the notices.
pub fn run_noting(download: Download) -> (Result<Summary, Error>, Vec<String>) {
    let notices: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = notices.clone();
    let r = download
        .on_notice(move |m| sink.lock().unwrap().push(m.to_string()))
        .run();
    let n = notices.lock().unwrap().clone();
    (r, n)
}

/// Defines a test that runs on every [`Via`]: a module `NAME` with the tests
/// `wire`, `ureq` and `ureq_https`.
#[macro_export]
macro_rules! transport_test {
    ($(#[$meta:meta])* fn $name:ident($via:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($via: Via) $body

            #[test]
            fn wire() {
                run(Via::Wire)
            }

            #[test]
            fn ureq() {
                run(Via::Ureq)
            }

            #[test]
            fn ureq_https() {
                run(Via::UreqTls)
            }
        }
    };
}
