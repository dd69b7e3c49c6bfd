//! The in-memory store gives memory back: when most of its blocks are removed, the process's
//! resident set falls, through automatic compaction alone and further after `compact_all`.
//!
//! RSS is shared by every thread of the process, so this binary holds exactly one test.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

use ghostmem::PageId;
use ghostmem::store::{BlockRef, MemoryStore, PageStore};

const PAGE: usize = 4096;
const BLOCKS: usize = 24_000;

/// VmRSS of this process in bytes (from `/proc/self/statm`: resident pages).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("reading /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unparsable /proc/self/statm {statm:?}"));
    pages * rustix::param::page_size() as u64
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

#[test]
fn rss_falls_when_the_store_shrinks() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let data: Vec<u8> = (0..PAGE).map(|i| (i * 13 % 241) as u8).collect();
    let mut blocks: Vec<(BlockRef, usize)> = Vec::with_capacity(BLOCKS);
    let mut store = MemoryStore::new(PAGE);

    let baseline = rss_bytes();
    for _ in 0..BLOCKS {
        let len = 256 + (next() % (PAGE as u64 - 255)) as usize;
        blocks.push((store.put(PageId(0), &data[..len]).unwrap(), len));
    }
    let full = rss_bytes();
    let live_full = store.stats().live_bytes;

    // Free nine blocks in ten, at random: every chunk keeps a few blocks.
    let mut kept = Vec::with_capacity(BLOCKS / 10 + 1);
    for (block, len) in blocks {
        if next() % 10 == 0 {
            kept.push((block, len));
        } else {
            store.remove(PageId(0), block, len);
        }
    }
    let auto = rss_bytes();
    let auto_stats = store.compaction_stats();
    store.compact_all();
    let compacted = rss_bytes();
    let live = store.stats().live_bytes;
    let mut scratch = vec![0u8; PAGE];
    for &(block, len) in &kept {
        assert_eq!(
            store.load(PageId(0), block, len, &mut scratch).unwrap(),
            &data[..len]
        );
    }
    eprintln!(
        "store: {:.1} MiB live, RSS +{:.1} MiB; after freeing 90 %: {:.1} MiB live, RSS +{:.1} MiB \
         (automatic compaction: {auto_stats:?}), +{:.1} MiB after compact_all ({:?}), reserved {:.1} MiB",
        mib(live_full),
        mib(full - baseline),
        mib(live),
        mib(auto.saturating_sub(baseline)),
        mib(compacted.saturating_sub(baseline)),
        store.compaction_stats(),
        mib(store.reserved_bytes()),
    );
    let grown = full - baseline;
    assert!(
        grown >= live_full,
        "the blocks were resident: {grown} < {live_full}"
    );
    assert!(auto_stats.blocks_moved > 0, "compaction ran on its own");
    // Automatic compaction leaves at most 1/8 of the chunks reclaimable (plus a little):
    // the resident set must have given back at least 60 % of what it grew.
    assert!(
        auto - baseline < grown * 2 / 5,
        "RSS after freeing 90 % with automatic compaction: +{} of +{grown}",
        auto - baseline
    );
    // After compact_all: within 1.25 × the live bytes + one chunk per class (2,080 pages) +
    // 1 MiB of slack for the test's own allocations.
    let limit = live * 5 / 4 + (64 * 65 * PAGE as u64) / 2 + (1 << 20);
    assert!(
        compacted.saturating_sub(baseline) <= limit,
        "RSS after compact_all: +{} > {limit}",
        compacted - baseline
    );
}
