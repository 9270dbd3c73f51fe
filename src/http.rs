//! HTTP helpers that every stage shares: reading header values, the one
//! strict rule for `Content-Length`, `Content-Range`, redirects, `If-Range`,
//! and the URL a user may give.
//!
//! Ground floor: no I/O here.

use std::time::Duration;

pub(crate) use ureq::http::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::error::Error;

/// The first value of header `name`, as text, trimmed.
pub(crate) fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// Every value of header `name`, joined with commas and lowercased (for
/// comma-separated token lists such as `Connection`).
pub(crate) fn tokens(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The `Content-Length` of a response: every value plain ASCII digits and
/// all of them equal (`N, N` is one length, RFC 9110 8.6). `Ok(None)` when
/// there is none, or when `Transfer-Encoding` is set (then a length must be
/// ignored). Anything else is an error in words: both transports and every
/// stage judge a length by this one rule.
pub(crate) fn content_length(h: &HeaderMap) -> Result<Option<u64>, String> {
    if h.contains_key("transfer-encoding") {
        return Ok(None);
    }
    let mut found: Option<u64> = None;
    for v in h.get_all("content-length") {
        for part in v.to_str().unwrap_or("?").split(',') {
            let part = part.trim();
            let n = parse_decimal(part)
                .ok_or_else(|| format!("malformed Content-Length {:?}", clip(part)))?;
            if found.is_some_and(|f| f != n) {
                return Err("conflicting Content-Length headers".into());
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// Parses a non-empty string of ASCII digits that fits in a `u64`.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// At most 200 characters of `s`, for echoing input in a message.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 200;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}

/// A parsed `Content-Range: bytes a-b/total` (or `bytes */total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ContentRange {
    /// First and last byte (inclusive), if given.
    pub range: Option<(u64, u64)>,
    /// The total, if given (not `*`).
    pub total: Option<u64>,
}

/// Parses a `Content-Range` value; `None` when malformed.
pub(crate) fn parse_content_range(v: &str) -> Option<ContentRange> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(parse_decimal(t)?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b) = (parse_decimal(a.trim())?, parse_decimal(b.trim())?);
            if b < a || total.is_some_and(|t| b >= t) {
                return None;
            }
            Some((a, b))
        }
    };
    Some(ContentRange { range, total })
}

/// The `Content-Range` of a response, parsed; `None` when absent or malformed.
pub(crate) fn content_range(h: &HeaderMap) -> Option<ContentRange> {
    header(h, "content-range").and_then(|v| parse_content_range(&v))
}

/// The `Content-Encoding` of a response, unless it is `identity`.
pub(crate) fn content_encoding(h: &HeaderMap) -> Option<String> {
    header(h, "content-encoding").filter(|e| !e.eq_ignore_ascii_case("identity"))
}

/// Where a redirect leads: the `Location` of a 301, 302, 303, 307 or 308.
/// Any other status, or one of these without `Location`, is a final answer.
pub(crate) fn redirect_location(status: u16, h: &HeaderMap) -> Option<&str> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    h.get("location").and_then(|v| v.to_str().ok())
}

