//! The leanest client that can download a file over N connections: one
//! thread per connection, one ranged GET each, the body moved socket -> pipe
//! -> file with splice(2) under one write lock; no plan, no stealing, no
//! control file, no checks. It tells what the server and the machine allow,
//! so that a benchmark row can be read as the client's limit or theirs.
//!
//!     rustc -O bench/bare_client.rs -o /tmp/bare_client
//!     /tmp/bare_client PORT PATH SIZE N OUTPUT     # e.g. 8080 256m.bin 268435456 64 /tmp/x
//!
//! Not part of rangeget; std only (splice and pipe2 declared by hand).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};

unsafe extern "C" {
    fn pipe2(fds: *mut i32, flags: i32) -> i32;
    fn splice(fd_in: i32, off_in: *mut i64, fd_out: i32, off_out: *mut i64, len: usize, flags: u32) -> isize;
    fn fcntl(fd: i32, cmd: i32, arg: i32) -> i32;
}
const F_SETPIPE_SZ: i32 = 1031;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: bare_client PORT PATH SIZE N OUTPUT";
    let port: u16 = a.get(1).and_then(|s| s.parse().ok()).expect(usage);
    let path = a.get(2).expect(usage).clone();
    let size: u64 = a.get(3).and_then(|s| s.parse().ok()).expect(usage);
    let n: u64 = a.get(4).and_then(|s| s.parse().ok()).expect(usage);
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(a.get(5).expect(usage)).expect("open output");
    f.set_len(size).expect("set length");
    let f = Arc::new(f);
    let turn = Arc::new(Mutex::new(()));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, turn, path) = (f.clone(), turn.clone(), path.clone());
            std::thread::spawn(move || {
                let (s, e) = (i * size / n, (i + 1) * size / n);
                let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                write!(c, "GET /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes={}-{}\r\n\r\n", s, e - 1).expect("send");
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    c.read_exact(&mut b).expect("head");
                    head.push(b[0]);
                }
                assert!(head.starts_with(b"HTTP/1.1 206"), "not a 206");
                let mut p = [0i32; 2];
                unsafe {
                    assert_eq!(pipe2(p.as_mut_ptr(), 0o2000000), 0);
                    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
                }
                let mut pos = s;
                while pos < e {
                    let want = ((e - pos) as usize).min(1 << 20);
                    let k = unsafe { splice(c.as_raw_fd(), std::ptr::null_mut(), p[1], std::ptr::null_mut(), want, 1) };
                    assert!(k > 0, "connection ended early");
                    let _t = turn.lock().unwrap();
                    let mut m = 0;
                    while m < k {
                        let mut off = (pos + m as u64) as i64;
                        let w = unsafe { splice(p[0], std::ptr::null_mut(), f.as_raw_fd(), &mut off, (k - m) as usize, 1) };
                        assert!(w > 0, "write failed");
                        m += w;
                    }
                    pos += k as u64;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("worker");
    }
}
