//! LZ4 on 4 KiB pages: pure-Rust `lz4_flex` vs C liblz4 (via `lz4-sys`).
//!
//! Run with `cargo bench -p ghostmem --bench codec`.
//!
//! Self-contained on purpose: it does not use the engine's codec module, so it can
//! be used to re-evaluate the codec choice independently of the engine (see
//! `docs/codec.md`).
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
use std::os::raw::{c_char, c_int, c_void};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lz4_flex::block::{
    CompressTable, compress_into, compress_into_with_table, decompress_into,
    get_maximum_output_size,
};
// The C library is built and linked by `lz4-sys`; the functions below are not part of
// its Rust bindings, so they are declared here. This import keeps the crate (and thus
// `liblz4.a`) linked.
use lz4_sys as _;

unsafe extern "C" {
    /// Size in bytes of the state for `LZ4_compress_fast_extState` (16416 in lz4 1.10).
    safe fn LZ4_sizeofState() -> c_int;
    /// Compresses `src_size` bytes into at most `dst_capacity` bytes using the
    /// caller-provided, 8-byte-aligned `state`. Returns the compressed size, or 0 if
    /// the output did not fit. Never allocates.
    fn LZ4_compress_fast_extState(
        state: *mut c_void,
        src: *const c_char,
        dst: *mut c_char,
        src_size: c_int,
        dst_capacity: c_int,
        acceleration: c_int,
    ) -> c_int;
    /// Decompresses a block; returns the decompressed size or a negative value on
    /// malformed input. Never reads/writes outside the given buffers. Never allocates.
    fn LZ4_decompress_safe(
        src: *const c_char,
        dst: *mut c_char,
        compressed_size: c_int,
        dst_capacity: c_int,
    ) -> c_int;
}

const PAGE: usize = 4096;
/// Largest compressed size the engine stores; anything larger is stored raw.
const MAX_STORED: usize = PAGE / 4 * 3;
/// Output buffer `lz4_flex::block::compress_into` insists on for a 4 KiB page.
const FLEX_BUF: usize = get_maximum_output_size(PAGE);

// ---------------------------------------------------------------------------------
// Codecs

/// C liblz4 compressor with a preallocated state (what the engine can own up front,
/// so nothing is allocated on the fault path).
struct CCompressor {
    /// `u64` storage gives the 8-byte alignment LZ4 requires.
    state: Box<[u64]>,
    acceleration: c_int,
}

impl CCompressor {
    fn new(acceleration: c_int) -> Self {
        let bytes = usize::try_from(LZ4_sizeofState()).expect("LZ4_sizeofState is positive");
        Self {
            state: vec![0u64; bytes.div_ceil(8)].into_boxed_slice(),
            acceleration,
        }
    }

    /// Returns the compressed length, or `None` if the page must be stored raw.
    fn compress(&mut self, src: &[u8], dst: &mut [u8]) -> Option<usize> {
        let src_len = c_int::try_from(src.len()).expect("page fits in c_int");
        let dst_len = c_int::try_from(dst.len()).expect("buffer fits in c_int");
        // SAFETY: `state` is 8-byte aligned and at least `LZ4_sizeofState()` bytes and
        // exclusively borrowed; `src`/`dst` are valid for `src_len`/`dst_len` bytes and
        // do not overlap (`&` vs `&mut`). LZ4 writes at most `dst_len` bytes to `dst`.
        let n = unsafe {
            LZ4_compress_fast_extState(
                self.state.as_mut_ptr().cast(),
                src.as_ptr().cast(),
                dst.as_mut_ptr().cast(),
                src_len,
                dst_len,
                self.acceleration,
            )
        };
        usize::try_from(n).ok().filter(|&n| n > 0)
    }
}

/// `LZ4_decompress_safe`; returns the decompressed length, `None` on malformed input.
fn c_decompress(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    let src_len = c_int::try_from(src.len()).expect("block fits in c_int");
    let dst_len = c_int::try_from(dst.len()).expect("buffer fits in c_int");
    // SAFETY: `src` is valid for reads of `src_len` bytes, `dst` for writes of
    // `dst_len` bytes, and they do not overlap. `LZ4_decompress_safe` never accesses
    // memory outside these ranges, even for malformed input.
    let n = unsafe {
        LZ4_decompress_safe(
            src.as_ptr().cast(),
            dst.as_mut_ptr().cast(),
            src_len,
            dst_len,
        )
    };
    usize::try_from(n).ok()
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
    let mut c = CCompressor::new(1);
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
            c_decompress(block, &mut a),
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
        let mut c = CCompressor::new(1);
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
        if let Some(n) = CCompressor::new(1).compress(&page[..], &mut c_dst) {
            let block = &c_dst[..n];
            group.bench_function(BenchmarkId::new("lz4_c", kind), |b| {
                b.iter(|| c_decompress(black_box(block), black_box(&mut out)));
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
