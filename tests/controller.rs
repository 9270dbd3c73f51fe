//! The connection-count controller over real sockets: by default a download
//! starts with a few connections and adds more while they pay.

mod common;

use common::*;
use rangeget_fixture::{FileOptions, pseudo_random_bytes};

transport_test! {
    fn a_cap_per_connection_brings_the_default_to_its_ceiling(via) {
        let server = via.server();
        let body = pseudo_random_bytes(24 << 20, 61);
        server.file("/f.bin", body.clone(), FileOptions { rate_limit: Some(4 << 20), ..FileOptions::default() });
        let dir = tempfile::tempdir().unwrap();
        // No .connections(): the default, up to 16, as many as pay.
        let s = via.download(&server, "/f.bin").dir(dir.path()).run().unwrap();
        assert_eq!(sha256_file(&s.path), sha256(&body));
        assert!(server.max_concurrent_bodies() >= 12, "{} at once", server.max_concurrent_bodies());
        assert!(s.connections >= 12, "{} connections", s.connections);
        // Nothing fetched twice on a link that does not fail: the ramp never
        // cuts a request, and a steal takes only what no request asked for.
        let served: u64 = server.log().iter().map(|r| r.body_bytes).sum();
        assert!(served as f64 <= body.len() as f64 * 1.01, "served {served}");
        assert!(s.received as f64 <= body.len() as f64 * 1.01, "received {}", s.received);
        assert!(s.received >= s.bytes, "received {} of {}", s.received, s.bytes);
    }
}

transport_test! {
    fn the_endgame_fetches_no_byte_twice_on_a_link_that_does_not_fail(via) {
        // Unlimited: every connection runs dry at the end and steals, the
        // case where a steal used to cut requests with bytes in flight.
        let server = via.server();
        let body = pseudo_random_bytes(48 << 20, 62);
        server.file("/f.bin", body.clone(), FileOptions::default());
        for n in [4, 16] {
            let dir = tempfile::tempdir().unwrap();
            let before: u64 = server.log().iter().map(|r| r.body_bytes).sum();
            let s = via
                .download(&server, "/f.bin")
                .connections(n)
                .min_segment(1 << 20)
                .dir(dir.path())
                .run()
                .unwrap();
            assert_eq!(sha256_file(&s.path), sha256(&body));
            assert!(s.requests > n, "{} requests: no steal happened", s.requests);
            let served = server.log().iter().map(|r| r.body_bytes).sum::<u64>() - before;
            assert!(served as f64 <= body.len() as f64 * 1.01, "-n {n}: served {served}");
            assert!(s.received as f64 <= body.len() as f64 * 1.01, "-n {n}: received {}", s.received);
        }
    }
}
