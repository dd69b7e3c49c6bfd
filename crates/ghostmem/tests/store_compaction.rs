//! The in-memory store's compaction, tested directly (not through the engine):
//!
//! * a shadow model: every block's bytes are intact after any sequence of puts, removes,
//!   re-evictions (remove + put of another size), bulk frees and compactions, with automatic
//!   compaction moving blocks under the test's feet;
//! * the memory bound: once compaction has run, the store reserves at most
//!   1.25 × the compressed bytes it holds + one chunk per size class in use (+ its handle and
//!   descriptor tables, reported separately and bounded by the peak number of blocks);
//! * a churn report with the ratios (`cargo test -p ghostmem --release --test store_compaction
//!   churn_report -- --nocapture`).
//!
//! That RSS falls when the store shrinks is in `store_rss.rs` (one test per binary).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

use std::collections::BTreeSet;

use ghostmem::PageId;
use ghostmem::store::{BlockRef, MemoryStore, PageStore};
use proptest::prelude::*;

const PAGE: usize = 4096;
/// The pager stores a page raw when LZ4 cannot get it under 3/4 of a page.
const LARGEST_COMPRESSED: usize = PAGE / 4 * 3;

/// Deterministic bytes that differ per seed (xorshift).
fn fill(seed: u64, buf: &mut [u8]) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in buf {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// A stored block in the shadow model: its contents are `fill(seed)` of `len` bytes.
#[derive(Debug, Clone, Copy)]
struct Block {
    block: BlockRef,
    len: usize,
    seed: u64,
}

/// The store and a shadow of what it must hold.
struct Model {
    store: MemoryStore,
    blocks: Vec<Block>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    seeds: u64,
    peak_blocks: usize,
}

impl Model {
    fn new() -> Model {
        Model {
            store: MemoryStore::new(PAGE),
            blocks: Vec::new(),
            buf: vec![0; PAGE],
            scratch: vec![0; PAGE],
            seeds: 0,
            peak_blocks: 0,
        }
    }

    fn put(&mut self, len: usize) {
        self.seeds += 1;
        let seed = self.seeds;
        fill(seed, &mut self.buf[..len]);
        let block = self
            .store
            .put(PageId(0), &self.buf[..len])
            .expect("put into the memory store");
        assert_eq!(block.0 >> 63, 0, "bit 63 is the fallback store's");
        self.blocks.push(Block { block, len, seed });
        self.peak_blocks = self.peak_blocks.max(self.blocks.len());
    }

    fn remove(&mut self, i: usize) -> Block {
        let b = self.blocks.swap_remove(i);
        self.store.remove(PageId(0), b.block, b.len);
        b
    }

    fn check(&mut self, i: usize) -> Result<(), TestCaseError> {
        let b = self.blocks[i];
        fill(b.seed, &mut self.buf[..b.len]);
        let got = self
            .store
            .load(PageId(0), b.block, b.len, &mut self.scratch)
            .expect("load of a live block");
        prop_assert!(got == &self.buf[..b.len], "block {:?} changed", b);
        Ok(())
    }

    fn check_all(&mut self) -> Result<(), TestCaseError> {
        for i in 0..self.blocks.len() {
            self.check(i)?;
        }
        let live: usize = self.blocks.iter().map(|b| b.len).sum();
        prop_assert_eq!(self.store.stats().live_bytes, live as u64);
        Ok(())
    }

    fn live_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.len as u64).sum()
    }

    /// One chunk of every size class that holds a block (classes differ in slot size).
    fn chunk_allowance(&self) -> u64 {
        let classes: BTreeSet<(usize, usize)> = self
            .blocks
            .iter()
            .map(|b| {
                let len = b.len;
                (
                    self.store.slot_bytes_for(len),
                    self.store.chunk_bytes_for(len),
                )
            })
            .collect();
        classes.iter().map(|&(_, chunk)| chunk as u64).sum()
    }

    /// What the store's tables may occupy: the handle table 8 bytes per handle at the peak
    /// (doubled: it grows by doubling segments); a 296-byte descriptor per chunk range ever
    /// carved (at most 1/8 of the address space, whose smallest chunks are one page); a page
    /// for each table's first segment.
    fn table_allowance(&self) -> u64 {
        let st = self.store.compaction_stats();
        16 * self.peak_blocks as u64 + st.address_space_bytes / 8 + 3 * PAGE as u64
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Evict a new page whose encoded size is `len`.
    Put { len: usize },
    /// Re-evict: restore block `pick` and store the page again with another size.
    Reevict { pick: usize, len: usize },
    /// Restore (or free) block `pick`.
    Remove { pick: usize },
    /// Free all but one block in `keep`: leaves every chunk sparse.
    Thin { keep: usize },
    /// Check block `pick`'s bytes.
    Load { pick: usize },
    /// Run compaction to completion.
    Compact,
}

/// Sizes as the pager produces them: any encoded length, tiny ones included, and raw pages.
fn any_len() -> BoxedStrategy<usize> {
    prop_oneof![
        1 => 1usize..=64,
        6 => 1usize..=LARGEST_COMPRESSED,
        2 => Just(PAGE),
    ]
    .boxed()
}

/// Sizes of pages of random compressibility (ratio 1 to 16, raw above 3/4 of a page):
/// at least 256 bytes, where a granule of rounding is under a quarter.
fn compressible_len() -> BoxedStrategy<usize> {
    (256usize..=PAGE)
        .prop_map(|len| if len > LARGEST_COMPRESSED { PAGE } else { len })
        .boxed()
}