/// The `If-Range` value: a strong `ETag`, else the `Last-Modified` date.
pub(crate) fn if_range_value(etag: Option<&str>, last_modified: Option<&str>) -> Option<String> {
    match etag {
        Some(e) if !e.starts_with("W/") => Some(e.to_string()),
        _ => last_modified.map(str::to_string),
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP date (a date in the past
/// means now).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Some(secs) = parse_decimal(v) {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// The `Retry-After` of a response, if it has a usable one.
pub(crate) fn retry_after(h: &HeaderMap) -> Option<Duration> {
    header(h, "retry-after").and_then(|v| parse_retry_after(&v))
}

/// `Basic` credentials from the URL's user information, as ureq sends them.
pub(crate) fn basic_auth(url: &Url) -> Option<String> {
    use base64::Engine;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let user = crate::urlparse::unquote(url.username());
    let password = crate::urlparse::unquote(url.password().unwrap_or_default());
    let pair = format!("{user}:{password}");
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

/// Whether a URL given by a user has no scheme (`example.com/file`), so that
/// [`parse_url`] takes it as `http://`.
pub(crate) fn lacks_scheme(s: &str) -> bool {
    let s = s.trim();
    if s.contains("://") {
        return false;
    }
    match Url::parse(s) {
        Err(url::ParseError::RelativeUrlWithoutBase) => true,
        // `host:port/path` parses as the scheme `host`: a port number after
        // the colon says it is not one.
        Ok(_) => s.split_once(':').is_some_and(|(_, rest)| {
            let port = rest.split('/').next().unwrap_or_default();
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
        }),
        Err(_) => false,
    }
}

/// Parses a URL given by a user: it must be absolute, `http` or `https`, with a
/// host. One without a scheme (`example.com/file`, `127.0.0.1:8080/x`) is
/// taken as `http://`, as curl and wget do.
pub fn parse_url(s: &str) -> Result<Url, Error> {
    let bad = |reason: String| Error::InvalidUrl {
        url: clip(s),
        reason,
    };
    let text = if lacks_scheme(s) {
        format!("http://{}", s.trim())
    } else {
        s.trim().to_string()
    };
    let url = Url::parse(&text).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "unsupported scheme {:?}: only http and https are supported",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 0-0/100"),
            Some(ContentRange {
                range: Some((0, 0)),
                total: Some(100)
            })
        );
        assert_eq!(
            parse_content_range("bytes */0"),
            Some(ContentRange {
                range: None,
                total: Some(0)
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-9/*"),
            Some(ContentRange {
                range: Some((5, 9)),
                total: None
            })
        );
        assert_eq!(parse_content_range("bytes 9-5/100"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("bytes 0-1/12abc"), None);
        assert_eq!(parse_content_range("bytes -1-5/100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes 0-1"), None);
    }

    #[test]
    fn decimal_parsing_is_strict() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("12345"), Some(12345));
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("+1"), None);
        assert_eq!(parse_decimal("-1"), None);
        assert_eq!(parse_decimal("12abc"), None);
        assert_eq!(parse_decimal("99999999999999999999999"), None);
    }

    #[test]
    fn one_rule_for_content_length() {
        assert_eq!(
            content_length(&map(&[("content-length", "5")])),
            Ok(Some(5))
        );
        assert_eq!(
            content_length(&map(&[("content-length", "5, 5")])),
            Ok(Some(5))
        );
        assert_eq!(
            content_length(&map(&[("content-length", "5"), ("content-length", "5")])),
            Ok(Some(5))
        );
        assert!(content_length(&map(&[("content-length", "5"), ("content-length", "6")])).is_err());
        assert!(content_length(&map(&[("content-length", "5, 6")])).is_err());
        assert!(content_length(&map(&[("content-length", "-5")])).is_err());
        assert_eq!(
            content_length(&map(&[
                ("content-length", "5"),
                ("transfer-encoding", "chunked")
            ])),
            Ok(None)
        );
        assert_eq!(content_length(&map(&[])), Ok(None));
    }

    #[test]
    fn redirects_are_five_statuses_with_a_location() {
        let h = map(&[("location", "/x")]);
        for s in [301, 302, 303, 307, 308] {
            assert_eq!(redirect_location(s, &h), Some("/x"), "{s}");
        }
        for s in [300, 304, 305, 200] {
            assert_eq!(redirect_location(s, &h), None, "{s}");
        }
        assert_eq!(redirect_location(302, &map(&[])), None);
    }

    #[test]
    fn if_range_prefers_a_strong_etag() {
        assert_eq!(
            if_range_value(Some("\"a\""), Some("d")),
            Some("\"a\"".into())
        );
        assert_eq!(if_range_value(Some("W/\"a\""), Some("d")), Some("d".into()));
        assert_eq!(if_range_value(None, None), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn basic_auth_as_ureq_sends_it() {
        let url = Url::parse("http://martin:secret@example.com/").unwrap();
        assert_eq!(basic_auth(&url).unwrap(), "Basic bWFydGluOnNlY3JldA==");
        assert_eq!(
            basic_auth(&Url::parse("http://example.com/").unwrap()),
            None
        );
    }

    #[test]
    fn a_url_without_a_scheme_is_http() {
        for (given, want) in [
            ("127.0.0.1:18080/x", "http://127.0.0.1:18080/x"),
            ("example.com/file.iso", "http://example.com/file.iso"),
            ("localhost:8080", "http://localhost:8080/"),
            ("https://h/f", "https://h/f"),
        ] {
            assert_eq!(parse_url(given).unwrap().as_str(), want, "{given}");
        }
        assert!(lacks_scheme("127.0.0.1:18080/x"));
        assert!(!lacks_scheme("http://h/"));
        assert!(parse_url("ftp://h/f").is_err());
        assert!(parse_url("not a url").is_err());
        assert!(parse_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn echoed_input_is_clipped() {
        assert_eq!(clip("abc"), "abc");
        assert_eq!(clip(&"x".repeat(10_000)).chars().count(), 201);
    }
}
