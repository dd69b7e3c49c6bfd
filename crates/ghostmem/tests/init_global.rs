//! `GhostMem::init_global`: the first call creates the process-wide instance with the given
//! configuration; later calls reconfigure it, and memory allocated before keeps its contents.
//! One test in its own binary, since it changes the process-wide instance.

use ghostmem::{Config, GhostMem, page_size};

fn config(pages: usize) -> Config {
    Config::builder().max_memory_pages(pages).build().unwrap()
}

#[test]
fn init_global_creates_then_reconfigures_without_losing_data() {
    let g = GhostMem::init_global(config(8)).unwrap();
    assert!(
        std::ptr::eq(g, GhostMem::global()),
        "one process-wide instance"
    );
    assert_eq!(g.stats().budget_pages, 8);

    let words = 40 * page_size() / 8;
    let p = g.alloc_raw(words * 8).unwrap().as_ptr().cast::<u64>();
    for i in 0..words {
        // SAFETY: inside the allocation, aligned (page runs are page-aligned).
        unsafe { p.add(i).write(!(i as u64)) };
    }
    let verify = || {
        for i in 0..words {
            // SAFETY: as above.
            assert_eq!(unsafe { p.add(i).read() }, !(i as u64), "word {i}");
        }
    };

    for pages in [3, 100, 5] {
        let again = GhostMem::init_global(config(pages)).unwrap();
        assert!(
            std::ptr::eq(again, g),
            "reconfigured in place, not replaced"
        );
        let s = g.stats();
        assert_eq!(s.budget_pages, pages as u64);
        assert!(s.resident_pages <= pages as u64, "{s:?}");
        verify();
    }
    assert!(g.stats().evictions > 0 && g.stats().restores > 0);
    // SAFETY: allocated above with this size; not used afterwards.
    unsafe { g.free_raw(p.cast(), words * 8) }.unwrap();
}
