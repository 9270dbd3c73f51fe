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
        // Little fetched twice on a link that does not fail: the ramp never
        // cuts a request; the endgame's steals may (issue 16 asks for 1.01x:
        // not met yet, 1.016x seen over https).
        let served: u64 = server.log().iter().map(|r| r.body_bytes).sum();
        assert!(served as f64 <= body.len() as f64 * 1.05, "{served}");
    }
}
