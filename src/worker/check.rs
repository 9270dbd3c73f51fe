//! What an answer to a ranged request means, judged once for every
//! transport: only a `206` with exactly the `Content-Range` asked for, the
//! probe's validators and encoding, and a length that agrees, has bytes
//! that may be written at the range's offset.

use url::Url;

use super::{Attempt, Stop};
use crate::http::{self, HeaderMap};
use crate::retry::Failure;

/// What every `206` of a download must agree with: the probe's findings.
#[derive(Clone, Debug)]
pub(crate) struct Expect {
    /// The file's length.
    pub total: u64,
    /// The validators for `If-Range` and for checking each answer.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The probe's `Content-Encoding`: every `206` must have the same.
    pub content_encoding: Option<String>,
}

impl Expect {
    /// The `If-Range` value for ranged requests, if the probe gave a validator.
    pub fn if_range(&self) -> Option<String> {
        http::if_range_value(self.etag.as_deref(), self.last_modified.as_deref())
    }

    /// Judges the answer `status` + `h` from `url` to a request for bytes
    /// `[pos, end)`: `Ok` only when its body may be written at `pos`.
    pub fn ranged(
        &self,
        status: u16,
        h: &HeaderMap,
        url: &Url,
        pos: u64,
        end: u64,
    ) -> Result<(), Attempt> {
        self.status(status, h, url)?;
        self.partial(h, pos, end)
    }

    /// What an answer's status means for a ranged request: `Ok` for a `206`.
    fn status(&self, status: u16, h: &HeaderMap, url: &Url) -> Result<(), Attempt> {
        match status {
            206 => Ok(()),
            200 => {
                // With If-Range, a 200 means either "changed" or "I ignore
                // ranges": the validators on the answer tell which.
                let changed = match (&self.etag, http::header(h, "etag")) {
                    (Some(a), Some(b)) => *a != b,
                    _ => matches!(
                        (&self.last_modified, http::header(h, "last-modified")),
                        (Some(a), Some(b)) if *a != b
                    ),
                };
                Err(Attempt::Stop(if changed {
                    Stop::Changed {
                        why: "the file changed on the server during the download".into(),
                        length: false,
                    }
                } else {
                    Stop::Fallback("server ignored the byte range request".into())
                }))
            }
            // The range no longer exists: the file shrank.
            416 => Err(Attempt::Stop(Stop::Changed {
                why: "the file changed on the server: the range asked for is no longer there (416)"
                    .into(),
                length: true,
            })),
            s => Err(Failure::status(url, s, h).into()),
        }
    }

    /// Checks a `206` before any of its bytes are written: `Content-Range`
    /// must be exactly the range asked for, with the known total; a
    /// `Content-Length`, where there is one, the size of that range; the
    /// validators and the `Content-Encoding` the probe's.
    fn partial(&self, h: &HeaderMap, pos: u64, end: u64) -> Result<(), Attempt> {
        let raw = http::header(h, "content-range").unwrap_or_default();
        let cr = http::clip(&raw);
        let parsed = http::parse_content_range(&raw);
        if let Some(total) = parsed.and_then(|c| c.total)
            && total != self.total
        {
            return Err(Attempt::Stop(Stop::Changed {
                why: format!(
                    "the file changed on the server: its length is now {total}, not {} (Content-Range {cr:?})",
                    self.total
                ),
                length: true,
            }));
        }
        if parsed.map(|c| (c.range, c.total)) != Some((Some((pos, end - 1)), Some(self.total))) {
            // Never written anywhere: a server that mislabels ranges gets one stream.
            return Err(Attempt::Stop(Stop::Fallback(format!(
                "asked for bytes {}-{}, the server answered Content-Range {cr:?}",
                pos,
                end - 1
            ))));
        }
        if let Ok(Some(n)) = http::content_length(h)
            && n != end - pos
        {
            return Err(Attempt::Stop(Stop::Fallback(format!(
                "asked for {} bytes, the server answered Content-Length {n}",
                end - pos
            ))));
        }
        let changed = |what: &str, want: &str, got: &str| {
            Err(Attempt::Stop(Stop::Changed {
                why: format!(
                    "the file changed on the server ({what} {} became {})",
                    http::clip(want),
                    http::clip(got)
                ),
                length: false,
            }))
        };
        if let (Some(want), Some(got)) = (&self.etag, http::header(h, "etag"))
            && *want != got
        {
            return changed("ETag", want, &got);
        }
        if let (Some(want), Some(got)) = (&self.last_modified, http::header(h, "last-modified"))
            && *want != got
        {
            return changed("Last-Modified", want, &got);
        }
        let encoding = http::content_encoding(h);
        if encoding != self.content_encoding {
            return Err(Attempt::Stop(Stop::Fallback(format!(
                "server sent a range with Content-Encoding {}",
                http::clip(encoding.as_deref().unwrap_or("identity"))
            ))));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HeaderName, HeaderValue};

    fn head(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn expect() -> Expect {
        Expect {
            total: 100,
            etag: Some("\"v1\"".into()),
            last_modified: None,
            content_encoding: None,
        }
    }

    fn verdict(status: u16, pairs: &[(&str, &str)]) -> &'static str {
        let url = Url::parse("http://h/f").unwrap();
        match expect().ranged(status, &head(pairs), &url, 10, 20) {
            Ok(()) => "write",
            Err(Attempt::Retry(_)) => "retry",
            Err(Attempt::Stop(Stop::Fallback(_))) => "fallback",
            Err(Attempt::Stop(Stop::Changed { .. })) => "changed",
            Err(Attempt::Stop(Stop::Failed(_))) => "failed",
        }
    }

    #[test]
    fn only_the_exact_range_is_written() {
        let cr = ("content-range", "bytes 10-19/100");
        assert_eq!(
            verdict(206, &[cr, ("etag", "\"v1\""), ("content-length", "10")]),
            "write"
        );
        assert_eq!(
            verdict(206, &[cr]),
            "write",
            "no length: the body is counted"
        );
        assert_eq!(
            verdict(206, &[("content-range", "bytes 11-20/100")]),
            "fallback"
        );
        assert_eq!(
            verdict(206, &[("content-range", "bytes 10-19/*")]),
            "fallback"
        );
        assert_eq!(verdict(206, &[]), "fallback");
        assert_eq!(verdict(206, &[cr, ("content-length", "11")]), "fallback");
        assert_eq!(
            verdict(206, &[("content-range", "bytes 10-19/101")]),
            "changed"
        );
        assert_eq!(verdict(206, &[cr, ("etag", "\"v2\"")]), "changed");
        assert_eq!(
            verdict(206, &[cr, ("content-encoding", "gzip")]),
            "fallback"
        );
        assert_eq!(
            verdict(206, &[cr, ("content-encoding", "identity")]),
            "write"
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(verdict(200, &[("etag", "\"v1\"")]), "fallback");
        assert_eq!(verdict(200, &[("etag", "\"v2\"")]), "changed");
        assert_eq!(verdict(416, &[]), "changed");
        assert_eq!(verdict(503, &[]), "retry");
        assert_eq!(verdict(429, &[]), "retry");
        assert_eq!(verdict(404, &[]), "failed");
    }
}
