//! Checksums: the SHA-256 a download must have, from the user (`--checksum
//! sha256:HEX`) or from the server (`Repr-Digest: sha-256=:B64:` or `Digest:
//! SHA-256=B64`), and the hashing that checks it while the download runs.

use std::fs::File;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};
use ureq::http::HeaderMap;

use crate::error::Error;

/// A SHA-256 the download must match, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// The digest.
    pub sha256: [u8; 32],
    /// Where it came from ("--checksum", "the server's Repr-Digest", …).
    pub source: String,
}

impl Checksum {
    /// Parses `sha256:HEX` (also `sha-256:` and `SHA256=`), as given with `--checksum`.
    pub fn parse(s: &str) -> Result<Checksum, Error> {
        let bad = || {
            Error::InvalidOption(format!(
                "checksum {s:?} is not of the form sha256:<64 hex digits>"
            ))
        };
        let (algo, hex) = s.split_once([':', '=']).ok_or_else(bad)?;
        if !matches!(algo.to_ascii_lowercase().as_str(), "sha256" | "sha-256") {
            return Err(Error::InvalidOption(format!(
                "checksum {s:?}: only sha256 is supported"
            )));
        }
        let sha256 = from_hex(hex.trim()).ok_or_else(bad)?;
        Ok(Checksum {
            sha256,
            source: "--checksum".into(),
        })
    }

    /// The SHA-256 a response's `Repr-Digest` (RFC 9530) or `Digest` (RFC 3230)
    /// header announces, if any.
    pub(crate) fn from_headers(h: &HeaderMap) -> Option<Checksum> {
        for v in h.get_all("repr-digest") {
            for member in v.to_str().ok()?.split(',') {
                let Some((k, val)) = member.split_once('=') else {
                    continue;
                };
                if k.trim().eq_ignore_ascii_case("sha-256")
                    && let Some(b64) = val
                        .trim()
                        .strip_prefix(':')
                        .and_then(|x| x.strip_suffix(':'))
                    && let Some(sha256) = from_base64(b64)
                {
                    return Some(Checksum {
                        sha256,
                        source: "the server's Repr-Digest".into(),
                    });
                }
            }
        }
        for v in h.get_all("digest") {
            for member in v.to_str().ok()?.split(',') {
                let Some((k, val)) = member.split_once('=') else {
                    continue;
                };
                if k.trim().eq_ignore_ascii_case("sha-256")
                    && let Some(sha256) = from_base64(val.trim())
                {
                    return Some(Checksum {
                        sha256,
                        source: "the server's Digest".into(),
                    });
                }
            }
        }
        None
    }

    /// Checks `got` against this checksum.
    pub fn verify(&self, got: &[u8; 32]) -> Result<(), Error> {
        if *got == self.sha256 {
            Ok(())
        } else {
            Err(Error::ChecksumMismatch {
                expected: to_hex(&self.sha256),
                got: to_hex(got),
                origin: self.source.clone(),
            })
        }
    }
}

/// Lowercase hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Standard base64 (padding optional) of exactly 32 bytes.
fn from_base64(s: &str) -> Option<[u8; 32]> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(33);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = bits << 6 | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    out.try_into().ok()
}

/// SHA-256 of a file's first bytes, fed as they become available: the part
/// of the download that is written contiguously from byte 0.
pub(crate) struct PrefixHasher {
    sha: Sha256,
    hashed: u64,
    buf: Vec<u8>,
}

impl PrefixHasher {
    pub fn new() -> PrefixHasher {
        PrefixHasher {
            sha: Sha256::new(),
            hashed: 0,
            buf: vec![0; 1 << 20],
        }
    }

    /// Hashes the file's bytes from where it stopped up to `end`.
    pub fn advance_to(&mut self, file: &File, end: u64) -> std::io::Result<()> {
        while self.hashed < end {
            let n = (end - self.hashed).min(self.buf.len() as u64) as usize;
            file.read_exact_at(&mut self.buf[..n], self.hashed)?;
            self.sha.update(&self.buf[..n]);
            self.hashed += n as u64;
        }
        Ok(())
    }

    /// How many bytes have been hashed.
    pub fn hashed(&self) -> u64 {
        self.hashed
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> [u8; 32] {
        self.sha.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    const EMPTY_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const EMPTY_B64: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    #[test]
    fn parses_the_users_checksum() {
        let c = Checksum::parse(&format!("sha256:{EMPTY_HEX}")).unwrap();
        assert_eq!(to_hex(&c.sha256), EMPTY_HEX);
        assert!(Checksum::parse(&format!("SHA-256={}", EMPTY_HEX.to_uppercase())).is_ok());
        assert!(Checksum::parse("md5:abc").is_err());
        assert!(Checksum::parse("sha256:abc").is_err());
        assert!(Checksum::parse(EMPTY_HEX).is_err());
    }

    #[test]
    fn reads_server_digests() {
        let mut h = HeaderMap::new();
        h.insert(
            "repr-digest",
            HeaderValue::from_str(&format!("sha-512=:AAAA:, sha-256=:{EMPTY_B64}:")).unwrap(),
        );
        let c = Checksum::from_headers(&h).unwrap();
        assert_eq!(to_hex(&c.sha256), EMPTY_HEX);
        assert!(c.source.contains("Repr-Digest"));
        let mut h = HeaderMap::new();
        h.insert(
            "digest",
            HeaderValue::from_str(&format!("MD5=abc, SHA-256={EMPTY_B64}")).unwrap(),
        );
        assert_eq!(
            to_hex(&Checksum::from_headers(&h).unwrap().sha256),
            EMPTY_HEX
        );
        let mut h = HeaderMap::new();
        h.insert(
            "digest",
            HeaderValue::from_static("SHA-256=bm90IDMyIGJ5dGVz"),
        );
        assert_eq!(Checksum::from_headers(&h), None);
    }

    #[test]
    fn verify_reports_both_digests() {
        let c = Checksum::parse(&format!("sha256:{EMPTY_HEX}")).unwrap();
        assert!(c.verify(&Sha256::digest(b"").into()).is_ok());
        let e = c.verify(&Sha256::digest(b"x").into()).unwrap_err();
        assert!(e.to_string().contains(EMPTY_HEX), "{e}");
    }
}
