//! Probing: one request learns what the resource is before any byte is planned.
//!
//! `HEAD` first. When `HEAD` is refused (any 4xx/5xx), breaks HTTP, gives
//! no length or says nothing about ranges (no `Accept-Ranges`), a `GET`
//! with `Range: bytes=0-0`: a `206` gives the total in
//! `Content-Range` (its one-byte body is read so that the connection can be
//! reused); a `200` is kept, because it already is the whole body and serves
//! as the single stream. What may pass (a `503`, a reset) is retried by the
//! one retry policy ([`crate::retry`]).

use url::Url;

use crate::cancel::{CancelHandle, Line};
use crate::checksum::Checksum;
use crate::error::Error;
use crate::http::{self, HeaderMap};
use crate::retry::{Budget, Failure, wait_before_retry};
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
    pub body: Option<Fetched>,
    /// Whether the length came from a `HEAD` (to be confirmed by `GET` before
    /// acting on it drastically).
    pub from_head: bool,
    /// The transport that carried the probe.
    pub transport: &'static str,
}

/// Probes `url`, retrying what may pass (a 503 with Retry-After, a reset) at
/// most `retries` times. With `trust_head` false (a `HEAD` lied about the
/// length before), the one-byte `GET` alone decides.
pub(crate) fn probe(
    session: &Session,
    url: &Url,
    trust_head: bool,
    retries: u32,
    cancel: &CancelHandle,
) -> Result<Probed, Error> {
    let line = cancel.line();
    let mut budget = Budget::default();
    loop {
        match probe_once(session, url, trust_head, &line) {
            Ok(p) => return Ok(p),
            Err(f) => {
                let n = budget.fail(0);
                if !f.retry || budget.exhausted(retries) || cancel.is_cancelled() {
                    return Err(f.error);
                }
                cancel.sleep(wait_before_retry(n, f.after));
                if cancel.is_cancelled() {
                    return Err(Error::Cancelled);
                }
            }
        }
    }
}

fn probe_once(
    session: &Session,
    url: &Url,
    trust_head: bool,
    line: &Line,
) -> Result<Probed, Failure> {
    let origin = url.origin();
    if trust_head {
        match session.fetch("HEAD", url, &[], None, &origin, line) {
            Ok(head) if (200..300).contains(&head.head.status) => {
                // A HEAD whose length is malformed is no worse than one with
                // none: ask GET. So is a HEAD that says 0: some servers say so
                // for content they only compute on GET, and an empty file is
                // confirmed by GET cheaply.
                let length = http::content_length(&head.head.headers)
                    .unwrap_or(None)
                    .filter(|&n| n > 0);
                let resource = describe(url, &head.url, &head.head.headers, length);
                // Where HEAD says nothing about ranges, one ranged GET tells
                // before more connections open (and where ranges are not
                // served, its answer is the download itself: one GET).
                if resource.length.is_some() && resource.ranges != RangeSupport::Unknown {
                    return Ok(Probed {
                        resource,
                        body: None,
                        from_head: true,
                        transport: head.transport,
                    });
                }
            }
            // Refused, or an answer that breaks HTTP (a malformed length): no
            // answer; ask GET. Network trouble stays trouble.
            Ok(_) | Err(Error::Protocol { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut get = session.fetch(
        "GET",
        url,
        &[("Range", "bytes=0-0".to_string())],
        None,
        &origin,
        line,
    )?;
    let h = &get.head.headers;
    let status = get.head.status;
    match status {
        206 => {
            let total = http::content_range(h).and_then(|c| match (c.range, c.total) {
                (Some((0, 0)), Some(total)) => Some(total),
                _ => None,
            });
            let mut resource = describe(url, &get.url, h, total);
            // Without a usable Content-Range (missing, malformed, another range,
            // an unknown total) nothing proves what a range would hold: one
            // plain stream then, which needs no such proof.
            resource.ranges = if total.is_some() {
                RangeSupport::Yes
            } else {
                RangeSupport::No
            };
            // Read the one byte so that the connection can be reused.
            let _ = crate::transport::read_to_vec(&mut *get.body, 64);
            Ok(Probed {
                resource,
                body: None,
                from_head: false,
                transport: get.transport,
            })
        }
        416 => {
            // Nothing at byte 0: an empty resource says `bytes */0`.
            match http::content_range(h).and_then(|c| c.total) {
                Some(0) => {
                    let mut resource = describe(url, &get.url, h, Some(0));
                    resource.ranges = RangeSupport::Yes;
                    Ok(Probed {
                        resource,
                        body: None,
                        from_head: false,
                        transport: get.transport,
                    })
                }
                _ => Err(Failure::status(&get.url, status, h)),
            }
        }
        200..=299 => {
            let length = http::content_length(h)
                .map_err(|r| Failure::judge(Error::protocol(&get.url, r)))?;
            let mut resource = describe(url, &get.url, h, length);
            resource.ranges = RangeSupport::No;
            let transport = get.transport;
            Ok(Probed {
                resource,
                body: Some(get),
                from_head: false,
                transport,
            })
        }
        _ => Err(Failure::status(&get.url, status, h)),
    }
}

fn describe(url: &Url, final_url: &Url, h: &HeaderMap, length: Option<u64>) -> Resource {
    let ranges = match http::header(h, "accept-ranges") {
        Some(v) if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("bytes")) => {
            RangeSupport::Yes
        }
        Some(v) if v.trim().eq_ignore_ascii_case("none") => RangeSupport::No,
        _ => RangeSupport::Unknown,
    };
    Resource {
        url: url.clone(),
        final_url: final_url.clone(),
        length,
        ranges,
        etag: http::header(h, "etag"),
        last_modified: http::header(h, "last-modified"),
        content_disposition: http::header(h, "content-disposition"),
        content_encoding: http::content_encoding(h),
        digest: Checksum::from_headers(h),
    }
}
