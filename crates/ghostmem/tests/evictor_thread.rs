//! The background evictor's thread stops when its instance is dropped, and is not started when
//! background eviction is off. Alone in their test binary, one at a time, so that no other test
//! starts evictor threads meanwhile.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;

/// The tests here count threads: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Thread ids of this process's threads named like the evictor (comm is cut at 15 bytes).
fn evictor_threads() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| {
            let t = t.ok()?;
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            (comm.trim() == "ghostmem-evicto").then(|| t.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

#[test]
fn the_evictor_thread_stops_when_the_instance_is_dropped() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = evictor_threads();
    let instances: Vec<_> = (0..4).map(|_| common::instance_with_evictor(128)).collect();
    // A new thread names itself once it runs: wait for that.
    let start = std::time::Instant::now();
    let ours = loop {
        let ours: BTreeSet<String> = evictor_threads().difference(&before).cloned().collect();
        if ours.len() >= 4 || start.elapsed().as_secs() >= 5 {
            break ours;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(ours.len() >= 4, "evictor threads started: {ours:?}");
    drop(instances);
    // Dropping joins the threads: they are gone at once.
    let left: Vec<_> = ours.intersection(&evictor_threads()).cloned().collect();
    assert!(
        left.is_empty(),
        "evictor threads {left:?} still run after drop"
    );
}

#[test]
fn without_background_eviction_there_is_no_thread_and_faults_evict_inline() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = evictor_threads();
    let config = ghostmem::Config::builder()
        .max_memory_pages(128)
        .address_space(common::TEST_ADDRESS_SPACE)
        .background_eviction(false)
        .build()
        .unwrap();
    let g = ghostmem::GhostMem::new(config).unwrap();
    assert!(!g.config().background_eviction());
    let size = 512 * ghostmem::page_size();
    let p = common::alloc(&g, size);
    // SAFETY: a live allocation of `size` bytes.
    unsafe { common::fill(p, size, 3) };
    // SAFETY: as above.
    unsafe { common::assert_pattern(p, size, 3, "inline eviction") };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let started: Vec<_> = evictor_threads().difference(&before).cloned().collect();
    assert!(started.is_empty(), "evictor threads {started:?} started");
    let s = g.stats();
    // Every eviction was a fault's: the fill and the scan evicted at least the overflow.
    assert!(s.evictions >= 2 * (512 - 128), "{s:?}");
    common::assert_within_budget(&s, "after the scan");
    // SAFETY: as above, not used afterwards.
    unsafe { common::free(&g, p, size) };
}
