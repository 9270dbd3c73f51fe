//! Cookie jar files: the Netscape `cookies.txt` format that curl, wget and
//! aria2c read and write, and cookie_store's JSON, both detected on load. Files
//! are written with mode 0600 through a temporary file and a rename, so a crash
//! never leaves a half-written jar.

use std::fs;
use std::io;
use std::path::Path;

use cookie_store::{CookieDomain, CookieExpiration, CookieStore, RawCookie};
use time::OffsetDateTime;
use url::Url;

use crate::error::Error;
use crate::http::clip;

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

/// The largest jar file read: [`MAX_COOKIES`] cookies of [`MAX_COOKIE_BYTES`]
/// fit several times over.
pub const MAX_JAR_BYTES: u64 = 64 << 20;

/// Reads a jar file. A missing file is an empty jar. Expired cookies are dropped.
pub fn read(path: &Path) -> Result<CookieStore, Error> {
    use std::io::Read;
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CookieStore::new()),
        Err(e) => return Err(Error::io(path, "read the cookie jar", e)),
    };
    let mut text = String::new();
    file.take(MAX_JAR_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(path, "read the cookie jar", e))?;
    if text.len() as u64 > MAX_JAR_BYTES {
        return Err(jar_error(
            path,
            None,
            format!("larger than {MAX_JAR_BYTES} bytes: not a cookie jar"),
        ));
    }
    parse(&text).map_err(|(line, reason)| jar_error(path, line, reason))
}

/// The most cookies kept for one site (its registrable domain, as the
/// public-suffix list defines it): RFC 6265 6.1 asks for at least 50.
pub const MAX_COOKIES_PER_SITE: usize = 50;

/// The most cookies kept in all: RFC 6265 6.1 asks for at least 3000.
pub const MAX_COOKIES: usize = 3000;

/// The largest cookie kept, name and value together: RFC 6265 6.1 asks for
/// at least 4096 bytes.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// The most bytes of jar cookies sent in one `Cookie` header: beyond it the
/// oldest cookies are left out, so that no jar can make a request too large
/// to send (or for the server to accept).
pub const MAX_COOKIE_HEADER: usize = 8 << 10;

/// The most `Set-Cookie` fields of one answer looked at.
pub const MAX_SET_COOKIES: usize = 100;

type Key = (String, String, String);

/// A session's cookie jar: cookie_store's store, under the rules and limits
/// browsers keep. A cookie for a whole public suffix (`Domain=co.uk`) is
/// refused, as is one whose name or value holds a control character (a TAB
/// would break the Netscape file) or that is larger than
/// [`MAX_COOKIE_BYTES`]; beyond [`MAX_COOKIES_PER_SITE`] for a site or
/// [`MAX_COOKIES`] in all, the oldest go first.
pub(crate) struct Jar {
    store: CookieStore,
    /// When each cookie was stored (a counter): the oldest go first.
    ages: std::collections::HashMap<Key, u64>,
    next: u64,
}

fn key(c: &cookie_store::Cookie<'static>) -> Option<Key> {
    Some((
        cookie_host(c)?.to_string(),
        c.path.to_string(),
        c.name().to_string(),
    ))
}

/// The site a host belongs to: its registrable domain (`a.example.co.uk` →
/// `example.co.uk`), or the host itself (an IP address, `localhost`).
fn site(host: &str) -> &str {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    psl::domain_str(host).unwrap_or(host)
}

/// Whether a cookie from `url` may be stored, after making a `Domain` that
/// is a public suffix host-only when it is the host itself (RFC 6265 5.3.5).
fn admit(raw: &mut RawCookie<'static>, url: &Url) -> bool {
    let bad = |s: &str| s.chars().any(char::is_control);
    if raw.name().is_empty() || bad(raw.name()) || bad(raw.value()) {
        return false;
    }
    if raw.name().len() + raw.value().len() > MAX_COOKIE_BYTES {
        return false;
    }
    let Some(domain) = raw
        .domain()
        .map(|d| d.trim_start_matches('.').to_ascii_lowercase())
    else {
        return true;
    };
    if domain.parse::<std::net::IpAddr>().is_ok() || psl::domain_str(&domain).is_some() {
        return true;
    }
    // A public suffix (or no domain at all): only as the host itself.
    if url
        .host_str()
        .is_some_and(|h| h.eq_ignore_ascii_case(&domain))
    {
        raw.unset_domain();
        return true;
    }
    false
}

