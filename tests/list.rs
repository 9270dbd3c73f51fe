//! Lists of downloads: many files under one budget (per host, in all),
//! connections reused from file to file, resume of the whole list, and the
//! command's `URL URL…` and `-i FILE`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use rangeget::{Batch, Download, Error};
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

/// Puts `n` files on `server`, `/f{i}.bin`, of sizes from 1 KiB to about
/// `max` (a few large, most small); their bodies.
fn files(server: &FixtureServer, n: usize, max: usize, opts: FileOptions) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x5eed + n as u64);
    (0..n)
        .map(|i| {
            // Log-uniform sizes: 1 KiB .. max.
            let bits = 10 + rng.below((max.ilog2() - 9) as u64) as u32;
            let len = (1usize << bits) + rng.below(1 << bits) as usize / 2;
            let len = len.min(max);
            let body = pseudo_random_bytes(len, i as u64 + 1);
            server.file(&format!("/f{i}.bin"), body.clone(), opts.clone());
            body
        })
        .collect()
}

fn batch_of(via: Via, server: &FixtureServer, n: usize, dir: &Path) -> Batch {
    let session = via.session(server).max_connections(16).build();
    let mut b = Batch::new().session(session);
    for i in 0..n {
        b = b.download(
            Download::new(server.url(&format!("/f{i}.bin")))
                .dir(dir)
                .keep_complete(true),
        );
    }
    b
}

fn check_files(dir: &Path, bodies: &[Vec<u8>]) {
    for (i, body) in bodies.iter().enumerate() {
        let got = std::fs::read(dir.join(format!("f{i}.bin"))).unwrap();
        assert!(
            got == *body,
            "f{i}.bin differs ({} of {} bytes)",
            got.len(),
            body.len()
        );
    }
}

