//! Resuming: after a cancel, after SIGKILL, after the resource changed while
//! the tool was not running, and with a control file that cannot be trusted.
//! The library's tests run on both transports, and over https.

#[macro_use]
mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rangeget::Error;
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

const LEN: usize = 8 << 20;

fn slow() -> FileOptions {
    FileOptions {
        rate_limit: Some(4 << 20),
        ..FileOptions::default()
    }
}

/// Bytes of file content the server sent for `path` (206 and 200 bodies).
fn served(server: &FixtureServer, path: &str) -> u64 {
    server
        .requests_for(path)
        .iter()
        .filter(|r| r.method == "GET" && (r.status == 206 || r.status == 200))
        .filter(|r| r.range() != Some("bytes=0-0"))
        .map(|r| r.body_bytes)
        .sum()
}

/// Runs a download of `/f.bin` into `dir` and cancels it once `fraction` of
/// the file has arrived.
fn cancel_at(via: Via, server: &FixtureServer, dir: &std::path::Path, fraction: f64) {
    let d = via.download(server, "/f.bin").connections(4).dir(dir);
    let cancel = d.cancel_handle();
    let e = d
        .progress(move |s| {
            if s.complete_rate().unwrap_or(0.0) >= fraction {
                cancel.cancel();
            }
        })
        .run()
        .unwrap_err();
    assert!(matches!(e, Error::Cancelled), "{e}");
    assert!(dir.join("f.bin.part").exists());
    assert!(dir.join("f.bin.rangeget").exists());
}

fn run_with_notices(
    via: Via,
    server: &FixtureServer,
    dir: &std::path::Path,
) -> (rangeget::Summary, Vec<String>) {
    let (r, n) = run_noting(via.download(server, "/f.bin").connections(4).dir(dir));
    let s = r.unwrap_or_else(|e| panic!("{e} ({n:?})"));
    via.assert_served(server);
    (s, n)
}

transport_test! {
    fn a_cancelled_download_resumes_with_if_range_and_fetches_only_the_rest(via) {
        let server = via.server();
        let body = pseudo_random_bytes(LEN, 3);
        server.file("/f.bin", body.clone(), slow());
        let dir = tempfile::tempdir().unwrap();
        cancel_at(via, &server, dir.path(), 0.4);
        let first = served(&server, "/f.bin");
        server.clear_log();

        let (s, notices) = run_with_notices(via, &server, dir.path());
        assert_eq!(sha256_file(&s.path), sha256(&body));
        assert!(noticed(&notices, "resuming"), "{notices:?}");
        assert_eq!(dir_entries(dir.path()), vec!["f.bin"], "state left behind");
        let log = server.requests_for("/f.bin");
        for r in log.iter().filter(|r| r.status == 206) {
            assert_eq!(r.header("if-range"), Some("\"fixture-v1\""), "{r:?}");
        }
        let second = served(&server, "/f.bin");
        let total = first + second;
        // What the server had sent but the cancel found still in the socket
        // buffers is lost (on a loaded machine, a few hundred KiB a
        // connection over TLS): 5 % and 256 KiB a connection.
        let bound = LEN as f64 * 1.05 + 4.0 * (256 << 10) as f64;
        assert!(
            total as f64 <= bound,
            "served {total} bytes for a {LEN}-byte file ({first} + {second})"
        );
    }
}

transport_test! {
    fn a_resource_changed_while_we_were_away_is_never_mixed(via) {
        let server = via.server();
        server.file("/f.bin", pseudo_random_bytes(LEN, 3), slow());
        let dir = tempfile::tempdir().unwrap();
        cancel_at(via, &server, dir.path(), 0.4);

        // Same length, new content and validators.
        let v2 = pseudo_random_bytes(LEN, 4);
        let options = FileOptions {
            etag: Some("\"fixture-v2\"".into()),
            last_modified: Some("Thu, 22 Oct 2015 07:28:00 GMT".into()),
            ..slow()
        };
        server.file("/f.bin", v2.clone(), options);
        let (s, notices) = run_with_notices(via, &server, dir.path());
        assert_eq!(sha256_file(&s.path), sha256(&v2));
        assert!(noticed(&notices, "another version"), "{notices:?}");
    }
}

transport_test! {
    fn an_untrustworthy_control_file_means_starting_over(via) {
        let server = via.server();
        let body = pseudo_random_bytes(LEN, 3);
        server.file("/f.bin", body.clone(), slow());
        let dir = tempfile::tempdir().unwrap();
        cancel_at(via, &server, dir.path(), 0.3);
        // Claim everything is done, without fixing the checksum.
        let state = dir.path().join("f.bin.rangeget");
        let text = std::fs::read_to_string(&state).unwrap();
        let forged = text.replace("\"written\":[", &format!("\"written\":[[0,{LEN}],"));
        assert_ne!(forged, text);
        std::fs::write(&state, forged).unwrap();
        server.clear_log();
        let (s, notices) = run_with_notices(via, &server, dir.path());
        assert_eq!(sha256_file(&s.path), sha256(&body));
        assert!(noticed(&notices, "no valid state"), "{notices:?}");
        assert!(
            served(&server, "/f.bin") >= LEN as u64,
            "did not start over"
        );
    }
}

transport_test! {
    fn no_resume_starts_afresh(via) {
        let server = via.server();
        let body = pseudo_random_bytes(LEN, 3);
        server.file("/f.bin", body.clone(), slow());
        let dir = tempfile::tempdir().unwrap();
        cancel_at(via, &server, dir.path(), 0.3);
        server.clear_log();
        let s = via.download(&server, "/f.bin")
            .connections(4)
            .dir(dir.path())
            .resume(false)
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        assert!(served(&server, "/f.bin") >= LEN as u64);
    }
}

