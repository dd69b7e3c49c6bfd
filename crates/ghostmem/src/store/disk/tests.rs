//! Tests of the disk store that need its internals: block offsets (tampering), the nonce
//! counter, the decoder. The black-box tests are in `tests/disk_store.rs`.
#![allow(clippy::cast_possible_truncation, reason = "test patterns")]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;

use super::slots::Slot;
use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ghostmem-disk-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PAGE: usize = 4096;
const CIPHERS: [Option<Cipher>; 3] = [
    None,
    Some(Cipher::Aes256Gcm),
    Some(Cipher::ChaCha20Poly1305),
];

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Where a block's bytes start in the file, and how many there are.
fn extent(store: &DiskStore, block: BlockRef, len: usize) -> (u64, usize) {
    let slot = Slot::unpack(block).unwrap();
    let sealed = if store.cipher().is_some() {
        OVERHEAD
    } else {
        0
    };
    (slot.offset, len + sealed)
}

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let f = OpenOptions::new().read(true).open(path).unwrap();
    let mut v = vec![0u8; len];
    f.read_exact_at(&mut v, offset).unwrap();
    v
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

#[test]
fn flipped_byte_is_refused_and_counted() {
    for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
        let dir = TempDir::new();
        let path = dir.file("swap");
        let mut s = DiskStore::open_with_cipher(&path, PAGE, Some(cipher)).unwrap();
        let mut scratch = vec![0u8; PAGE];
        let data = pattern(1, 1800);
        let other = pattern(2, 700);
        let b = s.put(PageId(5), &data).unwrap();
        let c = s.put(PageId(6), &other).unwrap();
        // Every byte of the sealed block matters: counter, tag, ciphertext.
        let (off, n) = extent(&s, b, data.len());
        for i in [0, 9, 30, n - 1] {
            let orig = read_at(&path, off + i as u64, 1);
            write_at(&path, off + i as u64, &[orig[0] ^ 0x40]);
            let failures = s.stats().auth_failures;
            assert_eq!(
                s.load(PageId(5), b, data.len(), &mut scratch),
                Err(StoreError::Corrupt),
                "{cipher:?} byte {i}"
            );
            assert_eq!(s.stats().auth_failures, failures + 1);
            write_at(&path, off + i as u64, &orig);
        }
        assert_eq!(s.stats().auth_failures, 4);
        assert_eq!(
            s.load(PageId(5), b, data.len(), &mut scratch).unwrap(),
            &data[..]
        );
        // The other block was never disturbed.
        assert_eq!(
            s.load(PageId(6), c, other.len(), &mut scratch).unwrap(),
            &other[..]
        );
    }
}

#[test]
fn one_flipped_byte_exactly_one_failure() {
    let dir = TempDir::new();
    let path = dir.file("swap");
    let mut s = DiskStore::open(&path, PAGE, DiskOptions { encrypt: true }).unwrap();
    let data = pattern(3, PAGE);
    let b = s.put(PageId(1), &data).unwrap();
    let (off, _) = extent(&s, b, data.len());
    let orig = read_at(&path, off + 100, 1);
    write_at(&path, off + 100, &[!orig[0]]);
    let mut scratch = vec![0u8; PAGE];
    assert_eq!(
        s.load(PageId(1), b, PAGE, &mut scratch),
        Err(StoreError::Corrupt)
    );
    assert_eq!(s.stats().auth_failures, 1);
}

