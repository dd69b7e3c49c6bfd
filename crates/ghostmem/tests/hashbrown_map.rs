//! `hashbrown::HashMap` allocating from a `GhostMem` instance with a budget of 4 pages.

// Test data deliberately truncates counters into bytes and words.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod common;

use allocator_api2::vec::Vec as GVec;
use ghostmem::GhostMem;

#[test]
fn hashbrown_map_in_ghost_memory_under_a_tiny_budget() {
    const ENTRIES: u64 = 10_000;
    let ghost = common::instance(4);
    let mut map: hashbrown::HashMap<u64, GVec<u8, &GhostMem>, _, &GhostMem> =
        hashbrown::HashMap::new_in(&ghost);
    for k in 0..ENTRIES {
        let len = 8 + (k % 57) as usize;
        let mut v = GVec::with_capacity_in(len, &ghost);
        v.extend((0..len).map(|j| (k as u8).wrapping_add(j as u8)));
        assert!(map.insert(k * 7919, v).is_none(), "key {k} inserted twice");
    }
    let s = ghost.stats();
    common::assert_within_budget(&s, "hashbrown map");
    assert!(s.evictions > 0, "{s:?}");
    assert_eq!(
        s.live_allocations,
        ENTRIES + 1,
        "one table and one vector per entry: {s:?}"
    );
    assert_eq!(map.len() as u64, ENTRIES);
    for k in 0..ENTRIES {
        let v = map
            .get(&(k * 7919))
            .unwrap_or_else(|| panic!("key {k} missing"));
        let len = 8 + (k % 57) as usize;
        assert_eq!(v.len(), len, "key {k}");
        for (j, &b) in v.iter().enumerate() {
            assert_eq!(b, (k as u8).wrapping_add(j as u8), "key {k}, byte {j}");
        }
    }
    for k in (0..ENTRIES).step_by(2) {
        assert!(map.remove(&(k * 7919)).is_some());
    }
    assert_eq!(ghost.stats().live_allocations, ENTRIES / 2 + 1);
    drop(map);
    let s = ghost.stats();
    assert_eq!(s.live_allocations, 0, "{s:?}");
    assert_eq!(s.allocated_pages, 0, "{s:?}");
    assert_eq!(s.invalid_frees, 0, "{s:?}");
}
