//! Access sampling: on the userfaultfd backend, the CLOCK write-protects the resident pages
//! whose last chance it takes, and a page stored to before the hand comes back keeps its
//! place. A page in use therefore stays resident while other pages stream through the budget;
//! without sampling it would be evicted every few sweeps. Nothing is lost either way.

mod common;

use ghostmem::{FaultBackend, page_size};

/// Store `v` at the start of the page at `ptr`.
fn put(ptr: *mut u8, v: u64) {
    // SAFETY: every caller passes the start of a page of a live ghost allocation.
    unsafe { ptr.cast::<u64>().write(v) }
}

/// The value at the start of the page at `ptr`.
fn get(ptr: *mut u8) -> u64 {
    // SAFETY: every caller passes the start of a page of a live ghost allocation.
    unsafe { ptr.cast::<u64>().read() }
}

/// Whether the page at `ptr` is in RAM (mincore(2)).
fn in_ram(ptr: *const u8) -> bool {
    let mut vec = [0u8; 1];
    // SAFETY: mincore reads the page table entry of the one page-aligned page at `ptr` (inside
    // a live ghost allocation) and writes one byte into `vec`.
    let rc = unsafe { libc::mincore(ptr as *mut libc::c_void, page_size(), vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    vec[0] & 1 == 1
}

#[test]
fn a_page_stored_to_between_sweeps_stays_resident() {
    let budget = 16;
    let g = common::instance(budget);
    let page = page_size();
    let pages = 96;
    let base = common::alloc(&g, pages * page);
    let at = |p: usize| base.wrapping_add(p * page);
    // The others: even pages from 2 on, never next to each other or to the used page (a
    // victim takes its resident neighbours along), visited in an order no stream follows.
    let others: Vec<usize> = (1..pages / 2).map(|k| 2 * k).collect();
    let mut next = 0usize;
    let mut other = || {
        next = (next + 17) % others.len();
        others[next]
    };
    let mut shadow = vec![0u64; pages];
    let store = |p: usize, v: u64, shadow: &mut Vec<u64>| {
        put(at(p), v);
        shadow[p] = v;
    };
    // Page 0 comes in, goes out, and comes back soon: a page in use from then on.
    store(0, 1, &mut shadow);
    let mut round = 0;
    while in_ram(at(0)) {
        round += 1;
        store(other(), round, &mut shadow);
        assert!(round < 10_000, "page 0 never left");
    }
    store(0, 2, &mut shadow);
    let before = g.stats();
    let mut out = 0;
    for i in 0..2_000u64 {
        let p = other();
        store(p, i + 10, &mut shadow);
        if !in_ram(at(0)) {
            out += 1;
        }
        store(0, i + 10, &mut shadow);
    }
    let s = g.stats();
    let restores = s.restores - before.restores;
    for (p, &v) in shadow.iter().enumerate() {
        assert_eq!(get(at(p)), v, "page {p}");
    }
    if g.fault_backend() == FaultBackend::Mprotect {
        // No sampling there: page 0 is evicted again and again, and nothing counts samples.
        assert_eq!((s.sampled_pages, s.sample_faults), (0, 0), "{s:?}");
        assert!(out > 10, "page 0 was out {out} times: {s:?}");
        return;
    }
    assert!(
        out <= 2,
        "page 0, stored to between every two misses, was evicted {out} times in 2000 \
         ({restores} restores): {s:?}"
    );
    assert!(s.sample_faults > 0, "{s:?}");
}

#[test]
fn a_pinned_page_takes_the_kernels_stores_even_when_sampled() {
    let g = common::instance(16);
    let page = page_size();
    let pages = 96;
    let base = common::alloc(&g, pages * page);
    let at = |p: usize| base.wrapping_add(p * page);
    let mut fds = [0; 2];
    // SAFETY: pipe(2) writes two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut next = 0usize;
    let mut other = || {
        next = (next + 17) % (pages / 2 - 1);
        put(at(2 * (next + 1)), next as u64);
    };
    put(at(0), 1);
    while in_ram(at(0)) {
        other();
    }
    put(at(0), 2);
    let before = g.stats();
    for i in 0..2_000u64 {
        other();
        let pin = g.pin(at(0), 8).expect("pinning page 0");
        let bytes = i.to_le_bytes();
        // SAFETY: write(2) reads the 8 bytes of `bytes` into the open pipe.
        let put_in = unsafe { libc::write(fds[1], bytes.as_ptr().cast(), 8) };
        assert_eq!(put_in, 8, "write to the pipe");
        // SAFETY: read(2) writes 8 bytes into page 0 of the live allocation.
        let got = unsafe { libc::read(fds[0], at(0).cast(), 8) };
        assert_eq!(
            got,
            8,
            "read(2) into pinned page 0, round {i}: {}",
            std::io::Error::last_os_error()
        );
        drop(pin);
        assert_eq!(get(at(0)), i);
    }
    let s = g.stats();
    if g.fault_backend() != FaultBackend::Mprotect {
        assert!(
            s.sampled_pages > before.sampled_pages,
            "page 0 was never sampled: {s:?}"
        );
    }
    // SAFETY: the pipe's two descriptors are ours and closed once.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}
