//! Disk-backed mode through the engine: round trips for every combination of compression and
//! encryption, confidentiality of the swap file, tampering (the process stops, never returns
//! wrong bytes), write failures (nothing lost), the symlink refusal, and switching stores on a
//! live instance.
//!
//! Subprocess scenarios re-run this test binary with `GHOSTMEM_DISK_CHILD` naming the scenario.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr::NonNull;

use ghostmem::{Config, Error, GhostMem, page_size};

const CHILD: &str = "GHOSTMEM_DISK_CHILD";
const SWAP: &str = "GHOSTMEM_DISK_SWAP";

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ghostmem-disk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn disk_config(pages: usize, path: &Path, compress: bool, encrypt: bool) -> Config {
    Config::builder()
        .max_memory_pages(pages)
        .use_disk_backing(true)
        .disk_file_path(path)
        .compress_before_disk(compress)
        .encrypt_disk_pages(encrypt)
        .build()
        .unwrap()
}

/// One allocation seen as bytes, with a shadow copy in ordinary memory.
struct Region<'g> {
    ghost: &'g GhostMem,
    ptr: NonNull<u8>,
    shadow: Vec<u8>,
}

impl<'g> Region<'g> {
    fn new(ghost: &'g GhostMem, pages: usize) -> Self {
        let len = pages * page_size();
        let ptr = ghost.alloc_raw(len).unwrap();
        Region {
            ghost,
            ptr,
            shadow: vec![0; len],
        }
    }
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the allocation is `shadow.len()` bytes, reads as zeros before it is written,
        // and lives until `Drop`; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.shadow.len()) }
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        self.bytes()[offset..offset + data.len()].copy_from_slice(data);
        self.shadow[offset..offset + data.len()].copy_from_slice(data);
    }
    fn verify(&mut self) {
        let len = self.shadow.len();
        let page = page_size();
        for start in (0..len).step_by(page) {
            let ghost = self.bytes()[start..start + page].to_vec();
            assert!(
                ghost == self.shadow[start..start + page],
                "page at offset {start} differs"
            );
        }
    }
}

impl Drop for Region<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this size; no view outlives `self`.
        unsafe { self.ghost.free_raw(self.ptr.as_ptr(), self.shadow.len()) }.unwrap();
    }
}

/// Deterministic page contents of several kinds: text, numbers, zeros, noise.
fn page_data(kind: usize, seed: u64) -> Vec<u8> {
    let page = page_size();
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    match kind % 4 {
        0 => b"the quick brown fox jumps over the lazy ghost page; "
            .iter()
            .cycle()
            .take(page)
            .copied()
            .collect(),
        1 => (0..page / 8)
            .flat_map(|i| (seed + i as u64 * 3).to_le_bytes())
            .collect(),
        2 => vec![0; page],
        _ => (0..page).map(|_| next().to_le_bytes()[0]).collect(),
    }
}

