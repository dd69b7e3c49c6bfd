//! The two fault backends: the automatic choice and its fallback under a seccomp filter that
//! refuses `userfaultfd(2)`, a forced backend that is not available, foreign SIGBUS signals,
//! and threads faulting on the same page at once.
//!
//! Scenarios that change the process (a seccomp filter, a fatal signal) run in a child: this
//! test binary re-run with `child --exact --ignored` and the scenario in [`SCENARIO_VAR`].

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Barrier};

use ghostmem::{BACKEND_ENV, Config, Error, FaultBackend, GhostMem, page_size};

const SCENARIO_VAR: &str = "GHOSTMEM_TEST_BACKEND_SCENARIO";
const READY: &str = "GHOSTMEM-CHILD-READY";
const DONE: &str = "GHOSTMEM-CHILD-DONE";

/// Run `scenario` in a child process with `GHOSTMEM_BACKEND` unset (so the child chooses
/// automatically, whatever the parent's environment says).
fn run_child(scenario: &str) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO_VAR, scenario)
        .env_remove(BACKEND_ENV)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .expect("running the child test process");
    println!(
        "scenario {scenario}: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn without_seccomp_the_automatic_choice_is_userfaultfd() {
    let out = run_child("auto");
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("BACKEND userfaultfd"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn seccomp_refusing_userfaultfd_falls_back_to_mprotect_and_works() {
    let out = run_child("seccomp_auto");
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("USERFAULTFD-REFUSED EPERM"), "{text}");
    assert!(text.contains("BACKEND mprotect"), "{text}");
    assert!(text.contains(DONE), "{text}");
}

/// Freeing a batch of evicted pages in one `process_madvise(MADV_DONTNEED)` needs Linux 6.13;
/// older kernels refuse that advice with EINVAL, and eviction frees run by run instead.
#[test]
fn a_kernel_refusing_process_madvise_still_frees_evicted_pages() {
    let out = run_child("refuse_process_madvise");
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("PROCESS-MADVISE-REFUSED EINVAL"), "{text}");
    assert!(text.contains("BACKEND userfaultfd"), "{text}");
    assert!(text.contains(DONE), "{text}");
}

#[test]
fn seccomp_refusing_userfaultfd_makes_a_forced_userfaultfd_a_clear_error() {
    let out = run_child("seccomp_forced");
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("FORCED-ERROR userfaultfd"), "{text}");
}

#[test]
fn a_foreign_sigbus_still_kills_with_sigbus() {
    for backend in ["userfaultfd", "mprotect"] {
        let out = run_child(&format!("foreign_sigbus_{backend}"));
        assert!(stdout(&out).contains(READY), "died before the access");
        assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{backend}");
    }
}

#[test]
fn a_user_sigbus_handler_installed_before_gets_foreign_sigbus() {
    let out = run_child("user_sigbus_handler");
    assert!(stdout(&out).contains(READY), "died before the access");
    assert_eq!(out.status.code(), Some(43));
}

