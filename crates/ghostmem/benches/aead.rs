//! AEAD for the disk store on 4 KiB pages: ChaCha20-Poly1305 vs AES-256-GCM (RustCrypto).
//!
//! Run with `cargo bench -p ghostmem --bench aead`.
//!
//! Self-contained on purpose (it does not use the disk store), so the choice can be
//! re-evaluated on another machine; the results and the recommendation are in `docs/aead.md`.
//!
//! What is measured is exactly what the store does per block, with nothing allocated:
//! * seal: `encrypt_inout_detached` from the caller's bytes into a buffer the store owns
//!   (an `InOutBuf` with separate input and output), with 24 bytes of associated data
//!   (page id, write generation, length) and a fresh 96-bit nonce from a 64-bit counter;
//! * open: `decrypt_inout_detached` of those bytes (tag verified first) into the caller's
//!   scratch buffer.
//!
//! Two block sizes: a full 4096-byte page (what the pager stores for incompressible data)
//! and 1536 bytes (a typical LZ4 block of a text or integer page). The baseline is a plain
//! copy of the same bytes, measured in the same run, so the table can give the cost of
//! encryption as a ratio to the copy the store would do anyway.
//!
//! Before measuring, every block is sealed and opened with each cipher and checked to come
//! back byte-identical, and a tampered byte / wrong associated data is checked to be refused.

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadCore, AeadInOut, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 2] = [4096, 1536];

/// Deterministic, incompressible-looking bytes (xorshift), so nothing depends on content.
fn block(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&counter.to_le_bytes());
    n
}

fn aad(page: u32, generation: u64, len: usize) -> [u8; 24] {
    let mut a = [0u8; 24];
    a[..8].copy_from_slice(&u64::from(page).to_le_bytes());
    a[8..16].copy_from_slice(&generation.to_le_bytes());
    a[16..].copy_from_slice(&(len as u64).to_le_bytes());
    a
}

/// A 96-bit-nonce, 128-bit-tag AEAD (both candidates).
trait Aead96: AeadInOut + AeadCore<NonceSize = U12, TagSize = U16> {}
impl<A: AeadInOut + AeadCore<NonceSize = U12, TagSize = U16>> Aead96 for A {}

/// Seal `data` into `out` (same length); return the tag.
fn seal<A: Aead96>(cipher: &A, counter: u64, data: &[u8], out: &mut [u8]) -> [u8; 16] {
    let ad = aad(7, counter, data.len());
    let buf = InOutBuf::new(data, out).expect("same length");
    let tag = cipher
        .encrypt_inout_detached(&nonce(counter).into(), &ad, buf)
        .expect("4 KiB is far below the AEAD's limits");
    let mut t = [0u8; 16];
    t.copy_from_slice(&tag);
    t
}

/// Open `sealed` into `out`; `false` if authentication failed.
fn open<A: Aead96>(
    cipher: &A,
    counter: u64,
    sealed: &[u8],
    tag: &[u8; 16],
    out: &mut [u8],
) -> bool {
    let ad = aad(7, counter, sealed.len());
    let buf = InOutBuf::new(sealed, out).expect("same length");
    cipher
        .decrypt_inout_detached(&nonce(counter).into(), &ad, buf, tag.into())
        .is_ok()
}

fn check<A: Aead96>(name: &str, cipher: &A) {
    for (i, &len) in SIZES.iter().enumerate() {
        let data = block(len, 0x9e37_79b9 + i as u64);
        let mut sealed = vec![0u8; len];
        let mut back = vec![0u8; len];
        let tag = seal(cipher, 41, &data, &mut sealed);
        assert_ne!(sealed, data, "{name}: ciphertext equals plaintext");
        assert!(open(cipher, 41, &sealed, &tag, &mut back), "{name}: open");
        assert_eq!(back, data, "{name}: round trip of {len} bytes");
        assert!(
            !open(cipher, 42, &sealed, &tag, &mut back),
            "{name}: wrong nonce/aad"
        );
        sealed[len / 2] ^= 1;
        assert!(
            !open(cipher, 41, &sealed, &tag, &mut back),
            "{name}: tampered"
        );
    }
}

fn bench(c: &mut Criterion) {
    let key = [0x5au8; 32];
    let chacha = ChaCha20Poly1305::new(&key.into());
    let aes = Aes256Gcm::new(&key.into());
    check("chacha20poly1305", &chacha);
    check("aes-256-gcm", &aes);

    for dir in ["seal", "open"] {
        let mut g = c.benchmark_group(format!("aead-{dir}"));
        g.measurement_time(Duration::from_secs(3));
        g.warm_up_time(Duration::from_secs(1));
        for &len in &SIZES {
            let data = block(len, 0xdead_beef);
            let mut out = vec![0u8; len];
            let mut counter = 0u64;
            g.throughput(Throughput::Bytes(len as u64));

            g.bench_with_input(BenchmarkId::new("copy (baseline)", len), &data, |b, d| {
                b.iter(|| {
                    out.copy_from_slice(black_box(d));
                    black_box(&out);
                })
            });

            macro_rules! cipher {
                ($name:literal, $c:expr) => {{
                    let mut sealed = vec![0u8; len];
                    let tag = seal($c, 1, &data, &mut sealed);
                    if dir == "seal" {
                        g.bench_with_input(BenchmarkId::new($name, len), &data, |b, d| {
                            b.iter(|| {
                                counter += 1;
                                black_box(seal($c, counter, black_box(d), &mut out))
                            })
                        });
                    } else {
                        g.bench_with_input(BenchmarkId::new($name, len), &sealed, |b, s| {
                            b.iter(|| {
                                let ok = open($c, 1, black_box(s), &tag, &mut out);
                                assert!(ok);
                                black_box(&out);
                            })
                        });
                    }
                }};
            }
            cipher!("chacha20poly1305", &chacha);
            cipher!("aes-256-gcm", &aes);
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
