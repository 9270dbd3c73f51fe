//! What a new user sees in the first ten minutes: the probe, the bar, the
//! speed after a resume, `-c` on a finished file, a resume from another URL,
//! a URL without a scheme, the summary, errors that say what happened.

#[macro_use]
mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rangeget::{Error, Snapshot};
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

transport_test! {
    fn a_server_without_ranges_costs_one_get(via) {
        // As python3 -m http.server: no Accept-Ranges, Range ignored. The
        // probe asks one range before any other connection opens; its 200 is
        // the download: HEAD, then exactly one GET of the whole file.
        let server = via.server();
        let body = pseudo_random_bytes(5 << 20, 21);
        server.file("/f.bin", body.clone(), FileOptions {
            accept_ranges: false,
            ignore_ranges: true,
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let (r, notices) = run_noting(via.download(&server, "/f.bin").connections(8).dir(dir.path()));
        let s = r.unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        assert!(!s.segmented);
        assert!(noticed(&notices, "using 1 connection"), "{notices:?}");
        let gets: Vec<_> = server.log().into_iter().filter(|r| r.method == "GET").collect();
        assert_eq!(gets.len(), 1, "{gets:?}");
        assert_eq!(gets[0].body_bytes, body.len() as u64);
        via.assert_served(&server);
    }
}

transport_test! {
    fn after_a_resume_the_speed_is_this_runs(via) {
        // Half the file comes at 4 x 2 MiB/s and the run is cancelled; the
        // rest comes at 4 x 256 KiB/s. The speed shown must be about 1 MiB/s, not the
        // bytes on disk over the time so far.
        let server = via.server();
        let body = pseudo_random_bytes(16 << 20, 22);
        let opts = |rate| FileOptions {
            rate_limit: Some(rate),
            ..FileOptions::default()
        };
        server.file("/f.bin", body.clone(), opts(2 << 20));
        let dir = tempfile::tempdir().unwrap();
        let d = via.download(&server, "/f.bin").connections(4).dir(dir.path());
        let cancel = d.cancel_handle();
        let e = d
            .progress(move |s| {
                if s.complete_rate().unwrap_or(0.0) >= 0.5 {
                    cancel.cancel();
                }
            })
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{e}");
        server.file("/f.bin", body.clone(), opts(256 << 10));
        let seen: Arc<Mutex<Vec<Snapshot>>> = Arc::default();
        let sink = seen.clone();
        let d = via.download(&server, "/f.bin").connections(4).dir(dir.path());
        let cancel = d.cancel_handle();
        let e = d
            .progress(move |s| {
                sink.lock().unwrap().push(*s);
                if s.elapsed > Duration::from_secs(4) {
                    cancel.cancel();
                }
            })
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{e}");
        let seen = seen.lock().unwrap();
        let last = seen.iter().rev().find(|s| s.rate.is_some()).expect("a speed");
        assert!(last.fetched < last.downloaded / 2, "{last:?}");
        let rate = last.rate.unwrap();
        assert!(
            (0.5e6..2.5e6).contains(&rate),
            "shown {rate:.0} B/s for 4 x 256 KiB/s ({last:?})"
        );
        let eta = last.eta().unwrap();
        assert!(eta > Duration::from_secs(3), "{eta:?}");
    }
}

transport_test! {
    fn dash_c_on_a_complete_file_succeeds_and_fetches_nothing(via) {
        let server = via.server();
        let body = pseudo_random_bytes(2 << 20, 23);
        server.file("/f.bin", body.clone(), FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        via.download(&server, "/f.bin").dir(dir.path()).run().unwrap();
        server.clear_log();
        let (r, notices) = run_noting(via.download(&server, "/f.bin").keep_complete(true).dir(dir.path()));
        let s = r.unwrap();
        assert!(s.already_complete);
        assert!(noticed(&notices, "complete already"), "{notices:?}");
        assert!(server.log().iter().all(|r| r.method == "HEAD"), "{:?}", server.log());
        // A file that is not the server's is said to differ, and kept.
        std::fs::write(dir.path().join("f.bin"), b"other").unwrap();
        let e = via
            .download(&server, "/f.bin")
            .keep_complete(true)
            .dir(dir.path())
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::ExistsDiffers { .. }), "{e}");
        assert_eq!(e.exit_code(), 5);
        assert_eq!(std::fs::read(dir.path().join("f.bin")).unwrap(), b"other");
        via.assert_served(&server);
    }
}

transport_test! {
    fn the_same_file_at_another_url_resumes(via) {
        // A mirror, or a presigned link with a new query string: another URL,
        // the same length and strong ETag, so the partial file is the same
        // file.
        let server = via.server();
        let body = pseudo_random_bytes(8 << 20, 24);
        let slow = FileOptions {
            rate_limit: Some(4 << 20),
            ..FileOptions::default()
        };
        server.file("/a/f.bin", body.clone(), slow.clone());
        server.file("/b/f.bin", body.clone(), slow);
        let dir = tempfile::tempdir().unwrap();
        let d = via.download(&server, "/a/f.bin").connections(4).dir(dir.path());
        let cancel = d.cancel_handle();
        let _ = d
            .progress(move |s| {
                if s.complete_rate().unwrap_or(0.0) >= 0.4 {
                    cancel.cancel();
                }
            })
            .run()
            .unwrap_err();
        server.clear_log();
        let (r, notices) = run_noting(via.download(&server, "/b/f.bin").connections(4).dir(dir.path()));
        let s = r.unwrap_or_else(|e| panic!("{e} ({notices:?})"));
        assert_eq!(sha256_file(&s.path), sha256(&body));
        assert!(noticed(&notices, "the same file"), "{notices:?}");
        assert!(s.fetched < body.len() as u64 * 7 / 10, "fetched {} again", s.fetched);
        via.assert_served(&server);
    }
}

#[test]
fn a_url_without_a_scheme_is_taken_as_http() {
    let server = FixtureServer::start().unwrap();
    server.file("/x.bin", b"hello".to_vec(), FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let bare = server.url("/x.bin").replace("http://", "");
    let o = rangeget(&[&bare], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no scheme given"), "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.path().join("x.bin")).unwrap(), b"hello");
}

#[test]
fn the_summary_counts_connections_and_requests_the_same_way_each_time() {
    // 12.67 MiB with -n 8 --fixed: 8 connections, whatever the timing (the
    // default's count is the controller's, and depends on the link).
    let server = FixtureServer::start().unwrap();
    server.file(
        "/f.bin",
        pseudo_random_bytes(13_285_000, 25),
        FileOptions::default(),
    );
    let mut lines = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let o = rangeget(&["-n", "8", "--fixed", &server.url("/f.bin")], dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        let tail = err
            .lines()
            .find(|l| l.contains("saved"))
            .and_then(|l| l.split("/s, ").nth(1))
            .unwrap_or_default()
            .to_string();
        lines.push(tail);
    }
    assert!(lines[0].starts_with("8 connections, "), "{lines:?}");
    assert!(
        lines.iter().all(|l| l.starts_with("8 connections")),
        "{lines:?}"
    );
}

#[test]
fn dash_c_from_the_command_line_exits_0_on_a_finished_file() {
    let server = FixtureServer::start().unwrap();
    server.file(
        "/f.bin",
        pseudo_random_bytes(100_000, 26),
        FileOptions::default(),
    );
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/f.bin");
    assert!(rangeget(&["-q", &url], dir.path()).status.success());
    let o = rangeget(&["-c", &url], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("complete already"), "{}", stderr(&o));
    // Without -c it is still an error not to overwrite.
    let o = rangeget(&["-q", &url], dir.path());
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
}

/// Strips ANSI escape sequences.
fn plain(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn the_bar_fits_an_80_column_terminal() {
    // Under a pseudo-terminal 80 columns wide (util-linux's script), a
    // download of a long-named file at about 80 MiB/s, for over a second.
    let server = FixtureServer::start().unwrap();
    server.file(
        "/a-rather-long-file-name-for-a-download.iso",
        pseudo_random_bytes(96 << 20, 27),
        FileOptions {
            rate_limit: Some(20 << 20),
            ..FileOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/a-rather-long-file-name-for-a-download.iso");
    let cmd = format!(
        "stty cols 80 rows 24; exec {} -n 4 {url}",
        env!("CARGO_BIN_EXE_rangeget")
    );
    let o = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .current_dir(dir.path())
        .env("TERM", "xterm")
        .env_remove("SSL_CERT_FILE")
        .output()
        .expect("script (util-linux) runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    let lines: Vec<String> = out
        .split(['\r', '\n'])
        .map(plain)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let bars: Vec<&String> = lines.iter().filter(|l| l.contains('%')).collect();
    assert!(!bars.is_empty(), "no bar drawn: {lines:?}");
    // indicatif pads a frame to the width: a frame is at most 80 columns,
    // and what it shows ends before the last one (nothing wraps).
    for l in lines.iter().filter(|l| !l.starts_with("rangeget:")) {
        let (all, shown) = (l.chars().count(), l.trim_end().chars().count());
        assert!(all <= 80 && shown < 80, "{all} / {shown} columns: {l:?}");
    }
    assert!(
        bars.iter().any(|l| l.contains("a-rather-long")
            && l.contains("MiB/s")
            && !l.contains("--/s")
            && l.contains("ETA 0:")),
        "{bars:?}"
    );
}

#[test]
fn a_cancelled_sparse_download_takes_only_what_it_fetched() {
    use std::os::unix::fs::MetadataExt;
    let server = FixtureServer::start().unwrap();
    server.file(
        "/f.bin",
        pseudo_random_bytes(64 << 20, 28),
        FileOptions {
            rate_limit: Some(1 << 20),
            ..FileOptions::default()
        },
    );
    for (allocation, reserved) in [
        (rangeget::Allocation::Reserve, true),
        (rangeget::Allocation::Sparse, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = rangeget::Download::new(server.url("/f.bin"))
            .connections(2)
            .allocation(allocation)
            .dir(dir.path());
        let cancel = d.cancel_handle();
        let e = d
            .progress(move |s| {
                if s.downloaded >= 1 << 20 {
                    cancel.cancel();
                }
            })
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{e}");
        let meta = std::fs::metadata(dir.path().join("f.bin.part")).unwrap();
        assert_eq!(meta.len(), 64 << 20);
        let on_disk = meta.blocks() * 512;
        if reserved {
            assert!(
                on_disk >= 64 << 20,
                "{allocation:?}: {on_disk} bytes on disk"
            );
        } else {
            assert!(
                on_disk < 16 << 20,
                "{allocation:?}: {on_disk} bytes on disk"
            );
        }
    }
}

#[test]
fn a_dead_proxy_is_named_as_the_one_that_failed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let proxy = format!("http://127.0.0.1:{port}");
    let o = Command::new(env!("CARGO_BIN_EXE_rangeget"))
        .args(["-q", "http://127.0.0.2:9/x"])
        .current_dir(dir.path())
        .env("http_proxy", &proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("proxy") && err.contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