/// Many threads touch the same evicted page at once: it is restored exactly once, and every
/// thread reads its contents.
#[test]
fn threads_touching_one_evicted_page_restore_it_once() {
    for backend in [FaultBackend::Userfaultfd, FaultBackend::Mprotect] {
        let g = forced(backend, 4);
        let page = page_size();
        let p = common::alloc(&g, 16 * page) as usize;
        for round in 0..50u64 {
            // Write every page (the first ones are evicted by the last), then touch page 0.
            for i in 0..16 {
                // SAFETY: inside the live allocation.
                unsafe { ((p + i * page) as *mut u64).write(round * 100 + i as u64) };
            }
            let before = g.stats();
            assert!(before.evicted_pages >= 12, "{before:?}");
            let threads = 8;
            let barrier = Arc::new(Barrier::new(threads));
            let seen: Vec<u64> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        let barrier = barrier.clone();
                        s.spawn(move || {
                            barrier.wait();
                            // SAFETY: inside the live allocation.
                            unsafe { (p as *const u64).read_volatile() }
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(seen.iter().all(|&v| v == round * 100), "{seen:?}");
            let after = g.stats();
            assert_eq!(
                after.restores - before.restores,
                1,
                "{backend}: page 0 was restored more than once"
            );
        }
    }
}

fn forced(backend: FaultBackend, budget: usize) -> GhostMem {
    let config = Config::builder()
        .max_memory_pages(budget)
        .address_space(common::TEST_ADDRESS_SPACE)
        .fault_backend(Some(backend))
        .build()
        .unwrap();
    match GhostMem::new(config) {
        Ok(g) => {
            // GHOSTMEM_BACKEND overrides the configuration; the tests of one backend run
            // with the variable unset or naming it.
            if std::env::var(BACKEND_ENV).is_err() {
                assert_eq!(g.fault_backend(), backend);
            }
            assert_eq!(g.stats().backend(), Some(g.fault_backend()));
            g
        }
        Err(e) => panic!("creating an instance on {backend}: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Child side.

#[test]
#[ignore = "the entry point of child processes, run by the tests above"]
fn child() {
    let scenario = std::env::var(SCENARIO_VAR).expect("run by a parent test");
    disable_core_dumps();
    match scenario.as_str() {
        "auto" => {
            let g = common::instance(4);
            exercise(&g);
            println!("BACKEND {}", g.fault_backend());
        }
        "refuse_process_madvise" => {
            refuse_syscall(libc::SYS_process_madvise, libc::EINVAL);
            // SAFETY: process_madvise(2) with no ranges; we expect the filter's EINVAL.
            let rc = unsafe { libc::syscall(libc::SYS_process_madvise, -1, 0, 0, 0, 0) };
            if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                println!("PROCESS-MADVISE-REFUSED EINVAL");
            }
            let budget = 64;
            let g = forced(FaultBackend::Userfaultfd, budget);
            println!("BACKEND {}", g.fault_backend());
            // 64 MiB through a 256 KiB budget, twice: were evicted pages not freed, the
            // process would hold all of it.
            let size = 64 << 20;
            let before = common::status_bytes("VmRSS");
            let p = common::alloc(&g, size);
            // Pages in a scattered order, so that a batch of victims forms several runs.
            let pages = size / page_size();
            let pattern: Vec<u8> = (0..size).map(|i| common::pattern_byte(29, i)).collect();
            for k in 0..pages {
                let at = (k * 7919 % pages) * page_size();
                // SAFETY: one page inside the live allocation of `size` bytes; `pattern` is a
                // separate buffer.
                unsafe {
                    std::ptr::copy_nonoverlapping(pattern.as_ptr().add(at), p.add(at), page_size());
                }
            }
            drop(pattern);
            // SAFETY: as above.
            unsafe { common::assert_pattern(p, size, 29, "after process_madvise refused") };
            let grown = common::status_bytes("VmRSS").saturating_sub(before);
            let s = g.stats();
            println!("RSS grew {grown} bytes; {s:?}");
            assert!(
                s.evictions >= (2 * size / page_size() - budget) as u64,
                "{s:?}"
            );
            // The store holds what the region compresses to; the rest must have been freed.
            let bound = s.store_reserved_bytes + (budget * page_size()) as u64 + (8 << 20);
            assert!(
                grown < bound,
                "RSS grew {grown} bytes (bound {bound}) for a {size}-byte region at a \
                 {budget}-page budget"
            );
            // SAFETY: as above, not used afterwards.
            unsafe { common::free(&g, p, size) };
        }
        "seccomp_auto" => {
            refuse_userfaultfd();
            // SAFETY: userfaultfd(2) with flags only; we expect the filter's EPERM.
            let rc = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
            let errno = std::io::Error::last_os_error().raw_os_error();
            if rc < 0 && errno == Some(libc::EPERM) {
                println!("USERFAULTFD-REFUSED EPERM");
            }
            let g = common::instance(4);
            println!("BACKEND {}", g.fault_backend());
            exercise(&g);
        }
        "seccomp_forced" => {
            refuse_userfaultfd();
            let config = Config::builder()
                .max_memory_pages(4)
                .address_space(common::TEST_ADDRESS_SPACE)
                .fault_backend(Some(FaultBackend::Userfaultfd))
                .build()
                .unwrap();
            match GhostMem::new(config) {
                Err(e @ Error::Sys { .. }) if e.to_string().contains("userfaultfd") => {
                    println!("FORCED-ERROR {e}");
                }
                other => panic!("expected a userfaultfd error, got {other:?}"),
            }
        }
        "foreign_sigbus_userfaultfd" | "foreign_sigbus_mprotect" => {
            let backend = if scenario.ends_with("userfaultfd") {
                FaultBackend::Userfaultfd
            } else {
                FaultBackend::Mprotect
            };
            let g = forced(backend, 4);
            exercise(&g);
            let p = truncated_file_page();
            ready();
            // SAFETY: deliberately invalid: the file behind this mapping was truncated.
            let v = unsafe { p.read_volatile() };
            std::hint::black_box(v);
        }
        "user_sigbus_handler" => {
            install_user_sigbus_handler();
            let g = common::instance(4);
            exercise(&g);
            let p = truncated_file_page();
            ready();
            // SAFETY: deliberately invalid: the user's handler exits with 43.
            let v = unsafe { p.read_volatile() };
            std::hint::black_box(v);
        }
        other => panic!("unknown scenario {other:?}"),
    }
    println!("{DONE}");
    std::io::stdout().flush().unwrap();
}

fn ready() {
    println!("{READY}");
    std::io::stdout().flush().unwrap();
}

/// Evict and restore pages (6 pages under a budget of 4) and check them.
fn exercise(g: &GhostMem) {
    let size = 6 * page_size();
    let p = common::alloc(g, size);
    // SAFETY: a live allocation of `size` bytes.
    unsafe { common::fill(p, size, 17) };
    // SAFETY: as above.
    unsafe { common::assert_pattern(p, size, 17, "exercise") };
    let s = g.stats();
    assert!(s.evictions > 0 && s.restores > 0, "{s:?}");
    // SAFETY: as above, not used afterwards.
    unsafe { common::free(g, p, size) };
}

/// A page of a shared file mapping whose file was truncated to zero: touching it is SIGBUS.
fn truncated_file_page() -> *const u8 {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("ghostmem-sigbus-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.set_len(page_size() as u64).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh shared mapping of our own file.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_size(),
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    file.set_len(0).unwrap();
    std::fs::remove_file(&path).unwrap();
    p.cast()
}

/// Install a seccomp filter that makes `userfaultfd(2)` fail with EPERM, as container
/// runtimes' default profiles do.
fn refuse_userfaultfd() {
    refuse_syscall(libc::SYS_userfaultfd, libc::EPERM);
}

/// Install a seccomp filter that makes system call `nr` fail with `errno`.
fn refuse_syscall(nr: libc::c_long, errno: libc::c_int) {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xc000_00b7;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: u16::try_from(code).unwrap(),
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: u16::try_from(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K).unwrap(),
        jt,
        jf,
        k,
    };
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let nr = u32::try_from(nr).unwrap();
    // struct seccomp_data: nr at offset 0, arch at offset 4.
    let mut filter = [
        stmt(ld, 4),
        jeq(AUDIT_ARCH, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(ld, 0),
        jeq(nr, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ERRNO | u32::try_from(errno).unwrap()),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).unwrap(),
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl and seccomp with valid arguments; `prog` outlives the call (the kernel
    // copies the filter).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &raw const prog
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn disable_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lowering our own core limit is always allowed.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
}

extern "C" fn user_sigbus_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(43) };
}

fn install_user_sigbus_handler() {
    // SAFETY: all-zero is a valid `sigaction` value that we then fill.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
        user_sigbus_handler;
    action.sa_sigaction = handler as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO;
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    let rc = unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
}
