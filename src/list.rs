//! Input files of downloads (`-i FILE`), in aria2c's format where it is
//! sensible:
//!
//! ```text
//! # A comment. Blank lines are ignored.
//! https://example.com/a.iso
//! https://mirror-1.example/b.iso<TAB>https://mirror-2.example/b.iso
//!   out=b-renamed.iso
//!   dir=images
//!   checksum=sha256:0123…
//!   header=Authorization: Bearer xyz
//!   connections=4
//! ```
//!
//! One download per line; several URLs of the same file (mirrors) on one
//! line, separated by TABs; lines that begin with a space or a TAB give
//! options (`key=value`) for the download above them. `checksum=` also
//! takes aria2c's `sha-256=HEX`; `split=` is taken as `connections=`. A line
//! that cannot be read is an error naming the file and the line.

use std::path::PathBuf;

use crate::checksum::Checksum;
use crate::error::Error;
use crate::http::clip;

/// The largest input file read, and the longest line.
pub const MAX_LIST_BYTES: usize = 16 << 20;
/// See [`MAX_LIST_BYTES`].
pub const MAX_LINE: usize = 64 << 10;

/// One download of an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its URLs: the first, and mirrors of the same file.
    pub urls: Vec<String>,
    /// `out=`: the file name.
    pub out: Option<PathBuf>,
    /// `dir=`: the directory.
    pub dir: Option<PathBuf>,
    /// `checksum=`: the SHA-256 it must have.
    pub checksum: Option<Checksum>,
    /// `header=`: headers for its requests, as `Name: value`.
    pub headers: Vec<String>,
    /// `connections=`: the most connections it uses.
    pub connections: Option<usize>,
    /// The line its URLs are on (from 1).
    pub line: usize,
}

/// Reads an input file's `text`; `name` is how errors name the file.
pub fn parse_list(text: &str, name: &str) -> Result<Vec<Entry>, Error> {
    let bad = |line: usize, why: String| Error::InvalidOption(format!("{name}:{line}: {why}"));
    if text.len() > MAX_LIST_BYTES {
        return Err(bad(0, format!("larger than {MAX_LIST_BYTES} bytes")));
    }
    let mut out: Vec<Entry> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.len() > MAX_LINE {
            return Err(bad(line, format!("a line longer than {MAX_LINE} bytes")));
        }
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            let opt = raw.trim();
            let Some(entry) = out.last_mut() else {
                return Err(bad(
                    line,
                    format!("an option before any URL: {:?}", clip(opt)),
                ));
            };
            let (key, value) = opt
                .split_once('=')
                .ok_or_else(|| bad(line, format!("not key=value: {:?}", clip(opt))))?;
            let (key, value) = (key.trim(), value.trim());
            match key {
                "out" => {
                    if value.is_empty() {
                        return Err(bad(line, "out= is empty".into()));
                    }
                    entry.out = Some(PathBuf::from(value));
                }
                "dir" => entry.dir = Some(PathBuf::from(value)),
                "checksum" => {
                    // aria2c writes sha-256=HEX.
                    let sum = value.replacen("sha-256=", "sha256:", 1);
                    let c =
                        Checksum::parse(&sum).map_err(|e| bad(line, format!("checksum: {e}")))?;
                    entry.checksum = Some(c);
                }
                "header" => entry.headers.push(value.to_string()),
                "connections" | "split" => {
                    let n: usize = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=crate::MAX_CONNECTIONS).contains(n))
                        .ok_or_else(|| {
                            bad(
                                line,
                                format!(
                                    "{key}= takes 1 to {}, not {:?}",
                                    crate::MAX_CONNECTIONS,
                                    clip(value)
                                ),
                            )
                        })?;
                    entry.connections = Some(n);
                }
                other => return Err(bad(line, format!("unknown option {:?}", clip(other)))),
            }
            continue;
        }
        let urls: Vec<String> = raw
            .split('\t')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        for u in &urls {
            crate::http::parse_url(u).map_err(|e| bad(line, e.to_string()))?;
        }
        out.push(Entry {
            urls,
            out: None,
            dir: None,
            checksum: None,
            headers: Vec::new(),
            connections: None,
            line,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_kind() {
        let sum = "0".repeat(64);
        let text = format!(
            "# downloads\n\nhttp://h/a.iso\nhttp://m1/b.iso\thttp://m2/b.iso\r\n  out=b2.iso\n\tdir=sub\n  checksum=sha-256={sum}\n  header=X-A: b\n  split=4\n   # a comment among options\nh/c.bin\n"
        );
        let list = parse_list(&text, "list.txt").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].urls, vec!["http://h/a.iso"]);
        assert_eq!(list[0].line, 3);
        let b = &list[1];
        assert_eq!(b.urls, vec!["http://m1/b.iso", "http://m2/b.iso"]);
        assert_eq!(b.out, Some(PathBuf::from("b2.iso")));
        assert_eq!(b.dir, Some(PathBuf::from("sub")));
        assert!(b.checksum.is_some());
        assert_eq!(b.headers, vec!["X-A: b"]);
        assert_eq!(b.connections, Some(4));
        assert_eq!(
            list[2].urls,
            vec!["h/c.bin"],
            "a scheme-less URL is http, as on the command line"
        );
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let err = |t: &str| parse_list(t, "l.txt").unwrap_err().to_string();
        assert!(err("  out=x\n").contains("l.txt:1: an option before any URL"));
        assert!(err("http://h/a\n  speed=3\n").contains("l.txt:2: unknown option \"speed\""));
        assert!(err("http://h/a\n  outx\n").contains("l.txt:2: not key=value"));
        assert!(
            err("http://h/a\n  connections=0\n").contains("l.txt:2: connections= takes 1 to 64")
        );
        assert!(err("http://h/a\n  checksum=md5:ab\n").contains("l.txt:2: checksum"));
        assert!(err("ftp://h/a\n").contains("l.txt:1:"));
        assert!(err(&format!("http://h/{}\n", "x".repeat(MAX_LINE))).contains("longer than"));
        assert!(parse_list("", "l.txt").unwrap().is_empty());
    }
}