#[test]
fn swapped_blocks_are_both_refused() {
    for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
        let dir = TempDir::new();
        let path = dir.file("swap");
        let mut s = DiskStore::open_with_cipher(&path, PAGE, Some(cipher)).unwrap();
        let (x, y) = (pattern(10, 1000), pattern(11, 1000));
        let bx = s.put(PageId(10), &x).unwrap();
        let by = s.put(PageId(11), &y).unwrap();
        let (ox, n) = extent(&s, bx, 1000);
        let (oy, _) = extent(&s, by, 1000);
        let (sx, sy) = (read_at(&path, ox, n), read_at(&path, oy, n));
        write_at(&path, ox, &sy);
        write_at(&path, oy, &sx);
        let mut scratch = vec![0u8; PAGE];
        assert_eq!(
            s.load(PageId(10), bx, 1000, &mut scratch),
            Err(StoreError::Corrupt)
        );
        assert_eq!(
            s.load(PageId(11), by, 1000, &mut scratch),
            Err(StoreError::Corrupt)
        );
        assert_eq!(s.stats().auth_failures, 2);
        // Same page, same generation, another slot: still refused (the slot is bound too).
        s.remove(PageId(10), bx, 1000);
        s.remove(PageId(11), by, 1000);
        let b1 = s.put(PageId(20), &x).unwrap();
        let (o1, n1) = extent(&s, b1, 1000);
        let sealed = read_at(&path, o1, n1);
        s.remove(PageId(20), b1, 1000);
        let _other = s.put(PageId(21), &y).unwrap(); // takes b1's slot
        let b2 = s.put(PageId(20), &x).unwrap();
        assert_ne!(Slot::unpack(b2).unwrap().offset, o1);
        let (o2, _) = extent(&s, b2, 1000);
        write_at(&path, o2, &sealed);
        assert_eq!(
            s.load(PageId(20), b2, 1000, &mut scratch),
            Err(StoreError::Corrupt)
        );
    }
}

#[test]
fn replayed_old_version_is_refused() {
    for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
        let dir = TempDir::new();
        let path = dir.file("swap");
        let mut s = DiskStore::open_with_cipher(&path, PAGE, Some(cipher)).unwrap();
        let old = pattern(20, 2000);
        let new = pattern(21, 2000);
        let b1 = s.put(PageId(7), &old).unwrap();
        let (off, n) = extent(&s, b1, 2000);
        let saved = read_at(&path, off, n);
        s.remove(PageId(7), b1, 2000);
        let b2 = s.put(PageId(7), &new).unwrap();
        let s1 = Slot::unpack(b1).unwrap();
        let s2 = Slot::unpack(b2).unwrap();
        assert_eq!(s2.offset, s1.offset, "the slot is reused");
        assert_eq!(s2.generation, s1.generation + 1, "with the next generation");
        write_at(&path, off, &saved);
        let mut scratch = vec![0u8; PAGE];
        assert_eq!(
            s.load(PageId(7), b2, 2000, &mut scratch),
            Err(StoreError::Corrupt)
        );
        assert_eq!(s.stats().auth_failures, 1);
    }
}

#[test]
fn nonce_counter_exhaustion_refuses_the_put_and_gives_the_slot_back() {
    let dir = TempDir::new();
    let mut s =
        DiskStore::open_with_cipher(&dir.file("swap"), PAGE, Some(Cipher::Aes256Gcm)).unwrap();
    s.sealer.as_mut().unwrap().set_counter(u64::MAX - 1);
    let a = s.put(PageId(0), &[1; 100]).unwrap();
    let end = s.stats().file_bytes;
    let e = s.put(PageId(1), &[2; 100]).unwrap_err();
    assert_eq!(e, StoreError::Io(Errno::OVERFLOW.raw_os_error()));
    assert_eq!(s.stats().write_errors, 1);
    assert_eq!(s.stats().file_bytes, end, "the fresh slot went back");
    let mut scratch = vec![0u8; PAGE];
    assert_eq!(
        s.load(PageId(0), a, 100, &mut scratch).unwrap(),
        &[1; 100][..]
    );
}

