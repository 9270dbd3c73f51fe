//! The `rangeget` command: arguments → library → exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use clap::Parser;
use clap::builder::TypedValueParser as _;
use indicatif::BinaryBytes;
use rangeget::{CancelHandle, Download, Error, Session, TerminalBar};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The signal that cancelled the run, if any.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Whether the run's events went to stderr as JSON (then nothing else goes
/// there: the end event told the error).
static EVENTS_ON_STDERR: AtomicBool = AtomicBool::new(false);

/// Cancels the download on the first SIGINT or SIGTERM (the workers stop, the
/// jar is saved); a second one ends the process at once.
fn watch_signals(cancel: CancelHandle) -> Result<signal_hook::iterator::Handle, Error> {
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Error::InvalidOption(format!("cannot install signal handlers: {e}")))?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if SIGNAL.swap(sig, Ordering::SeqCst) != 0 {
                std::process::exit(128 + sig);
            }
            cancel.cancel();
        }
    });
    Ok(handle)
}

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  2    usage error or invalid URL
  3    network failure (host not found, connection refused/reset/stalled, TLS, redirect loop)
  4    HTTP error status (4xx, 5xx)
  5    local file error (directory missing or not writable, file exists, disk full)
  6    the server broke the protocol (malformed answer, body short again and again, file kept changing)
  7    checksum mismatch (--checksum, or the server's Repr-Digest/Digest)
  130  interrupted (Ctrl-C; 143 for SIGTERM)";

/// Download a file over HTTP(S) with many connections at once.
#[derive(Parser, Debug)]
#[command(name = "rangeget", version, about, after_help = EXIT_CODES)]
struct Args {
    /// The URLs to download (http or https; without a scheme, http). With
    /// more than one, or with -i, they are a list: up to -j at once.
    #[arg(required_unless_present_any = ["generate", "input_file"])]
    urls: Vec<String>,

    /// Download the URLs listed in FILE (- for standard input): one per
    /// line, `#` comments, indented key=value options after a URL (out=,
    /// dir=, checksum=, header=, connections=), as aria2c's -i.
    #[arg(short = 'i', long, value_name = "FILE")]
    input_file: Option<PathBuf>,

    /// Another URL of the same file (repeatable): ranges are fetched from
    /// every mirror at once; one whose length differs is dropped, one that
    /// fails is retired. In -i FILE: TAB-separated URLs on one line.
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,

    /// In a list, downloads at once.
    #[arg(short = 'j', long, value_name = "N", default_value_t = rangeget::DEFAULT_PARALLEL,
          value_parser = clap::value_parser!(u16).range(1..=64).map(usize::from))]
    parallel: usize,

    /// In a list, connections to one host at once, all its downloads together.
    #[arg(long, value_name = "N", default_value_t = rangeget::DEFAULT_MAX_PER_HOST,
          value_parser = clap::value_parser!(u16).range(1..=64).map(usize::from))]
    max_per_host: usize,

    /// In a list, connections at once, all hosts together.
    #[arg(long, value_name = "N", default_value_t = rangeget::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u16).range(1..=256).map(usize::from))]
    max_connections: usize,

    /// Print a shell completion script (complete-bash, complete-zsh,
    /// complete-fish) or the man page (man) and exit.
    #[arg(long, value_name = "WHAT", value_parser = ["complete-bash", "complete-zsh", "complete-fish", "man"])]
    generate: Option<String>,

    /// Save to FILE (default: the last part of the URL's path); - writes the
    /// file in order to standard output (still on many connections).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// With -o -, the reorder window: bytes that came ahead of the next ones
    /// to write wait here, and memory stays within it (64M: K, M, G).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_limit)]
    buffer: u64,

    /// Save into DIR (default: the current directory).
    #[arg(short = 'd', long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Connections to use at most, 1 to 64: as many as pay, found as the
    /// download goes (it starts with 4, doubles while the rate rises, sheds
    /// those that bring nothing); with --fixed, exactly N from the start.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    connections: u16,

    /// Use exactly -n connections from the start, as aria2c and axel do.
    #[arg(long)]
    fixed: bool,

    /// Use the file name the server proposes (Content-Disposition), sanitised.
    #[arg(short = 'J', long)]
    content_disposition: bool,

    /// Print nothing but errors: no progress bar, no summary.
    #[arg(short = 'q', long)]
    quiet: bool,

    /// Write the download's events as JSON, one object per line (start,
    /// progress, notice, end), to stderr instead of the bar and messages,
    /// or with --json=FILE to FILE.
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true,
          default_missing_value = "-")]
    json: Option<PathBuf>,

    /// Send this header with every request (repeatable), e.g. -H 'Authorization: Bearer X'.
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    headers: Vec<String>,

    /// The User-Agent to send.
    #[arg(short = 'A', long, value_name = "UA")]
    user_agent: Option<String>,

    /// Seconds to wait for a connection to be set up.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0)]
    connect_timeout: f64,

    /// Seconds a connection may stay silent before it counts as stalled and is retried.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    read_timeout: f64,

    /// Retries of one range before giving up (1 MiB of progress renews them).
    #[arg(long, value_name = "N", default_value_t = rangeget::DEFAULT_RETRIES)]
    retries: u32,

    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,

    /// Fetch at most RATE bytes per second in all, every connection
    /// together (500K, 10M: K, M, G are powers of 1024, as curl's).
    #[arg(long, value_name = "RATE", value_parser = parse_limit)]
    limit_rate: Option<u64>,

    /// Check the download's SHA-256 (sha256:HEX); a mismatch keeps nothing and exits 7.
    #[arg(long, value_name = "sha256:HEX")]
    checksum: Option<String>,

    /// Trust the CA certificates of this PEM file for https, instead of the
    /// system's store (SSL_CERT_FILE in the environment does the same).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,

    /// Use this proxy: http://, https://, socks4://, socks4a://, socks5:// or
    /// socks5h:// (the proxy resolves names), credentials in the URL; "" for
    /// none. Default: ALL_PROXY, HTTPS_PROXY or HTTP_PROXY (or lowercase).
    #[arg(short = 'x', long, value_name = "URL")]
    proxy: Option<String>,

    /// Hosts to reach without the proxy, comma-separated (example.com,
    /// .example.com for its subdomains, * for all). Default: NO_PROXY.
    #[arg(long, value_name = "LIST")]
    noproxy: Option<String>,

    /// Do not verify https certificates (encrypted, but the server is not authenticated).
    #[arg(short = 'k', long)]
    insecure: bool,

    /// How NAME.part takes its space: falloc reserves the whole length up
    /// front (a full disk shows at once), none takes it as bytes arrive (a
    /// cancelled download keeps only what it fetched), as aria2c's option.
    #[arg(long, value_name = "falloc|none", default_value = "falloc",
          value_parser = ["falloc", "none"])]
    file_allocation: String,

    /// Seconds between syncs of the partial file to disk, so that resuming
    /// survives a power loss; 0 never syncs (resuming then survives a killed
    /// process, not a crash of the machine).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    sync_interval: f64,

    /// Resume a partial download (the default already), and succeed without
    /// fetching when the file is complete already, as wget -c and aria2c -c.
    #[arg(short = 'c', long = "continue", conflicts_with = "no_resume")]
    continue_: bool,

    /// Start afresh even if an earlier run left NAME.part and its state
    /// (by default such a run is resumed when the server's file is unchanged).
    #[arg(long)]
    no_resume: bool,

    /// Load cookies from FILE before the run and save them back after it
    /// (Netscape cookies.txt as curl/wget/aria2c write it, or JSON); a missing
    /// file starts an empty jar. Session cookies are kept.
    #[arg(long, value_name = "FILE")]
    cookie_jar: Option<PathBuf>,

    /// Send this cookie (name=value) to the URL's host, for this run only (repeatable).
    #[arg(short = 'b', long = "cookie", value_name = "NAME=VALUE")]
    cookies: Vec<String>,
}

