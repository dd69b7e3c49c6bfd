//! Writers racing with eviction: no write may be lost.
//!
//! Writer threads fill their page with an incrementing `u64` sequence and read every word back
//! at once and after each pass, while an evictor thread keeps touching other pages of the same
//! instance under a budget of 3 pages, so the writers' page is evicted and restored under
//! their feet. The evictor's pages always hold one repeated byte (stored as a same-filled tag)
//! while the writers' page never does, so `compressed_pages + incompressible_pages > 0` in a
//! snapshot means the writers' page is evicted at that moment.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ghostmem::{GhostMem, page_size};

const BUDGET: usize = 3;
const EVICTOR_PAGES: usize = 16;
const RUN_FOR: Duration = Duration::from_millis(2500);
const EVICTOR_BYTE: u8 = 0xAB;

/// Pages of the evictor's region, filled once single-threaded so that every later snapshot of
/// them (even one taken in the middle of a rewrite) is same-filled.
struct Evictor {
    base: usize,
}

impl Evictor {
    fn new(ghost: &GhostMem) -> Self {
        let page = page_size();
        let base = common::alloc(ghost, EVICTOR_PAGES * page);
        for i in 0..EVICTOR_PAGES {
            // SAFETY: page `i` of the live allocation of EVICTOR_PAGES pages. One page per
            // call, so each page is complete before the next fault can evict it.
            unsafe { std::ptr::write_bytes(base.add(i * page), EVICTOR_BYTE, page) };
        }
        Evictor {
            base: base as usize,
        }
    }

    /// Rewrite every page once; returns how many snapshots showed the writers' page evicted.
    fn pass(&self, ghost: &GhostMem) -> u64 {
        let page = page_size();
        let mut seen = 0;
        for i in 0..EVICTOR_PAGES {
            let p = (self.base + i * page) as *mut u8;
            // SAFETY: page `i` of the evictor's live allocation.
            unsafe { std::ptr::write_bytes(p, EVICTOR_BYTE, page) };
            let s = ghost.stats();
            common::assert_within_budget(&s, "while evicting");
            if s.compressed_pages + s.incompressible_pages > 0 {
                seen += 1;
            }
        }
        seen
    }

    /// Run passes until `stop` is set; returns the snapshots that showed the writers' page out.
    fn run(&self, ghost: &GhostMem, stop: &AtomicBool) -> u64 {
        let mut seen = 0;
        while !stop.load(Ordering::Relaxed) {
            seen += self.pass(ghost);
        }
        seen
    }

    fn free(self, ghost: &GhostMem) {
        // SAFETY: the evictor's live allocation, not used afterwards.
        unsafe { common::free(ghost, self.base as *mut u8, EVICTOR_PAGES * page_size()) };
    }
}

/// Counts of one writer's run.
#[derive(Default, Debug)]
struct WriterReport {
    passes: u64,
    /// A word read right after it was written differed.
    immediate_mismatches: u64,
    /// A word read back after a whole pass differed.
    pass_mismatches: u64,
}

