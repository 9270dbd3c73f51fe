//! The `rangeget` command: arguments → library → exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use indicatif::BinaryBytes;
use rangeget::{Download, Error, Session, TerminalBar};

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  2    usage error or invalid URL
  3    network failure (host not found, connection refused/reset/stalled, TLS, redirect loop)
  4    HTTP error status (4xx, 5xx)
  5    local file error (directory missing or not writable, file exists, disk full)
  6    the server broke the protocol (wrong Content-Range, body shorter than announced)
  130  interrupted";

/// Download a file over HTTP(S) with many connections at once.
#[derive(Parser, Debug)]
#[command(name = "rangeget", version, about, after_help = EXIT_CODES)]
struct Args {
    /// The URL to download (http or https).
    url: String,

    /// Save to FILE (default: the last part of the URL's path).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,

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

    /// Retries of one range without progress before giving up.
    #[arg(long, value_name = "N", default_value_t = rangeget::DEFAULT_RETRIES)]
    retries: u32,

    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
}

fn seconds(name: &str, v: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::InvalidOption(format!("{name} must be a positive number of seconds")))
}

fn run(args: Args) -> Result<(), Error> {
    let mut session = Session::builder()
        .connect_timeout(seconds("--connect-timeout", args.connect_timeout)?)
        .read_timeout(seconds("--read-timeout", args.read_timeout)?)
        .max_connections(args.connections.into());
    if let Some(ua) = args.user_agent {
        session = session.user_agent(ua);
    }
    for h in &args.headers {
        session = session.header_line(h)?;
    }
    let mut download = Download::new(args.url)
        .session(session.build())
        .connections(args.connections.into())
        .content_disposition(args.content_disposition)
        .force(args.force)
        .retries(args.retries);
    if let Some(o) = args.output {
        download = download.output(o);
    }
    if let Some(d) = args.dir {
        download = download.dir(d);
    }
    if !args.quiet {
        download = download
            .on_notice(|msg| eprintln!("rangeget: {msg}"))
            .progress(TerminalBar::new().into_callback());
    }
    let summary = download.run()?;
    if !args.quiet {
        eprintln!(
            "rangeget: saved {} ({}, {} bytes) in {:.2} s, {}/s, {} connection{}",
            summary.path.display(),
            BinaryBytes(summary.bytes),
            summary.bytes,
            summary.elapsed.as_secs_f64(),
            BinaryBytes(summary.bytes_per_second() as u64),
            summary.connections,
            if summary.connections == 1 { "" } else { "s" },
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rangeget: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
