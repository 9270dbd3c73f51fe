//! Recording progress while a ranged download runs: the written ranges in
//! the control file often, the synced ones about once a second (see
//! [`crate::state`] for what each list promises).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::output::PartFile;
use crate::plan::Plan;
use crate::state::State;

/// How often the written ranges are recorded in the control file (without
/// syncing): a killed process loses at most about this much work.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

/// How often the file is synced (`fdatasync`) and the synced ranges recorded,
/// by default: a power loss loses at most about this much work.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Records the written ranges in the control file often, and the synced ones
/// about once a second.
pub(crate) struct Checkpoint<'a> {
    plan: &'a Mutex<Plan>,
    file: &'a PartFile,
    state: State,
    path: &'a Path,
    /// What was recorded last, and when the next sync is due.
    last: Mutex<(State, Instant)>,
    warned: AtomicBool,
    notice: &'a (dyn Fn(&str) + Sync),
    /// How often to sync; `None`: never (the written ranges still survive a
    /// killed process, not a power loss).
    sync_every: Option<Duration>,
    /// When this run began writing, and how many bytes the file had then: the
    /// run's rate tells when it will end.
    began: (Instant, u64),
}

impl<'a> Checkpoint<'a> {
    /// Checkpoints of `plan`'s progress in `file`, recorded at `path`,
    /// starting from `state`.
    pub fn new(
        plan: &'a Mutex<Plan>,
        file: &'a PartFile,
        state: State,
        path: &'a Path,
        notice: &'a (dyn Fn(&str) + Sync),
        sync_every: Option<Duration>,
    ) -> Checkpoint<'a> {
        let written = lock(plan).written();
        Checkpoint {
            plan,
            file,
            last: Mutex::new((
                state.clone(),
                Instant::now() + sync_every.unwrap_or(SYNC_EVERY),
            )),
            state,
            path,
            warned: AtomicBool::new(false),
            notice,
            sync_every,
            began: (Instant::now(), written),
        }
    }

    /// Whether, at this run's rate so far, the last byte should be written
    /// within `within`: then a sync would mostly delay the end (writers wait
    /// for it, and so does the finish) to protect less than `within` of work.
    fn ending_within(&self, within: Duration) -> bool {
        let (written, total) = {
            let plan = lock(self.plan);
            (plan.written(), plan.total())
        };
        let elapsed = self.began.0.elapsed().as_secs_f64();
        let rate = written.saturating_sub(self.began.1) as f64 / elapsed.max(1e-3);
        rate > 0.0 && (total.saturating_sub(written) as f64) < rate * within.as_secs_f64()
    }

    /// Records the written ranges; with `sync`, or when a sync is due (and the
    /// download is not about to end), syncs the file first and records them as
    /// done (never when syncing is off). A failure is told once and does not
    /// stop the download (only resuming would suffer).
    pub fn save(&self, sync: bool) {
        let ranges = lock(self.plan).written_ranges();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let (recorded, sync_due) = &*last;
        let sync = match self.sync_every {
            Some(every) => {
                (sync || (Instant::now() >= *sync_due && !self.ending_within(every)))
                    && recorded.done != ranges
            }
            None => false,
        };
        if !sync && recorded.written == ranges {
            return;
        }
        let state = State {
            done: if sync {
                ranges.clone()
            } else {
                recorded.done.clone()
            },
            written: ranges,
            ..self.state.clone()
        };
        let began = Instant::now();
        let result = if sync {
            self.file
                .sync_data()
                .and_then(|()| state.save(self.path, true))
        } else {
            state.save(self.path, false)
        };
        match result {
            Ok(()) => {
                // The next sync is due after the interval, or later when syncing
                // is slow, so that it takes no more than about a tenth of the
                // time: a second of a fast link is a lot to flush, and writers
                // wait on the file system's journal meanwhile.
                let next = match (sync, self.sync_every) {
                    (true, Some(every)) => Instant::now() + every.max(began.elapsed() * 9),
                    _ => *sync_due,
                };
                *last = (state, next);
            }
            Err(e) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    (self.notice)(&format!("cannot record progress for resuming: {e}"));
                }
            }
        }
    }
}

fn lock(plan: &Mutex<Plan>) -> std::sync::MutexGuard<'_, Plan> {
    plan.lock().unwrap_or_else(|e| e.into_inner())
}
