//! A wake-up word for a helper thread that sleeps until there is work (a futex).
//!
//! Waking is async-signal-safe (an atomic swap and, only when the sleeper is idle, one
//! `futex(FUTEX_WAKE)`), so the fault handler can wake the evictor.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use rustix::thread::futex;

/// One sleeper, many wakers.
#[derive(Default)]
pub(crate) struct Wakeup {
    seq: AtomicU32,
    idle: AtomicBool,
}

impl Wakeup {
    /// Wake the sleeper if it sleeps (or is about to). Cheap when it is already awake.
    pub fn wake(&self) {
        if self.idle.swap(false, SeqCst) {
            self.wake_now();
        }
    }

    /// Wake the sleeper unconditionally (for stopping it).
    pub fn wake_now(&self) {
        self.seq.fetch_add(1, SeqCst);
        // Nothing to do about a failed wake: the sleeper also wakes by its timeout.
        let _woken = futex::wake(&self.seq, futex::Flags::PRIVATE, 1);
    }

    /// Sleep until woken or `timeout` passes, unless `work` (checked after announcing that we
    /// are idle, so no wake-up is lost) says there is something to do.
    pub fn sleep(&self, timeout: Duration, work: impl Fn() -> bool) {
        let seq = self.seq.load(SeqCst);
        self.idle.store(true, SeqCst);
        if !work() {
            wait(&self.seq, seq, timeout);
        }
        self.idle.store(false, SeqCst);
    }
}

/// A counter of events that any number of threads can wait for: "something changed since I
/// looked". Used by faults that find their page in another fault's hands. Both sides are
/// async-signal-safe; advancing costs one atomic add and, only when someone waits, one
/// `futex(FUTEX_WAKE)`.
#[derive(Default)]
pub(crate) struct Epoch {
    seq: AtomicU32,
    waiters: AtomicU32,
}

impl Epoch {
    /// The current epoch, to wait on after releasing whatever lock was held while reading it.
    pub fn current(&self) -> u32 {
        self.seq.load(SeqCst)
    }

    /// Wait until the epoch moves past `seen`, or `timeout` passes (a safety net).
    pub fn wait(&self, seen: u32, timeout: Duration) {
        self.waiters.fetch_add(1, SeqCst);
        wait(&self.seq, seen, timeout);
        self.waiters.fetch_sub(1, SeqCst);
    }

    /// Move to the next epoch and wake every waiter.
    pub fn advance(&self) {
        self.seq.fetch_add(1, SeqCst);
        if self.waiters.load(SeqCst) != 0 {
            // Nothing to do about a failed wake: waiters also wake by their timeout.
            let _woken = futex::wake(&self.seq, futex::Flags::PRIVATE, u32::MAX);
        }
    }
}

/// Sleep while `word` holds `seen`, at most `timeout`. EAGAIN (it changed already), ETIMEDOUT
/// and EINTR all mean the same to the callers, who look again: the result is not needed.
fn wait(word: &AtomicU32, seen: u32, timeout: Duration) {
    let ts = futex::Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let _ = futex::wait(word, futex::Flags::PRIVATE, seen, Some(&ts));
}
