//! Every server fault the fixture can inject, each handled: a correct file
//! where one is possible, otherwise a non-zero error and nothing under the
//! final name. Byte for byte, with the request log where it matters. Each
//! test runs on both transports, and over https (see `transport_test!`).

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rangeget::{Checksum, Download, Error};
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

const LEN: usize = 3 << 20;

fn serve(via: Via, options: FileOptions) -> (FixtureServer, Vec<u8>) {
    let server = via.server();
    let body = pseudo_random_bytes(LEN, 42);
    server.file("/f.bin", body.clone(), options);
    (server, body)
}

/// `/f.bin` with 3 connections, a 1 s read timeout and no stealing.
fn download(via: Via, server: &FixtureServer, dir: &std::path::Path) -> Download {
    let session = via
        .session(server)
        .read_timeout(Duration::from_secs(1))
        .build();
    Download::new(server.url("/f.bin"))
        .session(session)
        .connections(3)
        .min_steal(u64::MAX)
        .dir(dir)
}

/// A download that must succeed byte for byte, on `via`: its notices.
fn fetch_ok(via: Via, server: &FixtureServer, body: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (r, notices) = run_noting(download(via, server, dir.path()));
    let s = r.unwrap_or_else(|e| panic!("{e} (notices {notices:?})"));
    assert_eq!(sha256_file(&s.path), sha256(body));
    assert_eq!(dir_entries(dir.path()), vec!["f.bin"], "leftovers");
    assert_eq!(s.transport, via.client());
    via.assert_served(server);
    notices
}

/// A download that must be refused before anything is written: the error,
/// with the directory left empty.
fn fetch_refused(via: Via, server: &FixtureServer) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = run_noting(download(via, server, dir.path()));
    let e = r.expect_err("must fail");
    assert!(
        dir_entries(dir.path()).is_empty(),
        "{e}: {:?}",
        dir_entries(dir.path())
    );
    via.assert_served(server);
    e
}

fn fetch_err(via: Via, server: &FixtureServer) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = run_noting(download(via, server, dir.path()));
    let e = r.expect_err("must fail");
    assert!(
        !dir.path().join("f.bin").exists(),
        "final name used after {e}"
    );
    via.assert_served(server);
    e
}

/// Checks that exactly `count` requests were answered `status`, and that each
/// of their ranges was served (206) later, no sooner than `pause` after.
fn assert_served_again_after(server: &FixtureServer, status: u16, count: usize, pause: Duration) {
    let log = server.log();
    let refused: Vec<_> = log.iter().filter(|r| r.status == status).collect();
    assert_eq!(refused.len(), count, "{log:?}");
    for f in refused {
        let again = log
            .iter()
            .find(|r| r.status == 206 && r.range() == f.range() && r.at > f.at)
            .unwrap_or_else(|| panic!("{:?} never served: {log:?}", f.range()));
        assert!(
            again.at - f.at >= pause,
            "served again after {:?}: {:?}",
            again.at - f.at,
            log.iter()
                .map(|r| (
                    r.at - log[0].at,
                    r.status,
                    r.range(),
                    r.header("retry-after")
                ))
                .collect::<Vec<_>>()
        );
    }
}

transport_test! {
    fn a_stalled_body_is_retried_from_its_last_byte(via) {
        let (server, body) = serve(via, FileOptions {
            stall_after: Some((200_000, Duration::from_secs(20), 1)),
            ..FileOptions::default()
        });
        let t = Instant::now();
        fetch_ok(via, &server, &body);
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
        // The stalled range (the first body served) was resumed 200 000 bytes in.
        let log = server.log();
        let first = log.iter().find(|r| r.status == 206).unwrap();
        let (a, b) = parse_range(first).unwrap();
        assert!(
            served_ranges(&log).contains(&(a + 200_000, b)),
            "{:?}",
            served_ranges(&log)
        );
    }
}

transport_test! {
    fn a_server_slow_to_send_headers_is_retried(via) {
        let (server, body) = serve(via, FileOptions {
            stall_headers: Some((Duration::from_secs(20), 1)),
            ..FileOptions::default()
        });
        let t = Instant::now();
        fetch_ok(via, &server, &body);
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    }
}