transport_test! {
    fn many_files_on_one_host_stay_under_its_ceiling_and_reuse_connections(via) {
        let server = via.server();
        let bodies = files(&server, 80, 4 << 20, FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let report = batch_of(via, &server, bodies.len(), dir.path())
            .parallel(5)
            .max_per_host(4)
            .run();
        assert_eq!(report.done(), bodies.len(), "{:?}", report.results.iter().filter(|r| r.is_err()).collect::<Vec<_>>());
        assert_eq!(report.exit_code(), 0);
        check_files(dir.path(), &bodies);
        via.assert_served(&server);
        assert!(
            server.max_open_connections() <= 4,
            "{} connections open at once, the ceiling is 4",
            server.max_open_connections()
        );
        let requests = server.log().len() as u64;
        let connections = server.connections_accepted();
        assert!(
            connections * 4 <= requests,
            "{connections} connections for {requests} requests: not reused across files"
        );
        // Nothing is left behind but the files.
        assert_eq!(dir_entries(dir.path()).len(), bodies.len());
    }
}

transport_test! {
    fn a_large_file_takes_what_the_small_ones_leave(via) {
        // One file of 32 MiB among small ones: it gets more than one
        // connection, and the host's ceiling holds throughout.
        let server = via.server();
        let mut bodies = files(&server, 20, 64 << 10, FileOptions::default());
        let big = pseudo_random_bytes(32 << 20, 99);
        server.file("/f20.bin", big.clone(), FileOptions { rate_limit: Some(16 << 20), ..FileOptions::default() });
        bodies.push(big);
        let dir = tempfile::tempdir().unwrap();
        let report = batch_of(via, &server, bodies.len(), dir.path())
            .parallel(3)
            .max_per_host(6)
            .run();
        assert_eq!(report.done(), bodies.len());
        check_files(dir.path(), &bodies);
        assert!(server.max_open_connections() <= 6, "{}", server.max_open_connections());
        let big = report.results[20].as_ref().unwrap();
        let bodies_at_once = server.max_concurrent_bodies();
        assert!(bodies_at_once > 1 && bodies_at_once <= 6, "{bodies_at_once} bodies at once");
        assert!(big.requests > 1, "the large file went on {} request", big.requests);
    }
}

transport_test! {
    fn a_second_run_fetches_nothing_and_a_failure_stops_no_other(via) {
        let server = via.server();
        let bodies = files(&server, 12, 1 << 20, FileOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let report = batch_of(via, &server, bodies.len(), dir.path())
            .download(Download::new(server.url("/missing.bin")).dir(dir.path()))
            .run();
        assert_eq!(report.done(), bodies.len());
        assert_eq!(report.failed(), 1);
        assert!(matches!(report.results[12], Err(Error::HttpStatus { status: 404, .. })));
        assert_eq!(report.exit_code(), 4);
        check_files(dir.path(), &bodies);

        let sent = server.body_bytes_sent();
        server.clear_log();
        let again = batch_of(via, &server, bodies.len(), dir.path()).run();
        assert_eq!(again.done(), bodies.len());
        assert!(again.results.iter().all(|r| r.as_ref().unwrap().already_complete));
        assert_eq!(again.fetched(), 0);
        assert_eq!(server.body_bytes_sent(), sent, "bytes were fetched again");
        assert!(server.log().iter().all(|r| r.method == "HEAD"), "{:?}", server.log());
        check_files(dir.path(), &bodies);
    }
}

transport_test! {
    fn a_cancelled_list_resumes_and_fetches_each_byte_about_once(via) {
        let server = via.server();
        let opts = FileOptions { rate_limit: Some(2 << 20), ..FileOptions::default() };
        let bodies: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                let b = pseudo_random_bytes(768 << 10, 500 + i);
                server.file(&format!("/f{i}.bin"), b.clone(), opts.clone());
                b
            })
            .collect();
        let total: u64 = bodies.iter().map(|b| b.len() as u64).sum();
        let dir = tempfile::tempdir().unwrap();
        let batch = batch_of(via, &server, bodies.len(), dir.path()).parallel(4).max_per_host(8);
        let cancel = batch.cancel_handle();
        let threshold = total * 2 / 5;
        let first = std::thread::scope(|s| {
            s.spawn(|| {
                let end = std::time::Instant::now() + Duration::from_secs(30);
                while server.body_bytes_sent() < threshold && std::time::Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(5));
                }
                cancel.cancel();
            });
            batch.run()
        });
        assert!(first.cancelled() > 0, "the cancel came too late to test anything");
        assert!(first.done() < bodies.len());
        assert_eq!(first.exit_code(), 130);
        assert_eq!(first.failed(), 0, "{:?}", first.results);
        // Cancelled files are not there under their names.
        for (i, r) in first.results.iter().enumerate() {
            if r.is_err() {
                assert!(!dir.path().join(format!("f{i}.bin")).exists());
            }
        }
        let again = batch_of(via, &server, bodies.len(), dir.path()).parallel(4).run();
        assert_eq!(again.done(), bodies.len(), "{:?}", again.results);
        check_files(dir.path(), &bodies);
        let served = server.body_bytes_sent();
        assert!(
            served as f64 <= total as f64 * 1.05,
            "served {served} bytes for a list of {total}"
        );
        assert_eq!(dir_entries(dir.path()).len(), bodies.len());
    }
}