/// Write `base + k` to word `k` of every word index `k ≡ lane (mod lanes)` of the page, reading
/// each back at once, then verify all of them; repeat until `stop`.
fn writer(page_addr: usize, lane: usize, lanes: usize, stop: &AtomicBool) -> WriterReport {
    let words = page_size() / 8;
    let p = page_addr as *mut u64;
    let mut report = WriterReport::default();
    let mut base: u64 = 1 << 32;
    while !stop.load(Ordering::Relaxed) {
        for k in (lane..words).step_by(lanes) {
            let v = base + k as u64;
            // SAFETY: `k < words`: inside the writers' live one-page allocation; the lanes of
            // different writers never share a word.
            unsafe { p.add(k).write_volatile(v) };
            // SAFETY: as above.
            if unsafe { p.add(k).read_volatile() } != v {
                report.immediate_mismatches += 1;
            }
            // Now and then pause halfway through the page, so the page is surely evicted with
            // half old and half new contents.
            if k / lanes == words / lanes / 2 && report.passes % 8 == 0 {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        for k in (lane..words).step_by(lanes) {
            // SAFETY: as above.
            if unsafe { p.add(k).read_volatile() } != base + k as u64 {
                report.pass_mismatches += 1;
            }
        }
        base += words as u64;
        report.passes += 1;
    }
    // Leave the final values as the last pass wrote them: base - words + k.
    report
}

fn run_writers(lanes: usize) {
    let page = page_size();
    let ghost = common::instance(BUDGET);
    let target = common::alloc(&ghost, page);
    assert_eq!(
        target as usize % page,
        0,
        "a one-page allocation is page-aligned"
    );
    let evictor = Evictor::new(&ghost);

    // Deterministic warm-up: the target page, written, is evicted by the evictor's pages and
    // restored with its contents by the next read.
    let words = page / 8;
    let t = target.cast::<u64>();
    for k in 0..words {
        // SAFETY: word `k` of the live one-page allocation.
        unsafe { t.add(k).write_volatile(7 + k as u64) };
    }
    evictor.pass(&ghost);
    let s0 = ghost.stats();
    assert_eq!(
        s0.compressed_pages + s0.incompressible_pages,
        1,
        "after touching {EVICTOR_PAGES} other pages under a budget of {BUDGET}, the target page \
         should be evicted (and it is the only page that is neither zero nor same-filled): {s0:?}"
    );
    for k in 0..words {
        // SAFETY: as above.
        let got = unsafe { t.add(k).read_volatile() };
        assert_eq!(
            got,
            7 + k as u64,
            "word {k} of the target page after one eviction"
        );
    }
    let s1 = ghost.stats();
    assert_eq!(
        s1.restores,
        s0.restores + 1,
        "reading the evicted target page restored it once"
    );

    let stop = AtomicBool::new(false);
    let seen_evicted = AtomicU64::new(0);
    let reports: Vec<WriterReport> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..lanes)
            .map(|lane| {
                let stop = &stop;
                let addr = target as usize;
                scope.spawn(move || writer(addr, lane, lanes, stop))
            })
            .collect();
        let ev = scope.spawn(|| {
            seen_evicted.store(evictor.run(&ghost, &stop), Ordering::Relaxed);
        });
        let start = Instant::now();
        while start.elapsed() < RUN_FOR {
            std::thread::sleep(Duration::from_millis(20));
            if ev.is_finished() || writers.iter().any(|w| w.is_finished()) {
                break; // a thread panicked: stop the others and report it below
            }
        }
        stop.store(true, Ordering::Relaxed);
        ev.join().expect("evictor thread panicked");
        writers
            .into_iter()
            .map(|w| w.join().expect("writer thread panicked"))
            .collect()
    });

    let s = ghost.stats();
    eprintln!("lanes {lanes}: {reports:?}; seen evicted {seen_evicted:?}; {s:?}");
    for (lane, r) in reports.iter().enumerate() {
        assert_eq!(
            r.immediate_mismatches, 0,
            "writer {lane}: words read back right after writing them differed: {r:?}"
        );
        assert_eq!(
            r.pass_mismatches, 0,
            "writer {lane}: words differed when a pass was read back: {r:?}"
        );
        assert!(
            r.passes >= 10,
            "writer {lane} made too little progress: {r:?}"
        );
    }
    let evictions = s.evictions - s1.evictions;
    let restores = s.restores - s1.restores;
    assert!(
        evictions >= 500,
        "only {evictions} evictions during the race: the test did not stress eviction: {s:?}"
    );
    assert!(restores > 0, "no restores during the race: {s:?}");
    assert!(
        seen_evicted.load(Ordering::Relaxed) > 0,
        "no snapshot ever showed the writers' page evicted during the race: {s:?}"
    );
    assert!(s.resident_pages <= BUDGET as u64, "{s:?}");

    // The final contents survive one more eviction.
    evictor.pass(&ghost);
    for (lane, r) in reports.iter().enumerate() {
        let base = (1u64 << 32) + (r.passes - 1) * words as u64;
        for k in (lane..words).step_by(lanes) {
            // SAFETY: word `k` of the live one-page allocation; the writers are joined.
            let got = unsafe { t.add(k).read_volatile() };
            assert_eq!(got, base + k as u64, "final word {k} (writer {lane})");
        }
    }

    evictor.free(&ghost);
    // SAFETY: the target page is a live allocation, not used afterwards.
    unsafe { common::free(&ghost, target, page) };
}

#[test]
fn single_writer_loses_no_writes_under_eviction() {
    run_writers(1);
}

#[test]
fn several_writers_on_one_page_lose_no_writes_under_eviction() {
    run_writers(3);
}