fn parse_limit(s: &str) -> Result<u64, String> {
    rangeget::parse_rate(s)
        .ok_or_else(|| format!("{s:?} is not a rate (bytes per second, with K, M or G)"))
}

fn seconds(name: &str, v: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::InvalidOption(format!("{name} must be a positive number of seconds")))
}

/// Writes what `--generate` asks for to stdout.
fn generate(what: &str) -> Result<(), Error> {
    let quiet_pipe = |r: std::io::Result<()>| match r {
        // `rangeget --generate man | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    };
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut cmd = Args::command();
    let mut out = std::io::stdout();
    let shell = match what {
        "complete-bash" => Shell::Bash,
        "complete-zsh" => Shell::Zsh,
        "complete-fish" => Shell::Fish,
        _ => {
            return quiet_pipe(clap_mangen::Man::new(cmd).render(&mut out)).map_err(|source| {
                Error::Io {
                    path: "standard output".into(),
                    action: "write the man page",
                    source,
                }
            });
        }
    };
    clap_complete::generate(shell, &mut cmd, "rangeget", &mut out);
    Ok(())
}

/// The session every download of the run shares.
fn session_for(args: &Args, max_connections: usize) -> Result<Session, Error> {
    let mut session = Session::builder()
        .connect_timeout(seconds("--connect-timeout", args.connect_timeout)?)
        .read_timeout(seconds("--read-timeout", args.read_timeout)?)
        .max_connections(max_connections);
    if let Some(ua) = &args.user_agent {
        session = session.try_user_agent(ua)?;
    }
    let ca = args
        .cacert
        .clone()
        .or_else(|| std::env::var_os("SSL_CERT_FILE").map(PathBuf::from));
    if let Some(ca) = ca {
        session = session.ca_file(&ca)?;
    }
    session = session.insecure(args.insecure);
    for h in &args.headers {
        session = session.header_line(h)?;
    }
    if let Some(p) = &args.proxy {
        session = session.proxy(p);
    }
    if let Some(list) = &args.noproxy {
        session = session.no_proxy(list);
    }
    session.try_build()
}

/// A download of `url` with the options every download of the run shares.
fn configure(args: &Args, url: &str, session: &Session) -> Result<Download, Error> {
    let download = Download::new(url).session(session.clone());
    let download = if args.fixed {
        download.connections(args.connections.into())
    } else {
        download.max_connections(args.connections.into())
    };
    let download = download
        .content_disposition(args.content_disposition)
        .force(args.force)
        .keep_complete(args.continue_)
        .limit_rate(args.limit_rate)
        .allocation(if args.file_allocation == "none" {
            rangeget::Allocation::Sparse
        } else {
            rangeget::Allocation::Reserve
        })
        .resume(!args.no_resume)
        .sync_every(if args.sync_interval == 0.0 {
            None
        } else {
            Some(seconds("--sync-interval", args.sync_interval)?)
        })
        .retries(args.retries);
    Ok(match &args.checksum {
        Some(c) => download.checksum(rangeget::Checksum::parse(c)?),
        None => download,
    })
}

/// Where `--json` goes: standard error or a file, one line per event.
type JsonOut = std::sync::Arc<std::sync::Mutex<Box<dyn Write + Send>>>;

fn json_out(args: &Args) -> Result<Option<JsonOut>, Error> {
    let Some(target) = &args.json else {
        return Ok(None);
    };
    let json_on_stderr = target.as_path() == std::path::Path::new("-");
    // The end event will say it all, error included.
    EVENTS_ON_STDERR.store(json_on_stderr, Ordering::SeqCst);
    let out: Box<dyn Write + Send> = if json_on_stderr {
        Box::new(std::io::stderr())
    } else {
        Box::new(
            std::fs::File::create(target)
                .map_err(|e| Error::InvalidOption(format!("--json {}: {e}", target.display())))?,
        )
    };
    Ok(Some(std::sync::Arc::new(std::sync::Mutex::new(out))))
}

fn write_json(out: &JsonOut, line: &str) {
    let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The one-line summary of a saved file.
fn saved_line(summary: &rangeget::Summary) -> String {
    let resumed = if summary.fetched < summary.bytes {
        format!(", {} fetched this run", BinaryBytes(summary.fetched))
    } else {
        String::new()
    };
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    // Bytes fetched twice (a request cut short, an attempt asked again).
    let twice = summary.received.saturating_sub(summary.fetched);
    let twice = if twice > 0 {
        format!(", {} received twice", BinaryBytes(twice))
    } else {
        String::new()
    };
    format!(
        "rangeget: saved {} ({}, {} bytes{resumed}) in {:.2} s, {}/s, {}, {}{twice}",
        summary.path.display(),
        BinaryBytes(summary.bytes),
        summary.bytes,
        summary.elapsed.as_secs_f64(),
        BinaryBytes(summary.bytes_per_second() as u64),
        plural(summary.connections, "connection"),
        plural(summary.requests, "request"),
    )
}

/// Saves the jar whatever happened (a login earlier in the run counts);
/// an error only when the run itself went well.
fn save_jar(args: &Args, session: &Session, ok: bool) -> Result<(), Error> {
    if let Some(jar) = &args.cookie_jar
        && let Err(e) = session.save(jar)
    {
        if ok {
            return Err(e);
        }
        if !EVENTS_ON_STDERR.load(Ordering::SeqCst) {
            eprintln!("rangeget: error: {e}");
        }
    }
    Ok(())
}

fn run(args: Args) -> Result<u8, Error> {
    if let Some(what) = &args.generate {
        return generate(what).map(|()| 0);
    }
    if args.input_file.is_some() || args.urls.len() > 1 {
        return run_list(args);
    }
    let Some(url) = args.urls.first().cloned() else {
        return Err(Error::InvalidOption("a URL to download is needed".into()));
    };
    let to_stdout = args.output.as_deref() == Some(std::path::Path::new("-"));
    let session = session_for(&args, args.connections.into())?;
    if let Some(jar) = &args.cookie_jar {
        session.load(jar)?;
    }
    if !args.cookies.is_empty() {
        let target = rangeget::parse_url(&url)?;
        for c in &args.cookies {
            session.add_cookie(&target, c)?;
        }
    }
    let mut download = configure(&args, &url, &session)?.mirrors(args.mirrors.iter().cloned());
    if to_stdout {
        download = download
            .output_stream(std::io::stdout())
            .stream_window(args.buffer);
    } else if let Some(o) = args.output.clone() {
        download = download.output(o);
    }
    if let Some(d) = args.dir.clone() {
        download = download.dir(d);
    }
    if let Some(out) = json_out(&args)? {
        download = download.on_event(move |e| write_json(&out, &e.to_json()));
    }
    let json_on_stderr = EVENTS_ON_STDERR.load(Ordering::SeqCst);
    if !args.quiet && !json_on_stderr {
        // The name the bar shows: the one asked for, else the URL's.
        let name = match &args.output {
            Some(o) => o.file_name().map(|n| n.to_string_lossy().into_owned()),
            None => rangeget::parse_url(&url)
                .ok()
                .map(|u| rangeget::unversioned::name_from_url(&u)),
        };
        download = download
            .on_notice(|msg| eprintln!("rangeget: {msg}"))
            .progress(TerminalBar::named(name.unwrap_or_default()).into_callback());
    }
    let signals = watch_signals(download.cancel_handle())?;
    let result = download.run();
    signals.close();
    save_jar(&args, &session, result.is_ok())?;
    let summary = result?;
    // (A file complete already was told of in a notice.)
    if !args.quiet && !json_on_stderr && !summary.already_complete {
        eprintln!("{}", saved_line(&summary));
    }
    Ok(0)
}

/// Reads `-i FILE` (or standard input), at most [`rangeget::MAX_LIST_BYTES`].
fn read_list(path: &std::path::Path) -> Result<Vec<rangeget::Entry>, Error> {
    use std::io::Read;
    let stdin = path == std::path::Path::new("-");
    let name = if stdin {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        action: "read the input file",
        source,
    };
    let mut bytes = Vec::new();
    let limit = rangeget::MAX_LIST_BYTES as u64 + 1;
    if stdin {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .map_err(io)?;
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::InvalidOption(format!("{name}: not UTF-8 text")))?;
    rangeget::parse_list(&text, &name)
}

/// Several URLs, or `-i`: the downloads as a list under one budget.
fn run_list(args: Args) -> Result<u8, Error> {
    if args.output.is_some() {
        return Err(Error::InvalidOption(
            "-o names one file: in a list, give out= in the input file".into(),
        ));
    }
    if args.checksum.is_some() {
        return Err(Error::InvalidOption(
            "--checksum is for one file: in a list, give checksum= in the input file".into(),
        ));
    }
    if !args.mirrors.is_empty() {
        return Err(Error::InvalidOption(
            "--mirror is for one file: in a list, put mirrors on the URL's line, TAB-separated"
                .into(),
        ));
    }
    let mut entries: Vec<rangeget::Entry> = args
        .urls
        .iter()
        .map(|u| rangeget::Entry {
            urls: vec![u.clone()],
            out: None,
            dir: None,
            checksum: None,
            headers: Vec::new(),
            connections: None,
            line: 0,
        })
        .collect();
    if let Some(path) = &args.input_file {
        entries.extend(read_list(path)?);
    }
    if entries.is_empty() {
        return Err(Error::InvalidOption("the list has no URL in it".into()));
    }
    let global = args.max_connections.max(args.parallel);
    let session = session_for(&args, global.min(rangeget::MAX_CONNECTIONS))?;
    if let Some(jar) = &args.cookie_jar {
        session.load(jar)?;
    }
    let json = json_out(&args)?;
    let json_on_stderr = EVENTS_ON_STDERR.load(Ordering::SeqCst);
    let show = !args.quiet && !json_on_stderr;
    let group = rangeget::BarGroup::new();
    let mut batch = rangeget::Batch::new()
        .parallel(args.parallel)
        .max_per_host(args.max_per_host)
        .max_connections(global)
        .limit_rate(args.limit_rate)
        .session(session.clone());
    let mut names = Vec::new();
    for e in &entries {
        let url = &e.urls[0];
        if !args.cookies.is_empty() {
            let target = rangeget::parse_url(url)?;
            for c in &args.cookies {
                session.add_cookie(&target, c)?;
            }
        }
        let own = if e.headers.is_empty() {
            session.clone()
        } else {
            session.with_headers(&e.headers)?
        };
        // The list's rate limit is shared; a download's own is not wanted.
        let mut d = configure(&args, url, &own)?
            .limit_rate(None)
            .keep_complete(true);
        if let Some(n) = e.connections {
            d = if args.fixed {
                d.connections(n)
            } else {
                d.max_connections(n)
            };
        }
        if let Some(c) = &e.checksum {
            d = d.checksum(c.clone());
        }
        if let Some(o) = &e.out {
            d = d.output(o.clone());
        }
        if let Some(dir) = e.dir.clone().or_else(|| args.dir.clone()) {
            d = d.dir(dir);
        }
        let name = match &e.out {
            Some(o) => o.display().to_string(),
            None => rangeget::parse_url(url)
                .map(|u| rangeget::unversioned::name_from_url(&u))
                .unwrap_or_else(|_| url.clone()),
        };
        d = d.mirrors(e.urls[1..].iter().cloned());
        if let Some(out) = json.clone() {
            let i = names.len();
            d = d.on_event(move |ev| {
                // The event, with its place in the list.
                let line = ev.to_json();
                let line = match line.strip_prefix('{') {
                    Some(rest) => format!("{{\"index\":{i},{rest}"),
                    None => line,
                };
                write_json(&out, &line);
            });
        }
        if show {
            let g = group.clone();
            let shown = name.clone();
            d = d
                .on_notice(move |msg| g.println(&format!("rangeget: {shown}: {msg}")))
                .progress(group.bar(name.clone()).into_callback());
        }
        names.push(name);
        batch = batch.download(d);
    }
    let count = entries.len();
    let started = std::sync::Arc::new(std::sync::Mutex::new(vec![false; count]));
    if show {
        let mut overall = group.overall("");
        batch = batch.progress(move |p| {
            overall.set_name(format!("[{}/{}]", p.done + p.failed, p.count));
            overall.update(&p.overall);
        });
    }
    let (g, quiet) = (group.clone(), !show);
    let marks = std::sync::Arc::clone(&started);
    let urls: Vec<String> = entries.iter().map(|e| e.urls[0].clone()).collect();
    batch = batch
        .on_start(move |i| marks.lock().unwrap_or_else(|p| p.into_inner())[i] = true)
        .on_finish(move |i, r| {
            if quiet {
                return;
            }
            match r {
                // (A file complete already was told of in a notice.)
                Ok(s) if s.already_complete => {}
                Ok(s) => g.println(&saved_line(s)),
                Err(Error::Cancelled) => {}
                Err(e) => g.println(&format!("rangeget: error: {}: {e}", urls[i])),
            }
        });
    let signals = watch_signals(batch.cancel_handle())?;
    let report = batch.run();
    signals.close();
    let ok = report.done() == count;
    save_jar(&args, &session, ok)?;
    if show {
        let started = started.lock().unwrap_or_else(|p| p.into_inner());
        let partial = report
            .results
            .iter()
            .zip(started.iter())
            .filter(|(r, s)| matches!(r, Err(Error::Cancelled)) && **s)
            .count();
        let not_started = report.cancelled() - partial;
        let mut line = format!(
            "rangeget: {} of {count} done ({} fetched in {:.2} s)",
            report.done(),
            BinaryBytes(report.fetched()),
            report.elapsed.as_secs_f64()
        );
        if partial > 0 {
            line += &format!(", {partial} partial");
        }
        if not_started > 0 {
            line += &format!(", {not_started} not started");
        }
        if report.failed() > 0 {
            line += &format!(", {} failed", report.failed());
        }
        eprintln!("{line}");
        for (i, r) in report.results.iter().enumerate() {
            if let Err(e) = r
                && !matches!(e, Error::Cancelled)
            {
                eprintln!("rangeget:   failed: {}: {e}", entries[i].urls[0]);
            }
        }
    }
    if report.cancelled() > 0 {
        return Err(Error::Cancelled);
    }
    Ok(report.exit_code() as u8)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(Error::Cancelled) => {
            let sig = SIGNAL.load(Ordering::SeqCst);
            if !EVENTS_ON_STDERR.load(Ordering::SeqCst) {
                eprintln!("rangeget: interrupted; run the same command again to resume");
            }
            ExitCode::from(if sig > 0 { 128 + sig as u8 } else { 130 })
        }
        // A reader that closed the pipe (`| head`) ends the download
        // quietly, as a process that SIGPIPE ends would.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(141)
        }
        Err(e) => {
            if !EVENTS_ON_STDERR.load(Ordering::SeqCst) {
                eprintln!("rangeget: error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
