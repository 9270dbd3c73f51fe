//! Stopping work from another thread: the user's cancel of a whole download,
//! and one worker's request interrupted by another (a takeover).
//!
//! A [`Line`] is the place where one thread's current request keeps the means
//! to shut its socket down. A transport attaches the socket to the request's
//! line the moment it connects (or takes a kept-alive connection for it), so
//! that a read blocked on a silent server, in the response head or in the
//! body, can be ended from elsewhere: by [`CancelHandle::cancel`], which shuts
//! every line of the download, or by [`Line::interrupt`], which shuts one line
//! if it is still fetching the piece of work named.
//!
//! Ground floor: nothing here knows about HTTP, plans or files.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// Shuts a connection down, so that reads and writes blocked on it return at
/// once. Given to a [`Line`] by a transport.
pub(crate) type Shutdown = Arc<dyn Fn() + Send + Sync>;

/// Stops a running download from another thread (a Ctrl-C handler, a UI):
/// the workers stop at their next chunk, requests in flight are interrupted,
/// and `Download::run` returns `Error::Cancelled`. Cheap to clone; every
/// clone cancels the same download.
///
/// Get one from `Download::cancel_handle` before calling `run`:
///
/// ```no_run
/// let download = rangeget::Download::new("https://example.com/big.iso");
/// let cancel = download.cancel_handle();
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_secs(5));
///     cancel.cancel();
/// });
/// match download.run() {
///     Err(rangeget::Error::Cancelled) => eprintln!("stopped; run again to resume"),
///     other => println!("{other:?}"),
/// }
/// ```
#[derive(Clone, Debug)]
pub struct CancelHandle {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    flag: AtomicBool,
    lines: Mutex<Vec<Weak<LineInner>>>,
    /// Handles cancelled with this one (a list's downloads).
    children: Mutex<Vec<CancelHandle>>,
}

impl CancelHandle {
    /// A handle that nothing has cancelled yet.
    pub(crate) fn new() -> CancelHandle {
        CancelHandle {
            inner: Arc::new(Inner::default()),
        }
    }

    /// Cancels the download (at once if it is running, at its start otherwise).
    pub fn cancel(&self) {
        self.inner.flag.store(true, Ordering::Release);
        let lines: Vec<Arc<LineInner>> = self.lines().iter().filter_map(Weak::upgrade).collect();
        for line in lines {
            line.shut();
        }
        let children = self
            .inner
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for c in children {
            c.cancel();
        }
    }

    /// Makes `child` cancelled whenever this handle is (at once if it is
    /// already).
    pub(crate) fn adopt(&self, child: &CancelHandle) {
        if Arc::ptr_eq(&self.inner, &child.inner) {
            return;
        }
        self.inner
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child.clone());
        if self.is_cancelled() {
            child.cancel();
        }
    }

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::Acquire)
    }

    /// Sleeps for `d`, waking early when cancelled.
    pub(crate) fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.is_cancelled() {
            let now = Instant::now();
            if now >= end {
                return;
            }
            thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }

    /// A new line whose sockets this handle shuts down when cancelled.
    pub(crate) fn line(&self) -> Line {
        let inner = Arc::new(LineInner {
            state: Mutex::new(LineState::default()),
            cancelled: Some(self.clone()),
        });
        let mut lines = self.lines();
        lines.retain(|l| l.strong_count() > 0);
        lines.push(Arc::downgrade(&inner));
        Line { inner }
    }

    fn lines(&self) -> MutexGuard<'_, Vec<Weak<LineInner>>> {
        self.inner.lines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One thread's current request: the socket it reads from, and the piece of
/// work it fetches there (see the module docs).
#[derive(Clone)]
pub(crate) struct Line {
    inner: Arc<LineInner>,
}

struct LineInner {
    state: Mutex<LineState>,
    /// The download's cancel, if this line belongs to one.
    cancelled: Option<CancelHandle>,
}

#[derive(Default)]
struct LineState {
    socket: Option<Shutdown>,
    /// The receive buffer the sockets of this line's requests get, if any
    /// (a rate limit keeps the kernel from taking far more off the wire).
    recv_buffer: Option<usize>,
    /// Whether the next request is to go on a new connection.
    fresh: bool,
    /// Whether the last request went on a connection that had carried one
    /// before (kept alive).
    reused: bool,
    /// The piece of work being fetched, as the caller numbers it.
    task: Option<usize>,
    /// Set when the task was interrupted: a socket attached later for it is
    /// shut at once.
    interrupted: bool,
}

impl LineInner {
    fn state(&self) -> MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled
            .as_ref()
            .is_some_and(CancelHandle::is_cancelled)
    }

    fn shut(&self) {
        let mut st = self.state();
        st.interrupted = true;
        if let Some(s) = &st.socket {
            s();
        }
    }
}

