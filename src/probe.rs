//! Probing: one request learns what the resource is before any byte is planned.
//!
//! `HEAD` first. When `HEAD` is refused (any 4xx/5xx) or gives no length, a
//! `GET` with `Range: bytes=0-0`: a `206` gives the total in `Content-Range`
//! (its one-byte body is read so the connection goes back to the pool); a `200`
//! is kept, because it already is the whole body and serves as the single
//! stream.

use ureq::http::{HeaderMap, Response};
use url::Url;

use crate::checksum::Checksum;
use crate::error::Error;
use crate::session::{Fetched, Session};

/// Whether the server serves byte ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSupport {
    /// It answered a ranged request with `206`, or says `Accept-Ranges: bytes`.
    Yes,
    /// It says `Accept-Ranges: none`, or answered a ranged request with `200`.
    No,
    /// It did not say; a ranged request will tell.
    Unknown,
}

/// What the probe learned about a resource.
#[derive(Clone, Debug)]
pub struct Resource {
    /// The URL asked for.
    pub url: Url,
    /// The URL that answered, after redirects.
    pub final_url: Url,
    /// The total length, when the server gave one.
    pub length: Option<u64>,
    /// Whether ranges are served.
    pub ranges: RangeSupport,
    /// The `ETag` header, as sent.
    pub etag: Option<String>,
    /// The `Last-Modified` header, as sent.
    pub last_modified: Option<String>,
    /// The `Content-Disposition` header, as sent.
    pub content_disposition: Option<String>,
    /// The `Content-Encoding` header, if the server sent one.
    pub content_encoding: Option<String>,
    /// The SHA-256 the server announced (`Repr-Digest` or `Digest`), if any.
    pub digest: Option<Checksum>,
}

impl Resource {
    /// Whether the download can be split: the length is known and ranges are not
    /// refused.
    pub fn can_split(&self) -> bool {
        self.length.is_some() && self.ranges != RangeSupport::No
    }
}

/// The probe's result: the resource, and the probe's own `GET` response when it
/// is a whole body that can be streamed as it is.
pub(crate) struct Probed {
    pub resource: Resource,
    pub body: Option<Response<ureq::Body>>,
    /// Whether the length came from a `HEAD` (to be confirmed by `GET` before
    /// acting on it drastically).
    pub from_head: bool,
}

/// Why a probe failed, and how long the server asked to wait before trying
/// again (`Retry-After`), if it did.
pub(crate) struct ProbeError {
    pub error: Error,
    pub retry_after: Option<std::time::Duration>,
}

impl From<Error> for ProbeError {
    fn from(error: Error) -> ProbeError {
        ProbeError {
            error,
            retry_after: None,
        }
    }
}

impl ProbeError {
    /// Whether trying the probe again may help: 408, 429 and 5xx answers, and
    /// transient network trouble.
    pub fn is_transient(&self) -> bool {
        match &self.error {
            Error::HttpStatus { status, .. } => crate::error::retryable_status(*status),
            Error::Network { transient, .. } => *transient,
            _ => false,
        }
    }
}

