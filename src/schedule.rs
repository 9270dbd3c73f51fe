//! Sharing connections among the downloads of a list: a global ceiling, a
//! ceiling per host shared by every download to that host, and the order in
//! which waiting downloads start.
//!
//! [`Budgets`] is the pure part: counts and decisions, no threads, no clock,
//! unit-tested on simulated sequences. [`Slots`] wraps it in a lock and a
//! condition variable for the download threads.
//!
//! Every running download holds one *base* permit, from its probe to its
//! end: its first connection (its probe, its single stream, its first
//! worker). Its other workers take an *extra* permit for each request and
//! give it back after it, so that connections flow to where they are
//! wanted. Extras never take what a download waiting to start could use
//! (a list of small files keeps flowing past a large one), and while other
//! downloads of the host wait for extras, none takes more than its share.
//!
//! Ground floor: it knows hosts only as keys.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cancel::CancelHandle;

/// One host's use.
#[derive(Debug, Default)]
struct Host {
    /// Permits held, base and extra.
    used: usize,
    /// Downloads of this host not yet started.
    pending: usize,
    /// Permits held per download.
    held: HashMap<usize, usize>,
    /// Extra permits waited for, per download.
    wanting: HashMap<usize, usize>,
}

/// The pure state of the permits (see the module docs).
#[derive(Debug)]
pub(crate) struct Budgets {
    global: usize,
    per_host: usize,
    used: usize,
    /// Download threads free to start a download.
    idle_runners: usize,
    hosts: HashMap<String, Host>,
    /// Downloads not yet started, in order: (id, host key).
    queue: Vec<(usize, String)>,
}

impl Budgets {
    /// `global` permits in all, `per_host` for one host, `runners` threads
    /// that start downloads (each is 1 at least).
    pub(crate) fn new(global: usize, per_host: usize, runners: usize) -> Budgets {
        Budgets {
            global: global.max(1),
            per_host: per_host.max(1),
            used: 0,
            idle_runners: runners.max(1),
            hosts: HashMap::new(),
            queue: Vec::new(),
        }
    }

    /// Queues download `id` of host `key`.
    pub(crate) fn enqueue(&mut self, id: usize, key: &str) {
        self.host(key).pending += 1;
        self.queue.push((id, key.to_string()));
    }

    /// Whether no download is left to start.
    pub(crate) fn queue_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Drops every download not yet started (a cancel); their ids.
    pub(crate) fn drain(&mut self) -> Vec<usize> {
        let q = std::mem::take(&mut self.queue);
        for (_, key) in &q {
            self.host(key).pending = 0;
        }
        q.into_iter().map(|(id, _)| id).collect()
    }

    fn host(&mut self, key: &str) -> &mut Host {
        self.hosts.entry(key.to_string()).or_default()
    }

    fn room(&self, key: &str) -> bool {
        let used = self.hosts.get(key).map_or(0, |h| h.used);
        self.used < self.global && used < self.per_host
    }

    /// For a free runner: the first queued download whose host has room,
    /// given its base permit and taken off the queue. A full host does not
    /// hold back the downloads of the others.
    pub(crate) fn start_next(&mut self) -> Option<(usize, String)> {
        if self.idle_runners == 0 {
            return None;
        }
        let i = self.queue.iter().position(|(_, k)| self.room(k))?;
        let (id, key) = self.queue.remove(i);
        self.idle_runners = self.idle_runners.saturating_sub(1);
        let h = self.host(&key);
        h.pending -= 1;
        *h.held.entry(id).or_default() += 1;
        h.used += 1;
        self.used += 1;
        Some((id, key))
    }

    /// The runner of download `id` is done with it: its base permit back.
    pub(crate) fn finish(&mut self, id: usize, key: &str) {
        self.release(id, key);
        self.idle_runners += 1;
    }

    /// Permits kept for downloads that could start now: as many as are
    /// queued for the host, at most the free runners.
    fn reserved(&self, key: &str) -> (usize, usize) {
        let for_host = self
            .hosts
            .get(key)
            .map_or(0, |h| h.pending)
            .min(self.idle_runners);
        let anywhere = self.queue.len().min(self.idle_runners);
        (for_host, anywhere)
    }

    /// Marks that download `id` waits for an extra permit on `key`.
    pub(crate) fn want(&mut self, id: usize, key: &str) {
        *self.host(key).wanting.entry(id).or_default() += 1;
    }

