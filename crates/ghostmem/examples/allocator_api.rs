//! Collections in ghost memory through the `allocator_api2` API: `Vec`, `Box` and
//! `hashbrown::HashMap` allocating from one `GhostMem` instance with a budget of 8 pages. The
//! program checks all data and the statistics and prints them; it panics if anything is wrong.
//!
//! Run with `cargo run --release -p ghostmem --example allocator_api`.

use allocator_api2::boxed::Box;
use allocator_api2::vec::Vec;
use ghostmem::{Config, GhostMem};

fn main() {
    let config = Config::builder()
        .max_memory_pages(8)
        .build()
        .expect("a valid configuration");
    let ghost = GhostMem::new(config).expect("creating the instance");

    // 4 MiB of numbers in one vector.
    let mut numbers: Vec<u64, &GhostMem> = Vec::new_in(&ghost);
    for i in 0..512 * 1024u64 {
        numbers.push(i * i);
    }
    // A boxed array and many small boxes.
    let table = Box::new_in([7u32; 1024], &ghost);
    let mut boxes: Vec<Box<(u64, u64), &GhostMem>, &GhostMem> = Vec::new_in(&ghost);
    for i in 0..10_000u64 {
        boxes.push(Box::new_in((i, i.rotate_left(17)), &ghost));
    }
    // A hash map whose table and values both live in ghost memory.
    let mut map: hashbrown::HashMap<u64, Vec<u8, &GhostMem>, _, &GhostMem> =
        hashbrown::HashMap::new_in(&ghost);
    for k in 0..5_000u64 {
        let mut value = Vec::new_in(&ghost);
        value.extend_from_slice(format!("entry {k}").as_bytes());
        map.insert(k, value);
    }

    for (i, &n) in numbers.iter().enumerate() {
        assert_eq!(n, (i as u64) * (i as u64), "numbers[{i}]");
    }
    assert!(table.iter().all(|&x| x == 7), "boxed table");
    for (i, b) in boxes.iter().enumerate() {
        assert_eq!(**b, (i as u64, (i as u64).rotate_left(17)), "boxes[{i}]");
    }
    for k in 0..5_000u64 {
        assert_eq!(
            map[&k].as_slice(),
            format!("entry {k}").as_bytes(),
            "map[{k}]"
        );
    }

    let stats = ghost.stats();
    println!("{stats:#?}");
    if let Some(ratio) = stats.compression_ratio() {
        println!("compression ratio of evicted pages: {ratio:.1}");
    }
    assert_eq!(
        stats.live_allocations,
        1 + 1 + 1 + 10_000 + 1 + 5_000,
        "numbers, table, boxes vector, 10 000 boxes, map table, 5 000 map values: {stats:?}"
    );
    assert!(stats.resident_pages <= 8, "over budget: {stats:?}");
    assert!(
        stats.evictions > 1000,
        "MiBs under 8 pages must evict: {stats:?}"
    );

    drop(map);
    drop(boxes);
    drop(table);
    drop(numbers);
    let stats = ghost.stats();
    assert_eq!(stats.live_allocations, 0, "{stats:?}");
    assert_eq!(stats.allocated_pages, 0, "{stats:?}");
    println!("allocator_api example: all data verified");
}