/// Probes `url`. With `trust_head` false (a `HEAD` lied about the length
/// before), the one-byte `GET` alone decides.
pub(crate) fn probe(session: &Session, url: &Url, trust_head: bool) -> Result<Probed, ProbeError> {
    let origin = url.origin();
    let head = if trust_head {
        match session.send("HEAD", url, &[], &origin) {
            Ok(h) => Some(h),
            // A HEAD answer that breaks HTTP (a malformed length) is no answer:
            // ask GET. Network failures stay failures.
            Err(Error::Protocol { .. }) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    if let Some(head) = head
        && (200..300).contains(&head.response.status().as_u16())
    {
        // A HEAD whose length is malformed is no worse than one with none: ask
        // GET. So is a HEAD that says 0: some servers say so for content they
        // only compute on GET, and an empty file is confirmed by GET cheaply.
        let length = content_length(&head.url, head.response.headers())
            .unwrap_or(None)
            .filter(|&n| n > 0);
        let resource = describe(url, &head, length);
        if resource.length.is_some() {
            return Ok(Probed {
                resource,
                body: None,
                from_head: true,
            });
        }
    }
    let get = session.send("GET", url, &[("range", "bytes=0-0".to_string())], &origin)?;
    let status = get.response.status().as_u16();
    match status {
        206 => {
            let total = header(get.response.headers(), "content-range")
                .and_then(|cr| parse_content_range(&cr))
                .and_then(|c| match (c.range, c.total) {
                    (Some((0, 0)), Some(total)) => Some(total),
                    _ => None,
                });
            let mut resource = describe(url, &get, total);
            // Without a usable Content-Range (missing, malformed, another range,
            // an unknown total) nothing proves what a range would hold: one
            // plain stream then, which needs no such proof.
            resource.ranges = if total.is_some() {
                RangeSupport::Yes
            } else {
                RangeSupport::No
            };
            // Read the one byte so that the connection can be reused.
            let mut body = get.response.into_body();
            let _ = body.with_config().limit(64).read_to_vec();
            Ok(Probed {
                resource,
                body: None,
                from_head: false,
            })
        }
        416 => {
            // Nothing at byte 0: an empty resource says `bytes */0`.
            let total = header(get.response.headers(), "content-range")
                .and_then(|cr| parse_content_range(&cr))
                .and_then(|c| c.total);
            match total {
                Some(0) => {
                    let mut resource = describe(url, &get, Some(0));
                    resource.ranges = RangeSupport::Yes;
                    Ok(Probed {
                        resource,
                        body: None,
                        from_head: false,
                    })
                }
                _ => Err(Error::HttpStatus {
                    url: get.url.to_string(),
                    status,
                }
                .into()),
            }
        }
        200..=299 => {
            let length = content_length(&get.url, get.response.headers())?;
            let mut resource = describe(url, &get, length);
            resource.ranges = RangeSupport::No;
            Ok(Probed {
                resource,
                body: Some(get.response),
                from_head: false,
            })
        }
        _ => Err(ProbeError {
            retry_after: header(get.response.headers(), "retry-after")
                .as_deref()
                .and_then(crate::worker::parse_retry_after),
            error: Error::HttpStatus {
                url: get.url.to_string(),
                status,
            },
        }),
    }
}

fn describe(url: &Url, fetched: &Fetched, length: Option<u64>) -> Resource {
    let h = fetched.response.headers();
    let ranges = match header(h, "accept-ranges") {
        Some(v) if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("bytes")) => {
            RangeSupport::Yes
        }
        Some(v) if v.trim().eq_ignore_ascii_case("none") => RangeSupport::No,
        _ => RangeSupport::Unknown,
    };
    let content_encoding =
        header(h, "content-encoding").filter(|v| !v.trim().eq_ignore_ascii_case("identity"));
    Resource {
        url: url.clone(),
        final_url: fetched.url.clone(),
        length,
        ranges,
        etag: header(h, "etag"),
        last_modified: header(h, "last-modified"),
        content_disposition: header(h, "content-disposition"),
        content_encoding,
        digest: Checksum::from_headers(h),
    }
}

/// The first value of header `name`, as text.
pub(crate) fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The `Content-Length` of a response, checked: every value must be plain ASCII
/// digits and all values must agree. `None` when absent or when the body is
/// chunked (where a length must be ignored).
pub(crate) fn content_length(url: &Url, h: &HeaderMap) -> Result<Option<u64>, Error> {
    if h.get("transfer-encoding").is_some() {
        return Ok(None);
    }
    let mut found: Option<u64> = None;
    for v in h.get_all("content-length") {
        for part in v.to_str().unwrap_or("?").split(',') {
            let part = part.trim();
            let n = parse_decimal(part).ok_or_else(|| {
                Error::protocol(url, format!("malformed Content-Length {part:?}"))
            })?;
            if found.is_some_and(|f| f != n) {
                return Err(Error::protocol(url, "conflicting Content-Length headers"));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