    /// Undoes [`Budgets::want`].
    pub(crate) fn unwant(&mut self, id: usize, key: &str) {
        let h = self.host(key);
        if let Some(n) = h.wanting.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                h.wanting.remove(&id);
            }
        }
    }

    /// An extra permit for download `id` on `key`, if the ceilings allow
    /// it, none is needed by a download that could start, and `id` holds no
    /// more than its share while others wait for one.
    pub(crate) fn try_extra(&mut self, id: usize, key: &str) -> bool {
        let (for_host, anywhere) = self.reserved(key);
        let Some(h) = self.hosts.get(key) else {
            return false;
        };
        if h.used + for_host >= self.per_host || self.used + anywhere >= self.global {
            return false;
        }
        let mine = h.held.get(&id).copied().unwrap_or(0);
        let others_want = h.wanting.keys().any(|&o| o != id);
        if others_want {
            // Shared evenly among the downloads of the host that hold or want.
            let mut sharing: Vec<usize> = h.held.keys().chain(h.wanting.keys()).copied().collect();
            sharing.sort_unstable();
            sharing.dedup();
            let share = (self.per_host / sharing.len().max(1)).max(1);
            if mine >= share {
                return false;
            }
        }
        let h = self.host(key);
        *h.held.entry(id).or_default() += 1;
        h.used += 1;
        self.used += 1;
        true
    }

    /// Gives back one permit of download `id` on `key`.
    pub(crate) fn release(&mut self, id: usize, key: &str) {
        let h = self.host(key);
        if let Some(n) = h.held.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                h.held.remove(&id);
            }
            h.used -= 1;
            self.used -= 1;
        }
    }

    /// Permits held in all, and on `key`.
    #[cfg(test)]
    fn used(&self, key: &str) -> (usize, usize) {
        (self.used, self.hosts.get(key).map_or(0, |h| h.used))
    }
}

/// [`Budgets`] shared by the threads of a list.
#[derive(Debug)]
pub(crate) struct Slots {
    state: Mutex<Budgets>,
    changed: Condvar,
}

/// How long a blocked wait sleeps before it looks at its cancel again.
const LOOK: Duration = Duration::from_millis(100);