transport_test! {
    fn service_unavailable_is_retried_after_retry_after(via) {
        let (server, body) = serve(via, FileOptions {
            fail_first: Some((503, Some("1".into()), 2)),
            ..FileOptions::default()
        });
        fetch_ok(via, &server, &body);
        // Each failed range was asked again no sooner than Retry-After said.
        assert_served_again_after(&server, 503, 2, Duration::from_millis(990));
    }
}

transport_test! {
    fn a_probe_answered_503_is_retried_after_retry_after(via) {
        // HEAD, the GET probe and its retry all get 503 first.
        let (server, body) = serve(via, FileOptions {
            fail_any_first: Some((503, Some("1".into()), 3)),
            ..FileOptions::default()
        });
        let t = Instant::now();
        fetch_ok(via, &server, &body);
        assert!(t.elapsed() >= Duration::from_millis(950), "{:?}", t.elapsed());
        let log = server.log();
        assert_eq!(log.iter().filter(|r| r.status == 503).count(), 3, "{log:?}");
    }
}

transport_test! {
    fn a_probe_206_without_a_usable_content_range_falls_back_to_one_stream(via) {
        // HEAD refused, and every 206 labelled with a total of "*" (unknown): the
        // one-byte probe proves nothing, so the file comes as one plain stream.
        let (server, body) = serve(via, FileOptions {
            head_refused: true,
            total_offset: i64::MIN,
            ..FileOptions::default()
        });
        let notices = fetch_ok(via, &server, &body);
        assert!(noticed(&notices, "using 1 connection"), "{notices:?}");
    }
}

transport_test! {
    fn a_refused_connection_is_not_retried(via) {
        // A port that was just free: nothing listens there.
        let server = via.server();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let scheme = if via == Via::UreqTls { "https" } else { "http" };
        let t = Instant::now();
        let e = Download::new(format!("{scheme}://127.0.0.1:{port}/f"))
            .session(via.session(&server).build())
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::Network { transient: false, .. }), "{e:?}");
        assert_eq!(e.exit_code(), 3);
        assert!(t.elapsed() < Duration::from_millis(200), "{:?}", t.elapsed());
    }
}

