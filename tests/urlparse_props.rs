//! No input makes any `urlparse` function panic: a seeded property test over
//! arbitrary strings (any code point, controls, brackets, escapes, delimiters),
//! run with the test profile's overflow checks on.

mod common;

use common::Rng;
use rangeget::urlparse::*;

/// Arbitrary text for the property test.
trait Arbitrary {
    fn char(&mut self) -> char;
    fn string(&mut self) -> String;
}

impl Arbitrary for Rng {
    fn char(&mut self) -> char {
        const PIECES: &str = ":/?#[]@!$&'()*+,;=%.-_~ \t\r\n\0\u{7f}vV0123456789abcdefABCDEF";
        match self.below(10) {
            0..=4 => PIECES
                .chars()
                .nth(self.below(PIECES.chars().count() as u64) as usize)
                .unwrap(),
            5 | 6 => (b'a' + self.below(26) as u8) as char,
            7 => char::from_u32(self.below(0x80) as u32).unwrap(),
            8 => char::from_u32(0x80 + self.below(0x3000) as u32).unwrap_or('\u{fffd}'),
            _ => char::from_u32(self.below(0x11_0000) as u32).unwrap_or('\u{10ffff}'),
        }
    }

    fn string(&mut self) -> String {
        let n = self.below(40);
        let mut s: String = (0..n).map(|_| self.char()).collect();
        // Often give it a URL's shape so the deeper paths run.
        match self.below(4) {
            0 => s.insert_str(0, "http://"),
            1 => s.insert_str(0, "//["),
            _ => {}
        }
        s
    }
}

#[test]
fn no_input_panics() {
    let mut rng = Rng(0xC0FFEE);
    let mut outputs = 0usize;
    for _ in 0..60_000 {
        let a = rng.string();
        let b = rng.string();
        for r in [urlsplit(&a), urlsplit_with(&a, &b, rng.below(2) == 0)]
            .into_iter()
            .flatten()
        {
            outputs += r.geturl().len();
            let _ = (r.username(), r.password(), r.hostname(), r.port());
        }
        for r in [urlparse(&a), urlparse_with(&b, &a, true)]
            .into_iter()
            .flatten()
        {
            outputs += r.geturl().len();
            let _ = (r.username(), r.password(), r.hostname(), r.port());
        }
        let parts = SplitResult {
            scheme: a.clone(),
            netloc: b.clone(),
            path: b.clone(),
            query: a.clone(),
            fragment: b.clone(),
        };
        outputs += urlunsplit(&parts).len();
        outputs += urljoin(&a, &b).len() + urldefrag(&a).0.len();
        let _ = try_urljoin(&b, &a);
        outputs += quote(&a).len() + quote_plus(&a).len() + quote_with(&a, &b).len();
        outputs += unquote(&a).len() + unquote_plus(&a).len() + unquote_to_bytes(&a).len();
        outputs += parse_qsl(&a).len() + parse_qs(&a).len();
        let opts = QsOptions {
            keep_blank_values: true,
            strict_parsing: rng.below(2) == 0,
            max_num_fields: Some(rng.below(5) as usize),
            separator: b.chars().take(rng.below(3) as usize).collect(),
        };
        let _ = parse_qsl_with(&a, &opts);
        outputs += urlencode(&[(a.as_str(), b.as_str())]).len();
    }
    // Something was computed: the loop did not skip its work.
    assert!(outputs > 1_000_000, "{outputs}");
}
