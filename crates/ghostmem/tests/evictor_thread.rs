//! The background evictor's thread stops when its instance is dropped. Alone in its test binary
//! so that no other test starts evictor threads meanwhile.

mod common;

use std::collections::BTreeSet;

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
    let before = evictor_threads();
    let instances: Vec<_> = (0..4).map(|_| common::instance(128)).collect();
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
