//! Cookie jar files: the Netscape `cookies.txt` format that curl, wget and
//! aria2c read and write, and cookie_store's JSON, both detected on load. Files
//! are written with mode 0600 through a temporary file and a rename, so a crash
//! never leaves a half-written jar.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use cookie_store::{CookieDomain, CookieExpiration, CookieStore, RawCookie};
use time::OffsetDateTime;
use url::Url;

use crate::error::Error;

/// A jar file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JarFormat {
    /// Netscape `cookies.txt` (curl `-c`, wget `--save-cookies`, aria2c).
    Netscape,
    /// cookie_store's JSON.
    Json,
}

/// The format of jar text: JSON when it starts with `[` or `{`, else Netscape.
pub fn detect(text: &str) -> JarFormat {
    match text.trim_start().chars().next() {
        Some('[') | Some('{') => JarFormat::Json,
        _ => JarFormat::Netscape,
    }
}

/// The format to save `path` in: the one the file already has, else JSON for a
/// name ending in `.json` and Netscape for any other.
pub fn format_for(path: &Path) -> JarFormat {
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => detect(&text),
        _ if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json")) =>
        {
            JarFormat::Json
        }
        _ => JarFormat::Netscape,
    }
}

fn jar_error(path: &Path, line: Option<usize>, reason: impl Into<String>) -> Error {
    Error::CookieJar {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

/// Reads a jar file. A missing file is an empty jar. Expired cookies are dropped.
pub fn read(path: &Path) -> Result<CookieStore, Error> {
    match fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|(line, reason)| jar_error(path, line, reason)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(CookieStore::new()),
        Err(e) => Err(Error::io(path, "read the cookie jar", e)),
    }
}

/// Adds the unexpired cookies of `from` to `into` (replacing same-named ones).
pub fn merge(into: &mut CookieStore, from: &CookieStore) {
    for c in from.iter_unexpired() {
        if let Some(url) = cookie_url(c) {
            let _ = into.insert(c.clone(), &url);
        }
    }
}

/// The host or domain a cookie belongs to.
pub fn cookie_host<'c>(c: &'c cookie_store::Cookie<'static>) -> Option<&'c str> {
    match &c.domain {
        CookieDomain::HostOnly(h) | CookieDomain::Suffix(h) => Some(h),
        _ => None,
    }
}

/// Parses jar text in either format. The error is `(line, reason)`.
pub fn parse(text: &str) -> Result<CookieStore, (Option<usize>, String)> {
    match detect(text) {
        JarFormat::Json => cookie_store::serde::json::load(text.as_bytes()).map_err(|e| {
            let line = e
                .downcast_ref::<serde_json::Error>()
                .map(serde_json::Error::line);
            (line, format!("not a valid JSON cookie jar: {e}"))
        }),
        JarFormat::Netscape => parse_netscape(text),
    }
}

fn parse_netscape(text: &str) -> Result<CookieStore, (Option<usize>, String)> {
    let mut store = CookieStore::new();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    for (i, raw_line) in text.lines().enumerate() {
        let lineno = Some(i + 1);
        let mut line = raw_line.trim_end_matches('\r');
        let mut http_only = false;
        if let Some(rest) = line.strip_prefix("#HttpOnly_") {
            line = rest;
            http_only = true;
        } else if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 7 {
            return Err((
                lineno,
                format!(
                    "expected 7 tab-separated fields (domain, subdomains, path, secure, expiry, name, value), found {}",
                    f.len()
                ),
            ));
        }
        let flag = |v: &str, what: &str| match v.to_ascii_uppercase().as_str() {
            "TRUE" => Ok(true),
            "FALSE" => Ok(false),
            _ => Err((lineno, format!("{what} must be TRUE or FALSE, not {v:?}"))),
        };
        let include_subdomains = flag(f[1], "the subdomains field")?;
        let secure = flag(f[3], "the secure field")?;
        let expiry: i64 = f[4]
            .trim()
            .parse()
            .map_err(|_| (lineno, format!("expiry {:?} is not a number", f[4])))?;
        let host = f[0].trim_start_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err((lineno, "empty domain".to_string()));
        }
        if expiry != 0 && expiry <= now {
            continue; // expired: dropped
        }
        let path = if f[2].starts_with('/') { f[2] } else { "/" };
        let mut raw = RawCookie::build((f[5].to_string(), f[6].to_string()))
            .path(path.to_string())
            .secure(secure)
            .http_only(http_only);
        if include_subdomains {
            raw = raw.domain(host.clone());
        }
        if expiry != 0 {
            let at = OffsetDateTime::from_unix_timestamp(expiry)
                .map_err(|_| (lineno, format!("expiry {expiry} is out of range")))?;
            raw = raw.expires(at);
        }
        let scheme = if secure { "https" } else { "http" };
        let url = Url::parse(&format!("{scheme}://{host}{path}"))
            .map_err(|e| (lineno, format!("domain {:?} is not a host name: {e}", f[0])))?;
        store
            .insert_raw(&raw.build(), &url)
            .map_err(|e| (lineno, format!("cookie refused: {e}")))?;
    }
    Ok(store)
}

/// A URL from which `c` could have been set (to re-insert it elsewhere).
fn cookie_url(c: &cookie_store::Cookie<'static>) -> Option<Url> {
    let host = cookie_host(c)?;
    let scheme = if c.secure().unwrap_or(false) {
        "https"
    } else {
        "http"
    };
    let path: &str = &c.path;
    Url::parse(&format!("{scheme}://{host}{path}")).ok()
}

