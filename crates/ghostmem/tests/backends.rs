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

use ghostmem::{BACKEND_ENV, Config, Error, FaultBackend, GhostMem, SPARES_ENV, page_size};

const SCENARIO_VAR: &str = "GHOSTMEM_TEST_BACKEND_SCENARIO";
const READY: &str = "GHOSTMEM-CHILD-READY";
const DONE: &str = "GHOSTMEM-CHILD-DONE";

/// Run `scenario` in a child process with `GHOSTMEM_BACKEND` unset (so the child chooses
/// automatically, whatever the parent's environment says).
fn run_child(scenario: &str) -> Output {
    run_child_with(scenario, &[])
}

/// [`run_child`] with the variables `env` set in the child.
fn run_child_with(scenario: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .envs(env.iter().copied())
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

/// Spare pages (`UFFDIO_MOVE`, Linux 6.8+): random touches evict pages with no neighbour
/// among the victims, whose memory waits in their frames for the next pages. Resident and
/// spare pages never exceed the budget, and nothing is lost.
#[test]
fn spare_pages_are_used_within_the_budget_and_lose_nothing() {
    if let Some(text) = spares_scenario("random_touches", "always") {
        assert!(text.contains("SPARES-SEEN"), "{text}");
    }
}

/// Run a spare-page scenario in a child with `GHOSTMEM_SPARES=mode`; its output, or `None`
/// (reported as skipped) on a kernel that does not move pages.
fn spares_scenario(scenario: &str, mode: &str) -> Option<String> {
    let out = run_child_with(scenario, &[(SPARES_ENV, mode)]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains(DONE), "{text}");
    if text.contains("NO-MOVE") {
        println!("skipped: this kernel does not move pages (Linux 6.8+)");
        return None;
    }
    Some(text)
}

/// With `GHOSTMEM_SPARES=never`, as on a kernel without `UFFDIO_MOVE`, no page is kept spare
/// and the same touches lose nothing.
#[test]
fn without_spare_pages_the_same_touches_lose_nothing() {
    let text = spares_scenario("random_touches", "never").expect("never is never skipped");
    assert!(text.contains("SPARES-NONE"), "{text}");
}

/// A seccomp filter that refuses `UFFDIO_MOVE` once spare pages exist (as a container profile
/// that allows userfaultfd but not that ioctl would from the start): the pages waiting in spare
/// slots come in by copy, evictions go the other way, and nothing is lost.
#[test]
fn a_refused_move_falls_back_to_copies_and_loses_nothing() {
    if let Some(text) = spares_scenario("refuse_move", "always") {
        assert!(text.contains("MOVE-REFUSED EPERM"), "{text}");
        assert!(text.contains("SPARES-DRAINED"), "{text}");
    }
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
        "random_touches" => {
            let budget = 32;
            let g = forced(FaultBackend::Userfaultfd, budget);
            let mut touches = RandomTouches::new(&g, 512);
            let most = touches.run(&g, 20_000, budget);
            if most > 0 {
                println!("SPARES-SEEN {most}");
            } else if moves_pages() {
                println!("SPARES-NONE");
            } else {
                println!("NO-MOVE");
            }
            touches.verify();
        }
        "refuse_move" => {
            let budget = 32;
            let g = forced(FaultBackend::Userfaultfd, budget);
            let mut touches = RandomTouches::new(&g, 512);
            if touches.run(&g, 5_000, budget) == 0 {
                println!("NO-MOVE");
            } else {
                refuse_ioctl(UFFDIO_MOVE, libc::EPERM);
                // SAFETY: ioctl(2) on an invalid descriptor; we expect the filter's EPERM.
                let rc = unsafe { libc::ioctl(-1, libc::c_ulong::from(UFFDIO_MOVE), 0) };
                if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
                    println!("MOVE-REFUSED EPERM");
                }
                touches.run(&g, 20_000, budget);
                touches.verify();
                // Every spare page was used or dropped by now, and none came since.
                if g.stats().spare_pages == 0 {
                    println!("SPARES-DRAINED");
                }
            }
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

/// `UFFDIO_MOVE` of `<linux/userfaultfd.h>` (Linux 6.8+).
const UFFDIO_MOVE: u32 = 0xc028_aa05;

/// Whether this kernel moves pages with userfaultfd (`UFFD_FEATURE_MOVE` offered).
fn moves_pages() -> bool {
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
    const UFFD_FEATURE_MOVE: u64 = 1 << 16;
    // SAFETY: userfaultfd(2) takes only flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | UFFD_USER_MODE_ONLY) };
    let Ok(fd) = i32::try_from(fd) else {
        return false;
    };
    if fd < 0 {
        return false;
    }
    let mut api = [0xaa_u64, 0, 0];
    // SAFETY: UFFDIO_API reads and writes a `struct uffdio_api` (three u64), which `api` is.
    let ok = unsafe { libc::ioctl(fd, UFFDIO_API, api.as_mut_ptr()) } == 0;
    // SAFETY: closing the descriptor we opened.
    unsafe { libc::close(fd) };
    ok && api[1] & UFFD_FEATURE_MOVE != 0
}

/// Random single-page touches of an allocation, each a read that checks the page's last value
/// and a write of a new one, with a shadow copy of the values.
struct RandomTouches {
    base: *mut u64,
    values: Vec<u64>,
    rng: u64,
}

impl RandomTouches {
    fn new(g: &GhostMem, pages: usize) -> RandomTouches {
        RandomTouches {
            base: common::alloc(g, pages * page_size()).cast(),
            values: vec![0; pages],
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// `touches` random touches; checks after each that resident and spare pages together
    /// stay within `budget`. Returns the most spare pages seen.
    fn run(&mut self, g: &GhostMem, touches: usize, budget: usize) -> u64 {
        let words = page_size() / 8;
        let mut most = 0;
        for n in 0..touches {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let page = usize::try_from(self.rng % self.values.len() as u64).unwrap();
            // SAFETY: word 0 of a page of the live allocation.
            let at = unsafe { self.base.add(page * words) };
            // SAFETY: as above.
            let seen = unsafe { at.read_volatile() };
            assert_eq!(seen, self.values[page], "page {page} after {n} touches");
            let value = self.rng | 1;
            // SAFETY: as above.
            unsafe { at.write_volatile(value) };
            self.values[page] = value;
            let s = g.stats();
            assert!(
                s.resident_pages + s.spare_pages <= budget as u64,
                "resident {} + spare {} pages over the budget {budget}",
                s.resident_pages,
                s.spare_pages
            );
            most = most.max(s.spare_pages);
        }
        most
    }

    /// Every page holds its last value.
    fn verify(&self) {
        for (page, &value) in self.values.iter().enumerate() {
            // SAFETY: word 0 of a page of the live allocation.
            let seen = unsafe { self.base.add(page * page_size() / 8).read_volatile() };
            assert_eq!(seen, value, "page {page}");
        }
    }
}

/// Install a seccomp filter that makes `ioctl(_, request, _)` fail with `errno`.
fn refuse_ioctl(request: u32, errno: libc::c_int) {
    // struct seccomp_data: the second argument's low half at offset 24 (little-endian).
    install_filter(libc::SYS_ioctl, Some((24, request)), errno);
}

/// Install a seccomp filter that makes system call `nr` fail with `errno`.
fn refuse_syscall(nr: libc::c_long, errno: libc::c_int) {
    install_filter(nr, None, errno);
}

/// Install a seccomp filter that makes system call `nr` fail with `errno`; with `arg`, only
/// when the 32-bit word at that offset of `struct seccomp_data` has that value.
fn install_filter(nr: libc::c_long, arg: Option<(u32, u32)>, errno: libc::c_int) {
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
    let mut filter = vec![
        stmt(ld, 4),
        jeq(AUDIT_ARCH, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(ld, 0),
    ];
    match arg {
        None => filter.push(jeq(nr, 0, 1)),
        Some((offset, value)) => filter.extend([jeq(nr, 0, 3), stmt(ld, offset), jeq(value, 0, 1)]),
    }
    filter.extend([
        stmt(ret, libc::SECCOMP_RET_ERRNO | u32::try_from(errno).unwrap()),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ]);
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