#[test]
fn the_command_takes_urls_and_an_input_file() {
    let server = FixtureServer::start().unwrap();
    let bodies = files(&server, 6, 256 << 10, FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let list = format!(
        "# two of them\n{}\n  out=renamed.bin\n{}\n  dir=sub\n  checksum=sha256:{}\n\n{}\n  checksum=sha256:{}\n",
        server.url("/f2.bin"),
        server.url("/f3.bin"),
        sha256(&bodies[3]),
        server.url("/f4.bin"),
        "0".repeat(64),
    );
    std::fs::write(dir.path().join("list.txt"), list).unwrap();
    let (u0, u1) = (server.url("/f0.bin"), server.url("/f1.bin"));
    let o = rangeget(
        &[&u0, &u1, "-i", "list.txt", "-j", "2", "--max-per-host", "3"],
        dir.path(),
    );
    let err = stderr(&o);
    // f4's checksum is wrong: exit 7, the others saved.
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert_eq!(std::fs::read(dir.path().join("f0.bin")).unwrap(), bodies[0]);
    assert_eq!(std::fs::read(dir.path().join("f1.bin")).unwrap(), bodies[1]);
    assert_eq!(
        std::fs::read(dir.path().join("renamed.bin")).unwrap(),
        bodies[2]
    );
    assert_eq!(
        std::fs::read(dir.path().join("sub/f3.bin")).unwrap(),
        bodies[3]
    );
    assert!(!dir.path().join("f4.bin").exists());
    assert!(err.contains("rangeget: 4 of 5 done"), "{err}");
    assert!(err.contains("1 failed"), "{err}");
    assert!(
        err.contains("failed: ") && err.contains("/f4.bin") && err.contains("checksum"),
        "{err}"
    );
    assert_eq!(err.matches("rangeget: saved ").count(), 4, "{err}");
    assert!(server.max_open_connections() <= 3);

    // Again: the four are complete already, f4 fails again.
    let o = rangeget(&[&u0, &u1, "-i", "list.txt"], dir.path());
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).matches("complete already").count(),
        4,
        "{}",
        stderr(&o)
    );

    // From standard input, quietly.
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rangeget"));
    let mut child = c
        .args(["-q", "-i", "-", "-d", "stdin"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(
        child.stdin.take().unwrap(),
        "{}\n{}",
        server.url("/f5.bin"),
        u0
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("stdin")).unwrap_or(());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(dir.path().join("stdin/f5.bin")).unwrap(),
        bodies[5]
    );
}

#[test]
fn a_bad_input_file_names_its_line_and_fetches_nothing() {
    let server = FixtureServer::start().unwrap();
    let _ = files(&server, 1, 4096, FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("l.txt"),
        format!("{}\n  colour=blue\n", server.url("/f0.bin")),
    )
    .unwrap();
    let o = rangeget(&["-i", "l.txt"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("l.txt:2: unknown option \"colour\""),
        "{}",
        stderr(&o)
    );
    assert!(server.log().is_empty());
    let o = rangeget(&["-i", "nothere.txt"], dir.path());
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let o = rangeget(
        &["-o", "x", &server.url("/f0.bin"), &server.url("/f0.bin")],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("out="), "{}", stderr(&o));
}

#[test]
fn ctrl_c_in_a_list_then_the_same_command_finishes_it() {
    let server = FixtureServer::start().unwrap();
    let opts = FileOptions {
        rate_limit: Some(2 << 20),
        ..FileOptions::default()
    };
    let bodies: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            let b = pseudo_random_bytes(512 << 10, 900 + i);
            server.file(&format!("/f{i}.bin"), b.clone(), opts.clone());
            b
        })
        .collect();
    let total: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    let dir = tempfile::tempdir().unwrap();
    let list: String = (0..20)
        .map(|i| server.url(&format!("/f{i}.bin")) + "\n")
        .collect();
    std::fs::write(dir.path().join("list.txt"), list).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rangeget"))
        .args(["-i", "list.txt", "-j", "3"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.body_bytes_sent() < total * 2 / 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("partial"), "{err}");
    assert!(err.contains("not started"), "{err}");
    assert!(
        err.contains("interrupted; run the same command again"),
        "{err}"
    );
    let o = rangeget(&["-q", "-i", "list.txt"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    check_files(dir.path(), &bodies);
    let served = server.body_bytes_sent();
    assert!(
        served as f64 <= total as f64 * 1.05,
        "served {served} bytes for a list of {total}"
    );
    // Only the files and the list are left.
    assert_eq!(dir_entries(dir.path()).len(), bodies.len() + 1);
}
