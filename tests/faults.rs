//! Every server fault the fixture can inject, each handled: a correct file
//! where one is possible, otherwise a non-zero error and nothing under the
//! final name. Byte for byte, with the request log where it matters.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rangeget::{Checksum, Download, Error, Session};
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

const LEN: usize = 3 << 20;

fn serve(options: FileOptions) -> (FixtureServer, Vec<u8>) {
    let server = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(LEN, 42);
    server.file("/f.bin", body.clone(), options);
    (server, body)
}

/// Downloads `/f.bin` with 3 connections and a 1 s read timeout; returns the
/// result and the notices.
fn fetch(
    server: &FixtureServer,
    dir: &std::path::Path,
) -> (Result<rangeget::Summary, Error>, Vec<String>) {
    let notices: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = notices.clone();
    let session = Session::builder()
        .read_timeout(Duration::from_secs(1))
        .build();
    let r = Download::new(server.url("/f.bin"))
        .session(session)
        .connections(3)
        .min_steal(u64::MAX)
        .dir(dir)
        .on_notice(move |m| sink.lock().unwrap().push(m.to_string()))
        .run();
    let n = notices.lock().unwrap().clone();
    (r, n)
}

fn fetch_ok(server: &FixtureServer, body: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (r, notices) = fetch(server, dir.path());
    let s = r.unwrap_or_else(|e| panic!("{e} (notices {notices:?})"));
    assert_eq!(sha256_file(&s.path), sha256(body));
    assert_eq!(dir_entries(dir.path()), vec!["f.bin"], "leftovers");
    notices
}

/// A download that must be refused before anything is written: the error,
/// with the directory left empty.
fn fetch_refused(server: &FixtureServer) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = fetch(server, dir.path());
    let e = r.expect_err("must fail");
    assert!(
        dir_entries(dir.path()).is_empty(),
        "{e}: {:?}",
        dir_entries(dir.path())
    );
    e
}

fn fetch_err(server: &FixtureServer) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = fetch(server, dir.path());
    let e = r.expect_err("must fail");
    assert!(
        !dir.path().join("f.bin").exists(),
        "final name used after {e}"
    );
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
            "served again after {:?}",
            again.at - f.at
        );
    }
}

