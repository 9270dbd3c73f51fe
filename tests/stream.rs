//! `-o -`: the file in order to a writer, on many connections, in bounded
//! memory; on both transports and over https.

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rangeget::Snapshot;
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

/// A writer into shared memory, optionally slow (a reader that lags).
#[derive(Clone, Default)]
struct Collect {
    bytes: Arc<Mutex<Vec<u8>>>,
    pause: Option<Duration>,
}

impl Write for Collect {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(p) = self.pause {
            std::thread::sleep(p);
        }
        // Small writes, as a pipe would take them.
        let n = buf.len().min(64 << 10);
        self.bytes.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn serve(via: Via, len: usize, options: FileOptions) -> (FixtureServer, Vec<u8>) {
    let server = via.server();
    let body = pseudo_random_bytes(len, 61);
    server.file("/f.bin", body.clone(), options);
    (server, body)
}

transport_test! {
    fn in_order_on_many_connections_within_the_window(via) {
        // A reader that lags behind 8 connections: what is held, fetched but
        // not yet written out, never exceeds the window (and a read's worth).
        const WINDOW: u64 = 1 << 20;
        let (server, body) = serve(via, 6 << 20, FileOptions {
            rate_limit: Some(4 << 20),
            ..FileOptions::default()
        });
        let out = Collect {
            pause: Some(Duration::from_millis(2)),
            ..Collect::default()
        };
        let written = out.bytes.clone();
        let worst: Arc<Mutex<u64>> = Arc::default();
        let seen = worst.clone();
        let s = via
            .download(&server, "/f.bin")
            .connections(8)
            .min_segment(128 << 10)
            .output_stream(out)
            .stream_window(WINDOW)
            .progress(move |p: &Snapshot| {
                let ahead = p.downloaded.saturating_sub(written_len(&written));
                let mut w = seen.lock().unwrap();
                *w = (*w).max(ahead);
            })
            .run()
            .unwrap();
        assert!(s.segmented);
        assert_eq!(s.path, std::path::PathBuf::from("-"));
        let got = s.bytes;
        assert_eq!(got, body.len() as u64);
        let worst = *worst.lock().unwrap();
        assert!(worst <= WINDOW + (1 << 20), "{worst} bytes held ahead of the reader");
        via.assert_served(&server);
        // Several ranges, on several connections at once.
        assert!(served_ranges(&server.log()).len() >= 8);
        assert!(server.max_concurrent_bodies() >= 4, "{}", server.max_concurrent_bodies());
    }
}

fn written_len(w: &Arc<Mutex<Vec<u8>>>) -> u64 {
    w.lock().unwrap().len() as u64
}

transport_test! {
    fn the_bytes_are_the_files_whatever_the_server(via) {
        // Ranges, a server that ignores them, one without a length.
        for options in [
            FileOptions::default(),
            FileOptions { ignore_ranges: true, ..FileOptions::default() },
            FileOptions {
                ignore_ranges: true,
                length: rangeget_fixture::LengthMode::Chunked,
                ..FileOptions::default()
            },
        ] {
            let (server, body) = serve(via, 3 << 20, options);
            let out = Collect::default();
            let bytes = out.bytes.clone();
            via.download(&server, "/f.bin")
                .connections(4)
                .output_stream(out)
                .run()
                .unwrap();
            assert_eq!(sha256(&bytes.lock().unwrap()), sha256(&body));
            via.assert_served(&server);
        }
    }
}

transport_test! {
    fn a_stalled_range_at_the_head_is_taken_over(via) {
        // The first body goes silent for 20 s after 256 KiB; the read timeout
        // is 30 s. The stream waits on it: the endgame takes it over.
        let (server, body) = serve(via, 6 << 20, FileOptions {
            stall_after: Some((256 << 10, Duration::from_secs(20), 1)),
            rate_limit: Some(8 << 20),
            ..FileOptions::default()
        });
        let session = via.session(&server).read_timeout(Duration::from_secs(30)).build();
        let out = Collect::default();
        let bytes = out.bytes.clone();
        let t = Instant::now();
        rangeget::Download::new(server.url("/f.bin"))
            .session(session)
            .connections(4)
            .output_stream(out)
            .run()
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
        assert_eq!(sha256(&bytes.lock().unwrap()), sha256(&body));
    }
}

#[test]
fn to_standard_output_from_the_command_line() {
    let server = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(5 << 20, 62);
    server.file("/f.bin", body.clone(), FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let o = rangeget(
        &["-q", "-n", "8", "-o", "-", &server.url("/f.bin")],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout.len(), body.len());
    assert_eq!(sha256(&o.stdout), sha256(&body));
    assert!(dir_entries(dir.path()).is_empty(), "nothing on disk");
    // A wrong checksum: the bytes are out already; the exit code says so.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let o = rangeget(
        &["-q", "--checksum", &wrong, "-o", "-", &server.url("/f.bin")],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(o.stdout.len(), body.len());
}

#[test]
fn a_reader_that_stops_ends_the_download_quietly() {
    // `rangeget -o - URL | head -c 1000`, on a file that takes a minute.
    let server = FixtureServer::start().unwrap();
    server.file(
        "/f.bin",
        pseudo_random_bytes(64 << 20, 63),
        FileOptions {
            rate_limit: Some(1 << 20),
            ..FileOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rangeget"))
        .args(["-n", "4", "-o", "-", &server.url("/f.bin")])
        .current_dir(dir.path())
        .env_remove("SSL_CERT_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = vec![0u8; 1000];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    let t = Instant::now();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(status.code(), Some(141));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("error"), "{err}");
}
