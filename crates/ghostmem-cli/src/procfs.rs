//! Resident memory of this process, from `/proc/self/status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`, ...), or `None` where there is none.
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Current resident set size in KiB (0 when `/proc` cannot be read).
pub fn rss_kib() -> u64 {
    status_kib("VmRSS").unwrap_or(0)
}

/// Measures the peak resident set size over a stretch of work.
///
/// Prefers the kernel's own high-water mark: writing `5` to `/proc/self/clear_refs` resets
/// `VmHWM` to the current RSS, and `VmHWM` is read at the end. Where that reset is refused, a
/// thread samples `VmRSS` every few milliseconds instead (which can miss short spikes).
pub struct PeakRss {
    sampler: Option<(Arc<AtomicBool>, JoinHandle<u64>)>,
}

impl PeakRss {
    /// Start measuring from now.
    pub fn start() -> Self {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        if reset && status_kib("VmHWM").is_some() {
            tracing::debug!("peak RSS from VmHWM (reset through /proc/self/clear_refs)");
            return Self { sampler: None };
        }
        tracing::debug!("cannot reset VmHWM: sampling VmRSS for the peak");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut peak = rss_kib();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
                peak = peak.max(rss_kib());
            }
            peak
        });
        Self {
            sampler: Some((stop, handle)),
        }
    }

    /// The peak RSS in KiB since [`PeakRss::start`].
    pub fn finish(self) -> u64 {
        match self.sampler {
            None => status_kib("VmHWM").unwrap_or(0),
            Some((stop, handle)) => {
                stop.store(true, Ordering::Relaxed);
                let sampled = handle.join().unwrap_or(0);
                sampled.max(rss_kib())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident pages from `/proc/self/statm` (its second field), in KiB.
    fn statm_rss_kib() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * ghostmem::page_size() as u64 / 1024
    }

    /// Held by the tests that move `VmHWM` (a reset, or a spike they rely on).
    static HWM: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn reads_rss() {
        let _hwm = HWM
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A 32 MiB spike, given back: the high-water mark stays above the current RSS, so
        // reading the one for the other shows.
        drop(std::hint::black_box(vec![1u8; 32 << 20]));
        assert!(status_kib("VmHWM").unwrap() > statm_rss_kib() + (16 << 10));
        // `VmRSS` and statm's resident count are the same kernel counter. Other tests run in
        // parallel and change it: retry until statm reads the same before and after.
        let agreed = (0..1000).any(|_| {
            let before = statm_rss_kib();
            let rss = rss_kib();
            before == statm_rss_kib() && rss == before
        });
        assert!(
            agreed,
            "rss_kib() never matched the resident pages of /proc/self/statm"
        );
        assert!(rss_kib() > 0);
        assert_eq!(status_kib("NoSuchField"), None);
    }

    #[test]
    fn peak_sees_a_large_touch() {
        let _hwm = HWM
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let peak = PeakRss::start();
        let mut big = vec![0u8; 64 << 20];
        for i in (0..big.len()).step_by(4096) {
            big[i] = 1;
        }
        std::hint::black_box(&mut big);
        // Long enough for the sampling fallback to see it.
        std::thread::sleep(Duration::from_millis(30));
        drop(big);
        assert!(peak.finish() >= 60 << 10);
    }
}
