//! The output file: choosing its name, writing bytes at their offsets into
//! `NAME.part`, and renaming it to `NAME` only once it is complete.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use url::Url;

use crate::error::Error;
use crate::urlparse;

/// The name used when a URL's path gives none.
pub const DEFAULT_NAME: &str = "index.html";

/// The last segment of the URL's path, percent-decoded and made safe;
/// [`DEFAULT_NAME`] when it is empty or unusable.
pub fn name_from_url(url: &Url) -> String {
    let last = url.path().rsplit('/').next().unwrap_or("");
    sanitize(&urlparse::unquote(last)).unwrap_or_else(|| DEFAULT_NAME.to_string())
}

/// The file name a `Content-Disposition` value proposes, made safe, or `None`
/// when it proposes none that is usable. `filename*` (RFC 6266 / RFC 8187, UTF-8
/// or ISO-8859-1) wins over `filename`.
pub fn name_from_content_disposition(value: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for (key, val) in disposition_params(value) {
        match key.to_ascii_lowercase().as_str() {
            "filename*" => extended = extended.or_else(|| decode_ext_value(&val)),
            "filename" => plain = plain.or(Some(val)),
            _ => {}
        }
    }
    extended
        .and_then(|n| sanitize(&n))
        .or_else(|| plain.and_then(|n| sanitize(&n)))
}

/// Splits `attachment; a=b; c="d;e"` into its parameters, unquoting quoted values.
fn disposition_params(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    // Skip the disposition type.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            chars.next();
            if c == '=' {
                break;
            }
            if c == ';' {
                key.clear();
                continue;
            }
            key.push(c);
        }
        let key = key.trim().to_string();
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
            // Skip anything up to the next parameter.
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
            }
        } else {
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
                val.push(c);
            }
            val = val.trim().to_string();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

/// Decodes an RFC 8187 `charset'language'percent-encoded` value.
fn decode_ext_value(v: &str) -> Option<String> {
    let mut parts = v.splitn(3, '\'');
    let charset = parts.next()?.trim().to_ascii_lowercase();
    let _language = parts.next()?;
    let encoded = parts.next()?;
    let bytes = urlparse::unquote_to_bytes(encoded);
    match charset.as_str() {
        "utf-8" => String::from_utf8(bytes).ok(),
        "iso-8859-1" | "latin1" => Some(bytes.iter().map(|&b| b as char).collect()),
        _ => None,
    }
}

/// The longest name rangeget makes up (bytes), from a URL or a
/// `Content-Disposition`: room is left for its own suffixes (`.part`,
/// `.rangeget`, a temporary file's `.NAME.rangeget.XXXXXX.tmp`) within the
/// 255 bytes most file systems allow.
pub const MAX_NAME: usize = 200;

/// Characters that show nothing or reorder what is shown: bidirectional
/// controls (`invoice\u{202e}fdp.exe` displays as "invoiceexe.pdf"),
/// zero-width ones, the soft hyphen.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Makes a proposed file name safe to create inside the output directory: only
/// its last path component is kept (`/` and `\` both separate), control
/// characters, NUL, bidirectional controls and zero-width characters are
/// removed, leading dots and spaces are dropped (no hidden files, no `..`),
/// and a name longer than [`MAX_NAME`] bytes is shortened, keeping its
/// extension. `None` when nothing usable is left.
pub fn sanitize(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !invisible(*c))
        .collect();
    let trimmed = cleaned.trim_start_matches(['.', ' ']).trim_end();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.len() <= MAX_NAME {
        return Some(trimmed.to_string());
    }
    // Keep a short extension (".tar.gz" keeps ".gz"), shorten the stem.
    let ext = match trimmed.rfind('.') {
        Some(i) if i > 0 && trimmed.len() - i <= 16 => &trimmed[i..],
        _ => "",
    };
    let stem = &trimmed[..trimmed.len() - ext.len()];
    let mut out = String::new();
    for c in stem.chars() {
        if out.len() + c.len_utf8() + ext.len() > MAX_NAME {
            break;
        }
        out.push(c);
    }
    out.push_str(ext);
    Some(out)
}

