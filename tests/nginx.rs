//! Against a real server: Debian's nginx on loopback, over http and https,
//! on both transports. A list of many files on one host: every file byte
//! for byte, the per-host ceiling never exceeded in nginx's own access log,
//! connections reused across files; and one large file on many connections.
//!
//! nginx is installed by `.ci/run` (package nginx-light).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rangeget::{Batch, Download};
use rangeget_fixture::{pseudo_random_bytes, test_certificate};

/// One line of the access log.
#[derive(Debug)]
struct Access {
    connection: u64,
    method: String,
    path: String,
    status: u16,
    bytes: u64,
    /// When nginx began and ended the request, in ms.
    start_ms: f64,
    end_ms: f64,
}

struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    ca: Option<String>,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// nginx serving `files` (name, body) from a fresh root, one process,
    /// as the user running the tests, each answer at most `rate` bytes a
    /// second (nginx's `limit_rate`) through a small send buffer, so that
    /// its log's times are the transfer's.
    fn start(tls: bool, files: &[(String, Vec<u8>)], rate: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        std::fs::create_dir(&root).unwrap();
        for (name, body) in files {
            std::fs::write(root.join(name), body).unwrap();
        }
        let d = dir.path().display();
        let mut ca = None;
        let mut listen_tls = String::new();
        if tls {
            let cert = test_certificate();
            std::fs::write(dir.path().join("chain.pem"), &cert.chain_pem).unwrap();
            std::fs::write(dir.path().join("key.pem"), &cert.key_pem).unwrap();
            listen_tls =
                format!(" ssl;\n ssl_certificate {d}/chain.pem;\n ssl_certificate_key {d}/key.pem");
            ca = Some(cert.ca_pem);
        }
        // A port is chosen, then bound by nginx: another process may take
        // it between the two; try a few.
        for _ in 0..5 {
            let port = free_port();
            let conf = format!(
                "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n\
                 log_format timed '$connection $msec $request_time $status $body_bytes_sent \"$request\"';\n\
                 access_log {d}/access.log timed;\n\
                 client_body_temp_path {d}/tmp-body; proxy_temp_path {d}/tmp-proxy;\n\
                 fastcgi_temp_path {d}/tmp-fcgi; uwsgi_temp_path {d}/tmp-uwsgi; scgi_temp_path {d}/tmp-scgi;\n\
                 keepalive_requests 10000;\n\
                 server {{\n listen 127.0.0.1:{port} sndbuf=128k{listen_tls};\n root {d}/www;\n limit_rate {rate};\n }}\n\
                 }}\n"
            );
            let conf_path = dir.path().join("nginx.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let mut child = Command::new("nginx")
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf_path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("nginx: {e} (install nginx-light, as .ci/run does)"));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Our own probe connection is not the client's.
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = std::fs::write(dir.path().join("access.log"), b"");
                    return Nginx {
                        child,
                        port,
                        dir,
                        ca,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken: another one
                }
                assert!(Instant::now() < deadline, "nginx did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!(
            "nginx would not start: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> Vec<Access> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap();
        text.lines()
            .map(|l| {
                let (head, request) = l.split_once(" \"").unwrap();
                let f: Vec<&str> = head.split(' ').collect();
                let end_ms = f[1].parse::<f64>().unwrap() * 1000.0;
                let took = f[2].parse::<f64>().unwrap() * 1000.0;
                let mut r = request.trim_end_matches('"').split(' ');
                Access {
                    connection: f[0].parse().unwrap(),
                    status: f[3].parse().unwrap(),
                    bytes: f[4].parse().unwrap(),
                    start_ms: end_ms - took,
                    end_ms,
                    method: r.next().unwrap_or("").to_string(),
                    path: r.next().unwrap_or("").to_string(),
                }
            })
            .collect()
    }

    fn session(&self, via: Via) -> rangeget::Session {
        let b = rangeget::Session::builder()
            .max_connections(16)
            .engine(match via {
                Via::Wire => rangeget::Engine::Auto,
                _ => rangeget::Engine::Ureq,
            });
        match &self.ca {
            Some(ca) => b.ca_pem(ca.as_bytes()).unwrap().build(),
            None => b.build(),
        }
    }
}

/// The most requests nginx was serving at once, by its log. Its times are
/// whole milliseconds: each request is taken as 2 ms shorter at each end,
/// so that one that ends and the next that begins in the same millisecond
/// are not counted together.
fn most_at_once(log: &[Access]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for a in log {
        let (s, e) = (a.start_ms + 2.0, a.end_ms - 2.0);
        if s < e {
            edges.push((s, 1));
            edges.push((e, -1));
        }
    }
    // Ends before starts at the same moment.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

fn files(n: usize, max: usize) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(0xa11ce);
    (0..n)
        .map(|i| {
            let bits = 10 + rng.below((max.ilog2() - 9) as u64) as u32;
            let len = ((1usize << bits) + rng.below(1 << bits) as usize / 2).min(max);
            (
                format!("f{i}.bin"),
                pseudo_random_bytes(len, 700 + i as u64),
            )
        })
        .collect()
}

fn check(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, body) in files {
        let got = std::fs::read(dir.join(name)).unwrap();
        assert!(
            got == *body,
            "{name} differs ({} of {} bytes)",
            got.len(),
            body.len()
        );
    }
}

