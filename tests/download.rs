//! The library end to end, over real sockets against the fixture server.
//! Each test runs on both transports, and over https (see
//! `transport_test!`).

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};

use common::*;
use rangeget::{Download, Error, Snapshot};
use rangeget_fixture::{FileOptions, FixtureServer, LengthMode, Route, pseudo_random_bytes};

/// Serves `len` pseudo-random bytes at `/f.bin` with `options`.
fn serve(via: Via, len: usize, options: FileOptions) -> (FixtureServer, Vec<u8>) {
    let server = via.server();
    let body = pseudo_random_bytes(len, len as u64 + 11);
    server.file("/f.bin", body.clone(), options);
    (server, body)
}

transport_test! {
    fn sizes_and_connection_counts_byte_for_byte(via) {
        for len in [0usize, 1, 1_000_003, 5 << 20] {
            let (server, body) = serve(via, len, FileOptions::default());
            for n in [1usize, 2, 8, 16, 64] {
                server.clear_log();
                let dir = tempfile::tempdir().unwrap();
                let s = via.download(&server, "/f.bin")
                    .connections(n)
                    .dir(dir.path())
                    .min_steal(u64::MAX)
                    .run()
                    .unwrap_or_else(|e| panic!("len {len}, n {n}: {e}"));
                assert_eq!(s.bytes, len as u64);
                assert_eq!(sha256_file(&s.path), sha256(&body), "len {len}, n {n}");
                assert_eq!(dir_entries(dir.path()), vec!["f.bin"], "no .part left");
                // With stealing off, the 206 ranges tile the file exactly once.
                let ranges = served_ranges(&server.log());
                let mut at = 0;
                for (a, b) in &ranges {
                    assert_eq!(*a, at, "len {len}, n {n}: gap or overlap in {ranges:?}");
                    at = b + 1;
                }
                assert_eq!(at, len as u64, "len {len}, n {n}: ranges {ranges:?}");
                // The minimum segment (1 MiB) bounds the number of ranges.
                let expected = n.min((len as u64).div_ceil(1 << 20).max(1) as usize);
                if len > 0 {
                    assert_eq!(ranges.len(), expected, "len {len}, n {n}");
                }
            }
        }
    }
}

