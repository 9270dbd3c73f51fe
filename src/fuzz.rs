//! Test-only: seeded mutations of the corpus in `fixtures/fuzz/`, for the
//! parsers that read what others write (see `fixtures/fuzz/README.md`).

use std::path::PathBuf;

/// The seeds of `fixtures/fuzz/NAME/`.
pub(crate) fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fuzz")
        .join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// How many mutations of each seed (`RANGEGET_FUZZ_ROUNDS`, default 3000).
pub(crate) fn rounds() -> usize {
    std::env::var("RANGEGET_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// A deterministic mutator (xorshift64).
pub(crate) struct Mutator(u64);

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\t",
    b":",
    b";",
    b",",
    b"0",
    b"-1",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"chunked",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"\"",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\xe2\x80\xae",
    b"\xff\xfe",
    b"\0",
];

impl Mutator {
    pub fn new(seed: u64) -> Mutator {
        Mutator(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `seed` with one to four random edits.
    pub fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(v.len() + 1);
            match self.below(7) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 => {
                    let b = self.next() as u8;
                    v.insert(at, b);
                }
                2 if !v.is_empty() => {
                    let n = 1 + self.below(16.min(v.len() - at.min(v.len() - 1)));
                    let at = at.min(v.len() - 1);
                    v.drain(at..(at + n).min(v.len()));
                }
                3 if !v.is_empty() => {
                    let a = self.below(v.len());
                    let b = (a + 1 + self.below(64)).min(v.len());
                    let piece = v[a..b].to_vec();
                    v.splice(at..at, piece);
                }
                4 => v.truncate(at),
                _ => {
                    let t = TOKENS[self.below(TOKENS.len())];
                    v.splice(at..at, t.iter().copied());
                }
            }
        }
        v
    }
}
