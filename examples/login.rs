//! Log in with a form, then download a protected file in the same session, as
//! Python's `build_opener(HTTPCookieProcessor(CookieJar()))` followed by
//! `opener.open(url, data)` would. Everything runs against the fixture server
//! on 127.0.0.1.
//!
//! `cargo run --example login`

use rangeget::{Download, Session};
use rangeget_fixture::{FileOptions, FixtureServer, Route, pseudo_random_bytes};

fn main() -> Result<(), rangeget::Error> {
    // A site: /login sets a persistent and a session cookie on its 302 to
    // /welcome; /protected.bin answers 403 to any request without the cookie.
    let server = FixtureServer::start().expect("start the fixture server");
    server.route(
        "/login",
        Route::Login {
            form_contains: "user=ann&password=s3cret".into(),
            location: "/welcome".into(),
            set_cookies: vec![
                "sid=abc123; Path=/; HttpOnly".into(),
                "remember=yes; Path=/; Max-Age=86400".into(),
            ],
        },
    );
    server.file("/welcome", b"hello ann\n".to_vec(), FileOptions::default());
    let body = pseudo_random_bytes(4 << 20, 9);
    let protected = FileOptions {
        require_cookie: Some("sid=abc123".into()),
        ..FileOptions::default()
    };
    server.file("/protected.bin", body.clone(), protected);

    // One session: its jar is shared by the login and by every worker.
    let session = Session::builder().build();
    let page = session.post_form(
        &server.url("/login"),
        &[("user", "ann"), ("password", "s3cret")],
    )?;
    println!(
        "login: HTTP {} at {} says {:?}",
        page.status,
        page.url,
        page.text()
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let summary = Download::new(server.url("/protected.bin"))
        .session(session.clone())
        .connections(8)
        .dir(dir.path())
        .run()?;
    let same = std::fs::read(&summary.path).expect("read the download") == body;
    println!(
        "downloaded {} bytes over {} connections, identical: {same}",
        summary.bytes, summary.connections
    );

    // Keep the session for the next run.
    let jar = dir.path().join("cookies.txt");
    session.save(&jar)?;
    print!("{}", std::fs::read_to_string(&jar).expect("read the jar"));
    Ok(())
}
