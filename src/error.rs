//! The library's one error type, and the exit code each kind maps to.

use std::io;
use std::path::PathBuf;

/// Everything that can stop a download. Each message says what went wrong and,
/// where there is one, what the user can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be parsed, or is not one rangeget can fetch.
    #[error("invalid URL {:?}: {reason}", redact(url))]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An option or argument has a value that cannot be used.
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// The server answered with an error status that retrying did not fix.
    #[error("{}: the server answered HTTP {status}{}", redact(url), status_hint(*status))]
    HttpStatus {
        /// The URL that answered.
        url: String,
        /// The status code.
        status: u16,
    },

    /// The connection failed: the host could not be resolved or reached, the
    /// connection broke or stalled, or TLS failed.
    #[error("{}: {reason}", redact(url))]
    Network {
        /// The URL being fetched.
        url: String,
        /// What failed, in words.
        reason: String,
        /// Whether trying again may help: a timeout, a reset or broken
        /// connection, a stall; not a host that does not resolve or a port
        /// that refuses connections.
        transient: bool,
    },

    /// More redirects than allowed.
    #[error(
        "{}: more than {limit} redirects; the server is probably misconfigured",
        redact(url)
    )]
    TooManyRedirects {
        /// The URL first requested.
        url: String,
        /// The limit.
        limit: u32,
    },

    /// A redirect led back to a URL already visited.
    #[error("redirect loop: {} redirects back to itself (via {via})", redact(url))]
    RedirectLoop {
        /// The URL visited twice.
        url: String,
        /// How many hops it took.
        via: usize,
    },

    /// The server broke the protocol in a way that retrying did not fix: a
    /// wrong `Content-Range`, a body shorter than announced, a length that
    /// changed.
    #[error("{}: {reason}", redact(url))]
    Protocol {
        /// The URL being fetched.
        url: String,
        /// What the server did wrong.
        reason: String,
    },

    /// The output file already exists.
    #[error("{0} already exists; pass --force to overwrite it, or choose another name with -o")]
    OutputExists(PathBuf),

    /// The output file exists (and `-c` asked to keep a complete one) but is
    /// not the server's file; it is kept.
    #[error("{}: exists but is not the server's file ({reason}); it was kept (pass --force to replace it)", path.display())]
    ExistsDiffers {
        /// The file.
        path: PathBuf,
        /// How it differs.
        reason: String,
    },

    /// `NAME.part` holds an unfinished download of another file: it is not
    /// discarded unless resuming is turned off (`--no-resume`).
    #[error(
        "{}: holds an unfinished download of {}; pass --no-resume to discard it, or choose another name with -o",
        path.display(),
        redact(url)
    )]
    Occupied {
        /// The partial file.
        path: PathBuf,
        /// The URL it is a download of.
        url: String,
    },

    /// A local file operation failed (missing directory, no permission, full disk…).
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What rangeget was doing, as a verb phrase ("create the file").
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The disk filled up during the download; the partial file is kept.
    #[error(
        "{path}: no space left on the device: free at least {needed} more bytes, then run the same command again to resume"
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
        /// Bytes still to write.
        needed: u64,
    },

    /// A cookie jar file could not be read; it is left as it is.
    #[error("{}{}: {reason}; the file was left untouched", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    CookieJar {
        /// The jar file.
        path: PathBuf,
        /// The line at fault, when known.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },

    /// The downloaded file's SHA-256 is not the one expected; nothing was kept.
    #[error(
        "checksum mismatch: {origin} says sha256 {expected}, the download has {got}; nothing was kept"
    )]
    ChecksumMismatch {
        /// The expected digest, hex.
        expected: String,
        /// The digest of what was downloaded, hex.
        got: String,
        /// Where the expected digest came from.
        origin: String,
    },

    /// The download was cancelled.
    #[error("download cancelled")]
    Cancelled,
}

/// A URL as it may be shown or stored: with its password, if any, masked.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 407 => " (authentication required: pass credentials with -H or a cookie jar)",
        403 => " (forbidden: you may need to log in or send a cookie)",
        404 | 410 => " (not found: check the URL)",
        416 => " (range not satisfiable)",
        429 => " (too many requests: try again later)",
        500..=599 => " (server error: try again later)",
        _ => "",
    }
}

impl Error {
    /// The process exit code for this error, as documented in the README and in
    /// `rangeget --help`:
    ///
    /// | code | meaning |
    /// |---|---|
    /// | 2 | usage error or bad URL |
    /// | 3 | network failure (DNS, connect, reset, stall, TLS, redirects) |
    /// | 4 | HTTP error status (4xx, 5xx) |
    /// | 5 | local file error (directory, permissions, existing file, disk full) |
    /// | 6 | the server broke the protocol (wrong range, short body, changed length) |
    /// | 7 | the download's SHA-256 differs from `--checksum` or the server's digest |
    /// | 130 | cancelled |
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidUrl { .. } | Error::InvalidOption(_) => 2,
            Error::Network { .. } | Error::TooManyRedirects { .. } | Error::RedirectLoop { .. } => {
                3
            }
            Error::HttpStatus { .. } => 4,
            Error::OutputExists(_)
            | Error::Occupied { .. }
            | Error::ExistsDiffers { .. }
            | Error::Io { .. }
            | Error::DiskFull { .. }
            | Error::CookieJar { .. } => 5,
            Error::Protocol { .. } => 6,
            Error::ChecksumMismatch { .. } => 7,
            Error::Cancelled => 130,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }

    pub(crate) fn protocol(url: &url::Url, reason: impl Into<String>) -> Error {
        Error::Protocol {
            url: url.to_string(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_messages() {
        let e = Error::HttpStatus {
            url: "http://ann:s3cret@h/f".into(),
            status: 404,
        };
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(e.to_string().contains("ann:***@h"), "{e}");
        assert_eq!(redact("http://h/f"), "http://h/f");
        assert_eq!(redact("not a url"), "not a url");
    }
}
