//! Every heap allocation of this program goes through ghost memory: `GhostGlobal` is the
//! `#[global_allocator]`, with 256 resident pages (1 MiB with 4 KiB pages). The program builds
//! several MiB of `Vec`, `String` and `HashMap` data, checks all of it and prints the
//! statistics. It panics (non-zero exit) if anything is wrong, so running it is a check.
//!
//! Run with `cargo run --release -p ghostmem --example global_allocator`.

use std::collections::HashMap;

#[global_allocator]
static GLOBAL: ghostmem::GhostGlobal = ghostmem::GhostGlobal::new(256);

fn main() {
    // 8 MiB of numbers.
    let numbers: Vec<u64> = (0..1u64 << 20)
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .collect();
    // Many small strings (slab allocations).
    let strings: Vec<String> = (0..50_000).map(|i| format!("string number {i}")).collect();
    // A hash map with heap-allocated values.
    let mut map: HashMap<u32, String> = HashMap::new();
    for i in 0..50_000u32 {
        map.insert(i, format!("value {i:>8}").repeat(1 + (i % 4) as usize));
    }

    for (i, &n) in numbers.iter().enumerate() {
        assert_eq!(n, (i as u64).wrapping_mul(0x9E37_79B9), "numbers[{i}]");
    }
    for (i, s) in strings.iter().enumerate() {
        assert_eq!(*s, format!("string number {i}"), "strings[{i}]");
    }
    assert_eq!(map.len(), 50_000);
    for i in 0..50_000u32 {
        let expected = format!("value {i:>8}").repeat(1 + (i % 4) as usize);
        assert_eq!(map[&i], expected, "map[{i}]");
    }

    let stats = GLOBAL
        .stats()
        .expect("the global allocator has an instance once used");
    println!("{stats:#?}");
    if let Some(ratio) = stats.compression_ratio() {
        println!("compression ratio of evicted pages: {ratio:.1}");
    }
    assert!(
        stats.live_allocations >= 100_000,
        "the strings and map values are live allocations: {stats:?}"
    );
    assert!(
        stats.resident_pages <= 256,
        "resident pages exceed the budget: {stats:?}"
    );
    assert!(
        stats.evictions > 0,
        "several MiB under a 1 MiB budget must evict: {stats:?}"
    );
    assert!(
        stats.restores > 0,
        "reading the data back must restore pages: {stats:?}"
    );
    drop((numbers, strings, map));
    println!("global_allocator example: all data verified");
}