transport_test! {
    fn connections_really_run_in_parallel(via) {
        // 4 MiB at 4 MiB/s per connection: 4 segments of 1 MiB take ~0.25 s each,
        // so they overlap only if they run at once.
        let (server, body) = serve(
            via,
            4 << 20,
            FileOptions {
                rate_limit: Some(4 << 20),
                ..FileOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let s = via.download(&server, "/f.bin")
            .connections(8)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let log = server.log();
        let mut conns: Vec<u64> = log
            .iter()
            .filter(|r| r.status == 206)
            .map(|r| r.conn)
            .collect();
        conns.sort();
        conns.dedup();
        assert!(
            conns.len() >= 4,
            "only {} connections: {log:?}",
            conns.len()
        );
        assert!(
            server.max_concurrent_bodies() >= 4,
            "at most {} bodies in flight at once",
            server.max_concurrent_bodies()
        );
        assert!(
            s.connections >= 4,
            "summary says {} connections",
            s.connections
        );
        assert!(s.segmented);
    }
}

transport_test! {
    fn a_slow_connection_has_its_work_stolen(via) {
        // The range holding byte 0 crawls at 256 KiB/s; the others run at 16 MiB/s.
        // Without stealing, the download would take 8 s.
        let (server, body) = serve(
            via,
            4 << 20,
            FileOptions {
                rate_limit: Some(16 << 20),
                slow_range: Some((0, 256 << 10)),
                ..FileOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let s = via.download(&server, "/f.bin")
            .connections(4)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let ranges = served_ranges(&server.log());
        assert!(
            ranges.len() > 4,
            "expected stolen ranges beyond the first 4: {ranges:?}"
        );
        assert!(
            s.elapsed.as_secs_f64() < 6.0,
            "stealing did not help: {:?}",
            s.elapsed
        );
    }
}

/// The ranged `GET`s of `server`'s log (the probe's `0-0` included).
fn ranged_gets(server: &FixtureServer) -> Vec<rangeget_fixture::LoggedRequest> {
    server
        .log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.header("range").is_some())
        .collect()
}

/// One connection crawls while the other steals from it, so each worker sends
/// several requests: the workers' own connections carry them.
fn stolen_from_slow(via: Via, options: FileOptions) -> (FixtureServer, Vec<u8>) {
    serve(
        via,
        4 << 20,
        FileOptions {
            rate_limit: Some(16 << 20),
            slow_range: Some((0, 512 << 10)),
            ..options
        },
    )
}

transport_test! {
    fn workers_keep_their_connections_alive_between_ranges(via) {
        let (server, body) = stolen_from_slow(via, FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let s = via.download(&server, "/f.bin")
            .connections(2)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let gets: Vec<_> = ranged_gets(&server)
            .into_iter()
            .filter(|r| r.status == 206 && r.header("range") != Some("bytes=0-0"))
            .collect();
        let mut conns: Vec<u64> = gets.iter().map(|r| r.conn).collect();
        conns.sort();
        conns.dedup();
        assert!(
            gets.len() > conns.len(),
            "{} ranged GETs on {} connections: none was reused",
            gets.len(),
            conns.len()
        );
    }
}

transport_test! {
    fn a_kept_alive_connection_the_server_closed_is_replaced_without_a_retry(via) {
        // The server hangs up after every body without saying so: each reuse finds
        // the connection dead before any answer, and asks again on a new one. With
        // no retries allowed, counting that as a failure would fail the download.
        let (server, body) = stolen_from_slow(via, FileOptions {
            silent_close: true,
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let s = via.download(&server, "/f.bin")
            .connections(2)
            .retries(0)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let gets = ranged_gets(&server);
        assert!(gets.len() > 3, "no range was stolen: {gets:?}");
        assert!(gets.iter().all(|r| r.status == 206), "{gets:?}");
    }
}

transport_test! {
    fn every_ranged_request_carries_the_session_headers_and_url_credentials(via) {
        let (server, body) = serve(via, 3 << 20, FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let url = server
            .url("/f.bin")
            .replace("127.0.0.1", "ann:s3cret@127.0.0.1");
        let session = via.session(&server)
            .user_agent("probe-agent/1")
            .header("X-Trace", "t-1")
            .build();
        let s = Download::new(url)
            .session(session)
            .connections(3)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let gets = ranged_gets(&server);
        assert!(gets.len() >= 3, "{gets:?}");
        for r in &gets {
            assert_eq!(
                r.header("authorization"),
                Some("Basic YW5uOnMzY3JldA=="),
                "{r:?}"
            );
            assert_eq!(r.header("user-agent"), Some("probe-agent/1"), "{r:?}");
            assert_eq!(r.header("x-trace"), Some("t-1"), "{r:?}");
            assert_eq!(r.header("accept-encoding"), Some("identity"), "{r:?}");
            assert_eq!(r.header("host"), Some(server.addr().to_string().as_str()), "{r:?}");
        }
    }
}

transport_test! {
    fn progress_snapshots_reach_the_total_once_finished(via) {
        let (server, body) = serve(via, 3 << 20, FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let seen: Arc<Mutex<Vec<Snapshot>>> = Arc::default();
        let sink = seen.clone();
        let s = via.download(&server, "/f.bin")
            .dir(dir.path())
            .progress(move |snap| sink.lock().unwrap().push(*snap))
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let seen = seen.lock().unwrap();
        let last = seen.last().expect("at least the final snapshot");
        assert!(last.finished);
        assert_eq!(last.downloaded, body.len() as u64);
        assert_eq!(last.total, Some(body.len() as u64));
        assert_eq!(last.complete_rate(), Some(1.0));
        assert!(seen.windows(2).all(|w| w[0].downloaded <= w[1].downloaded));
        assert_eq!(seen.iter().filter(|s| s.finished).count(), 1);
    }
}

/// Downloads `/f.bin` with 8 connections on `via`, checking the bytes and
/// who sent the requests: the summary and the notices.
fn download_with_notices(
    via: Via,
    server: &FixtureServer,
    body: &[u8],
) -> (rangeget::Summary, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (r, notices) = run_noting(
        via.download(server, "/f.bin")
            .connections(8)
            .dir(dir.path()),
    );
    let s = r.unwrap_or_else(|e| panic!("{e} ({notices:?})"));
    assert_eq!(sha256_file(&s.path), sha256(body));
    assert_eq!(dir_entries(dir.path()), vec!["f.bin"]);
    via.assert_served(server);
    (s, notices)
}

transport_test! {
    fn server_that_ignores_ranges_falls_back_to_one_stream(via) {
        for accept_ranges in [true, false] {
            let (server, body) = serve(
            via,
                3 << 20,
                FileOptions {
                    ignore_ranges: true,
                    accept_ranges,
                    ..FileOptions::default()
                },
            );
            let (s, notices) = download_with_notices(via, &server, &body);
            assert!(!s.segmented);
            assert!(noticed(&notices, "using 1 connection"), "{notices:?}");
            let log = server.log();
            if accept_ranges {
                // Ranges were announced, then ignored: the fallback stream
                // asked for none.
                assert!(
                    log.iter()
                        .any(|r| r.method == "GET" && r.range().is_none() && r.status == 200)
                );
            } else {
                // Nothing announced: the probe's one ranged GET was answered
                // with the whole file, and that was the download.
                let gets = log.iter().filter(|r| r.method == "GET").count();
                assert_eq!(gets, 1, "{log:?}");
            }
        }
    }
}

transport_test! {
    fn server_without_length_falls_back_to_one_stream(via) {
        for mode in [LengthMode::Chunked, LengthMode::Close] {
            let (server, body) = serve(
            via,
                2_500_001,
                FileOptions {
                    length: mode,
                    ignore_ranges: true,
                    ..FileOptions::default()
                },
            );
            let (s, notices) = download_with_notices(via, &server, &body);
            assert!(!s.segmented, "{mode:?}");
            assert_eq!(s.resource.length, None);
            assert!(noticed(&notices, "using 1 connection"), "{notices:?}");
        }
    }
}

transport_test! {
    fn chunked_or_close_delimited_ranges_still_split(via) {
        // No Content-Length anywhere, but the 0-0 probe's Content-Range gives the total.
        for mode in [LengthMode::Chunked, LengthMode::Close] {
            let (server, body) = serve(
            via,
                3_000_001,
                FileOptions {
                    length: mode,
                    ..FileOptions::default()
                },
            );
            let (s, notices) = download_with_notices(via, &server, &body);
            assert!(s.segmented, "{mode:?}: {notices:?}");
            assert_eq!(s.resource.length, Some(3_000_001));
        }
    }
}

transport_test! {
    fn head_refused_probes_with_a_one_byte_range(via) {
        let (server, body) = serve(
            via,
            3 << 20,
            FileOptions {
                head_refused: true,
                ..FileOptions::default()
            },
        );
        let (s, notices) = download_with_notices(via, &server, &body);
        assert!(s.segmented, "{notices:?}");
        let log = server.log();
        assert_eq!(log[0].method, "HEAD");
        assert_eq!(log[0].status, 405);
        assert_eq!(log[1].range(), Some("bytes=0-0"));
        assert_eq!(log[1].status, 206);
    }
}

transport_test! {
    fn head_refused_and_ranges_ignored_streams_the_probe_itself(via) {
        let (server, body) = serve(
            via,
            2 << 20,
            FileOptions {
                head_refused: true,
                ignore_ranges: true,
                ..FileOptions::default()
            },
        );
        let (s, _) = download_with_notices(via, &server, &body);
        assert!(!s.segmented);
        // HEAD, then the probe GET whose 200 body is the download: two requests.
        assert_eq!(server.log().len(), 2, "{:?}", server.log());
    }
}

transport_test! {
    fn redirects_relative_absolute_and_chains_are_followed(via) {
        let (server, body) = serve(via, 2 << 20, FileOptions::default());
        let abs = server.url("/f.bin");
        server.redirect("/rel", 302, "f.bin");
        server.redirect("/abs", 301, &abs);
        server.redirect("/c1", 307, "/c2");
        server.redirect("/c2", 308, "/c3");
        server.redirect("/c3", 303, &abs);
        for start in ["/rel", "/abs", "/c1"] {
            let dir = tempfile::tempdir().unwrap();
            let s = via.download(&server, start)
                .dir(dir.path())
                .output("out.bin")
                .run()
                .unwrap_or_else(|e| panic!("{start}: {e}"));
            assert_eq!(sha256_file(&s.path), sha256(&body), "{start}");
            assert_eq!(s.resource.final_url.as_str(), abs);
        }
    }
}

transport_test! {
    fn redirect_loop_and_too_many_redirects_fail_cleanly(via) {
        let server = via.server();
        server.redirect("/a", 302, "/b");
        server.redirect("/b", 302, "/a");
        for i in 0..12 {
            server.redirect(&format!("/r{i}"), 302, &format!("/r{}", i + 1));
        }
        server.file("/r12", b"end".to_vec(), FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let e = via.download(&server, "/a")
            .dir(dir.path())
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::RedirectLoop { .. }), "{e}");
        assert_eq!(e.exit_code(), 3);
        let e = via.download(&server, "/r0")
            .dir(dir.path())
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::TooManyRedirects { .. }), "{e}");
        // Ten redirects are fine.
        let s = via.download(&server, "/r2")
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(std::fs::read(&s.path).unwrap(), b"end");
        assert_eq!(dir_entries(dir.path()), vec!["r2"]);
    }
}

transport_test! {
    fn not_found_leaves_no_file(via) {
        let server = via.server();
        server.route("/gone", Route::Status(410));
        let dir = tempfile::tempdir().unwrap();
        for path in ["/missing.bin", "/gone"] {
            let e = via.download(&server, path)
                .dir(dir.path())
                .run()
                .unwrap_err();
            assert!(matches!(e, Error::HttpStatus { .. }), "{e}");
            assert_eq!(e.exit_code(), 4);
        }
        assert!(dir_entries(dir.path()).is_empty());
    }
}

transport_test! {
    fn persistent_server_error_mid_download_leaves_nothing_under_the_final_name(via) {
        let (server, _) = serve(
            via,
            3 << 20,
            FileOptions {
                range_status: Some(503),
                ..FileOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let e = via.download(&server, "/f.bin")
            .dir(dir.path())
            .retries(1)
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::HttpStatus { status: 503, .. }), "{e}");
        assert!(!dir.path().join("f.bin").exists());
    }
}

transport_test! {
    fn dropped_connections_resume_from_the_last_byte(via) {
        // The first three bodies are cut after 100 000 bytes.
        let (server, body) = serve(
            via,
            3 << 20,
            FileOptions {
                drop_after: Some((100_000, 3)),
                ..FileOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let s = via.download(&server, "/f.bin")
            .connections(3)
            .min_steal(u64::MAX)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let ranges = served_ranges(&server.log());
        // Three first requests, three resumed ones that start 100 000 bytes in.
        assert_eq!(ranges.len(), 6, "{ranges:?}");
        let seg = (3u64 << 20) / 3;
        for i in 0..3u64 {
            assert!(
                ranges.contains(&(i * seg + 100_000, (i + 1) * seg - 1)),
                "segment {i} not resumed from its last byte: {ranges:?}"
            );
        }
    }
}

transport_test! {
    fn content_disposition_names_are_sanitised(via) {
        let cases = [
            ("attachment; filename=\"../../x\"", "x"),
            ("attachment; filename=\"/etc/passwd\"", "passwd"),
            (
                "attachment; filename*=UTF-8''%E2%82%AC%20rates.txt",
                "€ rates.txt",
            ),
            ("attachment; filename=\"..\"", "f.bin"),
        ];
        for (cd, want) in cases {
            let (server, body) = serve(
            via,
                1000,
                FileOptions {
                    content_disposition: Some(cd.to_string()),
                    ..FileOptions::default()
                },
            );
            let dir = tempfile::tempdir().unwrap();
            let s = via.download(&server, "/f.bin")
                .dir(dir.path())
                .content_disposition(true)
                .run()
                .unwrap();
            assert_eq!(s.path, dir.path().join(want), "{cd}");
            assert_eq!(dir_entries(dir.path()), vec![want.to_string()]);
            assert_eq!(std::fs::read(&s.path).unwrap(), body);
            // Without -J the URL's name is used.
            let dir2 = tempfile::tempdir().unwrap();
            let s = via.download(&server, "/f.bin")
                .dir(dir2.path())
                .run()
                .unwrap();
            assert_eq!(s.path, dir2.path().join("f.bin"));
        }
    }
}

transport_test! {
    fn existing_file_is_kept_unless_forced(via) {
        let (server, body) = serve(via, 5000, FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.bin");
        std::fs::write(&target, b"precious").unwrap();
        let e = via.download(&server, "/f.bin")
            .dir(dir.path())
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::OutputExists(_)), "{e}");
        assert_eq!(e.exit_code(), 5);
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert_eq!(
            dir_entries(dir.path()),
            vec!["f.bin"],
            "no .part left behind"
        );
        via.download(&server, "/f.bin")
            .dir(dir.path())
            .force(true)
            .run()
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), body);
    }
}

#[test]
fn bad_urls_are_usage_errors() {
    for url in [
        "not a url",
        "ftp://example.com/x",
        "http://",
        "file:///etc/passwd",
    ] {
        let e = Download::new(url).run().unwrap_err();
        assert!(matches!(e, Error::InvalidUrl { .. }), "{url}: {e}");
        assert_eq!(e.exit_code(), 2, "{url}");
    }
    let e = Download::new("http://127.0.0.1/")
        .connections(0)
        .run()
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let e = Download::new("http://127.0.0.1/")
        .connections(65)
        .run()
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

transport_test! {
    fn unreachable_host_is_a_network_error(via) {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let server = via.server();
        let scheme = if via == Via::UreqTls { "https" } else { "http" };
        let e = Download::new(format!("{scheme}://127.0.0.1:{port}/x"))
            .session(via.session(&server).build())
            .dir(dir.path())
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::Network { .. }), "{e}");
        assert_eq!(e.exit_code(), 3);
        assert!(dir_entries(dir.path()).is_empty());
    }
}

transport_test! {
    fn missing_output_directory_is_a_file_error(via) {
        let (server, _) = serve(via, 100, FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let e = via.download(&server, "/f.bin")
            .dir(dir.path().join("nope"))
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert_eq!(e.exit_code(), 5);
    }
}

transport_test! {
    fn cancel_stops_a_running_download_promptly_and_keeps_nothing_final(via) {
        // 8 MiB at 1 MiB/s per connection: about 2 s with 4 connections.
        let (server, _) = serve(
            via,
            8 << 20,
            FileOptions {
                rate_limit: Some(1 << 20),
                ..FileOptions::default()
            },
        );
        // Cancel from the progress thread as soon as bytes flow.
        let (e, took, dir) = cancelled_once(via, &server, 1);
        assert_eq!(e.exit_code(), 130);
        assert!(
            took < std::time::Duration::from_millis(1500),
            "cancel took {took:?}"
        );
        assert!(!dir.path().join("f.bin").exists());
    }
}

/// Downloads `/f.bin` on 4 connections and cancels it from the progress
/// callback once `bytes` have arrived: the error, how long the run took, and
/// its directory.
fn cancelled_once(
    via: Via,
    server: &FixtureServer,
    bytes: u64,
) -> (Error, std::time::Duration, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let download = via
        .download(server, "/f.bin")
        .connections(4)
        .dir(dir.path());
    let cancel = download.cancel_handle();
    let download = download.progress(move |s| {
        if s.downloaded >= bytes {
            cancel.cancel();
        }
    });
    let started = std::time::Instant::now();
    let e = download.run().unwrap_err();
    assert!(matches!(e, Error::Cancelled), "{e}");
    (e, started.elapsed(), dir)
}

transport_test! {
    fn cancel_interrupts_connections_that_wait_on_a_silent_server(via) {
        // Every body stops after 64 KiB and stays silent for 20 s: the workers sit
        // in a read when the cancel comes, and must not wait for the read timeout.
        let (server, _) = serve(
            via,
            8 << 20,
            FileOptions {
                stall_after: Some((64 << 10, std::time::Duration::from_secs(20), 100)),
                ..FileOptions::default()
            },
        );
        let (_, took, _dir) = cancelled_once(via, &server, 4 * (64 << 10));
        assert!(
            took < std::time::Duration::from_secs(3),
            "cancel took {took:?}"
        );
    }
}

transport_test! {
    fn a_connection_that_stalls_near_its_end_is_overtaken(via) {
        // The first body goes silent for 20 s after 1.5 MiB; the read timeout is
        // 10 s. The others finish within 0.2 s and must fetch what it still holds
        // rather than wait for it: the endgame.
        let (server, body) = serve(
            via,
            8 << 20,
            FileOptions {
                rate_limit: Some(16 << 20),
                stall_after: Some((3 << 19, std::time::Duration::from_secs(20), 1)),
                ..FileOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let session = via.session(&server)
            .read_timeout(std::time::Duration::from_secs(10))
            .build();
        let s = via.download(&server, "/f.bin")
            .session(session)
            .connections(4)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        assert!(
            s.elapsed < std::time::Duration::from_secs(3),
            "waited for the stalled connection: {:?}",
            s.elapsed
        );
    }
}

transport_test! {
    fn an_empty_body_ends_at_once(via) {
        // HEAD says 0, the one-byte probe is answered 200 with an empty body
        // (a server that ignores ranges): that body is the download.
        let (server, _) = serve(
            via,
            0,
            FileOptions {
                ignore_ranges: true,
                ..FileOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let t = std::time::Instant::now();
        let s = via.download(&server, "/f.bin").dir(dir.path()).run().unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(std::fs::read(&s.path).unwrap(), b"");
        via.assert_served(&server);
    }
}

transport_test! {
    fn a_chunked_body_closed_after_its_last_chunk_is_complete(via) {
        // `0\r\n` and a close, without the final blank line.
        let (server, body) = serve(
            via,
            2_000_003,
            FileOptions {
                ignore_ranges: true,
                length: LengthMode::Chunked,
                bare_last_chunk: true,
                ..FileOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let s = via
            .download(&server, "/f.bin")
            .retries(0)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        via.assert_served(&server);
    }
}

transport_test! {
    fn a_cancelled_stream_without_a_length_is_not_taken_for_complete(via) {
        // A close-delimited body: a cancel shuts the socket, which ends such
        // a body as a finished one would. It must still be a cancel.
        let (server, _) = serve(
            via,
            8 << 20,
            FileOptions {
                ignore_ranges: true,
                length: LengthMode::Close,
                rate_limit: Some(2 << 20),
                ..FileOptions::default()
            },
        );
        let (e, took, dir) = cancelled_once(via, &server, 1 << 20);
        assert_eq!(e.exit_code(), 130);
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
        assert!(!dir.path().join("f.bin").exists(), "a truncated file was saved");
    }
}
