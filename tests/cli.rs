//! The `rangeget` command itself: exit codes, messages, files.

mod common;

use common::*;
use rangeget_fixture::{FileOptions, FixtureServer, pseudo_random_bytes};

#[test]
fn downloads_with_a_summary_line_and_exit_0() {
    let server = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(4 << 20, 3);
    // Capped per connection so that the four segments overlap in time.
    let options = FileOptions {
        rate_limit: Some(8 << 20),
        ..FileOptions::default()
    };
    server.file("/data/f.bin", body.clone(), options);
    let dir = tempfile::tempdir().unwrap();
    let o = rangeget(
        &["-n", "8", "-o", "out.bin", &server.url("/data/f.bin")],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256_file(&dir.path().join("out.bin")), sha256(&body));
    let err = stderr(&o);
    assert!(err.contains("saved out.bin"), "{err}");
    assert!(err.contains("4194304 bytes"), "{err}");
    assert!(err.contains("4 connections"), "{err}");
    // 4 MiB with -n 8 and a 1 MiB minimum segment: at least 4 ranged requests.
    assert!(served_ranges(&server.log()).len() >= 4);
    assert!(o.stdout.is_empty());
}

#[test]
fn quiet_prints_nothing_and_dir_chooses_the_directory() {
    let server = FixtureServer::start().unwrap();
    server.file("/a%20b.txt", b"hello".to_vec(), FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let o = rangeget(&["-q", "-d", "sub", &server.url("/a%20b.txt")], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(dir.path().join("sub/a b.txt")).unwrap(),
        b"hello"
    );
}

#[test]
fn headers_and_user_agent_are_sent_on_every_request() {
    let server = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(3 << 20, 4);
    server.file("/f", body.clone(), FileOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let o = rangeget(
        &[
            "-q",
            "-H",
            "X-Token: abc",
            "-A",
            "tester/1",
            "-o",
            "f",
            &server.url("/f"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let log = server.log();
    assert!(log.len() >= 4);
    for r in &log {
        assert_eq!(r.header("x-token"), Some("abc"), "{r:?}");
        assert_eq!(r.header("user-agent"), Some("tester/1"), "{r:?}");
        assert_eq!(r.header("accept-encoding"), Some("identity"), "{r:?}");
    }
}

#[test]
fn exit_codes_name_the_failure() {
    let server = FixtureServer::start().unwrap();
    server.file("/f", b"x".to_vec(), FileOptions::default());
    server.redirect("/loop", 302, "/loop");
    let dir = tempfile::tempdir().unwrap();
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("http://127.0.0.1:{free_port}/f");
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["::nonsense".into()], 2, "invalid URL"),
        (vec!["ftp://127.0.0.1/f".into()], 2, "unsupported scheme"),
        (vec!["-n".into(), "65".into(), server.url("/f")], 2, "65"),
        (
            vec!["-H".into(), "no colon".into(), server.url("/f")],
            2,
            "Name: value",
        ),
        (
            vec!["--read-timeout".into(), "0".into(), server.url("/f")],
            2,
            "positive",
        ),
        (vec![server.url("/missing")], 4, "404"),
        (vec![server.url("/loop")], 3, "redirect loop"),
        (vec![unreachable], 3, "127.0.0.1"),
        (
            vec!["-d".into(), "no/such/dir".into(), server.url("/f")],
            5,
            "no/such",
        ),
    ];
    for (args, code, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = rangeget(&args, dir.path());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(dir_entries(dir.path()).is_empty(), "{args:?} left files");
    }
    // An existing file is kept without --force (exit 5) and replaced with it.
    std::fs::write(dir.path().join("f"), b"keep").unwrap();
    let o = rangeget(&[&server.url("/f")], dir.path());
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"));
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"keep");
    let o = rangeget(&["--force", &server.url("/f")], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"x");
}

#[test]
fn help_lists_the_promised_flags_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let o = rangeget(&["--help"], dir.path());
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--output",
        "--dir",
        "--connections",
        "--content-disposition",
        "--quiet",
        "--header",
        "--user-agent",
        "--connect-timeout",
        "--read-timeout",
        "--force",
        "Exit codes",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn credentials_in_the_url_are_sent_but_never_printed() {
    let server = FixtureServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = server
        .url("/missing")
        .replace("127.0.0.1", "ann:s3cret@127.0.0.1");
    let o = rangeget(&[&url], dir.path());
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));
    // "ann:s3cret" in Basic auth.
    let log = server.log();
    assert_eq!(
        log[0].header("authorization"),
        Some("Basic YW5uOnMzY3JldA==")
    );
}