/// The real binary, SIGKILLed at bounded random moments while it transfers,
/// resumed each time: the file must come out whole, and the server must not
/// have sent much more than the file's size in all.
#[test]
fn sigkill_at_random_moments_then_resume() {
    // Each kill loses what was written since the last record (at most 20 ms of
    // transfer) plus what was in flight: about 0.3 MB at these rates.
    const ROUNDS: usize = 4;
    let len = 32 << 20;
    let server = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(len, 8);
    // 4 connections at 4 MiB/s: about 2 s of transfer in all.
    server.file("/f.bin", body.clone(), slow());
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x51c4);
    let mut kills = 0;
    for _ in 0..ROUNDS {
        let before = served(&server, "/f.bin");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rangeget"))
            .args(["-q", "-n", "4", "-o", "f.bin", &server.url("/f.bin")])
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        // Wait (on the server's log, not a clock) until this run transfers.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut finished = false;
        while served(&server, "/f.bin") <= before {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            assert!(Instant::now() < deadline, "no transfer started");
            std::thread::yield_now();
        }
        if finished {
            break;
        }
        // Then kill it at a random moment within the next 300 ms.
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        assert!(
            !dir.path().join("f.bin").exists(),
            "final name before completion"
        );
    }
    if !dir.path().join("f.bin").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_rangeget"))
            .args(["-q", "-n", "4", "-o", "f.bin", &server.url("/f.bin")])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
    assert_eq!(dir_entries(dir.path()), vec!["f.bin"]);
    let total = served(&server, "/f.bin");
    let ratio = total as f64 / len as f64;
    println!(
        "kill test: {kills} SIGKILLs, served {total} bytes for a {len}-byte file ({ratio:.3}x)"
    );
    assert!(kills >= 3, "only {kills} kills landed mid-transfer");
    assert!(ratio <= 1.05, "served {ratio:.3}x the file");
}

transport_test! {
    fn without_syncing_the_state_holds_written_ranges_only_and_still_resumes(via) {
        for sync in [None, Some(rangeget::SYNC_EVERY)] {
            let server = via.server();
            let body = pseudo_random_bytes(LEN, 5);
            server.file("/f.bin", body.clone(), slow());
            let dir = tempfile::tempdir().unwrap();
            let d = via.download(&server, "/f.bin")
                .connections(4)
                .dir(dir.path())
                .sync_every(sync);
            let cancel = d.cancel_handle();
            let e = d
                .progress(move |s| {
                    if s.complete_rate().unwrap_or(0.0) >= 0.4 {
                        cancel.cancel();
                    }
                })
                .run()
                .unwrap_err();
            assert!(matches!(e, Error::Cancelled), "{e}");
            let st = rangeget::unversioned::State::load(&dir.path().join("f.bin.rangeget")).unwrap();
            assert!(!st.written.is_empty());
            match sync {
                // Nothing was synced, so nothing is recorded as surviving a power loss.
                None => assert!(st.done.is_empty(), "{:?}", st.done),
                // A cancel syncs and records what was written as done.
                Some(_) => assert_eq!(st.done, st.written),
            }
            let (s, notices) = run_with_notices(via, &server, dir.path());
            assert_eq!(sha256_file(&s.path), sha256(&body));
            assert!(noticed(&notices, "resuming"), "{notices:?}");
        }
    }
}

transport_test! {
    fn a_long_download_syncs_as_it_goes_but_not_just_before_its_end(via) {
        // One connection at 4 MiB/s: 2 s for 8 MiB, a sync due every 300 ms.
        let server = via.server();
        let body = pseudo_random_bytes(LEN, 9);
        server.file("/f.bin", body.clone(), slow());
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("f.bin.rangeget");
        let synced = Arc::new(Mutex::new(Vec::<u64>::new()));
        let seen = Arc::clone(&synced);
        let s = via.download(&server, "/f.bin")
            .connections(1)
            .dir(dir.path())
            .sync_every(Some(std::time::Duration::from_millis(300)))
            .progress(move |_| {
                if let Some(st) = rangeget::unversioned::State::load(&state) {
                    let done: u64 = st.done.iter().map(|r| r.end - r.start).sum();
                    seen.lock().unwrap().push(done);
                }
            })
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let synced = synced.lock().unwrap();
        let last = synced.iter().copied().max().unwrap_or(0);
        // Synced along the way...
        assert!(last > 0, "no sync during a 2 s download: {synced:?}");
        // ...but none in the last 300 ms (1.2 MiB at this rate): it would only
        // have delayed the end.
        assert!(
            last < LEN as u64 - (1 << 20),
            "a sync {} bytes before the end: {synced:?}",
            LEN as u64 - last
        );
    }
}

/// A run killed while it replaced its state file leaves the temporary file
/// (`.NAME.rangeget.XXXXXX.tmp`); the run that completes the file removes
/// such leftovers, and nothing else.
#[test]
fn leftovers_of_a_killed_state_write_are_removed_at_the_end() {
    let server = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(1 << 20, 77);
    server.file("/f.bin", body.clone(), FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let keep = [
        ".f.bin.rangeget.toolong7.tmp",
        ".f.bin.rangeget.ab_12.tmp",
        "notes.txt",
    ];
    for name in [".f.bin.rangeget.Ab12cd.tmp", ".f.bin.rangeget.zzzzzz.tmp"]
        .iter()
        .chain(keep.iter())
    {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    let s = rangeget::Download::new(server.url("/f.bin"))
        .dir(dir.path())
        .connections(2)
        .run()
        .unwrap();
    assert_eq!(sha256_file(&s.path), sha256(&body));
    let mut want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    want.push("f.bin".into());
    want.sort();
    assert_eq!(dir_entries(dir.path()), want);
}
