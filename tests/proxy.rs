//! Through real proxies from Debian's packages, started here on 127.0.0.1:
//! tinyproxy (an HTTP forward proxy, CONNECT for https) and microsocks (a
//! SOCKS5 proxy). `.ci/run` installs both. Byte for byte, with several
//! connections, to http and https targets.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rangeget::{Download, Engine, Session};
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

/// A proxy process, stopped when dropped, and what it printed.
struct Proxy {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn start(mut cmd: Command, url: String, port: u16, dir: tempfile::TempDir) -> Proxy {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{cmd:?}: {e} (install tinyproxy and microsocks, as .ci/run does)")
            });
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{url} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Proxy {
            child,
            url,
            log,
            _dir: dir,
        }
    }

    fn tinyproxy() -> Proxy {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("tinyproxy.conf");
        // No ConnectPort line: CONNECT to every port (the fixture's are
        // ephemeral). LogLevel Connect logs each CONNECT.
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 200\nLogLevel Connect\n"
            ),
        )
        .unwrap();
        let mut cmd = Command::new("tinyproxy");
        cmd.arg("-d").arg("-c").arg(&conf);
        Proxy::start(cmd, format!("http://127.0.0.1:{port}"), port, dir)
    }

    fn microsocks() -> Proxy {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("microsocks");
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        Proxy::start(cmd, format!("socks5://127.0.0.1:{port}"), port, dir)
    }
}

fn site(tls: bool) -> (FixtureServer, Vec<u8>) {
    let server = if tls {
        FixtureServer::start_tls()
    } else {
        FixtureServer::start()
    }
    .unwrap();
    let body = pseudo_random_bytes(4 << 20, 31);
    server.file(
        "/f.bin",
        body.clone(),
        FileOptions {
            rate_limit: Some(8 << 20),
            ..FileOptions::default()
        },
    );
    (server, body)
}

/// Downloads `/f.bin` through `proxy` with 4 connections; checks the bytes.
fn through(proxy: &Proxy, server: &FixtureServer, body: &[u8]) {
    let mut b = Session::builder().proxy(&proxy.url).no_proxy("");
    if let Some(ca) = server.ca_pem() {
        b = b.ca_pem(ca.as_bytes()).unwrap();
    }
    let session = b.try_build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Download::new(server.url("/f.bin"))
        .session(session)
        .connections(4)
        .dir(dir.path())
        .run()
        .unwrap_or_else(|e| panic!("through {}: {e}", proxy.url));
    assert_eq!(sha256_file(&s.path), sha256(body));
    assert_eq!(s.transport, "ureq", "a proxied request goes through ureq");
    // All four connections, in parallel.
    assert!(
        server.max_concurrent_bodies() >= 3,
        "{}",
        server.max_concurrent_bodies()
    );
}

/// How many CONNECTs `proxy` logged to the port of `server`.
fn connects(proxy: &Proxy, server: &FixtureServer) -> usize {
    let port = format!(":{}", server.addr().port());
    proxy
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("CONNECT") && l.contains(&port))
        .count()
}

#[test]
fn through_an_http_proxy_over_http_and_https() {
    // ureq tunnels through an HTTP proxy with CONNECT, for http targets as
    // for https: the proxy logs one per connection.
    let proxy = Proxy::tinyproxy();
    for tls in [false, true] {
        let (server, body) = site(tls);
        through(&proxy, &server, &body);
        assert!(
            connects(&proxy, &server) >= 4,
            "{tls}: {:?}",
            proxy.log.lock().unwrap()
        );
    }
}

#[test]
fn through_a_socks5_proxy_over_http_and_https() {
    let proxy = Proxy::microsocks();
    for tls in [false, true] {
        let (server, body) = site(tls);
        through(&proxy, &server, &body);
    }
    // The requests went through it: with it stopped, the same fails.
    let url = proxy.url.clone();
    drop(proxy);
    let (server, _) = site(false);
    let session = Session::builder().proxy(&url).no_proxy("").build();
    let dir = tempfile::tempdir().unwrap();
    let e = Download::new(server.url("/f.bin"))
        .session(session)
        .dir(dir.path())
        .run()
        .unwrap_err();
    assert!(e.to_string().contains("proxy"), "{e}");
}

#[test]
fn the_proxy_from_the_environment_is_used_and_a_dead_one_named() {
    let proxy = Proxy::tinyproxy();
    let (server, body) = site(false);
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rangeget"))
        .args(["-q", "-n", "4", "-o", "f.bin", &server.url("/f.bin")])
        .current_dir(dir.path())
        .env("http_proxy", &proxy.url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
    assert!(
        connects(&proxy, &server) >= 4,
        "{:?}",
        proxy.log.lock().unwrap()
    );
    // --noproxy names the host: straight to it, on our own connections.
    server.clear_log();
    let o = Command::new(env!("CARGO_BIN_EXE_rangeget"))
        .args([
            "-q",
            "--noproxy",
            "127.0.0.1",
            "-o",
            "g.bin",
            &server.url("/f.bin"),
        ])
        .current_dir(dir.path())
        .env("http_proxy", &proxy.url)
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let log = server.log();
    assert!(log.iter().all(|r| sent_by(r) == "wire"), "{log:?}");
    // A dead proxy given with --proxy: the error names it.
    let port = free_port();
    let o = rangeget(
        &[
            "-q",
            "--proxy",
            &format!("socks5://127.0.0.1:{port}"),
            "--noproxy",
            "",
            &server.url("/f.bin"),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("proxy 127.0.0.1:{port}")),
        "{}",
        stderr(&o)
    );
    // A proxy URL that cannot be used is a usage error.
    let o = rangeget(
        &["--proxy", "ftp://127.0.0.1:1", &server.url("/f.bin")],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_session_can_refuse_proxies_for_ureq_too() {
    // Engine::Ureq with no proxy, whatever the environment of the test.
    let (server, body) = site(false);
    let session = Session::builder().engine(Engine::Ureq).proxy("").build();
    let dir = tempfile::tempdir().unwrap();
    let s = Download::new(server.url("/f.bin"))
        .session(session)
        .dir(dir.path())
        .run()
        .unwrap();
    assert_eq!(sha256_file(&s.path), sha256(&body));
}