/// The jar as Netscape `cookies.txt` text: session cookies with expiry 0,
/// sorted by domain, path and name. Expired cookies and those for which `skip`
/// is true are left out.
///
/// HttpOnly cookies are written as plain lines, without curl's `#HttpOnly_`
/// prefix: wget and aria2c read prefixed lines as comments and would silently
/// drop them, and login session cookies are nearly always HttpOnly. The flag
/// means nothing to a client that runs no scripts; [`parse`] accepts the prefix.
pub fn to_netscape(
    store: &CookieStore,
    skip: &dyn Fn(&cookie_store::Cookie<'static>) -> bool,
) -> String {
    let mut out = String::from(
        "# Netscape HTTP Cookie File\n# https://curl.se/docs/http-cookies.html\n# Written by rangeget.\n\n",
    );
    // Sorted, so that the same jar always gives the same file.
    let mut kept: Vec<_> = store.iter_unexpired().filter(|c| !skip(c)).collect();
    kept.sort_by(|a, b| {
        (cookie_host(a), &*a.path, a.name()).cmp(&(cookie_host(b), &*b.path, b.name()))
    });
    for c in kept {
        let (domain, sub) = match &c.domain {
            CookieDomain::HostOnly(h) => (h.clone(), "FALSE"),
            CookieDomain::Suffix(d) => (format!(".{d}"), "TRUE"),
            _ => continue,
        };
        let expiry = match c.expires {
            CookieExpiration::AtUtc(t) => t.unix_timestamp(),
            CookieExpiration::SessionEnd => 0,
        };
        let secure = if c.secure().unwrap_or(false) {
            "TRUE"
        } else {
            "FALSE"
        };
        let path: &str = &c.path;
        out.push_str(&format!(
            "{domain}\t{sub}\t{path}\t{secure}\t{expiry}\t{}\t{}\n",
            c.name(),
            c.value()
        ));
    }
    out
}

/// The jar as cookie_store JSON (session cookies included, expired ones and
/// those for which `skip` is true left out).
pub fn to_json(
    store: &CookieStore,
    skip: &dyn Fn(&cookie_store::Cookie<'static>) -> bool,
) -> Result<String, Error> {
    let kept: Vec<Result<cookie_store::Cookie<'static>, std::convert::Infallible>> = store
        .iter_unexpired()
        .filter(|c| !skip(c))
        .cloned()
        .map(Ok)
        .collect();
    let Ok(copy) = CookieStore::from_cookies(kept, false);
    let mut buf = Vec::new();
    cookie_store::serde::json::save_incl_expired_and_nonpersistent(&copy, &mut buf).map_err(
        |e| {
            Error::io(
                "cookie jar",
                "serialise the cookie jar",
                io::Error::other(e.to_string()),
            )
        },
    )?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Writes `text` to `path` atomically with mode 0600: a temporary file in the
/// same directory, fsync, rename.
pub fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    let dir = crate::output::parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cookies".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, "save the cookie jar", e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURL_STYLE: &str = "# Netscape HTTP Cookie File\n\
        # https://curl.se/docs/http-cookies.html\n\n\
        #HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tabc\n\
        .example.com\tTRUE\t/docs\tTRUE\t4102444800\tpref\tdark\n\
        example.org\tFALSE\t/\tFALSE\t1000\told\tgone\n";

    #[test]
    fn netscape_round_trip_keeps_every_field() {
        let store = parse(CURL_STYLE).unwrap();
        let text = to_netscape(&store, &|_| false);
        assert!(
            text.contains("\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tabc\n"),
            "{text}"
        );
        assert!(!text.contains("#HttpOnly_"), "{text}");
        assert!(
            text.contains(".example.com\tTRUE\t/docs\tTRUE\t4102444800\tpref\tdark\n"),
            "{text}"
        );
        assert!(!text.contains("old"), "expired cookie kept: {text}");
        let again = parse(&text).unwrap();
        assert_eq!(to_netscape(&again, &|_| false), text);
    }

    #[test]
    fn json_round_trip_keeps_session_cookies() {
        let store = parse(CURL_STYLE).unwrap();
        let json = to_json(&store, &|_| false).unwrap();
        assert_eq!(detect(&json), JarFormat::Json);
        let back = parse(&json).unwrap();
        assert_eq!(
            to_netscape(&back, &|_| false),
            to_netscape(&store, &|_| false)
        );
    }

    #[test]
    fn loaded_cookies_match_urls_by_the_jar_rules() {
        let store = parse(CURL_STYLE).unwrap();
        let values = |u: &str| -> Vec<String> {
            store
                .get_request_values(&Url::parse(u).unwrap())
                .map(|(n, v)| format!("{n}={v}"))
                .collect()
        };
        assert_eq!(values("http://127.0.0.1:8080/x"), vec!["sid=abc"]);
        assert_eq!(values("https://www.example.com/docs/a"), vec!["pref=dark"]);
        // Secure cookies never go over http; paths are respected.
        assert!(values("http://www.example.com/docs/a").is_empty());
        assert!(values("https://www.example.com/other").is_empty());
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let e = parse("# header\nexample.com\tFALSE\t/\n").unwrap_err();
        assert_eq!(e.0, Some(2));
        let e = parse("example.com\tMAYBE\t/\tFALSE\t0\ta\tb\n").unwrap_err();
        assert!(e.1.contains("TRUE or FALSE"), "{e:?}");
        let e = parse("example.com\tFALSE\t/\tFALSE\tsoon\ta\tb\n").unwrap_err();
        assert!(e.1.contains("not a number"), "{e:?}");
        let e = parse("[{\"broken\": ").unwrap_err();
        assert!(e.1.contains("JSON"), "{e:?}");
    }
}