#[test]
fn the_man_page_and_completions_list_every_option_of_help() {
    let dir = tempfile::tempdir().unwrap();
    let help = String::from_utf8(rangeget(&["--help"], dir.path()).stdout).unwrap();
    let mut options: Vec<String> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '<' || c == '=')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .collect();
    options.sort();
    options.dedup();
    assert!(options.len() > 20, "{options:?}");
    for what in ["man", "complete-bash", "complete-zsh", "complete-fish"] {
        let o = rangeget(&["--generate", what], dir.path());
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout).replace("\\-", "-");
        for opt in &options {
            let bare = opt.trim_start_matches('-');
            assert!(text.contains(bare), "{what} lacks {opt}");
        }
    }
}

/// The lines of `out` parsed as JSON, each checked to be one object with an
/// `event` of the documented kinds.
fn events(out: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(out);
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
            let kind = v["event"]
                .as_str()
                .unwrap_or_else(|| panic!("no event: {l}"));
            assert!(
                ["start", "progress", "notice", "end"].contains(&kind),
                "{l}"
            );
            v
        })
        .collect()
}

#[test]
fn json_events_on_stderr_line_by_line() {
    // A 503 (a retry), a body that goes silent (a takeover), a rate cap (a
    // few progress events), then success.
    let server = FixtureServer::start().unwrap();
    let body = pseudo_random_bytes(4 << 20, 51);
    server.file(
        "/f.bin",
        body.clone(),
        FileOptions {
            rate_limit: Some(4 << 20),
            fail_first: Some((503, Some("0".into()), 1)),
            stall_after: Some((64 << 10, std::time::Duration::from_secs(20), 2)),
            ..FileOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let o = rangeget(
        &[
            "--json",
            "-n",
            "4",
            "--read-timeout",
            "10",
            &server.url("/f.bin"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(sha256_file(&dir.path().join("f.bin")), sha256(&body));
    let ev = events(&o.stderr);
    let kinds: Vec<&str> = ev.iter().map(|v| v["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "start").count(), 1);
    let start = &ev[0];
    assert_eq!(start["length"], 4 << 20);
    assert_eq!(start["connections"], 4);
    assert!(start["url"].as_str().unwrap().ends_with("/f.bin"));
    assert!(start["final_url"].is_string() && start["path"] == "f.bin");
    assert_eq!(start["resumed"], 0);
    let progress: Vec<_> = ev.iter().filter(|v| v["event"] == "progress").collect();
    assert!(progress.len() >= 3, "{}", progress.len());
    for p in &progress {
        for f in ["downloaded", "fetched", "elapsed", "connections"] {
            assert!(p[f].is_number(), "{f} in {p}");
        }
        assert_eq!(p["total"], 4 << 20);
        assert!(p["speed"].is_null() || p["speed"].is_u64(), "{p}");
        assert!(p["eta"].is_null() || p["eta"].is_number(), "{p}");
    }
    let notices: Vec<&str> = ev
        .iter()
        .filter(|v| v["event"] == "notice")
        .map(|v| {
            assert!(v["message"].is_string(), "{v}");
            v["kind"].as_str().unwrap()
        })
        .collect();
    assert!(notices.contains(&"retry"), "{notices:?}");
    assert!(notices.contains(&"takeover"), "{notices:?}");
    let end = ev.last().unwrap();
    assert_eq!(end["status"], "ok");
    assert_eq!(end["exit_code"], 0);
    assert_eq!(end["bytes"], 4 << 20);
    assert_eq!(end["fetched"], 4 << 20);
    assert!(end["path"].as_str().unwrap().ends_with("f.bin"));
    assert!(end["error"].is_null() && end["sha256"].is_null());

    // A failure: only JSON on stderr, the end saying why, the exit code too.
    let o = rangeget(&["--json", &server.url("/missing")], dir.path());
    assert_eq!(o.status.code(), Some(4));
    let ev = events(&o.stderr);
    let end = ev.last().unwrap();
    assert_eq!(
        (end["status"].as_str(), end["exit_code"].as_u64()),
        (Some("error"), Some(4))
    );
    assert!(end["error"].as_str().unwrap().contains("404"), "{end}");

    // To a file, with a checksum: the end carries the SHA-256.
    let sum = format!("sha256:{}", sha256(&body));
    let o = rangeget(
        &[
            "-q",
            "--json=events.jsonl",
            "--checksum",
            &sum,
            "-o",
            "g.bin",
            &server.url("/f.bin"),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&std::fs::read(dir.path().join("events.jsonl")).unwrap());
    assert_eq!(ev.last().unwrap()["sha256"], sha256(&body));
}