/// Where workers write what they fetch: at offsets of a file (`NAME.part`),
/// or into the ordered stream of `-o -`.
pub(crate) trait Sink: Sync {
    /// Writes `buf` at `offset`.
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), Error>;

    /// The file, when the sink is one (a body can then be spliced into it).
    fn as_file(&self) -> Option<&PartFile> {
        None
    }

    /// How many bytes from `offset` may be written now (a stream's reorder
    /// window); a file takes any.
    fn room(&self, _offset: u64) -> u64 {
        u64::MAX
    }

    /// Waits (at most `timeout`) for room at `offset`.
    fn wait_for_room(&self, _offset: u64, _timeout: std::time::Duration) {}

    /// Why the sink takes no more bytes, if it failed (a closed pipe).
    fn failed(&self) -> Option<Error> {
        None
    }
}

impl Sink for PartFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), Error> {
        PartFile::write_at(self, buf, offset)
    }

    fn as_file(&self) -> Option<&PartFile> {
        Some(self)
    }
}

/// How `NAME.part` takes its space on the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Allocation {
    /// The whole length is reserved up front (`fallocate`; aria2c's
    /// `--file-allocation=falloc`): a disk too full shows at once, not in
    /// the middle, and the file is not fragmented. A cancelled download
    /// keeps the whole length reserved until it is resumed or removed.
    #[default]
    Reserve,
    /// Only the length is set, and space is taken as bytes arrive (a sparse
    /// file; aria2c's `none`): a cancelled download takes only what it
    /// fetched, a full disk shows when it fills.
    Sparse,
}

/// `NAME.part`, where the bytes go until the download is complete.
pub fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// The file being written: `NAME.part`, renamed to `NAME` by [`PartFile::finish`].
///
/// Writes are positional and may come from many threads, but they take turns:
/// buffered writes to one file serialize on the kernel's inode lock anyway,
/// and a writer waiting for it there spins on a CPU (measured: 7 to 16 % of a
/// 4-connection download's CPU in `rwsem_spin_on_owner`); waiting here sleeps
/// and leaves that CPU to the connections.
#[derive(Debug)]
pub struct PartFile {
    file: File,
    part: PathBuf,
    path: PathBuf,
    turn: Mutex<()>,
}

impl PartFile {
    /// Creates `NAME.part` afresh and, when the length is known, reserves
    /// its size so that workers can write anywhere in it. Whatever was at
    /// `NAME.part` before (an older partial file, or a link someone planted)
    /// is removed, never written through: the new file is created
    /// exclusively. Refuses when `NAME` exists and `force` is not set.
    pub fn create(
        path: &Path,
        length: Option<u64>,
        force: bool,
        allocation: Allocation,
    ) -> Result<PartFile, Error> {
        check_target(path, force)?;
        let part = part_path(path);
        if let Some(len) = length {
            check_free_space(path, len)?;
        }
        match fs::symlink_metadata(&part) {
            Ok(m) if m.is_dir() => {
                let e = io::Error::other("it is a directory");
                return Err(Error::io(&part, "create the file", e));
            }
            Ok(_) => fs::remove_file(&part).map_err(|e| Error::io(&part, "replace the file", e))?,
            Err(_) => {}
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| Error::io(&part, "create the file", e))?;
        if let Some(len) = length {
            let done = match allocation {
                Allocation::Reserve => allocate(&file, len),
                Allocation::Sparse => file.set_len(len),
            };
            done.map_err(|e| Error::io(&part, "allocate the file", e))?;
        }
        Ok(PartFile {
            file,
            part,
            path: path.to_path_buf(),
            turn: Mutex::new(()),
        })
    }

