//! The session's cookie jar: shared by every connection of a run, kept across
//! runs, compatible with curl's and wget's files, and safe across redirects.
//! The library's tests run on both transports, and over https.

#[macro_use]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use rangeget::{Download, Session};
use rangeget_fixture::{FileOptions, FixtureServer, Route, pseudo_random_bytes};

/// A site with a protected 4 MiB file that needs `needed` in the Cookie header,
/// capped per connection so that several ranges overlap.
fn protected_site(via: Via, needed: &str) -> (FixtureServer, Vec<u8>) {
    let server = via.server();
    let body = pseudo_random_bytes(4 << 20, 77);
    let options = FileOptions {
        require_cookie: Some(needed.to_string()),
        rate_limit: Some(16 << 20),
        ..FileOptions::default()
    };
    server.file("/protected.bin", body.clone(), options);
    (server, body)
}

fn cookie_headers(server: &FixtureServer, path: &str) -> Vec<Option<String>> {
    server
        .requests_for(path)
        .iter()
        .map(|r| r.header("cookie").map(str::to_string))
        .collect()
}

transport_test! {
    fn a_login_cookie_set_on_a_redirect_reaches_every_worker(via) {
        let (server, body) = protected_site(via, "sid=s1");
        server.route(
            "/login",
            Route::Login {
                form_contains: "user=ann&password=pw+1%26".into(),
                location: "/welcome".into(),
                set_cookies: vec!["sid=s1; Path=/; HttpOnly".into()],
            },
        );
        server.file("/welcome", b"hi".to_vec(), FileOptions::default());
        let session = via.session(&server).build();
        let page = session
            .post_form(
                &server.url("/login"),
                &[("user", "ann"), ("password", "pw 1&")],
            )
            .unwrap();
        assert_eq!((page.status, page.text().as_str()), (200, "hi"));
        // The form went out urlencoded, the 302 was followed with GET.
        let login = &server.requests_for("/login")[0];
        assert_eq!(login.method, "POST");
        assert_eq!(
            login.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(server.requests_for("/welcome")[0].method, "GET");

        let dir = tempfile::tempdir().unwrap();
        let s = Download::new(server.url("/protected.bin"))
            .session(session)
            .connections(8)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let log = server.requests_for("/protected.bin");
        let ranged = log.iter().filter(|r| r.status == 206).count();
        assert!(ranged >= 4, "only {ranged} ranged requests");
        for r in &log {
            assert!(
                r.header("cookie").is_some_and(|c| c.contains("sid=s1")),
                "request without the login cookie: {r:?}"
            );
        }
        via.assert_served(&server);

    }
}

#[test]
fn the_cookie_jar_carries_a_session_across_runs() {
    let (server, body) = protected_site(Via::Wire, "sid=run1");
    server.route(
        "/enter",
        Route::Redirect {
            status: 302,
            location: "/protected.bin".into(),
            headers: vec![
                ("Set-Cookie".into(), "sid=run1; Path=/".into()),
                ("Set-Cookie".into(), "keep=1; Path=/; Max-Age=3600".into()),
            ],
        },
    );
    let dir = tempfile::tempdir().unwrap();
    // Run 1: the cookie comes on the 302 and is used by the same run's workers.
    let o = rangeget(
        &[
            "-q",
            "--cookie-jar",
            "jar.txt",
            "-o",
            "one.bin",
            &server.url("/enter"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("one.bin")), sha256(&body));
    let jar = dir.path().join("jar.txt");
    let mode = std::fs::metadata(&jar).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "jar mode {mode:o}");
    let text = std::fs::read_to_string(&jar).unwrap();
    assert!(
        text.contains("\tsid\trun1"),
        "session cookie not saved: {text}"
    );
    assert!(text.contains("\tkeep\t1"), "{text}");

    // Run 2: no login, the jar alone opens the door.
    server.clear_log();
    let o = rangeget(
        &[
            "-q",
            "--cookie-jar",
            "jar.txt",
            "-o",
            "two.bin",
            &server.url("/protected.bin"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("two.bin")), sha256(&body));
    assert!(server.requests_for("/enter").is_empty());

    // Without the jar: 403, exit 4, no file.
    let o = rangeget(
        &["-q", "-o", "three.bin", &server.url("/protected.bin")],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(!dir.path().join("three.bin").exists());
}

#[test]
fn a_jar_written_by_curl_loads_and_ours_parses_back_identically() {
    let (server, body) = protected_site(Via::Wire, "sid=curl-session");
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("cookies.txt");
    let curl_jar = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/cookies/curl-cookies.txt"
    );
    std::fs::copy(curl_jar, &jar).unwrap();
    let o = rangeget(
        &[
            "-q",
            "--cookie-jar",
            "cookies.txt",
            "-o",
            "f.bin",
            &server.url("/protected.bin"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
    for c in cookie_headers(&server, "/protected.bin") {
        let c = c.expect("cookie header");
        assert!(
            c.contains("sid=curl-session") && c.contains("pref=dark"),
            "{c}"
        );
        assert!(!c.contains("scoped"), "path-scoped cookie sent to /: {c}");
    }
    // What we saved holds exactly curl's cookie lines.
    // (curl marks HttpOnly cookies with a #HttpOnly_ prefix that wget and aria2c
    // would skip as a comment; we write the same cookie without it.)
    let cookie_lines = |t: &str| {
        let mut v: Vec<String> = t
            .lines()
            .map(|l| l.trim_start_matches("#HttpOnly_"))
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let ours = std::fs::read_to_string(&jar).unwrap();
    let theirs = std::fs::read_to_string(curl_jar).unwrap();
    assert_eq!(cookie_lines(&ours), cookie_lines(&theirs));
}

#[test]
fn curl_and_wget_send_the_cookies_our_jar_saved() {
    let server = FixtureServer::start().unwrap();
    server.route(
        "/enter",
        Route::Redirect {
            status: 302,
            location: "/page".into(),
            headers: vec![
                ("Set-Cookie".into(), "sid=ours; Path=/; HttpOnly".into()),
                (
                    "Set-Cookie".into(),
                    "pref=light; Path=/; Max-Age=3600".into(),
                ),
            ],
        },
    );
    server.file("/page", b"ok".to_vec(), FileOptions::default());
    server.file("/check", b"ok".to_vec(), FileOptions::default());
    let session = Session::builder().build();
    assert_eq!(session.get(&server.url("/enter")).unwrap().status, 200);
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("jar.txt");
    session.save(&jar).unwrap();

    let curl = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-b"])
        .arg(&jar)
        .arg(server.url("/check"))
        .status()
        .expect("curl is installed by .ci/run");
    assert!(curl.success());
    let wget = Command::new("wget")
        .args(["-q", "-O", "/dev/null", "--load-cookies"])
        .arg(&jar)
        .arg(server.url("/check"))
        .status()
        .expect("wget is installed by .ci/run");
    assert!(wget.success());
    let sent = cookie_headers(&server, "/check");
    assert_eq!(sent.len(), 2, "{sent:?}");
    for (tool, c) in ["curl", "wget"].iter().zip(sent) {
        let c = c.unwrap_or_else(|| panic!("{tool} sent no cookie"));
        assert!(
            c.contains("sid=ours") && c.contains("pref=light"),
            "{tool}: {c}"
        );
    }
}

#[test]
fn a_corrupt_jar_is_a_clear_error_and_stays_untouched() {
    let server = FixtureServer::start().unwrap();
    server.file("/f", b"x".to_vec(), FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let bad = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\n";
    std::fs::write(dir.path().join("jar.txt"), bad).unwrap();
    let o = rangeget(&["--cookie-jar", "jar.txt", &server.url("/f")], dir.path());
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("jar.txt:2"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("jar.txt")).unwrap(),
        bad
    );
    assert!(
        server.log().is_empty(),
        "nothing is fetched with a broken jar"
    );
}

#[test]
fn a_cross_origin_redirect_drops_the_users_credentials() {
    let b = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(3 << 20, 5);
    b.file("/f.bin", body.clone(), FileOptions::default());
    let a = FixtureServer::start().unwrap();
    a.redirect("/go", 302, &b.url("/f.bin"));
    let dir = tempfile::tempdir().unwrap();
    let o = rangeget(
        &[
            "-q",
            "-n",
            "4",
            "-H",
            "Authorization: Bearer secret",
            "-H",
            "Cookie: manual=1",
            "-H",
            "Proxy-Authorization: Basic x",
            "-o",
            "f.bin",
            &a.url("/go"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
    // The origin the user named got them…
    let first = &a.requests_for("/go")[0];
    assert_eq!(first.header("authorization"), Some("Bearer secret"));
    assert_eq!(first.header("cookie"), Some("manual=1"));
    // …the other origin, probe and every worker alike, did not.
    let log = b.log();
    assert!(log.len() >= 4, "{log:?}");
    for r in &log {
        assert_eq!(r.header("authorization"), None, "{r:?}");
        assert_eq!(r.header("proxy-authorization"), None, "{r:?}");
        assert_eq!(r.header("cookie"), None, "{r:?}");
    }
}

transport_test! {
    fn a_cross_origin_redirect_drops_the_users_credentials_on_every_request(via) {
        let b = via.server();
        let body = pseudo_random_bytes(3 << 20, 5);
        b.file("/f.bin", body.clone(), FileOptions::default());
        let a = via.server();
        a.redirect("/go", 302, &b.url("/f.bin"));
        let session = via
            .session_trusting(&[&a, &b])
            .header("Authorization", "Bearer secret")
            .header("Cookie", "manual=1")
            .header("Proxy-Authorization", "Basic x")
            .build();
        let dir = tempfile::tempdir().unwrap();
        let s = Download::new(a.url("/go"))
            .session(session)
            .connections(4)
            .dir(dir.path())
            .output("f.bin")
            .run()
            .unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        let first = &a.requests_for("/go")[0];
        assert_eq!(first.header("authorization"), Some("Bearer secret"));
        assert_eq!(first.header("cookie"), Some("manual=1"));
        let log = b.log();
        assert!(log.len() >= 4, "{log:?}");
        for r in &log {
            assert_eq!(r.header("authorization"), None, "{r:?}");
            assert_eq!(r.header("proxy-authorization"), None, "{r:?}");
            assert_eq!(r.header("cookie"), None, "{r:?}");
        }
        via.assert_served(&a);
        via.assert_served(&b);
    }
}

#[test]
fn run_only_cookies_are_sent_but_never_saved_and_secure_ones_skip_http() {
    let server = FixtureServer::start().unwrap();
    server.file("/f", b"x".to_vec(), FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let jar = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tTRUE\t0\tsecret\ts\n127.0.0.1\tFALSE\t/\tFALSE\t0\tplain\tp\n";
    std::fs::write(dir.path().join("jar.txt"), jar).unwrap();
    let o = rangeget(
        &[
            "-q",
            "--cookie-jar",
            "jar.txt",
            "-b",
            "extra=1",
            &server.url("/f"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for c in cookie_headers(&server, "/f") {
        let c = c.expect("cookie header");
        assert!(c.contains("extra=1") && c.contains("plain=p"), "{c}");
        assert!(!c.contains("secret"), "Secure cookie sent over http: {c}");
    }
    let saved = std::fs::read_to_string(dir.path().join("jar.txt")).unwrap();
    assert!(!saved.contains("extra"), "run-only cookie saved: {saved}");
    assert!(
        saved.contains("\tsecret\ts") && saved.contains("\tplain\tp"),
        "{saved}"
    );
}

/// Starts rangeget on a slow download, waits (by watching the server's log, not
/// a clock) until its workers are transferring, sends `signal`, and returns the
/// exit status and stderr.
fn interrupt_mid_download(signal: &str) -> (Option<i32>, String, String) {
    let server = FixtureServer::start().unwrap();
    let options = FileOptions {
        rate_limit: Some(256 << 10),
        require_cookie: Some("sid=k".into()),
        ..FileOptions::default()
    };
    server.file("/slow.bin", pseudo_random_bytes(16 << 20, 1), options);
    server.route(
        "/enter",
        Route::Redirect {
            status: 302,
            location: "/slow.bin".into(),
            headers: vec![("Set-Cookie".into(), "sid=k; Path=/".into())],
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rangeget"))
        .args([
            "-q",
            "--cookie-jar",
            "jar.txt",
            "-o",
            "slow.bin",
            &server.url("/enter"),
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !server
        .log()
        .iter()
        .any(|r| r.status == 206 && r.body_bytes > 0)
    {
        assert!(std::time::Instant::now() < deadline, "no transfer started");
        std::thread::yield_now();
    }
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let jar = std::fs::read_to_string(dir.path().join("jar.txt")).unwrap_or_default();
    assert!(!dir.path().join("slow.bin").exists(), "final name used");
    (out.status.code(), stderr(&out), jar)
}

#[test]
fn ctrl_c_and_sigterm_save_the_jar_and_exit_130_or_143() {
    let (code, err, jar) = interrupt_mid_download("-INT");
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(jar.contains("\tsid\tk"), "jar not saved on Ctrl-C: {jar:?}");
    let (code, err, jar) = interrupt_mid_download("-TERM");
    assert_eq!(code, Some(143), "{err}");
    assert!(
        jar.contains("\tsid\tk"),
        "jar not saved on SIGTERM: {jar:?}"
    );
}
