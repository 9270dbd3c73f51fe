//! URL utilities that mirror Python's `urllib.parse`, answer for answer.

/// `urllib.parse.unquote_to_bytes(s)`: `%XX` escapes become bytes; invalid
/// escapes are kept as they are.
pub fn unquote_to_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `urllib.parse.unquote(s)`: percent-decodes, reading the bytes as UTF-8 with
/// invalid sequences replaced by U+FFFD.
pub fn unquote(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    String::from_utf8_lossy(&unquote_to_bytes(s)).into_owned()
}