    /// Opens an existing `NAME.part` of `length` bytes to go on writing into it
    /// (resuming): a regular file, never through a link. Refuses when `NAME`
    /// exists and `force` is not set.
    pub fn reopen(path: &Path, length: u64, force: bool) -> Result<PartFile, Error> {
        check_target(path, force)?;
        let part = part_path(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&part)
            .map_err(|e| Error::io(&part, "open the partial download", e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(&part, "read the file's size", e))?;
        if !meta.is_file() {
            let e = io::Error::other("not a regular file");
            return Err(Error::io(&part, "open the partial download", e));
        }
        let have = meta.len();
        if have != length {
            return Err(Error::io(
                &part,
                "resume",
                io::Error::other(format!("it has {have} bytes, expected {length}")),
            ));
        }
        Ok(PartFile {
            file,
            part,
            path: path.to_path_buf(),
            turn: Mutex::new(()),
        })
    }

    /// The open `.part` file, for reading back what is written.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Removes the `.part` file (after a checksum mismatch: nothing is kept).
    pub fn discard(self) {
        let _ = fs::remove_file(&self.part);
    }

    /// Flushes the file's data to the disk (`fdatasync`).
    pub fn sync_data(&self) -> Result<(), Error> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(&self.part, "sync the file", e))
    }

    /// Writes `buf` at `offset`; safe to call from many threads at once.
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), Error> {
        let _turn = self.turn();
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| Error::io(&self.part, "write", e))
    }

    /// Runs `f` on the open file in this writer's turn (see [`PartFile`]):
    /// for writes that do not go through [`PartFile::write_at`] (a splice).
    pub(crate) fn in_turn<R>(&self, f: impl FnOnce(&File) -> R) -> R {
        let _turn = self.turn();
        f(&self.file)
    }

    fn turn(&self) -> std::sync::MutexGuard<'_, ()> {
        // The lock guards no data: a panic while holding it leaves nothing broken.
        self.turn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the file's length (after a stream of unknown length).
    pub fn set_len(&self, len: u64) -> Result<(), Error> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io(&self.part, "set the file's size", e))
    }

    /// The final path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The `.part` path.
    pub fn part_path(&self) -> &Path {
        &self.part
    }

    /// Checks that the file has `expected` bytes and renames it to its final name.
    pub fn finish(self, expected: u64, force: bool) -> Result<PathBuf, Error> {
        let len = self
            .file
            .metadata()
            .map_err(|e| Error::io(&self.part, "read the file's size", e))?
            .len();
        if len != expected {
            return Err(Error::io(
                &self.part,
                "finish",
                io::Error::other(format!("file has {len} bytes, expected {expected}")),
            ));
        }
        // Checked again: the file may have appeared while we downloaded.
        check_target(&self.path, force)?;
        fs::rename(&self.part, &self.path)
            .map_err(|e| Error::io(&self.path, "rename the finished download to", e))?;
        Ok(self.path)
    }
}

/// Gives `file` its length `len` with the space reserved (`fallocate`), so
/// that a full disk shows before the download, not in the middle of it. Where
/// the file system cannot reserve space, the file is only extended (sparse).
fn allocate(file: &File, len: u64) -> io::Result<()> {
    if len > 0 {
        #[cfg(target_os = "linux")]
        match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::NOSPC) => return Err(rustix::io::Errno::NOSPC.into()),
            // Not supported here (EOPNOTSUPP, ENOSYS...): a sparse file will do.
            Err(_) => {}
        }
    }
    file.set_len(len)
}

