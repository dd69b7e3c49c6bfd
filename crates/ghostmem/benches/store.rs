//! The in-memory page store on 4 KiB pages: what `put`, `load` and `remove` cost the fault path.
//!
//! Run with `cargo bench -p ghostmem --bench store`.
//!
//! Block sizes follow what the pager hands the store: LZ4 output of 1 to 3072 bytes (3/4 of a
//! page; anything larger is stored raw) and, for one block in five, a raw 4096-byte page.
//!
//! * `churn`: a store holding 16,384 blocks (about 40 MiB); each iteration removes a random
//!   block and puts a block of another size in its place, as re-evicting a page whose
//!   compressibility changed does. This is the steady state of a busy program.
//! * `load`: borrow a random block of the same store (what a restore does before decoding).
//! * `fill_drain`: put 4,096 blocks into an empty store, then remove them all in random order;
//!   the figure is per block, and includes mapping chunks and giving them back.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ghostmem::PageId;
use ghostmem::store::{BlockRef, MemoryStore, PageStore};

const PAGE: usize = 4096;
const LARGEST_COMPRESSED: usize = PAGE / 4 * 3;
const BLOCKS: usize = 16_384;
const FILL: usize = 4_096;

/// xorshift64*: deterministic and allocation-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("below a usize")
    }
    fn block_len(&mut self) -> usize {
        if self.below(5) == 0 {
            PAGE
        } else {
            1 + self.below(LARGEST_COMPRESSED)
        }
    }
}

fn page_id(i: usize) -> PageId {
    PageId(u32::try_from(i).expect("page index fits u32"))
}

/// A store with `n` blocks; returns their references and lengths.
fn filled(n: usize, rng: &mut Rng, data: &[u8]) -> (MemoryStore, Vec<(BlockRef, usize)>) {
    let mut store = MemoryStore::new(PAGE);
    let blocks = (0..n)
        .map(|i| {
            let len = rng.block_len();
            (store.put(page_id(i), &data[..len]).expect("put"), len)
        })
        .collect();
    (store, blocks)
}

fn bench_store(c: &mut Criterion) {
    let data: Vec<u8> = (0..PAGE)
        .map(|i| u8::try_from(i * 7 % 251).expect("below 251"))
        .collect();
    let mut group = c.benchmark_group("memory_store");
    group.throughput(Throughput::Elements(1));

    group.bench_function("churn", |b| {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut store, mut blocks) = filled(BLOCKS, &mut rng, &data);
        b.iter(|| {
            let i = rng.below(BLOCKS);
            let (block, len) = blocks[i];
            store.remove(page_id(i), block, len);
            let len = rng.block_len();
            let block = store.put(page_id(i), black_box(&data[..len])).expect("put");
            blocks[i] = (block, len);
        });
    });

    group.bench_function("load", |b| {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let (mut store, blocks) = filled(BLOCKS, &mut rng, &data);
        let mut scratch = vec![0u8; PAGE];
        b.iter(|| {
            let i = rng.below(BLOCKS);
            let (block, len) = blocks[i];
            let bytes = store
                .load(page_id(i), block, len, &mut scratch)
                .expect("load");
            black_box(bytes[len - 1])
        });
    });

    group.throughput(Throughput::Elements(FILL as u64));
    group.bench_function("fill_drain", |b| {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        b.iter_batched(
            || {
                let lens: Vec<usize> = (0..FILL).map(|_| rng.block_len()).collect();
                let mut order: Vec<usize> = (0..FILL).collect();
                for i in (1..FILL).rev() {
                    order.swap(i, rng.below(i + 1));
                }
                (lens, order, Vec::with_capacity(FILL))
            },
            |(lens, order, mut blocks)| {
                let mut store = MemoryStore::new(PAGE);
                for (i, &len) in lens.iter().enumerate() {
                    blocks.push(store.put(page_id(i), &data[..len]).expect("put"));
                }
                for &i in &order {
                    store.remove(page_id(i), blocks[i], lens[i]);
                }
                store
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: a 2-core, shared machine; repeat and compare medians.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_store
}
criterion_main!(benches);
