//! An idle instance costs little RAM: its working memory for faults (a page buffer or three,
//! readahead buffers and a codec state for each of the faults that may run at once) takes
//! RAM only once a fault uses it, so creating an instance and serving faults from one
//! thread must not grow the resident set by more than a few of those sets.
//!
//! RSS is shared by every thread of the process, so this binary holds exactly one test.

mod common;

use ghostmem::page_size;

#[test]
fn fault_working_memory_takes_ram_only_when_used() {
    let page = page_size();
    let budget = 64usize;
    let before = common::status_bytes("RssAnon");
    let ghost = common::instance_with_space(budget, 64 << 20);
    let created = common::status_bytes("RssAnon");
    // Faults from this thread: fill 4 budgets' worth of pages, then read them back in order
    // (evictions, restores and readahead).
    let pages = 4 * budget;
    let data = common::alloc(&ghost, pages * page);
    for i in 0..pages {
        // SAFETY: inside the live allocation of `pages` pages.
        unsafe { data.add(i * page + i % page).write(i.to_le_bytes()[0] | 1) };
    }
    for i in 0..pages {
        // SAFETY: as above.
        let got = unsafe { data.add(i * page + i % page).read() };
        assert_eq!(got, i.to_le_bytes()[0] | 1);
    }
    let used = common::status_bytes("RssAnon");
    let s = ghost.stats();
    eprintln!(
        "RSS before {before}, after creating the instance {created}, after faults {used}; {s:?}"
    );
    assert!(s.evictions > 0 && s.restores > 0, "{s:?}");
    // The budget's pages, and one scratch's buffers (3 pages, 2 x 64 pages for readahead, a
    // 16 KiB codec state), the store's blocks and tables and the heap's metadata: about 226
    // pages on 4 KiB pages (176 with 32-page readahead windows). With the sixteen scratches'
    // buffers and codec states on the heap, where some were cleared and the readahead ones
    // shared a page with malloc's header, it was about 290 with 32-page windows.
    let allowance = (budget as u64 + 200) * page as u64;
    assert!(
        used.saturating_sub(before) <= allowance,
        "RSS grew by {} bytes (allowance {allowance})",
        used - before
    );
}
