//! Hostile servers and hostile neighbours: every wait bounded, nothing
//! written through a link, no forged byte in the file, a jar that stays
//! loadable and bounded. The server's attacks run on both transports, and
//! over https.

#[macro_use]
mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::time::{Duration, Instant};

use common::*;
use rangeget::{Download, Error};
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

const LEN: usize = 3 << 20;

fn serve(via: Via, options: FileOptions) -> (FixtureServer, Vec<u8>) {
    let server = via.server();
    let body = pseudo_random_bytes(LEN, 14);
    server.file("/f.bin", body.clone(), options);
    (server, body)
}

/// `/f.bin` on `via` with a read timeout of `secs` and `retries` retries.
fn download(via: Via, server: &FixtureServer, secs: u64, retries: u32) -> Download {
    let session = via
        .session(server)
        .read_timeout(Duration::from_secs(secs))
        .build();
    Download::new(server.url("/f.bin"))
        .session(session)
        .retries(retries)
}

transport_test! {
    fn a_head_that_never_ends_is_bounded_by_the_read_timeout(via) {
        // The status line, then one byte a second: the whole head has one
        // deadline (the read timeout), not one per byte.
        let (server, _) = serve(via, FileOptions {
            drip_head: Some((Duration::from_secs(1), usize::MAX)),
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let e = download(via, &server, 2, 1).dir(dir.path()).run().unwrap_err();
        let took = t.elapsed();
        assert_eq!(e.exit_code(), 3, "{e}");
        assert!(e.to_string().contains("timed out"), "{e}");
        // HEAD (which drips nothing) then two tries of the GET probe: 2 x 2 s
        // and a backoff, with a few seconds to spare.
        assert!(took < Duration::from_secs(9), "took {took:?}");
        assert!(!dir.path().join("f.bin").exists());
    }
}

transport_test! {
    fn interim_answers_forever_are_bounded(via) {
        let (server, _) = serve(via, FileOptions {
            interim_forever: true,
            head_refused: true,
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let e = download(via, &server, 2, 1).dir(dir.path()).run().unwrap_err();
        let took = t.elapsed();
        assert!(matches!(e.exit_code(), 3 | 6), "{e}");
        assert!(took < Duration::from_secs(9), "took {took:?}: {e}");
    }
}

transport_test! {
    fn one_dripping_head_among_four_connections_does_not_hold_the_download(via) {
        // The first ranged GET's head drips a byte a second; the read timeout
        // is 30 s. Its socket is registered from the moment it connects, so
        // the endgame takes its bytes over and shuts it: the download ends
        // with the others, not 30 s later.
        let (server, body) = serve(via, FileOptions {
            drip_head: Some((Duration::from_secs(1), 1)),
            ..FileOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let s = download(via, &server, 30, 5)
            .connections(4)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        assert!(t.elapsed() < Duration::from_secs(6), "took {:?}", t.elapsed());
        via.assert_served(&server);
    }
}

/// A complete `206` for the file's first megabyte, all zeros: what a server
/// (or a proxy) that desynchronises a kept-alive connection slips in after
/// a body, hoping it is read as the next answer.
fn forged_206() -> Vec<u8> {
    let n = 1 << 20;
    let mut v = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-{}/{LEN}\r\nContent-Length: {n}\r\nETag: \"fixture-v1\"\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n",
        n - 1
    )
    .into_bytes();
    v.resize(v.len() + n, 0);
    v
}

transport_test! {
    fn bytes_past_a_body_never_reach_the_next_answer(via) {
        // After every body the server sends more on the kept-alive
        // connection: a forged answer, or garbage. A connection with bytes
        // waiting is not reused; the file is the server's real bytes, in
        // ranges, with no fallback and no error.
        for extra in [forged_206(), b"garbage\r\n\r\n".to_vec()] {
            let server = via.server();
            let body = pseudo_random_bytes(4 << 20, 15);
            server.file("/f.bin", body.clone(), FileOptions {
                after_body: Some(extra),
                rate_limit: Some(16 << 20),
                slow_range: Some((0, 512 << 10)),
                ..FileOptions::default()
            });
            let dir = tempfile::tempdir().unwrap();
            let (r, notices) = run_noting(
                via.download(&server, "/f.bin").connections(2).dir(dir.path()),
            );
            let s = r.unwrap_or_else(|e| panic!("{e} ({notices:?})"));
            assert_eq!(sha256_file(&s.path), sha256(&body));
            assert!(s.segmented, "{notices:?}");
            assert!(!noticed(&notices, "using 1 connection"), "{notices:?}");
            // Several ranged requests were needed (stealing from the slow one).
            let ranged = server.log().iter().filter(|r| r.status == 206).count();
            assert!(ranged > 3, "{ranged}");
            via.assert_served(&server);
        }
    }
}

transport_test! {
    fn a_flood_of_cookies_keeps_the_jar_bounded_and_the_next_run_working(via) {
        // 120 new cookies on every answer of a 64-connection download.
        let server = via.server();
        let body = pseudo_random_bytes(8 << 20, 16);
        server.file("/f.bin", body.clone(), FileOptions {
            cookies_per_answer: 120,
            ..FileOptions::default()
        });
        let session = via.session(&server).build();
        let dir = tempfile::tempdir().unwrap();
        let s = Download::new(server.url("/f.bin"))
            .session(session.clone())
            .connections(64)
            .min_segment(64 << 10)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let jar = session.cookies();
        assert!(jar.len() <= 50, "{} cookies kept for one site", jar.len());
        // The jar saves and loads, and the next run against that host works
        // (a Cookie header within its limit).
        let file = dir.path().join("jar.txt");
        session.save(&file).unwrap();
        let again = via.session(&server).build();
        again.load(&file).unwrap();
        assert_eq!(again.cookies().len(), jar.len());
        let dir2 = tempfile::tempdir().unwrap();
        let (r, notices) = run_noting(
            Download::new(server.url("/f.bin"))
                .session(again)
                .connections(8)
                .dir(dir2.path()),
        );
        let s = r.unwrap_or_else(|e| panic!("{e} ({notices:?})"));
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let sent = server.log().last().and_then(|r| r.header("cookie").map(str::len));
        assert!(sent.is_some_and(|n| n <= 8 << 10), "{sent:?}");
        via.assert_served(&server);
    }
}

transport_test! {
    fn a_cookie_value_with_a_tab_cannot_break_the_jar_file(via) {
        let (server, body) = serve(via, FileOptions {
            set_cookie: Some("t=a\tb; Path=/".into()),
            ..FileOptions::default()
        });
        let session = via.session(&server).build();
        let dir = tempfile::tempdir().unwrap();
        let s = Download::new(server.url("/f.bin"))
            .session(session.clone())
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let file = dir.path().join("jar.txt");
        session.save(&file).unwrap();
        let again = rangeget::Session::builder().build();
        again.load(&file).unwrap_or_else(|e| panic!("the saved jar does not load: {e}"));
    }
}

/// A victim file, and a link to it planted at `at`.
fn plant(dir: &std::path::Path, at: &str) -> std::path::PathBuf {
    let victim = dir.join(format!("victim-of-{}", at.trim_start_matches('.')));
    std::fs::write(&victim, b"precious").unwrap();
    symlink(&victim, dir.join(at)).unwrap();
    victim
}

#[test]
fn links_planted_at_our_paths_are_never_written_through() {
    let (server, body) = serve(Via::Wire, FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let part = plant(dir.path(), "f.bin.part");
    let tmp = plant(dir.path(), "f.bin.rangeget.tmp");
    let s = Download::new(server.url("/f.bin"))
        .dir(dir.path())
        .run()
        .unwrap();
    assert_eq!(sha256_file(&s.path), sha256(&body));
    for victim in [&part, &tmp] {
        assert_eq!(std::fs::read(victim).unwrap(), b"precious", "{victim:?}");
    }
    let meta = std::fs::symlink_metadata(&s.path).unwrap();
    assert!(meta.is_file(), "f.bin is a link");

    // The cookie jar's temporary file had a guessable name too.
    let session = rangeget::Session::builder().build();
    let jar = dir.path().join("jar.txt");
    let guess = plant(dir.path(), &format!(".jar.txt.tmp-{}", std::process::id()));
    session.save(&jar).unwrap();
    assert_eq!(std::fs::read(&guess).unwrap(), b"precious");
    let mode = std::fs::metadata(&jar).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::symlink_metadata(&jar).unwrap().is_file());
}

#[test]
fn a_partial_download_is_resumed_from_a_link_never() {
    // A link at NAME.part with a valid-looking state beside it: not resumed
    // through (its target would be written), replaced.
    let (server, body) = serve(Via::Wire, FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let victim = plant(dir.path(), "f.bin.part");
    let (r, notices) = run_noting(Download::new(server.url("/f.bin")).dir(dir.path()));
    let s = r.unwrap();
    assert_eq!(sha256_file(&s.path), sha256(&body));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(noticed(&notices, "not a regular file"), "{notices:?}");
}

#[test]
fn another_downloads_partial_file_is_never_discarded_unasked() {
    // A paused download of another file left f.bin.part and its state; a
    // download of a different URL to the same name must not throw it away.
    let other = FixtureServer::start().unwrap();
    other.file(
        "/f.bin",
        pseudo_random_bytes(8 << 20, 3),
        FileOptions {
            rate_limit: Some(2 << 20),
            etag: Some("\"other\"".into()),
            ..FileOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let d = Download::new(other.url("/f.bin"))
        .connections(2)
        .dir(dir.path());
    let cancel = d.cancel_handle();
    let e = d
        .progress(move |s| {
            if s.downloaded > 0 {
                cancel.cancel();
            }
        })
        .run()
        .unwrap_err();
    assert!(matches!(e, Error::Cancelled), "{e}");
    let part = std::fs::read(dir.path().join("f.bin.part")).unwrap();
    let (server, body) = serve(Via::Wire, FileOptions::default());
    let e = Download::new(server.url("/f.bin"))
        .dir(dir.path())
        .run()
        .unwrap_err();
    assert!(matches!(e, Error::Occupied { .. }), "{e}");
    assert_eq!(e.exit_code(), 5);
    assert!(e.to_string().contains("--no-resume"), "{e}");
    assert_eq!(std::fs::read(dir.path().join("f.bin.part")).unwrap(), part);
    assert!(dir.path().join("f.bin.rangeget").exists());
    // Asked to, it starts afresh.
    let s = Download::new(server.url("/f.bin"))
        .dir(dir.path())
        .resume(false)
        .run()
        .unwrap();
    assert_eq!(sha256_file(&s.path), sha256(&body));
}

#[test]
fn a_user_agent_with_a_line_break_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = rangeget(&["-A", "x\r\ny", "http://127.0.0.1:9/f"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("user agent"), "{}", stderr(&o));
}

#[test]
fn a_proposed_name_is_shortened_and_shows_what_it_is() {
    let server = FixtureServer::start().unwrap();
    let long = format!("{}.pdf", "r".repeat(300));
    for (cd, want) in [
        (format!("attachment; filename=\"{long}\""), None),
        (
            "attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe".to_string(),
            Some("invoicefdp.exe"),
        ),
    ] {
        server.file(
            "/f.bin",
            b"data".to_vec(),
            FileOptions {
                content_disposition: Some(cd.clone()),
                ..FileOptions::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let s = Download::new(server.url("/f.bin"))
            .dir(dir.path())
            .content_disposition(true)
            .run()
            .unwrap_or_else(|e| panic!("{cd}: {e}"));
        let name = s.path.file_name().unwrap().to_string_lossy().into_owned();
        match want {
            Some(w) => assert_eq!(name, w),
            None => {
                assert!(name.len() <= 200 && name.ends_with(".pdf"), "{name}");
            }
        }
        assert_eq!(std::fs::read(&s.path).unwrap(), b"data");
    }
}