#[test]
fn a_stalled_body_is_retried_from_its_last_byte() {
    let (server, body) = serve(FileOptions {
        stall_after: Some((200_000, Duration::from_secs(20), 1)),
        ..FileOptions::default()
    });
    let t = Instant::now();
    fetch_ok(&server, &body);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
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

#[test]
fn a_server_slow_to_send_headers_is_retried() {
    let (server, body) = serve(FileOptions {
        stall_headers: Some((Duration::from_secs(20), 1)),
        ..FileOptions::default()
    });
    let t = Instant::now();
    fetch_ok(&server, &body);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn service_unavailable_is_retried_after_retry_after() {
    let (server, body) = serve(FileOptions {
        fail_first: Some((503, Some("1".into()), 2)),
        ..FileOptions::default()
    });
    fetch_ok(&server, &body);
    // Each failed range was asked again no sooner than Retry-After said.
    assert_served_again_after(&server, 503, 2, Duration::from_millis(990));
}

#[test]
fn a_probe_answered_503_is_retried_after_retry_after() {
    // HEAD, the GET probe and its retry all get 503 first.
    let (server, body) = serve(FileOptions {
        fail_any_first: Some((503, Some("1".into()), 3)),
        ..FileOptions::default()
    });
    let t = Instant::now();
    fetch_ok(&server, &body);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    let log = server.log();
    assert_eq!(log.iter().filter(|r| r.status == 503).count(), 3, "{log:?}");
}

#[test]
fn a_probe_206_without_a_usable_content_range_falls_back_to_one_stream() {
    // HEAD refused, and every 206 labelled with a total of "*" (unknown): the
    // one-byte probe proves nothing, so the file comes as one plain stream.
    let (server, body) = serve(FileOptions {
        head_refused: true,
        total_offset: i64::MIN,
        ..FileOptions::default()
    });
    let notices = fetch_ok(&server, &body);
    assert!(noticed(&notices, "using 1 connection"), "{notices:?}");
}

#[test]
fn a_refused_connection_is_not_retried() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let e = Download::new(format!("http://127.0.0.1:{port}/f"))
        .run()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Network {
                transient: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn too_many_requests_means_fewer_connections() {
    // The first three ranged requests of four get 429: those connections
    // retire and the one left fetches every segment, after the pause asked.
    let server = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(LEN, 42);
    let options = FileOptions {
        fail_first: Some((429, Some("1".into()), 3)),
        ..FileOptions::default()
    };
    server.file("/f.bin", body.clone(), options);
    let dir = tempfile::tempdir().unwrap();
    let s = Download::new(server.url("/f.bin"))
        .connections(4)
        .min_segment(512 << 10)
        .min_steal(u64::MAX)
        .dir(dir.path())
        .run()
        .unwrap();
    assert_eq!(sha256_file(&s.path), sha256(&body));
    assert_eq!(
        s.connections, 1,
        "still {} connections after 429s",
        s.connections
    );
    // Each refused range was served later, no sooner than Retry-After.
    assert_served_again_after(&server, 429, 3, Duration::from_millis(950));
}

#[test]
fn a_server_that_drips_bytes_cannot_hang_the_download() {
    let (server, _) = serve(FileOptions {
        rate_limit: Some(200),
        ..FileOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let session = Session::builder()
        .read_timeout(Duration::from_secs(1))
        .build();
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
}

#[test]
fn too_many_requests_with_an_http_date_is_retried() {
    let (server, body) = serve(FileOptions {
        fail_first: Some((429, Some("Wed, 21 Oct 2015 07:28:00 GMT".into()), 3)),
        ..FileOptions::default()
    });
    fetch_ok(&server, &body);
}

#[test]
fn a_persistent_503_fails_with_the_status_and_keeps_the_part_for_later() {
    let (server, _) = serve(FileOptions {
        fail_first: Some((503, Some("0".into()), usize::MAX)),
        ..FileOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let e = Download::new(server.url("/f.bin"))
        .dir(dir.path())
        .retries(2)
        .run()
        .unwrap_err();
    assert!(matches!(e, Error::HttpStatus { status: 503, .. }), "{e}");
    assert_eq!(e.exit_code(), 4);
    assert!(!dir.path().join("f.bin").exists());
}

#[test]
fn mislabelled_or_shifted_ranges_are_never_written_and_fall_back() {
    for shift in [1i64, -4096, 100_000] {
        let (server, body) = serve(FileOptions {
            shift_ranges: shift,
            ..FileOptions::default()
        });
        let notices = fetch_ok(&server, &body);
        assert!(
            noticed(&notices, "using 1 connection"),
            "{shift}: {notices:?}"
        );
    }
}

#[test]
fn a_wrong_total_in_content_range_never_produces_a_wrong_file() {
    // Every 206 claims a total 1000 bytes larger than the file. Round one
    // restarts; round two's GET probe believes the total, its last range comes
    // back mislabelled, and one stream (whose 200 is self-consistent) saves
    // the real bytes.
    let (server, body) = serve(FileOptions {
        total_offset: 1000,
        ..FileOptions::default()
    });
    let notices = fetch_ok(&server, &body);
    assert!(noticed(&notices, "starting over"), "{notices:?}");
}

#[test]
fn a_head_that_lies_about_the_length_is_overruled_by_get() {
    for lie in ["2097152", "4194304"] {
        let (server, body) = serve(FileOptions {
            head_length: Some(lie.into()),
            ..FileOptions::default()
        });
        let notices = fetch_ok(&server, &body);
        assert!(noticed(&notices, "starting over"), "{notices:?}");
        // The second probe asked GET for one byte instead of trusting HEAD.
        assert!(server.log().iter().any(|r| r.range() == Some("bytes=0-0")));
    }
}

#[test]
fn malformed_duplicated_or_huge_lengths_on_head_are_not_trusted() {
    for bad in ["12abc", "-5", "100, 200", "4611686018427387904", "0"] {
        let (server, body) = serve(FileOptions {
            head_length: Some(bad.into()),
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let (r, notices) = fetch(&server, dir.path());
        let s = r.unwrap_or_else(|e| panic!("{bad}: {e} {notices:?}"));
        assert_eq!(sha256_file(&s.path), sha256(&body), "{bad}");
    }
}

#[test]
fn a_length_beyond_the_free_space_is_refused_before_allocating() {
    // Every answer claims 2^62 bytes: the probe's GET confirms it, and the
    // download is refused instead of filling the disk.
    let (server, _) = serve(FileOptions {
        total_offset: (1i64 << 62) - LEN as i64,
        head_length: Some((1u64 << 62).to_string()),
        ..FileOptions::default()
    });
    let e = fetch_refused(&server);
    assert!(matches!(e, Error::DiskFull { .. }), "{e}");
    assert_eq!(e.exit_code(), 5);
}

#[test]
fn content_that_changes_mid_download_is_never_mixed() {
    // Longer (a Content-Range total shows it), same length, and shorter (the
    // ranges past its end get 416).
    for (i, len2) in [LEN + 12345, LEN, LEN / 3].into_iter().enumerate() {
        let v2 = Arc::new(pseudo_random_bytes(len2, 99 + i as u64));
        let (server, v1) = serve(FileOptions {
            change_after: Some((2, v2.clone(), "\"fixture-v2\"".into())),
            rate_limit: Some(8 << 20),
            ..FileOptions::default()
        });
        let notices = fetch_ok(&server, &v2);
        assert!(noticed(&notices, "changed"), "{len2}: {notices:?}");
        assert_ne!(sha256(&v1), sha256(&v2));
    }
}

#[test]
fn content_that_keeps_changing_is_an_error() {
    let (server, _) = serve(FileOptions {
        etag_per_answer: true,
        ..FileOptions::default()
    });
    let e = fetch_err(&server);
    assert!(e.to_string().contains("keeps changing"), "{e}");
    assert_eq!(e.exit_code(), 6);
}

#[test]
fn gzip_labelled_ranges_are_not_written_as_identity() {
    let (server, body) = serve(FileOptions {
        gzip_ranges: true,
        ..FileOptions::default()
    });
    let notices = fetch_ok(&server, &body);
    assert!(noticed(&notices, "Content-Encoding"), "{notices:?}");
    assert!(noticed(&notices, "using 1 connection"), "{notices:?}");
}

#[test]
fn a_representation_that_is_itself_gzip_is_saved_as_those_bytes() {
    let (server, body) = serve(FileOptions {
        gzip_all: true,
        ..FileOptions::default()
    });
    let notices = fetch_ok(&server, &body);
    assert!(!noticed(&notices, "using 1 connection"), "{notices:?}");
}

#[test]
fn short_bodies_again_and_again_fail_with_a_clear_error() {
    let (server, _) = serve(FileOptions {
        drop_after: Some((1000, usize::MAX)),
        ..FileOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let e = Download::new(server.url("/f.bin"))
        .dir(dir.path())
        .retries(2)
        .min_segment(64 << 10)
        .run()
        .unwrap_err();
    assert!(
        matches!(e, Error::Network { .. } | Error::Protocol { .. }),
        "{e}"
    );
    assert!(!dir.path().join("f.bin").exists());
    // The partial file and its state stay for a later resume.
    assert!(dir.path().join("f.bin.part").exists());
    assert!(dir.path().join("f.bin.rangeget").exists());
}

#[test]
fn server_digests_are_verified() {
    let body = pseudo_random_bytes(LEN, 42);
    let good = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(&body);
        base64(&d)
    };
    let (server, body) = serve(FileOptions {
        repr_digest: Some(format!("sha-256=:{good}:")),
        ..FileOptions::default()
    });
    fetch_ok(&server, &body);

    let bad = base64(&[0u8; 32]);
    let (server, _) = serve(FileOptions {
        repr_digest: Some(format!("sha-256=:{bad}:")),
        ..FileOptions::default()
    });
    let e = fetch_refused(&server);
    assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}");
    assert_eq!(e.exit_code(), 7);
}

#[test]
fn the_users_checksum_is_verified_in_both_modes() {
    for ignore_ranges in [false, true] {
        let (server, body) = serve(FileOptions {
            ignore_ranges,
            ..FileOptions::default()
        });
        let right = Checksum::parse(&format!("sha256:{}", sha256(&body))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        Download::new(server.url("/f.bin"))
            .dir(dir.path())
            .checksum(right)
            .run()
            .unwrap();
        let wrong = Checksum::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e = Download::new(server.url("/f.bin"))
            .dir(dir.path())
            .checksum(wrong)
            .run()
            .unwrap_err();
        assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}");
        assert!(dir_entries(dir.path()).is_empty());
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

#[test]
fn a_duplicated_but_consistent_content_length_is_accepted() {
    // RFC 9110 allows "N, N" for one length; the answers stay readable.
    let (server, body) = serve(FileOptions {
        ignore_ranges: true,
        raw_content_length: Some(format!("{LEN}, {LEN}")),
        ..FileOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (r, notices) = fetch(&server, dir.path());
    match r {
        Ok(s) => assert_eq!(sha256_file(&s.path), sha256(&body)),
        Err(e) => panic!("{e} ({notices:?})"),
    }
}