impl Jar {
    /// An empty jar.
    pub fn new() -> Jar {
        Jar {
            store: CookieStore::new(),
            ages: Default::default(),
            next: 0,
        }
    }

    /// The store, to read.
    pub fn store(&self) -> &CookieStore {
        &self.store
    }

    fn stored(&mut self, c: &cookie_store::Cookie<'static>) {
        if let Some(k) = key(c) {
            self.next += 1;
            self.ages.insert(k, self.next);
        }
    }

    /// Stores what an answer from `url` sets (at most [`MAX_SET_COOKIES`]).
    pub fn store_response<'v>(&mut self, url: &Url, values: impl Iterator<Item = &'v str>) {
        for v in values.take(MAX_SET_COOKIES) {
            let Ok(mut raw) = RawCookie::parse(v.to_string()) else {
                continue;
            };
            if !admit(&mut raw, url) {
                continue;
            }
            // A cookie the store refuses (a domain that is not the host's) is
            // ignored, as browsers do.
            if self.store.insert_raw(&raw, url).is_ok()
                && let Some(c) = self.find(&raw, url)
            {
                self.stored(&c);
            }
        }
        self.enforce_limits();
    }

    /// The stored cookie `raw` became, to date it.
    fn find(&self, raw: &RawCookie<'_>, url: &Url) -> Option<cookie_store::Cookie<'static>> {
        self.store
            .iter_any()
            .filter(|c| c.name() == raw.name())
            .filter(|c| {
                cookie_host(c).is_some_and(|h| url.host_str().is_some_and(|u| u.ends_with(h)))
            })
            .find(|c| raw.path().is_none_or(|p| *c.path == *p))
            .cloned()
    }

    /// Stores a cookie for `url` (a run-only one, or one loaded from a file).
    pub fn insert(&mut self, mut raw: RawCookie<'static>, url: &Url) -> Result<(), String> {
        if !admit(&mut raw, url) {
            return Err("refused (a control character, too large, or a public suffix)".into());
        }
        self.store
            .insert_raw(&raw, url)
            .map_err(|e| crate::http::clip(&e.to_string()))?;
        if let Some(c) = self.find(&raw, url) {
            self.stored(&c);
        }
        self.enforce_limits();
        Ok(())
    }

    /// Adds the unexpired cookies of `from` (a jar file's), under the same
    /// rules, replacing same-named ones.
    pub fn merge(&mut self, from: &CookieStore) {
        for c in from.iter_unexpired() {
            let Some(url) = cookie_url(c) else { continue };
            let mut raw: RawCookie<'static> = RawCookie::clone(c);
            if !c.path.starts_with('/') || !admit(&mut raw, &url) {
                continue;
            }
            if self.store.insert(c.clone(), &url).is_ok() {
                self.stored(c);
            }
        }
        self.enforce_limits();
    }

    /// Drops the oldest cookies beyond the per-site and total limits.
    fn enforce_limits(&mut self) {
        let mut all: Vec<(u64, String, Key)> = self
            .store
            .iter_any()
            .filter_map(|c| {
                let k = key(c)?;
                let age = self.ages.get(&k).copied().unwrap_or(0);
                Some((age, site(&k.0).to_string(), k))
            })
            .collect();
        if all.len() <= MAX_COOKIES_PER_SITE {
            return;
        }
        // Newest first: whatever comes after the limits is dropped.
        all.sort_by_key(|a| std::cmp::Reverse(a.0));
        let mut per_site: std::collections::HashMap<String, usize> = Default::default();
        let mut kept = 0;
        for (_, site, k) in all {
            let n = per_site.entry(site).or_default();
            if *n < MAX_COOKIES_PER_SITE && kept < MAX_COOKIES {
                *n += 1;
                kept += 1;
            } else {
                self.store.remove(&k.0, &k.1, &k.2);
                self.ages.remove(&k);
            }
        }
    }

    /// The jar's part of a `Cookie` header for `url` (`Secure` cookies only
    /// over https), at most [`MAX_COOKIE_HEADER`] bytes of it: the newest
    /// cookies first, the oldest left out. Also how many were left out.
    pub fn header_values(&self, url: &Url) -> (Vec<String>, usize) {
        let https = url.scheme() == "https";
        let matching: Vec<&cookie_store::Cookie<'static>> = self
            .store
            .matches(url)
            .into_iter()
            .filter(|c| https || !c.secure().unwrap_or(false))
            .collect();
        let age = |c: &cookie_store::Cookie<'static>| {
            key(c).and_then(|k| self.ages.get(&k).copied()).unwrap_or(0)
        };
        let mut by_age: Vec<usize> = (0..matching.len()).collect();
        by_age.sort_by_key(|&i| std::cmp::Reverse(age(matching[i])));
        let mut keep = vec![false; matching.len()];
        let mut size = 0;
        for i in by_age {
            let c = matching[i];
            let len = c.name().len() + c.value().len() + 3;
            if size + len <= MAX_COOKIE_HEADER {
                size += len;
                keep[i] = true;
            }
        }
        let dropped = keep.iter().filter(|k| !**k).count();
        let values = matching
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(c, _)| format!("{}={}", c.name(), c.value()))
            .collect();
        (values, dropped)
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
            (
                line,
                format!("not a valid JSON cookie jar: {}", clip(&e.to_string())),
            )
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
            _ => Err((
                lineno,
                format!("{what} must be TRUE or FALSE, not {:?}", clip(v)),
            )),
        };
        let include_subdomains = flag(f[1], "the subdomains field")?;
        let secure = flag(f[3], "the secure field")?;
        let expiry: i64 = f[4]
            .trim()
            .parse()
            .map_err(|_| (lineno, format!("expiry {:?} is not a number", clip(f[4]))))?;
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
        let url = Url::parse(&format!("{scheme}://{host}{path}")).map_err(|e| {
            (
                lineno,
                format!("domain {:?} is not a host name: {e}", clip(f[0])),
            )
        })?;
        store
            .insert_raw(&raw.build(), &url)
            .map_err(|e| (lineno, format!("cookie refused: {}", clip(&e.to_string()))))?;
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
    // Sorted, so that the same jar always gives the same file. A cookie
    // with a control character could not be read back: never written.
    let writable = |c: &&cookie_store::Cookie<'static>| {
        c.path.starts_with('/')
            && ![c.name(), c.value(), &c.path]
                .iter()
                .any(|f| f.chars().any(char::is_control))
    };
    let mut kept: Vec<_> = store
        .iter_unexpired()
        .filter(|c| !skip(c))
        .filter(writable)
        .collect();
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

