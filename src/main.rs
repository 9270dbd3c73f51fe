//! The `rangeget` command: arguments → library → exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use clap::Parser;
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
    /// The URL to download (http or https; without a scheme, http).
    #[arg(required_unless_present = "generate")]
    url: Option<String>,

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

    /// Connections to use at most, 1 to 64.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    connections: u16,

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

fn run(args: Args) -> Result<(), Error> {
    if let Some(what) = &args.generate {
        return generate(what);
    }
    let Some(url) = args.url.clone() else {
        return Err(Error::InvalidOption("a URL to download is needed".into()));
    };
    let to_stdout = args.output.as_deref() == Some(std::path::Path::new("-"));
    let mut session = Session::builder()
        .connect_timeout(seconds("--connect-timeout", args.connect_timeout)?)
        .read_timeout(seconds("--read-timeout", args.read_timeout)?)
        .max_connections(args.connections.into());
    if let Some(ua) = &args.user_agent {
        session = session.try_user_agent(ua)?;
    }
    let ca = args
        .cacert
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
    let session = session.try_build()?;
    if let Some(jar) = &args.cookie_jar {
        session.load(jar)?;
    }
    if !args.cookies.is_empty() {
        let target = rangeget::parse_url(&url)?;
        for c in &args.cookies {
            session.add_cookie(&target, c)?;
        }
    }
    let mut download = Download::new(url.clone())
        .session(session.clone())
        .connections(args.connections.into())
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
    if let Some(c) = &args.checksum {
        download = download.checksum(rangeget::Checksum::parse(c)?);
    }
    if to_stdout {
        download = download
            .output_stream(std::io::stdout())
            .stream_window(args.buffer);
    } else if let Some(o) = args.output.clone() {
        download = download.output(o);
    }
    if let Some(d) = args.dir {
        download = download.dir(d);
    }
    let json_on_stderr = args.json.as_deref() == Some(std::path::Path::new("-"));
    // The end event will say it all, error included.
    EVENTS_ON_STDERR.store(json_on_stderr, Ordering::SeqCst);
    if let Some(target) = &args.json {
        let out: Box<dyn std::io::Write + Send> =
            if json_on_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::fs::File::create(target).map_err(|e| {
                    Error::InvalidOption(format!("--json {}: {e}", target.display()))
                })?)
            };
        let out = std::sync::Mutex::new(out);
        download = download.on_event(move |e| {
            let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(out, "{}", e.to_json());
            let _ = out.flush();
        });
    }
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
    // The jar is saved whatever happened: a login earlier in the run counts.
    if let Some(jar) = &args.cookie_jar
        && let Err(e) = session.save(jar)
    {
        if result.is_ok() {
            return Err(e);
        }
        if !json_on_stderr {
            eprintln!("rangeget: error: {e}");
        }
    }
    let summary = result?;
    // (A file complete already was told of in a notice.)
    if !args.quiet && !json_on_stderr && !summary.already_complete {
        let resumed = if summary.fetched < summary.bytes {
            format!(", {} fetched this run", BinaryBytes(summary.fetched))
        } else {
            String::new()
        };
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        eprintln!(
            "rangeget: saved {} ({}, {} bytes{resumed}) in {:.2} s, {}/s, {}, {}",
            summary.path.display(),
            BinaryBytes(summary.bytes),
            summary.bytes,
            summary.elapsed.as_secs_f64(),
            BinaryBytes(summary.bytes_per_second() as u64),
            plural(summary.connections, "connection"),
            plural(summary.requests, "request"),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
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