#[test]
fn every_combination_round_trips_under_a_tiny_budget() {
    let dir = scratch("combos");
    for compress in [true, false] {
        for encrypt in [false, true] {
            let path = dir.join(format!("c{compress}-e{encrypt}.swap"));
            let ghost = GhostMem::new(disk_config(3, &path, compress, encrypt)).unwrap();
            assert!(path.exists(), "the swap file is created");
            let pages = 48;
            let mut r = Region::new(&ghost, pages);
            for p in 0..pages {
                r.write(p * page_size(), &page_data(p, p as u64));
            }
            r.verify();
            // Rewrite a scattered subset: pages come back, change, and go out again.
            for p in (0..pages).step_by(5) {
                r.write(p * page_size() + 100, &page_data(p + 1, 99)[..500]);
            }
            r.verify();
            let s = ghost.stats();
            assert!(s.resident_pages <= 3, "{s:?}");
            assert!(s.evictions > pages as u64 && s.restores > 0, "{s:?}");
            assert!(s.store_file_bytes > 0, "pages went to the file: {s:?}");
            assert_eq!(s.store_write_errors + s.store_auth_failures, 0, "{s:?}");
            if compress {
                assert!(s.compressed_pages > 0, "{s:?}");
            } else {
                assert_eq!(s.compressed_pages, 0, "compression off stores raw: {s:?}");
            }
            drop(r);
            drop(ghost);
            assert!(!path.exists(), "the swap file is removed on clean shutdown");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A 16-byte marker repeated over pages, with a per-page counter so no page is same-filled.
fn secret_page(i: usize) -> Vec<u8> {
    let mut page: Vec<u8> = b"GHOSTMEM-SECRET!"
        .iter()
        .cycle()
        .take(page_size())
        .copied()
        .collect();
    page[..8].copy_from_slice(&(i as u64).to_le_bytes());
    page
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn encryption_keeps_plaintext_out_of_the_swap_file() {
    let dir = scratch("secret");
    for encrypt in [false, true] {
        let path = dir.join(format!("e{encrypt}.swap"));
        let ghost = GhostMem::new(disk_config(2, &path, false, encrypt)).unwrap();
        let mut r = Region::new(&ghost, 16);
        for p in 0..16 {
            r.write(p * page_size(), &secret_page(p));
        }
        assert!(ghost.stats().evicted_pages >= 14);
        let file = std::fs::read(&path).unwrap();
        assert_eq!(
            contains(&file, b"GHOSTMEM-SECRET!"),
            !encrypt,
            "encrypt = {encrypt}: the marker must be in the file exactly when encryption is off"
        );
        r.verify();
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_symlink_at_the_swap_path_is_refused_and_its_target_untouched() {
    let dir = scratch("symlink");
    let target = dir.join("precious.txt");
    std::fs::write(&target, b"someone else's data").unwrap();
    let link = dir.join("ghost.swap");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = GhostMem::new(disk_config(4, &link, true, false)).unwrap_err();
    assert!(matches!(err, Error::Disk(_)), "{err:?}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"someone else's data");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unopenable_swap_path_is_an_error() {
    let err = GhostMem::new(disk_config(
        4,
        Path::new("/nonexistent-ghostmem-dir/x.swap"),
        true,
        false,
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Disk(_)), "{err:?}");
}

#[test]
fn a_directory_gets_an_anonymous_swap_file() {
    let dir = scratch("tmpfile");
    let ghost = GhostMem::new(disk_config(2, &dir, true, true)).unwrap();
    let mut r = Region::new(&ghost, 8);
    for p in 0..8 {
        r.write(p * page_size(), &page_data(3, p as u64));
    }
    r.verify();
    assert!(ghost.stats().store_file_bytes > 0);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "an O_TMPFILE has no name in the directory"
    );
    drop(r);
    drop(ghost);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn switching_stores_on_a_live_instance_keeps_every_page() {
    let dir = scratch("switch");
    let memory = Config::builder().max_memory_pages(3).build().unwrap();
    let ghost = GhostMem::new(memory.clone()).unwrap();
    let mut r = Region::new(&ghost, 24);
    for p in 0..24 {
        r.write(p * page_size(), &page_data(p, 7));
    }
    let a = dir.join("a.swap");
    let b = dir.join("b.swap");
    for config in [
        disk_config(3, &a, true, false),
        disk_config(4, &a, true, true), // same file, now encrypted: goes through memory
        disk_config(3, &b, false, true),
        memory,
    ] {
        let to_disk = config.use_disk_backing();
        ghost.reconfigure(config).unwrap();
        assert!(ghost.stats().evicted_pages >= 20);
        assert_eq!(ghost.stats().store_file_bytes > 0, to_disk);
        r.verify();
        r.write(5 * page_size(), &page_data(3, 1234));
    }
    assert!(
        !a.exists() && !b.exists(),
        "replaced swap files are removed"
    );
    drop(r);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Run this binary's `test` alone with `scenario`; returns (status, stdout, stderr).
fn child(test: &str, scenario: &str, swap: &Path) -> (std::process::ExitStatus, String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, scenario)
        .env(SWAP, swap)
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Child side of the tampering tests: evict pages to an encrypted file, damage it as the
/// scenario says, then touch an evicted page. Must never return.
fn tamper_child(scenario: &str, swap: &Path) {
    let ghost = GhostMem::new(disk_config(2, swap, true, true)).unwrap();
    let mut r = Region::new(&ghost, 4);
    // Noise pages are stored raw: one 4128-byte slot each ([counter][tag][ciphertext]).
    for p in 0..4 {
        r.write(p * page_size(), &page_data(3, 100 + p as u64));
    }
    assert_eq!(
        ghost.stats().evicted_pages,
        2,
        "pages 0 and 1 are in the file"
    );
    let mut file = std::fs::read(swap).unwrap();
    match scenario {
        "flip" => {
            let at = 100.min(file.len() - 1);
            file[at] ^= 0x01;
        }
        "swap" => {
            assert_eq!(file.len() % 2, 0, "two equal slots");
            let half = file.len() / 2;
            let (first, second) = file.split_at_mut(half);
            first.swap_with_slice(second);
        }
        other => panic!("unknown scenario {other}"),
    }
    std::fs::write(swap, &file).unwrap();
    r.verify(); // touches page 0: must stop the process
    println!("UNREACHABLE: tampered data was returned");
    std::process::exit(0);
}

#[test]
fn tampering_stops_the_process_with_a_clear_message() {
    if let Some(scenario) = std::env::var_os(CHILD) {
        let swap = PathBuf::from(std::env::var_os(SWAP).unwrap());
        if let Some(s) = scenario.to_str().and_then(|s| s.strip_prefix("tamper-")) {
            tamper_child(s, &swap);
        }
        return;
    }
    let dir = scratch("tamper");
    for scenario in ["flip", "swap"] {
        let swap = dir.join(format!("{scenario}.swap"));
        let (status, stdout, stderr) = child(
            "tampering_stops_the_process_with_a_clear_message",
            &format!("tamper-{scenario}"),
            &swap,
        );
        assert_eq!(
            status.signal(),
            Some(libc::SIGABRT),
            "{scenario}: {status:?}\n{stderr}"
        );
        assert!(
            !stdout.contains("UNREACHABLE"),
            "{scenario}: wrong data returned"
        );
        assert!(
            stderr.contains("ghostmem: fatal: ghost page 0x")
                && stderr.contains("authenticating the stored page"),
            "{scenario}: stderr was:\n{stderr}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Run the ignored test `test` with `scenario` in a child process inside a private mount
/// namespace where `dir` is a 64 KiB tmpfs, so writes to a swap file there fail with ENOSPC.
/// Needs `unshare` (util-linux) and root or unprivileged user namespaces: panics without them.
fn child_on_tiny_tmpfs(
    test: &str,
    scenario: &str,
    dir: &Path,
) -> (std::process::ExitStatus, String, String) {
    let root = rustix::process::geteuid().is_root();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private"]);
    if !root {
        cmd.arg("--map-root-user");
    }
    match cmd.output() {
        Ok(o) if o.status.success() => {}
        probe => panic!(
            "this test needs `unshare --mount` (util-linux) with root or unprivileged user \
             namespaces, to mount a tiny tmpfs: {probe:?}"
        ),
    }
    let exe = std::env::current_exe().unwrap();
    let out = cmd
        .args([
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=64k ghostmem-tiny "$1" && shift && exec "$@""#,
        ])
        .arg("sh")
        .arg(dir)
        .arg(exe)
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, scenario)
        .env(SWAP, dir.join("tiny.swap"))
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs unshare --mount with root or user namespaces; scripts/test.sh runs it"]
fn write_failures_keep_every_value_and_are_counted() {
    if std::env::var_os(CHILD).is_some_and(|s| s == "enospc") {
        let swap = PathBuf::from(std::env::var_os(SWAP).unwrap());
        // Incompressible pages, raw and encrypted: 64 of them need ~260 KiB of swap file, the
        // tmpfs holds 64 KiB.
        let ghost = GhostMem::new(disk_config(4, &swap, false, true)).unwrap();
        let mut r = Region::new(&ghost, 64);
        for p in 0..64 {
            r.write(p * page_size(), &page_data(3, p as u64));
        }
        r.verify();
        for p in (0..64).step_by(3) {
            r.write(p * page_size() + 8, &page_data(3, 1000 + p as u64)[..64]);
        }
        r.verify();
        let s = ghost.stats();
        println!(
            "write_errors={} file_bytes={} evicted={}",
            s.store_write_errors, s.store_file_bytes, s.evicted_pages
        );
        assert!(s.store_write_errors > 0, "{s:?}");
        assert!(s.store_file_bytes <= 64 << 10, "{s:?}");
        assert!(s.evicted_pages >= 60, "{s:?}");
        return;
    }
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = scratch("enospc");
    let (status, stdout, stderr) = child_on_tiny_tmpfs(
        "write_failures_keep_every_value_and_are_counted",
        "enospc",
        &dir,
    );
    assert!(status.success(), "{status:?}\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.find("write_errors=").map(|at| &l[at..]));
    eprintln!("child on a 64 KiB tmpfs: {line:?}");
    assert!(line.is_some(), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_process_wide_swap_file_is_removed_at_exit() {
    if let Some(scenario) = std::env::var_os(CHILD) {
        let swap = PathBuf::from(std::env::var_os(SWAP).unwrap());
        if scenario == "global-direct" || scenario == "global-switch" {
            if scenario == "global-switch" {
                GhostMem::init_global(Config::builder().max_memory_pages(2).build().unwrap())
                    .unwrap();
            }
            let g = GhostMem::init_global(disk_config(2, &swap, true, false)).unwrap();
            let mut r = Region::new(g, 8);
            for p in 0..8 {
                r.write(p * page_size(), &page_data(p, 5));
            }
            r.verify();
            assert!(swap.exists() && g.stats().store_file_bytes > 0);
            println!("swap file in use");
            std::mem::forget(r);
            std::process::exit(0);
        }
        return;
    }
    let dir = scratch("atexit");
    for scenario in ["global-direct", "global-switch"] {
        let swap = dir.join(format!("{scenario}.swap"));
        let (status, stdout, stderr) = child(
            "the_process_wide_swap_file_is_removed_at_exit",
            scenario,
            &swap,
        );
        assert!(status.success(), "{scenario}: {status:?}\n{stderr}");
        assert!(stdout.contains("swap file in use"), "{scenario}: {stdout}");
        assert!(
            !swap.exists(),
            "{scenario}: the swap file outlived the process"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}
