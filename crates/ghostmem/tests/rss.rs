//! Evicted pages really leave RAM: 64 MiB of compressible data under a 1 MiB budget must not
//! grow the process's resident set by more than 16 MiB.
//!
//! RSS is shared by every thread of the process, so this binary holds exactly one test.

mod common;

use ghostmem::page_size;

const DATA: usize = 64 << 20;
const BUDGET_BYTES: usize = 1 << 20;
const MAX_GROWTH: u64 = 16 << 20;

/// Contents of page `i`: a compressible phrase naming the page, so that every page differs
/// (no page is zero or same-filled) yet LZ4 shrinks it to a few dozen bytes.
fn page_contents(i: usize, page: usize) -> Vec<u8> {
    let phrase = format!("ghostmem rss page {i:08} / ");
    phrase.bytes().cycle().take(page).collect()
}

#[test]
fn evicted_pages_release_ram() {
    let page = page_size();
    let budget = BUDGET_BYTES / page;
    let pages = DATA / page;
    let ghost = common::instance_with_space(budget, 2 * DATA);
    let data = common::alloc(&ghost, DATA);

    // Page contents are built on the fly: a 64 MiB reference copy would itself be RSS.
    let baseline = common::status_bytes("VmRSS");
    let mut peak = baseline;
    for i in 0..pages {
        let contents = page_contents(i, page);
        // SAFETY: page `i` of the live allocation of `DATA` bytes.
        unsafe { std::ptr::copy_nonoverlapping(contents.as_ptr(), data.add(i * page), page) };
        if i % 1024 == 0 {
            peak = peak.max(common::status_bytes("VmRSS"));
        }
    }
    let after_fill = common::status_bytes("VmRSS");
    peak = peak.max(after_fill);
    let s = ghost.stats();
    eprintln!(
        "baseline {baseline}, after fill {after_fill}, peak {peak} bytes; {s:?}; ratio {:?}",
        s.compression_ratio()
    );
    common::assert_within_budget(&s, "after the fill");
    assert!(
        s.evictions >= (pages - budget) as u64,
        "{pages} pages written under a budget of {budget}, only {} evictions",
        s.evictions
    );
    assert!(
        s.compressed_pages >= (pages - budget) as u64,
        "the pages are compressible but only {} are stored compressed: {s:?}",
        s.compressed_pages
    );
    assert!(
        peak.saturating_sub(baseline) < MAX_GROWTH,
        "RSS grew by {} bytes (baseline {baseline}, peak {peak}) while writing {DATA} bytes under \
         a budget of {BUDGET_BYTES}: evicted pages are not leaving RAM; {s:?}",
        peak - baseline
    );

    // Read everything back.
    for i in 0..pages {
        let expected = page_contents(i, page);
        // SAFETY: page `i` of the live allocation.
        let actual = unsafe { std::slice::from_raw_parts(data.add(i * page), page) };
        if actual != expected.as_slice() {
            let at = actual
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "page {i} differs at byte {at}: got {:#04x}, expected {:#04x}",
                actual[at], expected[at]
            );
        }
        if i % 1024 == 0 {
            peak = peak.max(common::status_bytes("VmRSS"));
        }
    }
    let after_read = common::status_bytes("VmRSS");
    peak = peak.max(after_read);
    let s2 = ghost.stats();
    eprintln!("after read {after_read}, peak {peak}; {s2:?}");
    common::assert_within_budget(&s2, "after reading back");
    assert!(
        s2.restores >= (pages - budget) as u64,
        "read {pages} pages back but only {} restores",
        s2.restores
    );
    assert!(
        peak.saturating_sub(baseline) < MAX_GROWTH,
        "RSS grew by {} bytes (baseline {baseline}, peak {peak}) while reading back: {s2:?}",
        peak - baseline
    );

    // SAFETY: the live allocation of `DATA` bytes, not used afterwards.
    unsafe { common::free(&ghost, data, DATA) };
    let s3 = ghost.stats();
    assert_eq!(
        s3.evicted_pages, 0,
        "freeing everything leaves pages in the store: {s3:?}"
    );
    assert_eq!(
        s3.resident_pages, 0,
        "freeing everything leaves pages resident: {s3:?}"
    );
}