#[test]
fn unsupported_page_sizes_are_refused() {
    let dir = TempDir::new();
    for size in [0, 100, 3000, 256, 2 << 20] {
        assert!(matches!(
            DiskStore::open(&dir.file("x"), size, DiskOptions::default()),
            Err(DiskOpenError::PageSize(s)) if s == size
        ));
    }
    for size in [512, 4096, 16384, 65536] {
        let mut s = DiskStore::open(&dir.file("x"), size, DiskOptions { encrypt: true }).unwrap();
        let data = pattern(4, size);
        let b = s.put(PageId(0), &data).unwrap();
        let mut scratch = vec![0u8; size];
        assert_eq!(s.load(PageId(0), b, size, &mut scratch).unwrap(), &data[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The decoder turns arbitrary file bytes into a clean refusal, never a panic, and never
    /// writes its output on refusal.
    #[test]
    fn decoder_refuses_arbitrary_bytes(
        sealed in proptest::collection::vec(any::<u8>(), 0..4200),
        out_len in 0usize..4200,
        page in any::<u32>(),
        block in any::<u64>(),
        chacha in any::<bool>(),
    ) {
        let cipher = if chacha { Cipher::ChaCha20Poly1305 } else { Cipher::Aes256Gcm };
        let sealer = Sealer::new(cipher).unwrap();
        let mut out = vec![0xa5u8; out_len];
        let r = sealer.open(PageId(page), BlockRef(block), &sealed, &mut out);
        prop_assert!(r.is_err());
        prop_assert!(out.iter().all(|&b| b == 0xa5));
    }

}

proptest! {
    // Each case opens a store and seals six blocks: slow with unoptimised ciphers.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Arbitrary references and lengths on a live store: a clean error or, only for the exact
    /// reference, page and length `put` returned, the right bytes.
    #[test]
    fn load_of_arbitrary_references_never_misbehaves(
        probes in proptest::collection::vec(
            (any::<u64>(), 0usize..5000, 0u32..8, 0usize..6), 1..40),
        which in 0usize..3,
    ) {
        let dir = TempDir::new();
        let mut s = DiskStore::open_with_cipher(&dir.file("swap"), PAGE, CIPHERS[which]).unwrap();
        let stored: Vec<(u32, BlockRef, Vec<u8>)> = (0..6u32)
            .map(|p| {
                let d = pattern(p, 1 + (p as usize * 911) % PAGE);
                (p, s.put(PageId(p), &d).unwrap(), d)
            })
            .collect();
        let mut scratch = vec![0u8; PAGE];
        for (raw, len, page, near) in probes {
            // Half the probes are near a real reference (same slot, other bits perturbed).
            let block = if raw % 2 == 0 { BlockRef(stored[near].1.0 ^ (raw >> 40)) } else { BlockRef(raw) };
            let got = s.load(PageId(page), block, len, &mut scratch).map(<[u8]>::to_vec);
            let genuine = stored.iter().find(|(p, b, d)| *p == page && *b == block && d.len() == len);
            match (got, genuine) {
                (Ok(bytes), Some((_, _, d))) => prop_assert_eq!(&bytes, d),
                (Ok(bytes), None) => {
                    // Only without encryption can another reference read something, and then
                    // only bytes that are in the file.
                    prop_assert!(CIPHERS[which].is_none());
                    prop_assert_eq!(bytes.len(), len);
                }
                (Err(StoreError::Corrupt | StoreError::Io(_)), None) => {}
                (Err(e), Some(_)) => prop_assert!(false, "genuine block refused: {e}"),
                (Err(e), None) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }

    /// `locate` accepts exactly the references whose slot lies in the file and fits the length.
    #[test]
    fn locate_is_total(block in any::<u64>(), len in 0usize..10_000) {
        let slots = Slots::new(Geometry::new(PAGE, OVERHEAD)).unwrap();
        prop_assert_eq!(slots.locate(BlockRef(block), len), None, "empty file: nothing is inside");
        let mut slots = slots;
        for l in [1, 300, 4096, 2000] {
            slots.take(l).unwrap();
        }
        if let Some(slot) = slots.locate(BlockRef(block), len) {
            prop_assert!((1..=PAGE).contains(&len));
            prop_assert!(slot.offset < slots.end());
        }
    }
}