fn op(len: BoxedStrategy<usize>) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => len.clone().prop_map(|len| Op::Put { len }),
        4 => (any::<usize>(), len).prop_map(|(pick, len)| Op::Reevict { pick, len }),
        3 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
        1 => (2usize..=16).prop_map(|keep| Op::Thin { keep }),
        2 => any::<usize>().prop_map(|pick| Op::Load { pick }),
        1 => Just(Op::Compact),
    ]
}

/// Run `ops` after putting `initial` blocks, checking the model; returns the model.
fn run(initial: &[usize], ops: &[Op]) -> Result<Model, TestCaseError> {
    let mut m = Model::new();
    for &len in initial {
        m.put(len);
    }
    for op in ops {
        match *op {
            Op::Put { len } => m.put(len),
            Op::Reevict { pick, len } if !m.blocks.is_empty() => {
                let old = m.remove(pick % m.blocks.len());
                // Another size: the page's compressibility changed.
                let len = if len == old.len { len % PAGE + 1 } else { len };
                m.put(len);
            }
            Op::Remove { pick } if !m.blocks.is_empty() => {
                m.remove(pick % m.blocks.len());
            }
            Op::Thin { keep } => {
                let mut i = m.blocks.len();
                while i > 0 {
                    i -= 1;
                    if i % keep != 0 {
                        m.remove(i);
                    }
                }
                m.check_all()?;
            }
            Op::Load { pick } if !m.blocks.is_empty() => m.check(pick % m.blocks.len())?,
            Op::Compact => {
                m.store.compact_all();
                m.check_all()?;
            }
            _ => {}
        }
        prop_assert_eq!(m.store.stats().live_bytes, m.live_bytes());
    }
    m.check_all()?;
    m.store.compact_all();
    m.check_all()?;
    Ok(m)
}

/// After compaction: reserved ≤ `factor` × `held` + one chunk per class in use + tables.
fn check_bound(m: &Model, held: u64, factor: f64) -> Result<(), TestCaseError> {
    let st = m.store.compaction_stats();
    prop_assert_eq!(st.reclaimable_bytes, 0, "compaction ran to completion");
    prop_assert!(st.table_bytes <= m.table_allowance(), "{:?}", st);
    let data = m.store.reserved_bytes() - st.table_bytes;
    let bound = (factor * held as f64) as u64 + m.chunk_allowance();
    prop_assert!(
        data <= bound,
        "chunks {data} bytes > {factor} × {held} + {} (one chunk per class in use)",
        m.chunk_allowance()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every block's bytes survive any sequence of operations, automatic compaction included;
    /// afterwards the chunks hold no more than the blocks' slots plus one chunk per class.
    #[test]
    fn blocks_survive_churn_and_compaction(
        initial in prop::collection::vec(any_len(), 0..1500),
        ops in prop::collection::vec(op(any_len()), 0..300),
    ) {
        let m = run(&initial, &ops)?;
        // Tiny blocks waste up to a granule each: bound the slots they take, not their bytes.
        let slots: u64 = m.blocks.iter().map(|b| m.store.slot_bytes_for(b.len) as u64).sum();
        check_bound(&m, slots, 1.0)?;
    }

    /// Pages of random compressibility: after any churn, compaction brings the chunks down to
    /// 1.25 × the compressed bytes + one chunk per size class in use.
    #[test]
    fn reserved_follows_compressed_bytes(
        initial in prop::collection::vec(compressible_len(), 0..2000),
        ops in prop::collection::vec(op(compressible_len()), 0..300),
    ) {
        let m = run(&initial, &ops)?;
        check_bound(&m, m.live_bytes(), 1.25)?;
    }
}

/// xorshift64* for the report's workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A large churn: 20,000 pages of random compressibility evicted, 200,000 re-evictions at
/// other sizes, then three quarters freed. Prints reserved / compressed with automatic
/// compaction only, then after `compact_all`, and checks both.
#[test]
fn churn_report() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut len = move || {
        let n = 256 + rng.below(PAGE - 256 + 1);
        if n > LARGEST_COMPRESSED { PAGE } else { n }
    };
    let mut pick = Rng(0xFEDC_BA98_7654_3210);
    let mut m = Model::new();
    for _ in 0..20_000 {
        m.put(len());
    }
    let ratio = |m: &Model| m.store.reserved_bytes() as f64 / m.live_bytes() as f64;
    let full = ratio(&m);
    for _ in 0..200_000 {
        let i = pick.below(m.blocks.len());
        m.remove(i);
        m.put(len());
    }
    let churned = ratio(&m);
    for _ in 0..15_000 {
        let i = pick.below(m.blocks.len());
        m.remove(i);
    }
    let auto = ratio(&m);
    let st = m.store.compaction_stats();
    m.store.compact_all();
    let compacted = ratio(&m);
    let st_after = m.store.compaction_stats();
    eprintln!(
        "reserved / compressed: filled {full:.3}, after 200k re-evictions {churned:.3}, \
         after freeing 3/4 (automatic compaction) {auto:.3}, after compact_all {compacted:.3} \
         ({} live bytes in {} blocks; before compact_all {st:?}; after {st_after:?})",
        m.live_bytes(),
        m.blocks.len()
    );
    for i in 0..m.blocks.len() {
        m.check(i).expect("block intact");
    }
    assert!(
        churned < 1.25,
        "churn alone keeps the store within 1.25×: {churned:.3}"
    );
    // Automatic compaction stops once under 1/8 of the chunks could be freed.
    assert!(
        auto < compacted * 8.0 / 7.0 + 0.02,
        "automatic compaction keeps up with frees: {auto:.3} (compacted: {compacted:.3})"
    );
    let bound = 1.25 * m.live_bytes() as f64 + m.chunk_allowance() as f64;
    assert!((m.store.reserved_bytes() as f64) <= bound);
}