transport_test! {
    fn an_untrusted_certificate_fails_at_once(via) {
        if via != Via::UreqTls {
            return;
        }
        let (server, _) = serve(via, FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let e = Download::new(server.url("/f.bin"))
            .session(rangeget::Session::builder().engine(rangeget::Engine::Ureq).build())
            .dir(dir.path())
            .run()
            .unwrap_err();
        assert!(e.to_string().contains("certificate"), "{e}");
        assert_eq!(e.exit_code(), 3);
        // Not worth a retry: it fails at once.
        assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
        assert!(dir_entries(dir.path()).is_empty());
    }
}

transport_test! {
    fn too_many_requests_means_fewer_connections(via) {
        // The first three ranged requests of four get 429: those connections
        // retire and the one left fetches every segment, after the pause asked.
        let (server, body) = serve(via, FileOptions {
            fail_first: Some((429, Some("1".into()), 3)),
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let s = via
            .download(&server, "/f.bin")
            .connections(4)
            .min_segment(512 << 10)
            .min_steal(u64::MAX)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        // Seen from the server: never two bodies at once.
        assert_eq!(
            server.max_concurrent_bodies(),
            1,
            "still {} bodies at once after 429s",
            server.max_concurrent_bodies()
        );
        // Each refused range was served later, no sooner than Retry-After.
        assert_served_again_after(&server, 429, 3, Duration::from_millis(950));
        via.assert_served(&server);
    }
}

transport_test! {
    fn a_server_that_drips_bytes_cannot_hang_the_download(via) {
        let (server, _) = serve(via, FileOptions {
            rate_limit: Some(200),
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let session = via.session(&server).read_timeout(Duration::from_secs(1)).build();
        let t = Instant::now();
        let e = Download::new(server.url("/f.bin"))
            .session(session)
            .retries(1)
            .dir(dir.path())
            .run()
            .unwrap_err();
        assert!(e.to_string().contains("stalled"), "{e}");
        assert_eq!(e.exit_code(), 3);
        assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
        assert!(!dir.path().join("f.bin").exists());
        via.assert_served(&server);
    }
}

transport_test! {
    fn too_many_requests_with_an_http_date_waits_for_that_date(via) {
        // A date three seconds ahead (to the second, as HTTP dates go): no
        // refused range may be asked again before it. A date in the past
        // would mean no wait at all.
        let (started, wall) = (Instant::now(), std::time::SystemTime::now());
        let date = httpdate::fmt_http_date(wall + Duration::from_secs(3));
        let due = httpdate::parse_http_date(&date).unwrap().duration_since(wall).unwrap();
        assert!(due > Duration::from_secs(2));
        let (server, body) = serve(via, FileOptions {
            fail_first: Some((429, Some(date), 3)),
            ..FileOptions::default()
        });
        fetch_ok(via, &server, &body);
        let log = server.log();
        let refused: Vec<_> = log.iter().filter(|r| r.status == 429).collect();
        assert_eq!(refused.len(), 3, "{log:?}");
        for f in refused {
            let again = log
                .iter()
                .find(|r| r.status == 206 && r.range() == f.range() && r.at > f.at)
                .unwrap_or_else(|| panic!("{:?} never served: {log:?}", f.range()));
            // (10 ms for the clocks' granularity.)
            assert!(
                again.at + Duration::from_millis(10) >= started + due,
                "{:?} asked again {:?} before the date",
                f.range(),
                (started + due) - again.at
            );
        }
    }
}

transport_test! {
    fn a_persistent_503_fails_with_the_status_and_keeps_the_part_for_later(via) {
        let (server, _) = serve(via, FileOptions {
            fail_first: Some((503, Some("0".into()), usize::MAX)),
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let e = via
            .download(&server, "/f.bin")
            .dir(dir.path())
            .retries(2)
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::HttpStatus { status: 503, .. }), "{e}");
        assert_eq!(e.exit_code(), 4);
        assert!(!dir.path().join("f.bin").exists());
        assert!(dir.path().join("f.bin.part").exists());
        via.assert_served(&server);
    }
}

transport_test! {
    fn mislabelled_or_shifted_ranges_are_never_written_and_fall_back(via) {
        for shift in [1i64, -4096, 100_000] {
            let (server, body) = serve(via, FileOptions {
                shift_ranges: shift,
                ..FileOptions::default()
            });
            let notices = fetch_ok(via, &server, &body);
            assert!(noticed(&notices, "using 1 connection"), "{shift}: {notices:?}");
        }
    }
}

transport_test! {
    fn a_wrong_total_in_content_range_never_produces_a_wrong_file(via) {
        // Every 206 claims a total 1000 bytes larger than the file. Round one
        // restarts; round two's GET probe believes the total, its last range comes
        // back mislabelled, and one stream (whose 200 is self-consistent) saves
        // the real bytes.
        let (server, body) = serve(via, FileOptions {
            total_offset: 1000,
            ..FileOptions::default()
        });
        let notices = fetch_ok(via, &server, &body);
        assert!(noticed(&notices, "starting over"), "{notices:?}");
    }
}

transport_test! {
    fn a_head_that_lies_about_the_length_is_overruled_by_get(via) {
        for lie in ["2097152", "4194304"] {
            let (server, body) = serve(via, FileOptions {
                head_length: Some(lie.into()),
                ..FileOptions::default()
            });
            let notices = fetch_ok(via, &server, &body);
            assert!(noticed(&notices, "starting over"), "{notices:?}");
            // The second probe asked GET for one byte instead of trusting HEAD.
            assert!(server.log().iter().any(|r| r.range() == Some("bytes=0-0")));
        }
    }
}

transport_test! {
    fn malformed_duplicated_or_huge_lengths_on_head_are_not_trusted(via) {
        for bad in ["12abc", "-5", "100, 200", "4611686018427387904", "0"] {
            let (server, body) = serve(via, FileOptions {
                head_length: Some(bad.into()),
                ..FileOptions::default()
            });
            let dir = tempfile::tempdir().unwrap();
            let (r, notices) = run_noting(download(via, &server, dir.path()));
            let s = r.unwrap_or_else(|e| panic!("{bad}: {e} {notices:?}"));
            assert_eq!(sha256_file(&s.path), sha256(&body), "{bad}");
            via.assert_served(&server);
        }
    }
}

transport_test! {
    fn a_length_beyond_the_free_space_is_refused_before_allocating(via) {
        // Every answer claims 2^62 bytes: the probe's GET confirms it, and the
        // download is refused instead of filling the disk.
        let (server, _) = serve(via, FileOptions {
            total_offset: (1i64 << 62) - LEN as i64,
            head_length: Some((1u64 << 62).to_string()),
            ..FileOptions::default()
        });
        let e = fetch_refused(via, &server);
        assert!(matches!(e, Error::DiskFull { .. }), "{e}");
        assert_eq!(e.exit_code(), 5);
    }
}

transport_test! {
    fn content_that_changes_mid_download_is_never_mixed(via) {
        // Longer (a Content-Range total shows it), same length, and shorter (the
        // ranges past its end get 416).
        for (i, len2) in [LEN + 12345, LEN, LEN / 3].into_iter().enumerate() {
            let v2 = Arc::new(pseudo_random_bytes(len2, 99 + i as u64));
            let (server, _) = serve(via, FileOptions {
                change_after: Some((2, v2.clone(), "\"fixture-v2\"".into())),
                rate_limit: Some(8 << 20),
                ..FileOptions::default()
            });
            let notices = fetch_ok(via, &server, &v2);
            assert!(noticed(&notices, "changed"), "{len2}: {notices:?}");
            // Started over: the whole of the new version was fetched after the
            // change, none of the old bytes kept.
            let after: u64 = server
                .log()
                .iter()
                .filter(|r| r.method == "GET" && matches!(r.status, 200 | 206))
                .filter(|r| r.range() != Some("bytes=0-0"))
                .skip(2)
                .map(|r| r.body_bytes)
                .sum();
            assert!(after >= len2 as u64, "{len2}: only {after} bytes after the change");
        }
    }
}

transport_test! {
    fn content_that_keeps_changing_is_an_error(via) {
        let (server, _) = serve(via, FileOptions {
            etag_per_answer: true,
            ..FileOptions::default()
        });
        let e = fetch_err(via, &server);
        assert!(e.to_string().contains("keeps changing"), "{e}");
        assert_eq!(e.exit_code(), 6);
    }
}

transport_test! {
    fn gzip_labelled_ranges_are_not_written_as_identity(via) {
        let (server, body) = serve(via, FileOptions {
            gzip_ranges: true,
            ..FileOptions::default()
        });
        let notices = fetch_ok(via, &server, &body);
        assert!(noticed(&notices, "Content-Encoding"), "{notices:?}");
        assert!(noticed(&notices, "using 1 connection"), "{notices:?}");
    }
}

transport_test! {
    fn a_representation_that_is_itself_gzip_is_saved_as_those_bytes(via) {
        let (server, body) = serve(via, FileOptions {
            gzip_all: true,
            ..FileOptions::default()
        });
        let notices = fetch_ok(via, &server, &body);
        assert!(!noticed(&notices, "using 1 connection"), "{notices:?}");
    }
}

transport_test! {
    fn short_bodies_again_and_again_fail_with_a_clear_error(via) {
        let (server, _) = serve(via, FileOptions {
            drop_after: Some((1000, usize::MAX)),
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let e = via
            .download(&server, "/f.bin")
            .dir(dir.path())
            .retries(2)
            .min_segment(64 << 10)
            .run()
            .unwrap_err();
        assert!(e.to_string().contains("ended early"), "{e}");
        assert_eq!(e.exit_code(), 6, "{e}");
        assert!(!dir.path().join("f.bin").exists());
        // The partial file and its state stay for a later resume.
        assert!(dir.path().join("f.bin.part").exists());
        assert!(dir.path().join("f.bin.rangeget").exists());
        via.assert_served(&server);
    }
}

transport_test! {
    fn a_body_always_cut_before_the_end_fails_in_bounded_time(via) {
        // Every body stops 1000 bytes before the end of the file and the
        // connection closes. However many connections fetch it, and however
        // the last bytes move between them (stealing, the endgame), the tries
        // on those bytes are counted once: the download ends with exit 6
        // within the retries' backoff, keeping .part and its state.
        for n in [1usize, 8, 64] {
            let (server, _) = serve(via, FileOptions {
                short_tail: Some(1000),
                ..FileOptions::default()
            });
            let dir = tempfile::tempdir().unwrap();
            let retries = 2;
            let t = Instant::now();
            let e = via
                .download(&server, "/f.bin")
                .connections(n)
                .min_segment(32 << 10)
                .retries(retries)
                .dir(dir.path())
                .run()
                .unwrap_err();
            let took = t.elapsed();
            assert_eq!(e.exit_code(), 6, "n {n}: {e}");
            assert!(e.to_string().contains("1000 bytes short"), "n {n}: {e}");
            let bound = rangeget::unversioned::max_backoff_total(retries) + Duration::from_secs(3);
            assert!(took < bound, "n {n}: took {took:?}, bound {bound:?}");
            assert!(dir.path().join("f.bin.part").exists(), "n {n}");
            assert!(dir.path().join("f.bin.rangeget").exists(), "n {n}");
            // The bytes after the cut were asked for at most `retries` more
            // times after the request that was cut there.
            let log = server.log();
            let again = log
                .iter()
                .filter(|r| parse_range(r) == Some((LEN as u64 - 1000, LEN as u64 - 1)))
                .count();
            let tails: Vec<_> = log.iter().filter_map(parse_range).collect();
            assert!(again <= retries as usize, "n {n}: {again} retries of the tail: {tails:?}");
            via.assert_served(&server);
        }
    }
}

transport_test! {
    fn server_digests_are_verified(via) {
        let body = pseudo_random_bytes(LEN, 42);
        let good = {
            use sha2::Digest;
            let d = sha2::Sha256::digest(&body);
            base64(&d)
        };
        let (server, body) = serve(via, FileOptions {
            repr_digest: Some(format!("sha-256=:{good}:")),
            ..FileOptions::default()
        });
        fetch_ok(via, &server, &body);

        let bad = base64(&[0u8; 32]);
        let (server, _) = serve(via, FileOptions {
            repr_digest: Some(format!("sha-256=:{bad}:")),
            ..FileOptions::default()
        });
        let e = fetch_refused(via, &server);
        assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}");
        assert_eq!(e.exit_code(), 7);
    }
}

transport_test! {
    fn the_users_checksum_is_verified_in_both_modes(via) {
        for ignore_ranges in [false, true] {
            let (server, body) = serve(via, FileOptions {
                ignore_ranges,
                ..FileOptions::default()
            });
            let right = Checksum::parse(&format!("sha256:{}", sha256(&body))).unwrap();
            let dir = tempfile::tempdir().unwrap();
            via.download(&server, "/f.bin")
                .dir(dir.path())
                .checksum(right)
                .run()
                .unwrap();
            let wrong = Checksum::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let e = via
                .download(&server, "/f.bin")
                .dir(dir.path())
                .checksum(wrong)
                .run()
                .unwrap_err();
            assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}");
            assert!(dir_entries(dir.path()).is_empty());
            via.assert_served(&server);
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

transport_test! {
    fn a_duplicated_but_consistent_content_length_is_accepted(via) {
        // RFC 9110 allows "N, N" for one length; the answers stay readable.
        let (server, body) = serve(via, FileOptions {
            ignore_ranges: true,
            raw_content_length: Some(format!("{LEN}, {LEN}")),
            ..FileOptions::default()
        });
        fetch_ok(via, &server, &body);
    }
}
