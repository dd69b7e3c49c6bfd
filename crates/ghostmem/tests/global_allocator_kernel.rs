//! `GhostGlobal` with kernel access as the `#[global_allocator]` of this whole test binary:
//! the kernel reads and writes heap buffers (ghost memory here) that are not resident, as
//! `std::fs` and spawning a process do, and a handler thread serves its faults. Without kernel
//! access these fail with `EFAULT` (see the README, "System calls and ghost memory").

// Test data deliberately truncates counters.
#![allow(clippy::cast_possible_truncation)]

use ghostmem::GhostGlobal;

const BUDGET: u64 = 256;

#[global_allocator]
static GLOBAL: GhostGlobal = GhostGlobal::with_kernel_access(BUDGET as usize);

/// The instance exists (kernel access was granted: CI runs as root) and evicts.
fn assert_kernel_access_instance() -> ghostmem::Stats {
    let s = GLOBAL
        .stats()
        .expect("the kernel-access instance could not be created (see the message on stderr)");
    assert!(s.resident_pages <= BUDGET, "{s:?}");
    s
}

/// Ordinary std I/O: the kernel reads from and writes into heap buffers (ghost memory here),
/// fresh, resident or evicted. A global allocator must not make `std::fs` fail.
#[test]
fn std_file_io_through_heap_buffers_works() {
    let dir = std::env::temp_dir().join(format!("ghostmem-global-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data.txt");
    let text: String = (0..40_000).map(|i| format!("line {i:06}\n")).collect();
    // Push the text's pages out with other allocations.
    let filler: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 64 << 10]).collect();
    let s = assert_kernel_access_instance();
    let text_pages = (text.len() / ghostmem::page_size()) as u64;
    assert!(
        s.evicted_pages >= text_pages,
        "the text's pages were pushed out: {s:?}"
    );
    let written = std::fs::write(&path, &text);
    let read = std::fs::read_to_string(&path);
    std::fs::remove_dir_all(&dir).ok();
    drop(filler);
    written.expect("std::fs::write from a heap buffer");
    let read = read.expect("std::fs::read_to_string into a heap buffer");
    assert!(read == text, "file contents differ after a round trip");
}

#[test]
fn stack_overflow_is_still_reported_with_the_global_allocator() {
    if std::env::var_os("GHOSTMEM_TEST_GLOBAL_OVERFLOW").is_some() {
        // Child: use the heap (ghost memory), then overflow a thread's stack.
        let v: Vec<u64> = (0..1 << 18).collect();
        assert_eq!(v[1000], 1000);
        std::thread::spawn(|| recurse(0)).join().ok();
        return;
    }
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "stack_overflow_is_still_reported_with_the_global_allocator",
            "--exact",
            "--nocapture",
        ])
        .env("GHOSTMEM_TEST_GLOBAL_OVERFLOW", "1");
    // Push the command's argv and environment (heap pages) out before the kernel reads them.
    let filler: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 64 << 10]).collect();
    let s = assert_kernel_access_instance();
    assert!(s.evicted_pages >= 512, "{s:?}");
    let out = command.output().unwrap();
    drop(filler);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("has overflowed its stack"),
        "status {:?}\n{stderr}",
        out.status
    );
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    recurse(depth + 1).wrapping_add(frame[(depth % 32) as usize])
}
