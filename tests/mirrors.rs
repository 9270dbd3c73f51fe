//! Mirrors: one file from several servers at once. Each is probed; one that
//! disagrees is dropped, never mixed in; the work spreads by speed; one that
//! dies mid-way is retired while the others finish.

mod common;

use std::time::Duration;

use common::*;
use rangeget::Download;
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

fn mirror_set(via: Via, n: usize, body: &[u8], total_rate: u64) -> Vec<FixtureServer> {
    (0..n)
        .map(|_| {
            let s = via.server();
            s.file("/f.bin", body.to_vec(), FileOptions::default());
            s.set_total_rate(total_rate);
            s
        })
        .collect()
}

fn download(via: Via, servers: &[&FixtureServer], extra: &[String]) -> Download {
    let session = via.session_trusting(servers).build();
    let mirrors: Vec<String> = servers[1..]
        .iter()
        .map(|s| s.url("/f.bin"))
        .chain(extra.iter().cloned())
        .collect();
    Download::new(servers[0].url("/f.bin"))
        .session(session)
        .connections(6)
        .mirrors(mirrors)
}

fn served(s: &FixtureServer) -> u64 {
    s.log()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.body_bytes)
        .sum()
}

transport_test! {
    fn three_mirrors_share_the_work_and_a_different_one_is_dropped(via) {
        let body = pseudo_random_bytes(24 << 20, 41);
        let servers = mirror_set(via, 3, &body, 8 << 20);
        // A fourth serves another length: dropped at its probe.
        let odd = via.server();
        odd.file("/f.bin", pseudo_random_bytes((24 << 20) + 1, 42), FileOptions::default());
        let all: Vec<&FixtureServer> = servers.iter().chain([&odd]).collect();
        let dir = tempfile::tempdir().unwrap();
        let session = via.session_trusting(&all).build();
        let d = Download::new(servers[0].url("/f.bin"))
            .session(session)
            .connections(6)
            .mirrors([servers[1].url("/f.bin"), odd.url("/f.bin"), servers[2].url("/f.bin")])
            .dir(dir.path());
        let (r, notices) = run_noting(d);
        let s = r.unwrap();
        assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
        assert!(noticed(&notices, "dropped: its length is 25165825, not 25165824"), "{notices:?}");
        assert!(odd.log().iter().all(|r| r.method == "HEAD"), "{:?}", odd.log());
        // Each of the three carried a fair part (each is capped alike).
        let shares: Vec<u64> = servers.iter().map(served).collect();
        for (i, b) in shares.iter().enumerate() {
            assert!(*b >= body.len() as u64 / 5, "mirror {i} served {b} of {}: {shares:?}", body.len());
        }
        for srv in &servers {
            via.assert_served(srv);
        }
        assert_eq!(s.bytes, body.len() as u64);
    }
}

transport_test! {
    fn a_mirror_that_dies_mid_way_is_retired_and_the_file_is_whole(via) {
        let body = pseudo_random_bytes(16 << 20, 43);
        let servers = mirror_set(via, 3, &body, 6 << 20);
        let dir = tempfile::tempdir().unwrap();
        let d = download(via, &servers.iter().collect::<Vec<_>>(), &[]).dir(dir.path());
        let (r, notices) = std::thread::scope(|s| {
            let victim = &servers[1];
            s.spawn(move || {
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while victim.body_bytes_sent() < (1 << 20) && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
                victim.kill();
            });
            run_noting(d)
        });
        r.unwrap();
        assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
        assert!(noticed(&notices, "retired"), "{notices:?}");
        assert!(noticed(&notices, "2 left"), "{notices:?}");
        let rest: u64 = served(&servers[0]) + served(&servers[2]);
        assert!(rest + served(&servers[1]) >= body.len() as u64);
        assert!(served(&servers[1]) < body.len() as u64 / 2);
    }
}

transport_test! {
    fn a_missing_mirror_is_dropped_and_a_mirror_without_ranges_too(via) {
        let body = pseudo_random_bytes(4 << 20, 44);
        let good = via.server();
        good.file("/f.bin", body.clone(), FileOptions::default());
        let norange = via.server();
        norange.file("/f.bin", body.clone(), FileOptions { ignore_ranges: true, accept_ranges: false, ..FileOptions::default() });
        let missing = via.server();
        let dir = tempfile::tempdir().unwrap();
        let session = via.session_trusting(&[&good, &norange, &missing]).build();
        let d = Download::new(good.url("/f.bin"))
            .session(session)
            .connections(4)
            .mirrors([missing.url("/f.bin"), norange.url("/f.bin"), "ftp://x/y".to_string()])
            .dir(dir.path());
        let (r, notices) = run_noting(d);
        r.unwrap();
        assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
        assert!(noticed(&notices, "404"), "{notices:?}");
        assert!(noticed(&notices, "serves no ranges"), "{notices:?}");
        assert!(noticed(&notices, "ftp://x/y dropped"), "{notices:?}");
        // Nothing but probes went to the dropped ones.
        assert!(norange.log().iter().all(|r| r.range().is_none_or(|r| r == "bytes=0-0")), "{:?}", norange.log());
        assert!(missing.log().len() <= 2 && missing.log().iter().all(|r| r.status == 404), "{:?}", missing.log());
    }
}

#[test]
fn the_command_takes_mirrors_on_a_line_of_the_input_file() {
    let body = pseudo_random_bytes(8 << 20, 45);
    let a = FixtureServer::start().unwrap();
    let b = FixtureServer::start().unwrap();
    for s in [&a, &b] {
        s.file("/f.bin", body.clone(), FileOptions::default());
        s.set_total_rate(16 << 20);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("l.txt"),
        format!("{}\t{}\n  out=m.bin\n", a.url("/f.bin"), b.url("/f.bin")),
    )
    .unwrap();
    let o = rangeget(&["-i", "l.txt", "-n", "4"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("m.bin")), sha256(&body));
    assert!(
        served(&a) > 0 && served(&b) > 0,
        "{} {}",
        served(&a),
        served(&b)
    );
    // And with --mirror for one file.
    let o = rangeget(
        &[
            "-q",
            "-n",
            "4",
            "-o",
            "n.bin",
            "--mirror",
            &b.url("/f.bin"),
            &a.url("/f.bin"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("n.bin")), sha256(&body));
}
