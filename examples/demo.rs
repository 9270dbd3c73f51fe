//! The demo: starts the fixture server on an ephemeral loopback port with a
//! generated 256 MiB file, capped at 8 MiB/s per connection so the progress bar
//! shows for a few seconds, downloads it with 8 connections, and checks the
//! result's SHA-256 against the source's.
//!
//! Run it with `cargo run --release --example demo`. Everything stays on
//! 127.0.0.1. `DEMO_MIB` and `DEMO_RATE_MIB` change the size and the cap.

use std::process::ExitCode;

use rangeget::{Download, TerminalBar};
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};
use sha2::{Digest, Sha256};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> ExitCode {
    let mib = env_u64("DEMO_MIB", 256);
    let rate = env_u64("DEMO_RATE_MIB", 8) << 20;
    let body = pseudo_random_bytes((mib << 20) as usize, 2026);
    let want = hex(&Sha256::digest(&body));

    let server = FixtureServer::start().expect("start the fixture server on 127.0.0.1");
    let options = FileOptions {
        rate_limit: Some(rate),
        ..FileOptions::default()
    };
    server.file("/demo.bin", body, options);
    let dir = tempfile::tempdir().expect("make a temporary directory");
    let url = server.url("/demo.bin");
    eprintln!(
        "demo: {url}: {mib} MiB, {} MiB/s per connection, 8 connections",
        rate >> 20
    );

    let result = Download::new(&url)
        .connections(8)
        .dir(dir.path())
        .on_notice(|m| eprintln!("rangeget: {m}"))
        .progress(TerminalBar::named("demo.bin").into_callback())
        .run();
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo: download failed: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let mut file = std::fs::File::open(&summary.path).expect("open the downloaded file");
    let mut sha = Sha256::new();
    std::io::copy(&mut file, &mut sha).expect("read the downloaded file");
    let got = hex(&sha.finalize());
    println!(
        "saved {} bytes in {:.2} s ({:.1} MiB/s) over {} connections",
        summary.bytes,
        summary.elapsed.as_secs_f64(),
        summary.bytes_per_second() / (1 << 20) as f64,
        summary.connections
    );
    println!("sha256 source {want}");
    println!("sha256 result {got}");
    if got == want {
        println!("OK: byte-identical");
        ExitCode::SUCCESS
    } else {
        println!("MISMATCH");
        ExitCode::FAILURE
    }
}