/// Writes `text` to `path` atomically with mode 0600: a temporary file with a
/// random name in the same directory, created exclusively (nobody else's file
/// or link is ever written), fsync, rename.
pub fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    crate::output::replace_file(path, text.as_bytes(), true)
        .map_err(|e| Error::io(path, "save the cookie jar", e))
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

    fn names(jar: &Jar, url: &str) -> Vec<String> {
        let (values, _) = jar.header_values(&Url::parse(url).unwrap());
        values
    }

    #[test]
    fn a_public_suffix_is_never_a_cookie_domain() {
        let mut jar = Jar::new();
        let from = Url::parse("http://shop.example.co.uk/").unwrap();
        jar.store_response(
            &from,
            [
                "pub=1; Domain=co.uk",
                "own=1; Domain=example.co.uk",
                "host=1",
            ]
            .into_iter(),
        );
        assert!(
            names(&jar, "http://bank.co.uk/").is_empty(),
            "co.uk cookie leaked"
        );
        assert_eq!(names(&jar, "http://www.example.co.uk/"), vec!["own=1"]);
        // A public suffix that is the host itself is kept, host-only.
        let mut jar = Jar::new();
        jar.store_response(
            &Url::parse("http://localhost/").unwrap(),
            ["a=1; Domain=localhost"].into_iter(),
        );
        assert_eq!(names(&jar, "http://localhost/"), vec!["a=1"]);
    }

    #[test]
    fn what_the_file_cannot_hold_is_not_stored() {
        let mut jar = Jar::new();
        let url = Url::parse("http://h.example/").unwrap();
        let big = format!("big={}", "x".repeat(MAX_COOKIE_BYTES));
        jar.store_response(&url, ["tab=a\tb", big.as_str(), "ok=1"].into_iter());
        assert_eq!(names(&jar, "http://h.example/"), vec!["ok=1"]);
        let text = to_netscape(jar.store(), &|_| false);
        assert!(parse(&text).is_ok(), "{text}");
    }

    #[test]
    fn limits_drop_the_oldest_cookies() {
        let mut jar = Jar::new();
        let url = Url::parse("http://a.example.com/").unwrap();
        let many: Vec<String> = (0..MAX_COOKIES_PER_SITE + 20)
            .map(|i| format!("c{i}=v"))
            .collect();
        jar.store_response(&url, many.iter().map(String::as_str));
        let kept = names(&jar, "http://a.example.com/");
        assert_eq!(kept.len(), MAX_COOKIES_PER_SITE);
        assert!(!kept.contains(&"c0=v".to_string()) && kept.contains(&"c69=v".to_string()));
        // Another host of the same site shares the site's limit.
        jar.store_response(
            &Url::parse("http://b.example.com/").unwrap(),
            ["new=1"].into_iter(),
        );
        let both = jar.store().iter_any().count();
        assert_eq!(both, MAX_COOKIES_PER_SITE);
        // In all, across sites.
        for site in 0..(MAX_COOKIES / MAX_COOKIES_PER_SITE + 5) {
            let url = Url::parse(&format!("http://s{site}.example/")).unwrap();
            jar.store_response(&url, many.iter().map(String::as_str));
        }
        assert_eq!(jar.store().iter_any().count(), MAX_COOKIES);
    }

    #[test]
    fn a_cookie_header_never_grows_past_its_limit() {
        let mut jar = Jar::new();
        let url = Url::parse("http://h.example/").unwrap();
        let fat: Vec<String> = (0..40)
            .map(|i| format!("k{i:02}={}", "v".repeat(1000)))
            .collect();
        jar.store_response(&url, fat.iter().map(String::as_str));
        let (values, dropped) = jar.header_values(&url);
        let size: usize = values.iter().map(|v| v.len() + 2).sum();
        assert!(size <= MAX_COOKIE_HEADER, "{size}");
        assert_eq!(values.len() + dropped, 40);
        assert!(dropped > 0);
        // The newest are the ones sent.
        assert!(values.iter().any(|v| v.starts_with("k39=")));
        assert!(!values.iter().any(|v| v.starts_with("k00=")));
    }

    #[test]
    fn fuzz_jar_files() {
        // Never a panic; a jar that loads saves as a file that loads again
        // with the same cookies.
        let mut m = crate::fuzz::Mutator::new(0x1a7);
        for seed in crate::fuzz::corpus("jars") {
            for _ in 0..crate::fuzz::rounds() {
                let text = String::from_utf8_lossy(&m.mutate(&seed)).into_owned();
                if let Ok(store) = parse(&text) {
                    let mut jar = Jar::new();
                    jar.merge(&store);
                    let out = to_netscape(jar.store(), &|_| false);
                    let back = parse(&out).unwrap_or_else(|e| panic!("{e:?} reading back {out:?}"));
                    assert_eq!(to_netscape(&back, &|_| false), out);
                }
            }
        }
    }

    #[test]
    fn echoed_input_in_errors_is_clipped() {
        let line = format!(
            "example.com\tFALSE\t/\tFALSE\t{}\ta\tb\n",
            "9x".repeat(1 << 20)
        );
        let e = parse(&line).unwrap_err();
        assert!(e.1.len() < 400, "{} bytes of message", e.1.len());
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
