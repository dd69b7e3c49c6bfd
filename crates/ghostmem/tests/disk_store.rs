//! The disk store, tested directly (not through the engine): round trips against a shadow
//! model, the bounded file, confidentiality, file semantics, write failures (in a child process
//! with a low `RLIMIT_FSIZE`), and the stack it needs inside a signal handler.
//!
//! Tampering, replay and the decoder fuzz need the block layout: they are unit tests in
//! `src/store/disk/tests.rs`.
#![allow(clippy::cast_possible_truncation)]

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use ghostmem::PageId;
use ghostmem::store::{
    BlockRef, Cipher, DiskOpenError, DiskOptions, DiskStore, FallbackStore, PageStore, StoreError,
};
use proptest::prelude::*;

const PAGE: usize = 4096;
const CIPHERS: [Option<Cipher>; 3] = [
    None,
    Some(Cipher::Aes256Gcm),
    Some(Cipher::ChaCha20Poly1305),
];

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "ghostmem-disk-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes that differ per seed (xorshift).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Round trips against a shadow model.

#[derive(Debug, Clone)]
enum Op {
    /// Evict `page` with `len` bytes made from `seed` (replacing its block, as the pager does:
    /// a page is restored and removed before it is evicted again).
    Put { page: u32, len: usize, seed: u64 },
    /// Restore `page`: load, compare, remove.
    Restore { page: u32 },
    /// Load `page` without removing it.
    Peek { page: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![1usize..=64, 1usize..=PAGE, Just(PAGE), 250usize..=260];
    prop_oneof![
        4 => (0u32..40, len, any::<u64>()).prop_map(|(page, len, seed)| Op::Put { page, len, seed }),
        2 => (0u32..40).prop_map(|page| Op::Restore { page }),
        1 => (0u32..40).prop_map(|page| Op::Peek { page }),
    ]
}

fn run_model(store: &mut dyn PageStore, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut shadow: HashMap<u32, (BlockRef, Vec<u8>)> = HashMap::new();
    let mut scratch = vec![0u8; PAGE];
    for op in ops {
        match *op {
            Op::Put { page, len, seed } => {
                if let Some((b, d)) = shadow.remove(&page) {
                    store.remove(PageId(page), b, d.len());
                }
                let data = bytes(seed, len);
                let b = store.put(PageId(page), &data).unwrap();
                prop_assert_eq!(b.0 >> 63, 0, "bit 63 is the fallback's");
                shadow.insert(page, (b, data));
            }
            Op::Restore { page } | Op::Peek { page } => {
                let Some((b, d)) = shadow.get(&page).cloned() else {
                    continue;
                };
                let got = store.load(PageId(page), b, d.len(), &mut scratch).unwrap();
                prop_assert_eq!(got, &d[..]);
                if matches!(op, Op::Restore { .. }) {
                    store.remove(PageId(page), b, d.len());
                    shadow.remove(&page);
                }
            }
        }
        let live: usize = shadow.values().map(|(_, d)| d.len()).sum();
        prop_assert_eq!(store.stats().live_bytes, live as u64);
    }
    for (page, (b, d)) in &shadow {
        let got = store
            .load(PageId(*page), *b, d.len(), &mut scratch)
            .unwrap();
        prop_assert_eq!(got, &d[..]);
    }
    prop_assert_eq!(store.stats().auth_failures, 0);
    prop_assert_eq!(store.stats().write_errors, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trips_match_a_shadow_model(
        ops in proptest::collection::vec(op(), 1..400),
        which in 0usize..3,
    ) {
        let dir = TempDir::new();
        let mut store = DiskStore::open_with_cipher(&dir.file("swap"), PAGE, CIPHERS[which]).unwrap();
        run_model(&mut store, &ops)?;
        // The file holds the live blocks and free slots, nothing else.
        let file = std::fs::metadata(dir.file("swap")).unwrap().len();
        prop_assert_eq!(file, store.stats().file_bytes);
    }

    #[test]
    fn fallback_store_round_trips(
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let dir = TempDir::new();
        let disk = DiskStore::open(&dir.file("swap"), PAGE, DiskOptions { encrypt: true }).unwrap();
        let mut store = FallbackStore::new(disk, PAGE);
        run_model(&mut store, &ops)?;
    }
}

#[test]
fn many_sizes_round_trip_encrypted_and_plain() {
    for cipher in CIPHERS {
        let dir = TempDir::new();
        let mut s = DiskStore::open_with_cipher(&dir.file("swap"), PAGE, cipher).unwrap();
        let blocks: Vec<(BlockRef, Vec<u8>)> = (1..=PAGE)
            .step_by(7)
            .chain([PAGE])
            .map(|len| {
                let d = bytes(len as u64, len);
                (s.put(PageId(len as u32), &d).unwrap(), d)
            })
            .collect();
        let mut scratch = vec![0u8; PAGE];
        for (b, d) in &blocks {
            let got = s
                .load(PageId(d.len() as u32), *b, d.len(), &mut scratch)
                .unwrap();
            assert_eq!(got, &d[..], "{cipher:?} len {}", d.len());
        }
        assert_eq!(s.live_blocks(), blocks.len() as u64);
    }
}

// ---------------------------------------------------------------------------------------------
// The bounded file.

/// Re-evict the same 64 pages 10,000 times (restore: load + remove; evict: put), with sizes
/// drawn by `size(page, eviction)`. Returns (largest file seen, live bytes at the end, slots
/// reused, file size at the end).
fn churn(cipher: Option<Cipher>, size: impl Fn(u64, u64) -> usize) -> (u64, u64, u64, u64) {
    let dir = TempDir::new();
    let path = dir.file("swap");
    let mut s = DiskStore::open_with_cipher(&path, PAGE, cipher).unwrap();
    let mut pages: Vec<(BlockRef, usize)> = (0..64u64)
        .map(|p| {
            let len = size(p, p);
            (s.put(PageId(p as u32), &bytes(p, len)).unwrap(), len)
        })
        .collect();
    let mut scratch = vec![0u8; PAGE];
    let mut largest = 0;
    for cycle in 0..10_000u64 {
        let p = (cycle * 37 % 64) as usize;
        let (b, len) = pages[p];
        s.load(PageId(p as u32), b, len, &mut scratch).unwrap();
        s.remove(PageId(p as u32), b, len);
        let len = size(p as u64, cycle + 64);
        let b = s.put(PageId(p as u32), &bytes(cycle + 1000, len)).unwrap();
        pages[p] = (b, len);
        largest = largest.max(s.stats().file_bytes);
    }
    // Everything still reads back.
    for (p, (b, len)) in pages.iter().enumerate() {
        s.load(PageId(p as u32), *b, *len, &mut scratch).unwrap();
    }
    let st = s.stats();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), st.file_bytes);
    (largest, st.live_bytes, st.slots_reused, st.file_bytes)
}

