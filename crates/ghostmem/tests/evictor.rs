//! The background evictor: the budget holds while it and several faulting threads work at
//! once, and nothing is lost. (Its thread's lifetime: `evictor_thread.rs`.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use ghostmem::page_size;

#[test]
fn the_budget_holds_under_four_threads_and_the_evictor() {
    let budget = 256;
    let g = common::instance_with_evictor(budget);
    let page = page_size();
    let pages_per_thread = 512;
    let threads = 4u64;
    let done = AtomicBool::new(false);
    let mut worst = 0;
    std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            let mut worst = 0;
            while !done.load(SeqCst) {
                let st = g.stats();
                worst = worst.max(st.resident_pages);
                std::thread::yield_now();
            }
            worst
        });
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let g = &g;
                s.spawn(move || {
                    let size = pages_per_thread * page;
                    let p = common::alloc(g, size);
                    for round in 0..3u64 {
                        let seed = t * 10 + round;
                        // SAFETY: a live allocation of `size` bytes owned by this thread.
                        unsafe { common::fill(p, size, seed) };
                        // SAFETY: as above.
                        unsafe { common::assert_pattern(p, size, seed, "worker") };
                    }
                    // SAFETY: as above, not used afterwards.
                    unsafe { common::free(g, p, size) };
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, SeqCst);
        worst = monitor.join().unwrap();
    });
    assert!(worst > 0, "the monitor saw no resident page");
    assert!(
        worst <= budget as u64,
        "{worst} pages resident with a budget of {budget}"
    );
    let s = g.stats();
    assert!(s.evictions > 0 && s.restores > 0, "{s:?}");
}
