//! https: certificates verified against the system store, --cacert or
//! SSL_CERT_FILE; -k to skip; Secure cookies never leave https.

mod common;

use common::*;
use rangeget_fixture::{FileOptions, FixtureServer, Route, pseudo_random_bytes};

fn https_site() -> (FixtureServer, Vec<u8>, tempfile::TempDir) {
    let server = FixtureServer::start_tls().unwrap();
    let body = pseudo_random_bytes(3 << 20, 21);
    server.file("/f.bin", body.clone(), FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), server.ca_pem().unwrap()).unwrap();
    (server, body, dir)
}

#[test]
fn https_with_the_servers_ca_downloads_in_ranges() {
    let (server, body, dir) = https_site();
    let url = server.url("/f.bin");
    assert!(url.starts_with("https://"));
    let o = rangeget_env(
        &["-q", "-n", "4", "--cacert", "ca.pem", "-o", "f.bin", &url],
        dir.path(),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
    assert!(
        served_ranges(&server.log()).len() >= 3,
        "{:?}",
        server.log()
    );

    // The same CA through SSL_CERT_FILE.
    let ca = dir.path().join("ca.pem").to_string_lossy().into_owned();
    let o = rangeget_env(
        &["-q", "-o", "g.bin", &url],
        dir.path(),
        &[("SSL_CERT_FILE", &ca)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("g.bin")), sha256(&body));
}

#[test]
fn an_unknown_certificate_is_refused_unless_insecure() {
    let (server, body, dir) = https_site();
    let url = server.url("/f.bin");
    let o = rangeget_env(&["-q", "-o", "f.bin", &url], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).to_lowercase().contains("certificate"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("f.bin").exists());
    let o = rangeget_env(&["-q", "-k", "-o", "f.bin", &url], dir.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
}

#[test]
fn a_redirect_from_https_to_http_never_carries_a_secure_cookie() {
    let (server, _, dir) = https_site();
    let plain = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(2 << 20, 22);
    plain.file("/f.bin", body.clone(), FileOptions::default());
    server.route(
        "/go-same-host",
        Route::Redirect {
            status: 302,
            location: plain.url("/f.bin"),
            headers: vec![
                ("Set-Cookie".into(), "sec=s; Path=/; Secure".into()),
                ("Set-Cookie".into(), "open=o; Path=/".into()),
            ],
        },
    );
    let o = rangeget_env(
        &[
            "-q",
            "--cacert",
            "ca.pem",
            "-o",
            "f.bin",
            &server.url("/go-same-host"),
        ],
        dir.path(),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
    let log = plain.log();
    assert!(!log.is_empty());
    for r in &log {
        let c = r.header("cookie").unwrap_or("");
        assert!(!c.contains("sec="), "Secure cookie sent over http: {r:?}");
        assert!(
            c.contains("open=o"),
            "the ordinary cookie follows its rules: {r:?}"
        );
    }
}