/// xorshift of the cycle number: a reproducible "random" size.
fn mix(n: u64) -> u64 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

#[test]
fn bounded_file_same_sizes() {
    // Each page keeps its size: the file is exactly the 64 slots, whatever the churn.
    for cipher in [None, Some(Cipher::preferred())] {
        let (largest, live, reused, file) =
            churn(cipher, |page, _| 1 + (mix(page) as usize) % PAGE);
        eprintln!(
            "same sizes, {cipher:?}: live {live} B, file {file} B (largest {largest} B), \
             ratio {:.2}, {reused} slots reused",
            largest as f64 / live as f64
        );
        assert_eq!(reused, 10_000);
        assert_eq!(largest, file);
        assert!(
            largest <= 2 * live + 4128,
            "{largest} > 2 x {live} + one page slot"
        );
    }
}

#[test]
fn bounded_file_changing_sizes() {
    // Sizes change on every eviction, as the pager would produce them: 3/4 LZ4 blocks of any
    // size up to 3/4 page, 1/4 raw pages.
    let pager_like = |_page: u64, n: u64| {
        let r = mix(n);
        if r % 4 == 0 {
            PAGE
        } else {
            1 + (r >> 8) as usize % (PAGE * 3 / 4)
        }
    };
    let uniform = |_page: u64, n: u64| 1 + mix(n) as usize % PAGE;
    // (Encrypted only with the pager's sizes: the sealing overhead is the only difference, and
    // unoptimised ciphers make debug runs slow.)
    for (cipher, name, size) in [
        (
            None,
            "pager-like",
            &pager_like as &dyn Fn(u64, u64) -> usize,
        ),
        (None, "uniform", &uniform),
        (Some(Cipher::preferred()), "pager-like", &pager_like),
    ] {
        let (largest, live, reused, file) = churn(cipher, size);
        eprintln!(
            "{name} sizes, {cipher:?}: live {live} B, file {file} B (largest {largest} B), \
             largest/live {:.2}, {reused} slots reused",
            largest as f64 / live as f64
        );
        assert!(reused >= 9_000, "{reused}");
        // Twice the live data, plus one page slot of slack.
        let slack = 4128;
        assert!(
            largest <= 2 * live + slack,
            "{largest} > 2 x {live} + {slack}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Confidentiality.

#[test]
fn plaintext_never_reaches_the_file_when_encrypting() {
    const SECRET: &[u8; 16] = b"GHOSTMEM-SECRET!";
    for encrypt in [true, false] {
        let dir = TempDir::new();
        let path = dir.file("swap");
        let mut s = DiskStore::open(&path, PAGE, DiskOptions { encrypt }).unwrap();
        let mut blocks = Vec::new();
        for p in 0..32u32 {
            // Raw pages and short blocks, all full of the pattern.
            let len = if p % 2 == 0 {
                PAGE
            } else {
                16 * (1 + p as usize)
            };
            let data: Vec<u8> = SECRET.iter().copied().cycle().take(len).collect();
            blocks.push((s.put(PageId(p), &data).unwrap(), data));
        }
        let file = std::fs::read(&path).unwrap();
        assert_eq!(file.len() as u64, s.stats().file_bytes);
        assert_eq!(
            contains(&file, SECRET),
            !encrypt,
            "encrypt = {encrypt}: pattern in the file"
        );
        if encrypt {
            // Not even half of it.
            assert!(!contains(&file, &SECRET[..8]) && !contains(&file, &SECRET[8..]));
        }
        let mut scratch = vec![0u8; PAGE];
        for (p, (b, d)) in blocks.iter().enumerate() {
            assert_eq!(
                s.load(PageId(p as u32), *b, d.len(), &mut scratch).unwrap(),
                &d[..]
            );
        }
    }
}

#[test]
fn encryption_reports_its_cipher() {
    let dir = TempDir::new();
    let s = DiskStore::open(&dir.file("a"), PAGE, DiskOptions { encrypt: true }).unwrap();
    assert_eq!(s.cipher(), Some(Cipher::preferred()));
    let p = DiskStore::open(&dir.file("b"), PAGE, DiskOptions::default()).unwrap();
    assert_eq!(p.cipher(), None);
    assert!(!p.key_locked());
}

// ---------------------------------------------------------------------------------------------
// File semantics.

#[test]
fn file_is_created_private_and_removed_on_drop() {
    let dir = TempDir::new();
    let path = dir.file("ghostmem.swap");
    {
        let mut s = DiskStore::open(&path, PAGE, DiskOptions::default()).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(!s.is_anonymous());
        assert_eq!(s.path(), path);
        s.put(PageId(0), &[7; 100]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
        assert_eq!(s.reserved_bytes(), 256, "one slot of class 0");
    }
    assert!(!path.exists(), "removed on drop");
    assert_eq!(dir.entries(), Vec::<String>::new());
}

#[test]
fn existing_file_is_truncated_and_made_private() {
    let dir = TempDir::new();
    let path = dir.file("old.swap");
    std::fs::write(&path, vec![0x55u8; 10_000]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let s = DiskStore::open(&path, PAGE, DiskOptions::default()).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), 0, "truncated");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    drop(s);
    assert!(!path.exists());
}

#[test]
fn symlink_at_the_path_is_refused_and_its_target_untouched() {
    let dir = TempDir::new();
    let target = dir.file("precious");
    std::fs::write(&target, b"someone else's data").unwrap();
    let link = dir.file("swap");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for encrypt in [false, true] {
        match DiskStore::open(&link, PAGE, DiskOptions { encrypt }) {
            Err(e @ DiskOpenError::Symlink { .. }) => {
                assert_eq!(
                    e.to_string(),
                    format!("refusing a symbolic link at {}", link.display())
                );
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a symlink was followed"),
        }
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"someone else's data");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    // A dangling link must not create its target either.
    let dangling = dir.file("dangling");
    let missing = dir.file("missing");
    std::os::unix::fs::symlink(&missing, &dangling).unwrap();
    assert!(matches!(
        DiskStore::open(&dangling, PAGE, DiskOptions::default()),
        Err(DiskOpenError::Symlink { .. })
    ));
    assert!(!missing.exists());
}

#[test]
fn fifo_and_hard_linked_files_are_refused() {
    let dir = TempDir::new();
    let fifo = dir.file("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert!(matches!(
        DiskStore::open(&fifo, PAGE, DiskOptions::default()),
        Err(DiskOpenError::NotRegularFile { .. })
    ));
    let file = dir.file("data");
    std::fs::write(&file, b"keep me").unwrap();
    std::fs::hard_link(&file, dir.file("alias")).unwrap();
    let e = DiskStore::open(&dir.file("alias"), PAGE, DiskOptions::default()).err();
    assert!(matches!(e, Some(DiskOpenError::Foreign { .. })), "{e:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn directory_gets_an_anonymous_file() {
    let dir = TempDir::new();
    for encrypt in [false, true] {
        let mut s = DiskStore::open(&dir.0, PAGE, DiskOptions { encrypt }).unwrap();
        assert!(s.is_anonymous());
        let data = bytes(9, 3000);
        let b = s.put(PageId(3), &data).unwrap();
        let mut scratch = vec![0u8; PAGE];
        assert_eq!(s.load(PageId(3), b, 3000, &mut scratch).unwrap(), &data[..]);
        assert_eq!(
            dir.entries(),
            Vec::<String>::new(),
            "no name in the directory"
        );
        drop(s);
        assert_eq!(dir.entries(), Vec::<String>::new());
    }
}

#[test]
fn a_file_put_in_place_of_the_swap_file_is_not_removed() {
    let dir = TempDir::new();
    let path = dir.file("swap");
    let s = DiskStore::open(&path, PAGE, DiskOptions::default()).unwrap();
    std::fs::rename(&path, dir.file("moved")).unwrap();
    std::fs::write(&path, b"new file").unwrap();
    drop(s);
    assert_eq!(std::fs::read(&path).unwrap(), b"new file");
}

#[test]
fn missing_parent_directory_is_an_open_error() {
    let dir = TempDir::new();
    let path = dir.file("no/such/dir/swap");
    let e = DiskStore::open(&path, PAGE, DiskOptions::default())
        .err()
        .unwrap();
    assert!(matches!(e, DiskOpenError::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("no/such/dir/swap"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Child processes: write failures under RLIMIT_FSIZE, and a relative path with a change of
// working directory.

const CHILD_VAR: &str = "GHOSTMEM_DISK_STORE_CHILD";

fn run_child(scenario: &str, dir: &Path) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, scenario)
        .env("GHOSTMEM_DISK_STORE_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "child {scenario} failed: {status}\n{out}\n{err}"
    );
    assert!(
        out.contains(&format!("child {scenario} ok")),
        "{out}\n{err}"
    );
    out
}

#[test]
fn write_failures_keep_pages_in_memory() {
    let dir = TempDir::new();
    let out = run_child("fsize", &dir.0);
    eprintln!("{out}");
}

#[test]
fn relative_path_is_removed_from_where_it_was_made() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.file("a")).unwrap();
    std::fs::create_dir(dir.file("b")).unwrap();
    run_child("relative", &dir.0);
    assert_eq!(dir.entries(), ["a", "b"]);
    assert!(std::fs::read_dir(dir.file("a")).unwrap().next().is_none());
}

/// Entry point of the child processes, not a test in its own right: ignored in a normal run,
/// and a failure when run without [`CHILD_VAR`] (`--ignored` by hand).
#[test]
#[ignore = "the child side of the other tests, which run it with --ignored --exact"]
fn child_process_entry() {
    let scenario = std::env::var(CHILD_VAR)
        .unwrap_or_else(|_| panic!("child_process_entry runs only as a child: {CHILD_VAR} unset"));
    let dir = PathBuf::from(std::env::var_os("GHOSTMEM_DISK_STORE_DIR").unwrap());
    match scenario.as_str() {
        "fsize" => child_fsize(&dir),
        "relative" => child_relative(&dir),
        other => panic!("unknown scenario {other}"),
    }
    println!("child {scenario} ok");
}

const FSIZE_LIMIT: u64 = 16 * 4096 + 1000;

fn child_fsize(dir: &Path) {
    // Without this the kernel kills the process with SIGXFSZ instead of failing the write.
    // SAFETY: setting a signal's disposition to "ignore" is async-signal-safe and affects no
    // memory; no other thread of this child handles SIGXFSZ.
    let previous = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    assert_ne!(previous, libc::SIG_ERR);
    let hard = rustix::process::getrlimit(rustix::process::Resource::Fsize).maximum;
    rustix::process::setrlimit(
        rustix::process::Resource::Fsize,
        rustix::process::Rlimit {
            current: Some(FSIZE_LIMIT),
            maximum: hard,
        },
    )
    .unwrap();
    let mut scratch = vec![0u8; PAGE];
    for encrypt in [false, true] {
        // The bare store: the first write past the limit fails with EFBIG, nothing is lost.
        let path = dir.join(format!("bare-{encrypt}"));
        let mut s = DiskStore::open(&path, PAGE, DiskOptions { encrypt }).unwrap();
        let mut stored = Vec::new();
        let err = loop {
            let data = bytes(stored.len() as u64, PAGE);
            match s.put(PageId(stored.len() as u32), &data) {
                Ok(b) => stored.push((b, data)),
                Err(e) => break e,
            }
        };
        assert_eq!(err, StoreError::Io(libc::EFBIG), "encrypt={encrypt}");
        assert_eq!(s.stats().write_errors, 1);
        let on_disk = std::fs::metadata(&path).unwrap().len();
        assert_eq!(
            on_disk,
            s.stats().file_bytes,
            "the short write was cut back"
        );
        assert!(on_disk <= FSIZE_LIMIT);
        for (p, (b, d)) in stored.iter().enumerate() {
            assert_eq!(
                s.load(PageId(p as u32), *b, PAGE, &mut scratch).unwrap(),
                &d[..]
            );
        }
        println!(
            "bare encrypt={encrypt}: {} pages stored in {on_disk} bytes, then {err}",
            stored.len()
        );
        drop(s);

        // Behind the fallback every put succeeds; the ones the disk refused are in memory.
        let path = dir.join(format!("fallback-{encrypt}"));
        let disk = DiskStore::open(&path, PAGE, DiskOptions { encrypt }).unwrap();
        let mut s = FallbackStore::new(disk, PAGE);
        let pages: Vec<(BlockRef, Vec<u8>)> = (0..64u32)
            .map(|p| {
                let d = bytes(u64::from(p) + 100, PAGE);
                (s.put(PageId(p), &d).unwrap(), d)
            })
            .collect();
        let st = s.stats();
        assert!(st.write_errors >= 40, "{st:?}");
        assert_eq!(s.blocks_in_memory(), st.write_errors);
        assert_eq!(st.live_bytes, 64 * PAGE as u64);
        for (p, (b, d)) in pages.iter().enumerate() {
            assert_eq!(
                s.load(PageId(p as u32), *b, PAGE, &mut scratch).unwrap(),
                &d[..]
            );
        }
        // Freeing disk slots lets later puts go to disk again.
        for (p, (b, _)) in pages.iter().enumerate().take(8) {
            s.remove(PageId(p as u32), *b, PAGE);
        }
        let again = s.put(PageId(0), &bytes(7, PAGE)).unwrap();
        assert_eq!(again.0 >> 63, 0, "back on disk");
        println!(
            "fallback encrypt={encrypt}: {} of 64 pages kept in memory (write_errors {})",
            st.write_errors, st.write_errors
        );
    }
}

fn child_relative(dir: &Path) {
    std::env::set_current_dir(dir.join("a")).unwrap();
    let mut s = DiskStore::open(Path::new("rel.swap"), PAGE, DiskOptions::default()).unwrap();
    assert!(dir.join("a/rel.swap").is_file());
    let b = s.put(PageId(1), &[3; 10]).unwrap();
    // Another working directory, and a file of the same name there: neither matters.
    std::env::set_current_dir(dir.join("b")).unwrap();
    std::fs::write("rel.swap", b"not the swap file").unwrap();
    let mut scratch = vec![0u8; PAGE];
    assert_eq!(
        s.load(PageId(1), b, 10, &mut scratch).unwrap(),
        &[3; 10][..]
    );
    drop(s);
    assert!(!dir.join("a/rel.swap").exists());
    assert_eq!(
        std::fs::read(dir.join("b/rel.swap")).unwrap(),
        b"not the swap file"
    );
    std::fs::remove_file(dir.join("b/rel.swap")).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Inside a signal handler on a small alternate stack, as in the fault handler.

mod signal_stack {
    use std::ptr;
    use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

    use super::*;

    static STORE: AtomicPtr<FallbackStore<DiskStore>> = AtomicPtr::new(ptr::null_mut());
    static SCRATCH: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
    static PAGE_DATA: [u8; PAGE] = {
        let mut a = [0u8; PAGE];
        let mut i = 0;
        while i < PAGE {
            a[i] = (i * 31 % 251) as u8;
            i += 1;
        }
        a
    };
    /// 1: round trip ok; 2: wrong bytes; 3: a store error.
    static OUTCOME: AtomicU32 = AtomicU32::new(0);
    /// Whether the handler uses the store (else it only reports, to measure the kernel's frame).
    static USE_STORE: AtomicU32 = AtomicU32::new(1);

    /// What the fault handler asks of the store: evict a page (put), restore one (load +
    /// remove). Allocates nothing, takes no lock.
    extern "C" fn handler(_signal: libc::c_int) {
        if USE_STORE.load(Ordering::Acquire) == 0 {
            OUTCOME.store(1, Ordering::Release);
            return;
        }
        // SAFETY: the test stored a live, exclusively lent store and a PAGE-byte scratch
        // buffer before raising the signal, and waits (in `raise`) until the handler returns.
        let (store, scratch) = unsafe {
            (
                &mut *STORE.load(Ordering::Acquire),
                std::slice::from_raw_parts_mut(SCRATCH.load(Ordering::Acquire), PAGE),
            )
        };
        let outcome = match store.put(PageId(9), &PAGE_DATA) {
            Ok(b) => {
                let same = match store.load(PageId(9), b, PAGE, scratch) {
                    Ok(got) => got == &PAGE_DATA[..],
                    Err(_) => false,
                };
                store.remove(PageId(9), b, PAGE);
                if same { 1 } else { 2 }
            }
            Err(_) => 3,
        };
        OUTCOME.store(outcome, Ordering::Release);
    }

    /// Run one put + load + remove in a SIGUSR1 handler on a painted alternate stack; return
    /// the bytes of that stack that were used (the kernel's signal frame included).
    fn stack_used(store: &mut FallbackStore<DiskStore>) -> usize {
        const ALT: usize = 512 << 10;
        const PAINT: u8 = 0xcd;
        let mut scratch = vec![0u8; PAGE];
        STORE.store(store, Ordering::Release);
        SCRATCH.store(scratch.as_mut_ptr(), Ordering::Release);
        OUTCOME.store(0, Ordering::Release);
        let mut stack = vec![PAINT; ALT];
        // SAFETY: plain libc calls on valid, zero-initialised structures; the alternate stack
        // is `ALT` bytes we own and keep alive (and unchanged in place) until it is disabled
        // again below; the handler only uses what the statics point at, which stays alive.
        unsafe {
            let ss = libc::stack_t {
                ss_sp: stack.as_mut_ptr().cast(),
                ss_flags: 0,
                ss_size: ALT,
            };
            let mut old_ss: libc::stack_t = std::mem::zeroed();
            assert_eq!(libc::sigaltstack(&ss, &mut old_ss), 0);
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old_sa: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, &mut old_sa), 0);
            assert_eq!(libc::raise(libc::SIGUSR1), 0);
            assert_eq!(libc::sigaction(libc::SIGUSR1, &old_sa, ptr::null_mut()), 0);
            assert_eq!(libc::sigaltstack(&old_ss, ptr::null_mut()), 0);
        }
        STORE.store(ptr::null_mut(), Ordering::Release);
        assert_eq!(
            OUTCOME.load(Ordering::Acquire),
            1,
            "round trip in the handler"
        );
        let untouched = stack.iter().take_while(|&&b| b == PAINT).count();
        ALT - untouched
    }

    #[test]
    fn store_works_in_a_signal_handler_on_a_small_stack() {
        let dir = TempDir::new();
        let budget = if cfg!(debug_assertions) {
            64 << 10
        } else {
            8 << 10
        };
        let disk = DiskStore::open(&dir.file("swap"), PAGE, DiskOptions::default()).unwrap();
        USE_STORE.store(0, Ordering::Release);
        let frame = stack_used(&mut FallbackStore::new(disk, PAGE));
        USE_STORE.store(1, Ordering::Release);
        eprintln!("kernel signal frame + empty handler: {frame} bytes");
        for cipher in CIPHERS {
            let disk = DiskStore::open_with_cipher(&dir.file("swap"), PAGE, cipher).unwrap();
            let mut store = FallbackStore::new(disk, PAGE);
            let used = stack_used(&mut store);
            eprintln!(
                "{cipher:?}: {used} bytes of signal stack, {} beyond the kernel's frame",
                used - frame
            );
            assert!(
                used - frame <= budget,
                "{cipher:?}: {used} - {frame} > {budget}"
            );
        }
    }
}