impl Line {
    /// A line that no cancel handle knows (a session's own small requests).
    pub(crate) fn detached() -> Line {
        Line {
            inner: Arc::new(LineInner {
                state: Mutex::new(LineState::default()),
                cancelled: None,
            }),
        }
    }

    /// Begins fetching `task`: from now on [`Line::interrupt`] with the same
    /// number stops it.
    pub(crate) fn begin(&self, task: usize) {
        let mut st = self.inner.state();
        st.task = Some(task);
        st.interrupted = false;
    }

    /// The task is over: nothing is attached any more.
    pub(crate) fn end(&self) {
        let mut st = self.inner.state();
        st.task = None;
        st.socket = None;
        st.interrupted = false;
    }

    /// Attaches the socket the current request uses (replacing any earlier
    /// one). If the task was interrupted or the download cancelled already,
    /// the socket is shut down at once.
    pub(crate) fn attach(&self, shutdown: Shutdown) {
        let mut st = self.inner.state();
        if st.interrupted || self.inner.is_cancelled() {
            shutdown();
        }
        st.socket = Some(shutdown);
    }

    /// Forgets the attached socket (its request is over).
    pub(crate) fn detach(&self) {
        self.inner.state().socket = None;
    }

    /// Shuts down the socket of this line if it is still fetching `task`;
    /// whether it was.
    pub(crate) fn interrupt(&self, task: usize) -> bool {
        let mut st = self.inner.state();
        if st.task != Some(task) {
            return false;
        }
        st.interrupted = true;
        if let Some(s) = &st.socket {
            s();
        }
        true
    }

    /// Asks that the next request of this line go on a new connection.
    pub(crate) fn want_fresh(&self) {
        self.inner.state().fresh = true;
    }

    /// Whether a new connection was asked for (a transport asks, once).
    pub(crate) fn take_fresh(&self) -> bool {
        std::mem::take(&mut self.inner.state().fresh)
    }

    /// Whether a new connection is asked for, leaving the request as it is.
    pub(crate) fn wants_fresh(&self) -> bool {
        self.inner.state().fresh
    }

    /// The transport tells whether the request went on a kept-alive
    /// connection.
    pub(crate) fn set_reused(&self, reused: bool) {
        self.inner.state().reused = reused;
    }

    /// Whether the last request went on a kept-alive connection.
    pub(crate) fn reused(&self) -> bool {
        self.inner.state().reused
    }

    /// Gives the sockets of this line's requests a receive buffer of `bytes`.
    pub(crate) fn set_recv_buffer(&self, bytes: Option<usize>) {
        self.inner.state().recv_buffer = bytes;
    }

    /// The receive buffer this line's sockets are to have, if one is set.
    pub(crate) fn recv_buffer(&self) -> Option<usize> {
        self.inner.state().recv_buffer
    }

    /// Whether the current task was interrupted (or the download cancelled).
    pub(crate) fn interrupted(&self) -> bool {
        self.inner.state().interrupted || self.inner.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counter() -> (Arc<AtomicUsize>, Shutdown) {
        let n = Arc::new(AtomicUsize::new(0));
        let m = n.clone();
        (
            n,
            Arc::new(move || {
                m.fetch_add(1, Ordering::SeqCst);
            }),
        )
    }

    #[test]
    fn interrupt_reaches_only_the_task_named() {
        let line = CancelHandle::new().line();
        let (shut, s) = counter();
        line.begin(3);
        line.attach(s);
        assert!(!line.interrupt(4));
        assert_eq!(shut.load(Ordering::SeqCst), 0);
        assert!(line.interrupt(3));
        assert_eq!(shut.load(Ordering::SeqCst), 1);
        assert!(line.interrupted());
        line.end();
        assert!(!line.interrupted());
        assert!(!line.interrupt(3));
    }

    #[test]
    fn a_socket_attached_after_the_interrupt_is_shut_at_once() {
        let line = Line::detached();
        line.begin(1);
        assert!(line.interrupt(1));
        let (shut, s) = counter();
        line.attach(s);
        assert_eq!(shut.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn cancel_shuts_every_line_and_later_sockets() {
        let cancel = CancelHandle::new();
        let (a, b) = (cancel.line(), cancel.line());
        let (shut, s) = counter();
        a.attach(s.clone());
        b.attach(s.clone());
        cancel.cancel();
        assert_eq!(shut.load(Ordering::SeqCst), 2);
        let c = cancel.line();
        c.attach(s);
        assert_eq!(shut.load(Ordering::SeqCst), 3);
        assert!(c.interrupted());
    }
}