/// Replaces the file at `path` with `bytes` through a temporary file with a
/// random name in the same directory, created exclusively with mode 0600
/// (so that nobody else's file, or link, at a guessable name is ever
/// written), then a rename; with `durable`, the file and the rename are
/// synced too. A failure leaves no temporary file behind.
pub(crate) fn replace_file(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    use std::io::Write;
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Removes what [`replace_file`] may have left for `path` when the process
/// was killed between creating its temporary file and the rename: files
/// named `.NAME.XXXXXX.tmp` (six letters or digits) beside it. Called when
/// the download is done, so no write of ours is under way; a symlink with
/// such a name is removed itself, never followed.
pub(crate) fn remove_stale_temps(path: &Path) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    for e in entries.flatten().take(100_000) {
        let file = e.file_name();
        let Some(file) = file.to_str() else { continue };
        let stale = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .is_some_and(|mid| mid.len() == 6 && mid.bytes().all(|b| b.is_ascii_alphanumeric()));
        if stale && e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The directory `path` is in: its parent, or `.` for a bare file name.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Refuses to start a download of `len` bytes that cannot fit in the free
/// space of the target's file system, rather than filling the disk.
fn check_free_space(path: &Path, len: u64) -> Result<(), Error> {
    let dir = parent_dir(path);
    // A file system that cannot tell its free space is given the benefit of the doubt.
    let Ok(st) = rustix::fs::statvfs(dir) else {
        return Ok(());
    };
    // A read-only one has no free space to report, and the reason is not space.
    if st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Err(Error::io(
            dir,
            "write into the directory",
            io::Error::from(io::ErrorKind::ReadOnlyFilesystem),
        ));
    }
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    if len > free {
        return Err(Error::DiskFull {
            path: path.to_path_buf(),
            needed: len - free,
        });
    }
    Ok(())
}

/// Refuses an existing target (unless `force`) and a missing directory.
fn check_target(path: &Path, force: bool) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(Error::io(
                path,
                "write the output",
                io::Error::other("it is a directory"),
            ));
        }
        Ok(_) if !force => return Err(Error::OutputExists(path.to_path_buf())),
        _ => {}
    }
    let dir = parent_dir(path);
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::io(
            dir,
            "use the output directory",
            io::Error::other("not a directory"),
        )),
        Err(e) => Err(Error::io(dir, "use the output directory", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        let n = |u: &str| name_from_url(&Url::parse(u).unwrap());
        assert_eq!(n("http://h/a/b/file.tar.gz"), "file.tar.gz");
        assert_eq!(n("http://h/a/b/"), "index.html");
        assert_eq!(n("http://h"), "index.html");
        assert_eq!(n("http://h/my%20file.txt?x=1#f"), "my file.txt");
        assert_eq!(n("http://h/a%2F..%2Fetc%2Fpasswd"), "passwd");
        assert_eq!(n("http://h/%2E%2E"), "index.html");
        assert_eq!(n("http://h/caf%C3%A9"), "café");
    }

    #[test]
    fn content_disposition_names() {
        let n = name_from_content_disposition;
        assert_eq!(
            n("attachment; filename=\"report.pdf\""),
            Some("report.pdf".into())
        );
        assert_eq!(
            n("attachment; filename=plain.txt"),
            Some("plain.txt".into())
        );
        assert_eq!(n("attachment; filename=\"../../x\""), Some("x".into()));
        assert_eq!(
            n("attachment; filename=\"/etc/passwd\""),
            Some("passwd".into())
        );
        assert_eq!(
            n("attachment; filename=\"..\\..\\win.ini\""),
            Some("win.ini".into())
        );
        assert_eq!(n("attachment; filename=\"..\""), None);
        assert_eq!(n("attachment; filename=\".bashrc\""), Some("bashrc".into()));
        assert_eq!(
            n("attachment; filename=\"a\\\"b.txt\""),
            Some("a\"b.txt".into())
        );
        assert_eq!(n("attachment; filename=\"a\u{1}b\""), Some("ab".into()));
        assert_eq!(
            n("attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt"),
            Some("€ rates.txt".into())
        );
        assert_eq!(
            n("attachment; filename*=utf-8''..%2F..%2Fevil.sh"),
            Some("evil.sh".into())
        );
        assert_eq!(
            n("attachment; filename*=iso-8859-1'en'%E9t%E9.txt"),
            Some("été.txt".into())
        );
        assert_eq!(n("inline"), None);
        assert_eq!(n("attachment; filename=\"\""), None);
        assert_eq!(
            n("attachment; filename=\"semi;colon.txt\"; size=3"),
            Some("semi;colon.txt".into())
        );
    }

    #[test]
    fn sanitize_rules() {
        assert_eq!(sanitize("a/b/c"), Some("c".into()));
        assert_eq!(sanitize("a/b/"), None);
        assert_eq!(sanitize("..."), None);
        assert_eq!(sanitize("x\0y"), Some("xy".into()));
        assert_eq!(sanitize(&"é".repeat(200)).map(|s| s.len()), Some(MAX_NAME));
        let long = format!("{}.pdf", "a".repeat(1000));
        let short = sanitize(&long).unwrap();
        assert_eq!((short.len(), short.ends_with("aaa.pdf")), (MAX_NAME, true));
        // What a name shows is what it is.
        assert_eq!(
            sanitize("invoice\u{202e}fdp.exe"),
            Some("invoicefdp.exe".into())
        );
        assert_eq!(sanitize("a\u{200b}b\u{feff}.txt"), Some("ab.txt".into()));
        assert_eq!(sanitize("\u{200b}"), None);
    }
}