impl Slots {
    pub(crate) fn new(budgets: Budgets) -> Arc<Slots> {
        Arc::new(Slots {
            state: Mutex::new(budgets),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Budgets> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For a free runner: the next download to start and its base permit;
    /// `None` when none is left or `cancel` is cancelled.
    pub(crate) fn start_next(self: &Arc<Slots>, cancel: &CancelHandle) -> Option<Permit> {
        let mut st = self.lock();
        loop {
            if cancel.is_cancelled() || st.queue_empty() {
                return None;
            }
            if let Some((id, key)) = st.start_next() {
                return Some(Permit {
                    slots: Arc::clone(self),
                    id,
                    key,
                    base: true,
                });
            }
            st = self
                .changed
                .wait_timeout(st, LOOK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Drops the downloads not yet started; their ids.
    pub(crate) fn drain(&self) -> Vec<usize> {
        let ids = self.lock().drain();
        self.changed.notify_all();
        ids
    }

    /// An extra permit for download `id` on `key`, waiting at most `wait`.
    pub(crate) fn extra(self: &Arc<Slots>, id: usize, key: &str, wait: Duration) -> Option<Permit> {
        let end = Instant::now() + wait;
        let mut st = self.lock();
        st.want(id, key);
        let got = loop {
            if st.try_extra(id, key) {
                break true;
            }
            let now = Instant::now();
            if now >= end {
                break false;
            }
            st = self
                .changed
                .wait_timeout(st, end - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        st.unwant(id, key);
        got.then(|| Permit {
            slots: Arc::clone(self),
            id,
            key: key.to_string(),
            base: false,
        })
    }
}

/// A permit held; given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    slots: Arc<Slots>,
    id: usize,
    key: String,
    base: bool,
}

impl Permit {
    /// The download the permit is for.
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// What a download's workers need to ask for extra permits.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket {
            slots: Arc::clone(&self.slots),
            id: self.id,
            key: self.key.clone(),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut st = self.slots.lock();
        if self.base {
            st.finish(self.id, &self.key);
        } else {
            st.release(self.id, &self.key);
        }
        drop(st);
        self.slots.changed.notify_all();
    }
}

/// A running download's right to ask for extra permits.
#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    slots: Arc<Slots>,
    id: usize,
    key: String,
}

impl Ticket {
    /// An extra permit, waiting at most `wait`.
    pub(crate) fn extra(&self, wait: Duration) -> Option<Permit> {
        self.slots.extra(self.id, &self.key, wait)
    }
}

/// The key under which a URL's connections are counted: its host and port.
pub(crate) fn host_key(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("").to_ascii_lowercase(),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(global: usize, per_host: usize, runners: usize, hosts: &[(&str, usize)]) -> Budgets {
        let mut b = Budgets::new(global, per_host, runners);
        let mut id = 0;
        for &(h, n) in hosts {
            for _ in 0..n {
                b.enqueue(id, h);
                id += 1;
            }
        }
        b
    }

    #[test]
    fn many_small_files_on_one_host_take_at_most_the_host_ceiling() {
        // 200 files, 8 per host, 5 runners, each file wanting 8 connections.
        let mut b = budgets(16, 8, 5, &[("a", 200)]);
        let mut running = Vec::new();
        let mut finished = 0;
        let mut peak = 0;
        while finished < 200 {
            while let Some((id, _)) = b.start_next() {
                running.push((id, 0usize));
            }
            assert!(running.len() <= 5, "more downloads than runners");
            for r in running.iter_mut() {
                while r.1 < 7 && b.try_extra(r.0, "a") {
                    r.1 += 1;
                }
            }
            peak = peak.max(b.used("a").1);
            assert!(b.used("a").1 <= 8);
            // The oldest finishes.
            let (id, extras) = running.remove(0);
            for _ in 0..extras {
                b.release(id, "a");
            }
            b.finish(id, "a");
            finished += 1;
        }
        assert_eq!(peak, 8);
        assert_eq!(b.used("a"), (0, 0));
    }

    #[test]
    fn a_full_host_does_not_hold_back_the_next_one() {
        let mut b = budgets(16, 1, 3, &[("a", 2), ("b", 1)]);
        assert_eq!(b.start_next().map(|x| x.0), Some(0));
        // The second of host a must wait; host b's starts past it.
        assert_eq!(b.start_next().map(|x| x.0), Some(2));
        assert_eq!(b.start_next(), None);
        b.finish(0, "a");
        assert_eq!(b.start_next().map(|x| x.0), Some(1));
        assert!(b.queue_empty());
    }

    #[test]
    fn extras_leave_room_for_a_download_that_could_start() {
        let mut b = budgets(16, 4, 2, &[("a", 3)]);
        let (big, _) = b.start_next().unwrap();
        // One runner is free and a download waits: one permit stays for it.
        assert!(b.try_extra(big, "a"));
        assert!(b.try_extra(big, "a"));
        assert!(
            !b.try_extra(big, "a"),
            "the last permit is the waiting download's"
        );
        let (small, _) = b.start_next().unwrap();
        // No runner is free now: nothing is kept back, but the host is full.
        assert!(!b.try_extra(big, "a"));
        b.finish(small, "a");
        // The third download could start: its permit is kept again.
        assert!(!b.try_extra(big, "a"));
        assert!(b.start_next().is_some());
    }

    #[test]
    fn the_global_ceiling_holds_across_hosts() {
        let mut b = budgets(3, 8, 3, &[("a", 1), ("b", 1), ("c", 1)]);
        let ids: Vec<_> = (0..3).filter_map(|_| b.start_next()).collect();
        assert_eq!(ids.len(), 3);
        assert!(!b.try_extra(0, "a"));
        b.finish(2, "c");
        assert!(b.try_extra(0, "a"));
        assert!(!b.try_extra(1, "b"));
        assert_eq!(b.used("a"), (3, 2));
    }

    #[test]
    fn while_others_wait_no_download_takes_more_than_its_share() {
        let mut b = budgets(16, 8, 2, &[("a", 2)]);
        let (x, _) = b.start_next().unwrap();
        let (y, _) = b.start_next().unwrap();
        // Nobody else wants any: x takes all it can.
        let mut got = 0;
        while b.try_extra(x, "a") {
            got += 1;
        }
        assert_eq!(got, 6);
        // x gives two back while y waits: y gets them, x cannot take them back.
        b.want(y, "a");
        b.release(x, "a");
        b.release(x, "a");
        assert!(!b.try_extra(x, "a"), "x holds 5 of a share of 4");
        assert!(b.try_extra(y, "a"));
        assert!(b.try_extra(y, "a"));
        b.unwant(y, "a");
        assert_eq!(b.used("a"), (8, 8));
    }

    #[test]
    fn a_cancel_drops_what_has_not_started() {
        let mut b = budgets(16, 8, 1, &[("a", 3)]);
        let (id, key) = b.start_next().unwrap();
        assert_eq!(b.drain(), vec![1, 2]);
        assert_eq!(b.start_next(), None);
        b.finish(id, &key);
        // With nothing pending, nothing is reserved.
        assert_eq!(b.used("a"), (0, 0));
    }

    #[test]
    fn permits_come_back_when_dropped_and_waiters_wake() {
        let slots = Slots::new(budgets(2, 2, 1, &[("a", 1)]));
        let cancel = CancelHandle::new();
        let base = slots.start_next(&cancel).unwrap();
        let ticket = base.ticket();
        let extra = ticket.extra(Duration::from_millis(10)).unwrap();
        let t0 = Instant::now();
        assert!(ticket.extra(Duration::from_millis(50)).is_none());
        assert!(t0.elapsed() >= Duration::from_millis(50));
        let waiter = {
            let ticket = ticket.clone();
            std::thread::spawn(move || ticket.extra(Duration::from_secs(5)).is_some())
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(extra);
        assert!(waiter.join().unwrap());
        drop(base);
        assert_eq!(slots.lock().used("a"), (0, 0));
        assert!(slots.start_next(&cancel).is_none());
    }
}
