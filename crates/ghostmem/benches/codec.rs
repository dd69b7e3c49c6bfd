//! LZ4 on 4 KiB pages: pure-Rust `lz4_flex` vs C liblz4 (via `lz4-sys`).
//!
//! Run with `cargo bench -p ghostmem --bench codec`.
//!
//! The C side is the engine's own codec (`ghostmem::codec::Lz4`: liblz4's
//! `LZ4_compress_fast_extState` with a preallocated state, `LZ4_decompress_safe`), so the
//! numbers describe exactly what the fault path runs (see `docs/codec.md`).
//!
//! Semantics mirror the engine's store policy: a page whose LZ4 output would exceed
//! 3/4 of a page (3072 bytes) is stored raw.
//! * C: `LZ4_compress_fast_extState` with `dstCapacity = 3072` and a caller-owned
//!   state; a return of 0 means "raw".
//! * `lz4_flex`: `compress_into` rejects *any* output buffer smaller than
//!   `get_maximum_output_size(4096)` (4525 bytes) up front with `OutputTooSmall`,
//!   even for pages that compress to 90 bytes, so it is given a full-size buffer
//!   and its result is checked against 3072 afterwards.
//!
//! Decompression is only benchmarked for pages that are stored compressed; raw pages
//! are restored with a plain 4 KiB copy.
//!
//! Before measuring, every page is round-tripped through all four combinations
//! (C -> C, C -> lz4_flex, lz4_flex -> C, lz4_flex -> lz4_flex) and the result is
//! asserted to be byte-identical to the original page.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lz4_flex::block::{
    CompressTable, compress_into, compress_into_with_table, decompress_into,
    get_maximum_output_size,
};
// The C library is built and linked by `lz4-sys`; the functions below are not part of
// its Rust bindings, so they are declared here. This import keeps the crate (and thus
// `liblz4.a`) linked.
use ghostmem::codec::{Codec, Lz4};

const PAGE: usize = 4096;
/// Largest compressed size the engine stores; anything larger is stored raw.
const MAX_STORED: usize = PAGE / 4 * 3;
/// Output buffer `lz4_flex::block::compress_into` insists on for a 4 KiB page.
const FLEX_BUF: usize = get_maximum_output_size(PAGE);

// ---------------------------------------------------------------------------------
// Codecs

/// The engine's decoder; returns the decompressed length (the whole page) or `None`.
fn c_decompress(codec: &mut Lz4, src: &[u8], dst: &mut [u8]) -> Option<usize> {
    codec.decompress(src, dst).ok().map(|()| dst.len())
}

/// `lz4_flex::block::compress_into` + the engine's 3/4-page policy.
fn flex_compress(src: &[u8], dst: &mut [u8; FLEX_BUF]) -> Option<usize> {
    let n = compress_into(src, dst).expect("buffer is get_maximum_output_size");
    (n <= MAX_STORED).then_some(n)
}

/// Same, reusing a caller-owned hash table (never allocates, even with `alloc`).
fn flex_compress_table(
    src: &[u8],
    dst: &mut [u8; FLEX_BUF],
    table: &mut CompressTable,
) -> Option<usize> {
    let n = compress_into_with_table(src, dst, table).expect("buffer is get_maximum_output_size");
    (n <= MAX_STORED).then_some(n)
}

// ---------------------------------------------------------------------------------
// Deterministic page contents

struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n as u64).expect("below n")
    }
}

const KINDS: [&str; 5] = ["text", "numbers", "repetitive", "random", "half_random"];

fn make_page(kind: &str) -> Box<[u8; PAGE]> {
    let mut page = Box::new([0u8; PAGE]);
    let mut rng = SplitMix64(0x6768_6f73_746d_656d ^ kind.len() as u64);
    match kind {
        // English-like prose from a small vocabulary with spaces and punctuation.
        "text" => {
            #[rustfmt::skip]
            const WORDS: &[&str] = &[
                "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was",
                "with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from", "at",
                "which", "but", "have", "an", "had", "they", "you", "were", "memory", "page",
                "process", "kernel", "compressed", "value", "system", "table", "number", "time",
                "people", "little", "could", "there", "would", "about", "other", "first",
                "after", "before", "between", "through", "against", "without", "during",
                "because", "thought", "nothing", "something", "everything", "house", "water",
            ];
            let mut out = Vec::with_capacity(PAGE + 32);
            let mut capitalize = true;
            while out.len() < PAGE {
                let start = out.len();
                out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
                if capitalize {
                    out[start] = out[start].to_ascii_uppercase();
                    capitalize = false;
                }
                match rng.below(20) {
                    0 | 1 => out.extend_from_slice(b", "),
                    2 => {
                        out.extend_from_slice(b". ");
                        capitalize = true;
                    }
                    3 if rng.below(4) == 0 => {
                        out.extend_from_slice(b".\n");
                        capitalize = true;
                    }
                    _ => out.push(b' '),
                }
            }
            page.copy_from_slice(&out[..PAGE]);
        }
        // Typical numeric arrays, little-endian: 1 KiB of u32 counters, 1 KiB of u64
        // small numbers (< 16), 1 KiB of u64 counters, 1 KiB of u32 small numbers (< 100).
        "numbers" => {
            let (a, rest) = page.split_at_mut(1024);
            let (b, rest) = rest.split_at_mut(1024);
            let (c, d) = rest.split_at_mut(1024);
            for (i, w) in (100_000u32..).zip(a.chunks_exact_mut(4)) {
                w.copy_from_slice(&i.to_le_bytes());
            }
            for w in b.chunks_exact_mut(8) {
                w.copy_from_slice(&(rng.next_u64() % 16).to_le_bytes());
            }
            for (i, w) in (1_700_000_000_000_000u64..).zip(c.chunks_exact_mut(8)) {
                w.copy_from_slice(&i.to_le_bytes());
            }
            for w in d.chunks_exact_mut(4) {
                let v = u32::try_from(rng.below(100)).expect("< 100");
                w.copy_from_slice(&v.to_le_bytes());
            }
        }
        // Mostly-constant array of 16-byte structs {u32 tag, u32 flags, u64 value}:
        // a 16-byte pattern whose `value` changes every 32 records.
        "repetitive" => {
            for (i, rec) in (0u64..).zip(page.chunks_exact_mut(16)) {
                rec[0..4].copy_from_slice(&0xC0FF_EE00u32.to_le_bytes());
                rec[4..8].copy_from_slice(&7u32.to_le_bytes());
                rec[8..16].copy_from_slice(&(0x1000 + i / 32).to_le_bytes());
            }
        }
        // Incompressible.
        "random" => {
            for w in page.chunks_exact_mut(8) {
                w.copy_from_slice(&rng.next_u64().to_le_bytes());
            }
        }
        // First half random, second half zero.
        "half_random" => {
            for w in page[..PAGE / 2].chunks_exact_mut(8) {
                w.copy_from_slice(&rng.next_u64().to_le_bytes());
            }
        }
        _ => unreachable!("unknown page kind {kind}"),
    }
    page
}