transport_test! {
    fn a_list_from_nginx_stays_under_the_host_ceiling(via) {
        let files = files(120, 4 << 20);
        let nginx = Nginx::start(via == Via::UreqTls, &files, "8m");
        let dir = tempfile::tempdir().unwrap();
        let mut batch = Batch::new().session(nginx.session(via)).parallel(5).max_per_host(4);
        for (name, _) in &files {
            batch = batch.download(Download::new(nginx.url(&format!("/{name}"))).dir(dir.path()));
        }
        let report = batch.run();
        assert_eq!(report.done(), files.len(), "{:?}", report.results.iter().filter(|r| r.is_err()).collect::<Vec<_>>());
        check(dir.path(), &files);
        let log = nginx.log();
        assert!(log.iter().all(|a| a.path.starts_with("/f")), "{log:?}");
        let ranged = log.iter().filter(|a| a.status == 206).count();
        assert!(ranged >= files.len(), "{ranged} ranged answers for {} files", files.len());
        let most = most_at_once(&log);
        assert!(most <= 4, "nginx served {most} requests at once; the ceiling is 4");
        let mut conns: Vec<u64> = log.iter().map(|a| a.connection).collect();
        conns.sort_unstable();
        conns.dedup();
        assert!(
            conns.len() * 4 <= log.len(),
            "{} connections for {} requests: not reused across files",
            conns.len(),
            log.len()
        );
        // Every byte once, give or take what cut answers had sent ahead.
        let total: u64 = files.iter().map(|f| f.1.len() as u64).sum();
        let served: u64 = log.iter().filter(|a| a.method == "GET").map(|a| a.bytes).sum();
        assert!(served >= total && (served as f64) < total as f64 * 1.10, "{served} served for {total}");
    }
}

transport_test! {
    fn one_large_file_from_nginx_on_many_connections(via) {
        let files = vec![("big.bin".to_string(), pseudo_random_bytes(48 << 20, 9))];
        let nginx = Nginx::start(via == Via::UreqTls, &files, "8m");
        let dir = tempfile::tempdir().unwrap();
        let s = Download::new(nginx.url("/big.bin"))
            .session(nginx.session(via))
            .connections(8)
            .dir(dir.path())
            .run()
            .unwrap();
        assert_eq!(s.bytes, 48 << 20);
        check(dir.path(), &files);
        let log = nginx.log();
        let ranged: Vec<&Access> = log.iter().filter(|a| a.status == 206).collect();
        assert!(ranged.len() >= 8, "{log:?}");
        assert!(most_at_once(&log) >= 4, "the connections did not run at once: {log:?}");
        // nginx's ETag went back as If-Range: a resume would be validated
        // (the request headers are not logged; the download's state is gone
        // as it should be).
        let leftovers: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }
}
