//! Pinning: a pinned range is resident and never evicted until unpinned; system calls on it
//! succeed where they fail with `EFAULT` on pages that are not resident. Every test runs on
//! both fault backends.
#![allow(
    unsafe_code,
    reason = "the tests touch ghost pages and call read(2)/write(2)"
)]
// Test data deliberately truncates counters into bytes; lengths are small.
#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]

use ghostmem::{Config, Error, FaultBackend, GhostMem, PinError, page_size};

const BUDGET: usize = 8;

fn instance(backend: FaultBackend, budget: usize) -> GhostMem {
    let config = Config::builder()
        .max_memory_pages(budget)
        .fault_backend(Some(backend))
        .address_space(64 << 20)
        .build()
        .unwrap();
    GhostMem::new(config).unwrap()
}

fn backends() -> [FaultBackend; 2] {
    [FaultBackend::Userfaultfd, FaultBackend::Mprotect]
}

/// A buffer of `pages` pages holding a known pattern, pushed out of RAM by touching
/// `2 * BUDGET` other pages afterwards (CLOCK gives each page one second chance, so all of
/// the buffer's pages are gone; the statistics say so).
struct Evicted {
    buf: *mut u8,
    len: usize,
    filler: *mut u8,
    filler_len: usize,
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

fn evicted_buffer(g: &GhostMem, pages: usize) -> Evicted {
    let page = page_size();
    let len = pages * page;
    let buf = g.alloc_raw(len).unwrap().as_ptr();
    for i in 0..len {
        // SAFETY: inside the allocation.
        unsafe { buf.add(i).write(pattern(i)) };
    }
    // Every other page, so that each touch is a fault of its own: pages brought in ahead of
    // a sequential stream enter unreferenced and would go before the buffer's.
    let filler_len = 4 * BUDGET * page;
    let filler = g.alloc_raw(filler_len).unwrap().as_ptr();
    for p in 0..2 * BUDGET {
        // SAFETY: inside the allocation.
        unsafe { filler.add(2 * p * page).write(1) };
    }
    Evicted {
        buf,
        len,
        filler,
        filler_len,
    }
}

impl Evicted {
    fn free(self, g: &GhostMem) {
        // SAFETY: allocated in `evicted_buffer` with these sizes, not used afterwards.
        unsafe {
            g.free_raw(self.buf, self.len).unwrap();
            g.free_raw(self.filler, self.filler_len).unwrap();
        }
    }
}

/// A pipe, closed on drop.
struct Pipe([libc::c_int; 2]);

impl Pipe {
    fn new() -> Pipe {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) writes two descriptors into `fds`.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // A pipe holds 64 KiB by default; make room for the largest buffer below.
        // SAFETY: F_SETPIPE_SZ on our own pipe.
        assert!(unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20) } >= 0);
        Pipe(fds)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        for fd in self.0 {
            // SAFETY: our own descriptors, closed once.
            assert_eq!(unsafe { libc::close(fd) }, 0);
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

#[test]
fn write_from_an_evicted_buffer_fails_without_a_pin_and_succeeds_with_one() {
    for backend in backends() {
        let g = instance(backend, BUDGET);
        let pages = 4;
        let e = evicted_buffer(&g, pages);
        let s = g.stats();
        assert!(
            s.evicted_pages >= pages as u64 && s.resident_pages <= BUDGET as u64,
            "{backend}: {s:?}"
        );
        let pipe = Pipe::new();
        // SAFETY: write(2) reads `len` bytes of our allocation (or fails with EFAULT).
        let n = unsafe { libc::write(pipe.0[1], e.buf.cast(), e.len) };
        assert!(n == -1 && errno() == libc::EFAULT, "{backend}: {n}");

        let restores = g.stats().restores;
        let pin = g.pin(e.buf, e.len).unwrap();
        let s = g.stats();
        assert_eq!(s.restores - restores, pages as u64, "{backend}: {s:?}");
        assert_eq!(g.pinned_pages(), pages);
        // SAFETY: as above; the pages are resident now.
        let n = unsafe { libc::write(pipe.0[1], e.buf.cast(), e.len) };
        assert_eq!(n, e.len as isize, "{backend}: errno {}", errno());
        drop(pin);
        assert_eq!(g.pinned_pages(), 0);
        let mut back = vec![0u8; e.len];
        // SAFETY: read(2) into an ordinary buffer of that length.
        let n = unsafe { libc::read(pipe.0[0], back.as_mut_ptr().cast(), e.len) };
        assert_eq!(n, e.len as isize);
        assert!(back.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        e.free(&g);
    }
}

#[test]
fn read_into_an_evicted_buffer_fails_without_a_pin_and_succeeds_with_one() {
    for backend in backends() {
        let g = instance(backend, BUDGET);
        let pages = 3;
        let e = evicted_buffer(&g, pages);
        let s = g.stats();
        assert!(s.evicted_pages >= pages as u64, "{backend}: {s:?}");
        let pipe = Pipe::new();
        let data: Vec<u8> = (0..e.len).map(|i| !pattern(i)).collect();
        // SAFETY: write(2) from an ordinary buffer.
        let n = unsafe { libc::write(pipe.0[1], data.as_ptr().cast(), e.len) };
        assert_eq!(n, e.len as isize);
        // SAFETY: read(2) into our allocation (or EFAULT; nothing is consumed then).
        let n = unsafe { libc::read(pipe.0[0], e.buf.cast(), e.len) };
        assert!(n == -1 && errno() == libc::EFAULT, "{backend}: {n}");

        // The slice form; the guard does not borrow the slice.
        // SAFETY: the allocation is live and `len` bytes long.
        let slice = unsafe { std::slice::from_raw_parts(e.buf, e.len) };
        let pin = g.pin_slice(slice).unwrap();
        // SAFETY: as above; pinned now.
        let n = unsafe { libc::read(pipe.0[0], e.buf.cast(), e.len) };
        assert_eq!(n, e.len as isize, "{backend}: errno {}", errno());
        drop(pin);
        for (i, want) in data.iter().enumerate() {
            // SAFETY: inside the allocation.
            assert_eq!(unsafe { e.buf.add(i).read() }, *want);
        }
        e.free(&g);
    }
}

#[test]
fn pinned_pages_are_never_evicted_and_nested_pins_count() {
    for backend in backends() {
        let g = instance(backend, BUDGET);
        let page = page_size();
        let e = evicted_buffer(&g, 4);
        // Two overlapping pins: pages 0..3 and 2..4.
        let a = g.pin(e.buf, 3 * page).unwrap();
        let b = g.pin(e.buf.wrapping_add(2 * page), 2 * page).unwrap();
        assert_eq!(g.pinned_pages(), 4);
        let churn = |g: &GhostMem| {
            for round in 0..3 {
                for p in 0..2 * BUDGET {
                    // SAFETY: inside the filler allocation.
                    unsafe { e.filler.add(p * page).write(round) };
                }
            }
            g.stats().restores
        };
        let before = g.stats().restores;
        let after = churn(&g);
        assert!(after > before, "{backend}: the churn evicts and restores");
        // Reading the pinned range restores nothing: it never left.
        for i in (0..e.len).step_by(97) {
            // SAFETY: inside the allocation.
            assert_eq!(unsafe { e.buf.add(i).read() }, pattern(i));
        }
        assert_eq!(g.stats().restores, after, "{backend}");
        drop(a);
        // Pages 2 and 3 are still held by `b`; pages 0 and 1 are evictable again.
        assert_eq!(g.pinned_pages(), 2);
        churn(&g);
        let before = g.stats().restores;
        for i in (2 * page..4 * page).step_by(97) {
            // SAFETY: inside the allocation.
            assert_eq!(unsafe { e.buf.add(i).read() }, pattern(i));
        }
        assert_eq!(g.stats().restores, before, "{backend}");
        drop(b);
        assert_eq!(g.pinned_pages(), 0);
        assert!(g.stats().resident_pages <= BUDGET as u64);
        e.free(&g);
    }
}

#[test]
fn pins_beyond_the_budget_and_budgets_below_the_pins_are_refused() {
    for backend in backends() {
        let g = instance(backend, BUDGET);
        let page = page_size();
        let e = evicted_buffer(&g, BUDGET);
        let err = g.pin(e.buf, (BUDGET - 1) * page).unwrap_err();
        assert!(
            matches!(err, Error::Pin(PinError::OverBudget { .. })),
            "{err:?}"
        );
        assert!(err.to_string().contains("max_memory_pages"), "{err}");
        assert_eq!(g.pinned_pages(), 0, "a refused pin changes nothing");
        let pin = g.pin(e.buf, (BUDGET - 2) * page).unwrap();
        // One more page would leave one frame unpinned.
        let more = g.pin(e.buf.wrapping_add((BUDGET - 2) * page), 1);
        assert!(matches!(more, Err(Error::Pin(PinError::OverBudget { .. }))));
        // Shrinking the budget below the pins + 2 is refused and changes nothing.
        let small = Config::builder()
            .max_memory_pages(BUDGET - 1)
            .build()
            .unwrap();
        let err = g.reconfigure(small).unwrap_err();
        assert!(
            matches!(err, Error::Pin(PinError::BudgetBelowPins { .. })),
            "{err:?}"
        );
        assert_eq!(g.stats().budget_pages, BUDGET as u64);
        // Growing works, and shrinking back to exactly pins + 2 evicts only unpinned pages.
        let config = |pages| Config::builder().max_memory_pages(pages).build().unwrap();
        g.reconfigure(config(2 * BUDGET)).unwrap();
        for p in 0..2 * BUDGET {
            // SAFETY: inside the filler allocation.
            unsafe { e.filler.add(p * page).write(2) };
        }
        g.reconfigure(config(BUDGET)).unwrap();
        let restores = g.stats().restores;
        for i in (0..(BUDGET - 2) * page).step_by(101) {
            // SAFETY: inside the allocation.
            assert_eq!(unsafe { e.buf.add(i).read() }, pattern(i));
        }
        assert_eq!(
            g.stats().restores,
            restores,
            "{backend}: pinned pages stayed"
        );
        drop(pin);
        e.free(&g);
    }
}

#[test]
fn bad_ranges_are_refused_and_change_nothing() {
    for backend in backends() {
        let g = instance(backend, BUDGET);
        let page = page_size();
        let p = g.alloc_raw(2 * page).unwrap().as_ptr();
        let local = [0u8; 16];
        let refused = |r: Result<ghostmem::PinGuard<'_>, Error>| match r {
            Err(Error::Pin(e)) => e,
            other => panic!("{backend}: expected a refusal, got {other:?}"),
        };
        assert!(matches!(
            refused(g.pin(local.as_ptr(), 16)),
            PinError::Foreign { .. }
        ));
        assert!(matches!(
            refused(g.pin(std::ptr::null(), 1)),
            PinError::Foreign { .. }
        ));
        assert!(matches!(
            refused(g.pin(p, usize::MAX)),
            PinError::Overflow { .. }
        ));
        // Past the end of the allocation: pages never allocated.
        assert!(matches!(
            refused(g.pin(p, 3 * page)),
            PinError::NotAllocated(_)
        ));
        assert_eq!(g.pinned_pages(), 0);
        // Unpinning what is not pinned.
        assert!(matches!(
            g.unpin(p, page),
            Err(Error::Pin(PinError::NotPinned(_)))
        ));
        let pin = g.pin(p, page).unwrap();
        // Half pinned: refused as a whole.
        assert!(matches!(
            g.unpin(p, 2 * page),
            Err(Error::Pin(PinError::NotPinned(_)))
        ));
        assert_eq!(g.pinned_pages(), 1);
        let (ptr, len) = pin.into_raw();
        g.unpin(ptr, len).unwrap();
        assert!(g.unpin(ptr, len).is_err(), "a second unpin is refused");
        // Zero bytes: nothing to do.
        drop(g.pin(p, 0).unwrap());
        // SAFETY: allocated above with this size, not used afterwards.
        unsafe { g.free_raw(p, 2 * page) }.unwrap();
        // A freed range.
        assert!(matches!(refused(g.pin(p, page)), PinError::NotAllocated(_)));
        assert_eq!(g.pinned_pages(), 0);
    }
}

#[test]
fn freeing_pinned_memory_drops_its_pins() {
    for backend in backends() {
        let g = instance(backend, BUDGET);
        let page = page_size();
        let p = g.alloc_raw(3 * page).unwrap().as_ptr();
        let pin = g.pin(p, 3 * page).unwrap();
        assert_eq!(g.pinned_pages(), 3);
        // SAFETY: allocated above with this size, not used afterwards.
        unsafe { g.free_raw(p, 3 * page) }.unwrap();
        assert_eq!(g.pinned_pages(), 0);
        let s = g.stats();
        assert_eq!((s.resident_pages, s.allocated_pages), (0, 0), "{s:?}");
        drop(pin); // its unpin is refused quietly
        // The whole budget can be pinned again (but two pages).
        let q = g.alloc_raw((BUDGET - 2) * page).unwrap().as_ptr();
        let again = g.pin(q, (BUDGET - 2) * page).unwrap();
        drop(again);
        // SAFETY: as above.
        unsafe { g.free_raw(q, (BUDGET - 2) * page) }.unwrap();
    }
}
