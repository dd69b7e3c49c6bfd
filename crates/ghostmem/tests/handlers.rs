//! The SIGSEGV handler must only claim faults on live ghost memory: every other fault goes to
//! the handler that was installed before, so wild pointers still kill the process, Rust still
//! reports stack overflows, and a user's own handler still runs.
//!
//! Each scenario runs in a child process: this test binary re-run with
//! `child_process_entry --exact --ignored` and the scenario's name in [`SCENARIO_VAR`]. The
//! child prints [`READY`] right before the fatal access, so the parent can tell "died at the
//! intended access" from "died earlier" (for instance inside the engine).

mod common;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ghostmem::{GhostMem, page_size};

const SCENARIO_VAR: &str = "GHOSTMEM_TEST_HANDLER_SCENARIO";
const READY: &str = "GHOSTMEM-CHILD-READY-FOR-FAULT";
const SURVIVED: &str = "GHOSTMEM-CHILD-SURVIVED-THE-FAULT";
const USER_MARKER: &str = "GHOSTMEM-USER-HANDLER-CALLED";
const CHILD_TIMEOUT: Duration = Duration::from_secs(20);

struct ChildOutput {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for ChildOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:?} (signal {:?}, code {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.status.signal(),
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// Run `scenario` in a child process, killing it if it hangs.
fn run_child(scenario: &str) -> ChildOutput {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args([
            "child_process_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO_VAR, scenario)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the child test process");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break status;
        }
        if start.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap_or_default();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "scenario {scenario}: the child hung for {CHILD_TIMEOUT:?} (a fault handled in a \
                 loop?)\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    ChildOutput {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Run `scenario` and check that it reached its fatal access and died of one of `signals`.
fn expect_killed_by(scenario: &str, signals: &[i32]) -> ChildOutput {
    let out = run_child(scenario);
    assert!(
        out.stdout.contains(READY),
        "scenario {scenario}: the child died before reaching the fatal access:\n{out}"
    );
    assert!(
        !out.stdout.contains(SURVIVED) && !out.stderr.contains(SURVIVED),
        "scenario {scenario}: the fatal access did not kill the child:\n{out}"
    );
    let signal = out.status.signal();
    assert!(
        signal.is_some_and(|s| signals.contains(&s)),
        "scenario {scenario}: expected death by one of signals {signals:?}:\n{out}"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Parent tests.

#[test]
fn wild_pointer_into_prot_none_mapping_dies_with_sigsegv() {
    expect_killed_by("wild_prot_none", &[libc::SIGSEGV]);
}

#[test]
fn wild_pointer_on_another_thread_dies_with_sigsegv() {
    expect_killed_by("wild_prot_none_other_thread", &[libc::SIGSEGV]);
}

#[test]
fn near_null_read_dies_with_sigsegv() {
    expect_killed_by("near_null", &[libc::SIGSEGV]);
}

#[test]
fn stack_overflow_is_still_reported_by_rust() {
    let out = expect_killed_by("stack_overflow", &[libc::SIGABRT, libc::SIGSEGV]);
    assert!(
        out.stderr.contains("has overflowed its stack"),
        "Rust's stack-overflow report is missing: the engine's handler did not pass the guard-page \
         fault on (or did not run on the alternate signal stack):\n{out}"
    );
}

#[test]
fn touching_a_freed_resident_large_allocation_dies_with_sigsegv() {
    expect_killed_by("freed_large_resident", &[libc::SIGSEGV]);
}

#[test]
fn touching_a_freed_evicted_large_allocation_dies_with_sigsegv() {
    expect_killed_by("freed_large_evicted", &[libc::SIGSEGV]);
}

#[test]
fn touching_a_freed_small_allocation_alone_on_its_page_dies_with_sigsegv() {
    expect_killed_by("freed_small", &[libc::SIGSEGV]);
}

#[test]
fn touching_never_allocated_ghost_address_space_dies_with_sigsegv() {
    expect_killed_by("unallocated_ghost", &[libc::SIGSEGV]);
}

#[test]
fn touching_memory_of_a_dropped_instance_dies_with_sigsegv() {
    expect_killed_by("after_drop", &[libc::SIGSEGV]);
}

#[test]
fn user_handler_installed_before_the_instance_gets_foreign_faults() {
    let out = run_child("user_handler");
    assert!(
        out.stdout.contains(READY),
        "the child died before the foreign fault: ghost faults were not handled by the engine \
         (or were passed to the user's handler):\n{out}"
    );
    assert_eq!(
        out.status.code(),
        Some(42),
        "the user's handler did not run for a foreign fault:\n{out}"
    );
    assert!(out.stderr.contains(USER_MARKER), "{out}");
}

#[test]
fn forked_child_touching_ghost_memory_dies_with_sigsegv() {
    // The arena is MADV_DONTFORK: a forked child has no ghost memory, and touching an address
    // of it must be an ordinary segmentation fault (not a hang, not a silent share).
    for state in ["resident", "evicted"] {
        let out = run_child(&format!("fork_touch_{state}"));
        assert!(
            out.status.success() && out.stdout.contains("GRANDCHILD-SIGNAL 11"),
            "page {state} in the parent: the forked grandchild should die of SIGSEGV:\n{out}"
        );
    }
}

#[test]
fn control_child_that_does_not_fault_exits_cleanly() {
    // Validates the harness: a scenario with no fatal access passes and says so.
    let out = run_child("no_fault");
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains(SURVIVED), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Child side.

/// Entry point of the child processes, not a test in its own right: ignored in a normal run,
/// and a failure when run without [`SCENARIO_VAR`] (`--ignored` by hand).
#[test]
#[ignore = "the child side of the other tests, which run it with --ignored --exact"]
fn child_process_entry() {
    let scenario = std::env::var(SCENARIO_VAR).unwrap_or_else(|_| {
        panic!("child_process_entry runs only as a child: {SCENARIO_VAR} unset")
    });
    disable_core_dumps();
    let page = page_size();
    match scenario.as_str() {
        "no_fault" => {
            let ghost = common::instance(2);
            use_ghost_memory(&ghost);
        }
        "wild_prot_none" => {
            let ghost = common::instance(2);
            use_ghost_memory(&ghost);
            let p = prot_none_page();
            ready();
            // SAFETY: deliberately invalid: the page is PROT_NONE; the fault must kill us.
            unsafe { p.write_volatile(1) };
        }
        "wild_prot_none_other_thread" => {
            let ghost = common::instance(2);
            use_ghost_memory(&ghost);
            let p = prot_none_page() as usize;
            std::thread::spawn(move || {
                use_ghost_memory(&ghost);
                ready();
                // SAFETY: deliberately invalid: the page is PROT_NONE.
                unsafe { (p as *const u8).read_volatile() };
            })
            .join()
            .expect("joining the faulting thread");
        }
        "near_null" => {
            let ghost = common::instance(2);
            use_ghost_memory(&ghost);
            ready();
            let p = std::ptr::without_provenance::<u8>(0x10);
            // SAFETY: deliberately invalid: nothing is mapped at address 0x10.
            let v = unsafe { p.read_volatile() };
            std::hint::black_box(v);
        }
        "stack_overflow" => {
            let ghost = common::instance(2);
            use_ghost_memory(&ghost);
            let t = std::thread::Builder::new()
                .name("deep-recursion".into())
                .spawn(move || {
                    use_ghost_memory(&ghost);
                    ready();
                    recurse(0)
                })
                .expect("spawning the recursing thread");
            let depth = t.join();
            println!("recursion returned {depth:?}");
        }
        "freed_large_resident" | "freed_large_evicted" => {
            // A fresh instance: which page CLOCK evicts depends on where its hand stands.
            let ghost = common::instance(2);
            let size = 3 * page;
            let p = common::alloc(&ghost, size);
            // SAFETY: for all three calls, `p` is a live allocation of 3 pages from `ghost`; it
            // is not used after the free except for the deliberate access below.
            unsafe {
                fill_pages_in_order(p, 3, 5);
                assert_only_resident(&ghost, p, 3, &[2]);
                common::free(&ghost, p, size);
            }
            let target = if scenario == "freed_large_resident" {
                p.wrapping_add(2 * page) // written last: resident when freed
            } else {
                p // written first: evicted when freed
            };
            ready();
            // SAFETY: deliberately invalid: the allocation was freed.
            let v = unsafe { target.read_volatile() };
            std::hint::black_box(v);
        }
        "freed_small" => {
            let ghost = common::instance(2);
            let p = common::alloc(&ghost, 64);
            // SAFETY: `p` is a live allocation of 64 bytes.
            unsafe { common::fill(p, 64, 9) };
            // SAFETY: as above.
            unsafe { common::assert_pattern(p, 64, 9, "small allocation") };
            // SAFETY: as above, not used afterwards (except for the deliberate access below).
            unsafe { common::free(&ghost, p, 64) };
            let s = ghost.stats();
            assert_eq!(
                s.allocated_pages, 0,
                "the slab page was not released: {s:?}"
            );
            ready();
            // SAFETY: deliberately invalid: the only allocation on the page was freed.
            let v = unsafe { p.read_volatile() };
            std::hint::black_box(v);
        }
        "unallocated_ghost" => {
            let ghost = common::instance(2);
            use_ghost_memory(&ghost);
            let p = common::alloc(&ghost, page);
            let far = p.wrapping_add(100 * page);
            assert!(
                ghost.contains(far),
                "the test needs an address inside the arena"
            );
            ready();
            // SAFETY: deliberately invalid: inside the arena but never allocated.
            unsafe { far.write_volatile(1) };
        }
        "after_drop" => {
            let ghost = common::instance(2);
            let p = common::alloc(&ghost, 2 * page);
            // SAFETY: `p` is a live allocation of 2 pages.
            unsafe { common::fill(p, 2 * page, 3) };
            drop(ghost);
            ready();
            // SAFETY: deliberately invalid: the instance that owned this memory is gone.
            let v = unsafe { p.read_volatile() };
            std::hint::black_box(v);
        }
        "user_handler" => {
            install_user_handler();
            let ghost = common::instance(2);
            use_ghost_memory(&ghost);
            let p = prot_none_page();
            ready();
            // SAFETY: deliberately invalid: the page is PROT_NONE; the user's handler exits.
            unsafe { p.write_volatile(1) };
        }
        "fork_touch_resident" | "fork_touch_evicted" => {
            let ghost = common::instance(2);
            let p = common::alloc(&ghost, 3 * page);
            // SAFETY: for both calls, `p` is a live allocation of 3 pages from `ghost`.
            unsafe {
                fill_pages_in_order(p, 3, 21);
                assert_only_resident(&ghost, p, 3, &[2]);
            }
            let target = if scenario == "fork_touch_resident" {
                p.wrapping_add(2 * page)
            } else {
                p
            };
            fork_and_touch(target);
            for i in 0..3 {
                // SAFETY: the allocation is still live in this (parent) process.
                unsafe {
                    common::assert_pattern(p.add(i * page), page, 21 + i as u64, "after fork")
                };
            }
        }
        other => panic!("unknown scenario {other:?}"),
    }
    println!("{SURVIVED}");
    eprintln!("{SURVIVED}");
    std::io::stdout().flush().expect("flushing stdout");
}

/// Fork; the grandchild touches `target` (and exits 0 if it survives); this process waits up to
/// 5 s, kills a hung grandchild, and prints how it ended.
fn fork_and_touch(target: *mut u8) {
    // SAFETY: after fork the grandchild only calls async-signal-safe functions (a volatile
    // load, `_exit`) before it ends.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: deliberately invalid in the grandchild: the arena was not inherited.
        let v = unsafe { target.read_volatile() };
        std::hint::black_box(v);
        // SAFETY: `_exit` is async-signal-safe and ends the grandchild at once.
        unsafe { libc::_exit(0) };
    }
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            break;
        }
        if start.elapsed() > Duration::from_secs(5) {
            // SAFETY: killing and reaping our own child process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            println!("GRANDCHILD-HUNG");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if libc::WIFSIGNALED(status) {
        println!("GRANDCHILD-SIGNAL {}", libc::WTERMSIG(status));
    } else {
        println!("GRANDCHILD-EXIT {}", libc::WEXITSTATUS(status));
    }
}

fn ready() {
    println!("{READY}");
    std::io::stdout().flush().expect("flushing stdout");
}

/// Fault pages in and out of `ghost` (6 pages under its small budget) and check the data, so
/// the engine's handler has certainly run before the scenario's fatal access.
fn use_ghost_memory(ghost: &GhostMem) {
    let size = 6 * page_size();
    let p = common::alloc(ghost, size);
    // SAFETY: `p` is a live allocation of `size` bytes.
    unsafe { common::fill(p, size, 11) };
    // SAFETY: as above.
    unsafe { common::assert_pattern(p, size, 11, "ghost memory in the child") };
    let s = ghost.stats();
    assert!(
        s.evictions > 0 && s.restores > 0,
        "no eviction happened: {s:?}"
    );
    // SAFETY: as above, not used afterwards.
    unsafe { common::free(ghost, p, size) };
}

/// Fill the `pages` pages at `p` one after the other (page `i` with seed `seed + i`), so that
/// under a budget of 2 the first is the one evicted when the third is written. (One `fill` of
/// the whole run leaves the order to `memcpy`, which may write the last page first.)
///
/// # Safety
/// - `p` must be a live allocation of at least `pages` pages.
unsafe fn fill_pages_in_order(p: *mut u8, pages: usize, seed: u64) {
    for i in 0..pages {
        // SAFETY: page `i` of the live allocation the caller passes.
        unsafe { common::fill(p.add(i * page_size()), page_size(), seed + i as u64) };
    }
}

/// Check that (on a fresh instance where `p` is the only allocation, of `pages` pages) exactly
/// the pages in `resident` are resident and every other page is evicted: the counts match, and
/// reading each resident page takes no fault.
///
/// # Safety
/// - `p` must be a live allocation of at least `pages` pages from `ghost`.
unsafe fn assert_only_resident(ghost: &GhostMem, p: *mut u8, pages: usize, resident: &[usize]) {
    let before = ghost.stats();
    let count = |n: usize| u64::try_from(n).expect("a page count fits in u64");
    assert_eq!(before.resident_pages, count(resident.len()), "{before:?}");
    assert_eq!(
        before.evicted_pages,
        count(pages - resident.len()),
        "{before:?}"
    );
    for &i in resident {
        // SAFETY: page `i` of the live allocation the caller passes.
        std::hint::black_box(unsafe { p.add(i * page_size()).read_volatile() });
    }
    let after = ghost.stats();
    assert_eq!(
        after.faults, before.faults,
        "a page of {resident:?} was not resident: {after:?}"
    );
    assert_eq!(after.evicted_pages, before.evicted_pages, "{after:?}");
}

/// A fresh page that any access faults on.
fn prot_none_page() -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_size(),
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap PROT_NONE");
    p.cast()
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    recurse(depth + 1).wrapping_add(frame[(depth % 32) as usize])
}

fn disable_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct we pass; lowering our own core limit is always allowed.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
}

extern "C" fn user_segv_handler(
    _signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    let msg = b"GHOSTMEM-USER-HANDLER-CALLED\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `msg` is a static byte string.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(42);
    }
}

fn install_user_handler() {
    // SAFETY: all-zero is a valid `sigaction` value (no flags, empty mask) that we then fill.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
        user_segv_handler;
    action.sa_sigaction = handler as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `action.sa_mask` is a valid sigset_t we own.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    let rc = unsafe { libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "sigaction: {}", std::io::Error::last_os_error());
}
