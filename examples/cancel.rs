//! Cancel a running download from another thread, then resume it: the
//! pattern a UI or a Ctrl-C handler uses. Everything runs against the
//! fixture server on 127.0.0.1.
//!
//! `cargo run --example cancel`

use std::time::Duration;

use rangeget::{Download, Error};
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

fn main() -> Result<(), Error> {
    // 32 MiB at 4 MiB/s per connection: about 2 s with 4 connections.
    let server = FixtureServer::start().expect("start the fixture server");
    let body = pseudo_random_bytes(32 << 20, 5);
    let options = FileOptions {
        rate_limit: Some(4 << 20),
        ..FileOptions::default()
    };
    server.file("/big.bin", body.clone(), options);
    let dir = tempfile::tempdir().expect("a temporary directory");

    // Take the handle before run(): run() consumes the download.
    let download = Download::new(server.url("/big.bin"))
        .connections(4)
        .dir(dir.path());
    let cancel = download.cancel_handle();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        cancel.cancel();
    });
    match download.run() {
        Err(Error::Cancelled) => println!("cancelled; big.bin.part and its state are kept"),
        other => panic!("expected a cancel, got {other:?}"),
    }

    // The same download again resumes where it stopped.
    let summary = Download::new(server.url("/big.bin"))
        .connections(4)
        .dir(dir.path())
        .on_notice(|m| println!("notice: {m}"))
        .run()?;
    println!(
        "resumed: {} of {} bytes fetched by the second run",
        summary.fetched, summary.bytes
    );
    assert_eq!(std::fs::read(&summary.path).expect("the file"), body);
    println!("byte for byte the server's file");
    Ok(())
}