// ---------------------------------------------------------------------------------
// Cross-implementation check

/// Compresses `page` with both codecs (unbounded output) and decompresses each result
/// with both codecs; every output must equal the page. Returns the two compressed
/// sizes as the engine would see them (`None` = stored raw).
fn check_round_trips(kind: &str, page: &[u8; PAGE]) -> (Option<usize>, Option<usize>) {
    let mut c = Lz4::new();
    let mut c_out = [0u8; FLEX_BUF];
    let c_len = c
        .compress(page, &mut c_out)
        .expect("bound-sized buffer always fits");
    let mut f_out = [0u8; FLEX_BUF];
    let f_len = compress_into(page, &mut f_out).expect("bound-sized buffer always fits");

    for (enc, block) in [("C", &c_out[..c_len]), ("lz4_flex", &f_out[..f_len])] {
        let mut a = [0u8; PAGE];
        let mut b = [0u8; PAGE];
        assert_eq!(
            c_decompress(&mut c, block, &mut a),
            Some(PAGE),
            "{kind}: {enc} -> C"
        );
        assert_eq!(
            decompress_into(block, &mut b).ok(),
            Some(PAGE),
            "{kind}: {enc} -> lz4_flex"
        );
        assert!(a == *page, "{kind}: {enc} -> C not byte-identical");
        assert!(b == *page, "{kind}: {enc} -> lz4_flex not byte-identical");
    }

    let mut small = [0u8; MAX_STORED];
    let c_stored = c.compress(page, &mut small);
    assert_eq!(
        c_stored.is_some(),
        c_len <= MAX_STORED,
        "{kind}: limited-output disagrees"
    );
    let f_stored = (f_len <= MAX_STORED).then_some(f_len);
    (c_stored, f_stored)
}

// ---------------------------------------------------------------------------------
// Benchmarks

fn bench_codecs(crit: &mut Criterion) {
    let pages: Vec<(&str, Box<[u8; PAGE]>)> = KINDS.iter().map(|&k| (k, make_page(k))).collect();

    for (kind, page) in &pages {
        let (c, f) = check_round_trips(kind, page);
        let show = |n: Option<usize>| n.map_or_else(|| "raw".to_owned(), |n| format!("{n} B"));
        eprintln!(
            "codec: {kind:<12} C acc1 = {:>7}, lz4_flex = {:>7}; cross round-trips identical",
            show(c),
            show(f)
        );
    }

    let mut group = crit.benchmark_group("compress");
    group.throughput(Throughput::Bytes(PAGE as u64));
    for (kind, page) in &pages {
        let page: &[u8] = &page[..];
        let mut c = Lz4::new();
        let mut c_dst = [0u8; MAX_STORED];
        group.bench_function(BenchmarkId::new("lz4_c", kind), |b| {
            b.iter(|| c.compress(black_box(page), black_box(&mut c_dst)));
        });
        let mut f_dst = [0u8; FLEX_BUF];
        group.bench_function(BenchmarkId::new("lz4_flex", kind), |b| {
            b.iter(|| flex_compress(black_box(page), black_box(&mut f_dst)));
        });
        let mut table = CompressTable::default();
        group.bench_function(BenchmarkId::new("lz4_flex_table", kind), |b| {
            b.iter(|| flex_compress_table(black_box(page), black_box(&mut f_dst), &mut table));
        });
    }
    group.finish();

    let mut group = crit.benchmark_group("decompress");
    group.throughput(Throughput::Bytes(PAGE as u64));
    for (kind, page) in &pages {
        let mut out = [0u8; PAGE];
        let mut c_dst = [0u8; MAX_STORED];
        if let Some(n) = Lz4::new().compress(&page[..], &mut c_dst) {
            let block = &c_dst[..n];
            group.bench_function(BenchmarkId::new("lz4_c", kind), |b| {
                let mut codec = Lz4::new();
                b.iter(|| c_decompress(&mut codec, black_box(block), black_box(&mut out)));
            });
        }
        let mut f_dst = [0u8; FLEX_BUF];
        if let Some(n) = flex_compress(&page[..], &mut f_dst) {
            let block = &f_dst[..n];
            group.bench_function(BenchmarkId::new("lz4_flex", kind), |b| {
                b.iter(|| decompress_into(black_box(block), black_box(&mut out)));
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Short-ish runs: 2-core, noisy machine; repeat the whole bench and take medians.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_codecs
}
criterion_main!(benches);
