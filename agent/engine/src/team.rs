//! A fixed team of worker threads for decode's many short parallel steps.
//!
//! Decoding one token runs about five parallel steps per layer, each a few tens of
//! microseconds long and separated by microseconds of serial work. rayon parks idle workers
//! almost at once, so every step paid a futex wake-up and a context switch (a fifth of decode
//! time in profiles). Team workers spin for a while between jobs and only then park, as
//! llama.cpp's threads do; between agent turns they sleep.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// A job gets (worker index, team size) and picks its own share of the work.
type Job<'a> = dyn Fn(usize, usize) + Sync + 'a;

/// How long an idle worker spins before parking: longer than the serial gaps of a decode
/// step, far shorter than anything a person would notice.
const SPIN: Duration = Duration::from_micros(200);

struct Shared {
    /// Bumped once per job; workers wait for it to change.
    epoch: AtomicUsize,
    /// Workers that have not finished the current job.
    pending: AtomicUsize,
    /// The current job. Its lifetime is erased; see the SAFETY note in [`Team::run`].
    job: Mutex<Option<&'static Job<'static>>>,
    panicked: AtomicBool,
    /// Members, the caller included (fixed once the workers are started).
    size: AtomicUsize,
    /// Workers parked (or about to park) on `wake`.
    sleepers: AtomicUsize,
    park: Mutex<()>,
    wake: Condvar,
}

pub struct Team {
    shared: Arc<Shared>,
    size: usize,
    /// One job at a time (engines in several threads share the team).
    running: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing a job does can leave these locks' data inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Team {
    /// The process-wide team, sized like rayon's pool (RAYON_NUM_THREADS).
    pub fn global() -> &'static Team {
        static TEAM: OnceLock<Team> = OnceLock::new();
        TEAM.get_or_init(|| Team::new(rayon::current_num_threads().max(1)))
    }

    fn new(size: usize) -> Team {
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            job: Mutex::new(None),
            panicked: AtomicBool::new(false),
            size: AtomicUsize::new(1),
            sleepers: AtomicUsize::new(0),
            park: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut started = 1;
        for index in 1..size {
            let shared = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("cwm-team-{index}"))
                .spawn(move || worker(&shared, index));
            if spawned.is_err() {
                break; // fewer threads is slower, not wrong
            }
            started += 1;
        }
        shared.size.store(started, Ordering::SeqCst);
        Team {
            shared,
            size: started,
            running: Mutex::new(()),
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `job(i, size)` on every member (the caller is member 0) and returns when all
    /// are done. Jobs must not call `run` themselves.
    pub fn run(&self, job: &Job<'_>) {
        if self.size == 1 {
            job(0, 1);
            return;
        }
        let _one_at_a_time = lock(&self.running);
        let s = &*self.shared;
        // SAFETY: the erased reference is only used by workers between the epoch bump below
        // and their decrement of `pending`, and this function does not return (not even by
        // unwinding: member 0's share runs under catch_unwind) before `pending` is zero and
        // the slot is cleared, so `job` outlives every use.
        let erased: &'static Job<'static> = unsafe { std::mem::transmute(job) };
        *lock(&s.job) = Some(erased);
        s.panicked.store(false, Ordering::Relaxed);
        s.pending.store(self.size - 1, Ordering::SeqCst);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&s.park);
            s.wake.notify_all();
        }
        let own = catch_unwind(AssertUnwindSafe(|| job(0, self.size)));
        let mut spins = 0u32;
        while s.pending.load(Ordering::Acquire) > 0 {
            spins = spins.saturating_add(1);
            if spins < 1 << 16 {
                std::hint::spin_loop();
            } else {
                thread::yield_now(); // a worker was descheduled
            }
        }
        *lock(&s.job) = None;
        if let Err(panic) = own {
            resume_unwind(panic);
        }
        if s.panicked.load(Ordering::Relaxed) {
            panic!("a team worker panicked while running a job");
        }
    }
}

fn worker(s: &Shared, index: usize) {
    let mut seen = 0usize;
    loop {
        seen = wait_for_job(s, seen);
        let job = *lock(&s.job);
        if let Some(job) = job {
            let size = s.size.load(Ordering::Relaxed);
            if catch_unwind(AssertUnwindSafe(|| job(index, size))).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
        }
        s.pending.fetch_sub(1, Ordering::Release);
    }
}

/// Spins, then parks, until the epoch moves past `seen`; returns the new epoch.
fn wait_for_job(s: &Shared, seen: usize) -> usize {
    let started = Instant::now();
    let mut spins = 0u32;
    loop {
        let epoch = s.epoch.load(Ordering::Acquire);
        if epoch != seen {
            return epoch;
        }
        spins = spins.wrapping_add(1);
        std::hint::spin_loop();
        if spins.is_multiple_of(256) && started.elapsed() > SPIN {
            park(s, seen);
        }
    }
}

fn park(s: &Shared, seen: usize) {
    s.sleepers.fetch_add(1, Ordering::SeqCst);
    let mut guard = lock(&s.park);
    // Checked under the lock `run` takes to notify, so a new job cannot slip past.
    while s.epoch.load(Ordering::SeqCst) == seen {
        guard = s.wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
    }
    drop(guard);
    s.sleepers.fetch_sub(1, Ordering::SeqCst);
}
