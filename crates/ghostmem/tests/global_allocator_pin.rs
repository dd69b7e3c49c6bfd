//! `GhostGlobal` (default mode) as the `#[global_allocator]` of this test binary: `std::fs`
//! from and into heap buffers that are not resident fails with `EFAULT`, and succeeds once the
//! buffer is pinned (`GhostGlobal::ghost` + `GhostMem::pin_slice`). `Command::output` and
//! `std::fs::read` allocate their buffers inside std, where no pin can reach: those need
//! kernel-access mode (`global_allocator_kernel.rs`).

use std::io::Read;

use ghostmem::GhostGlobal;

#[global_allocator]
static GLOBAL: GhostGlobal = GhostGlobal::new(256);

#[test]
fn std_fs_from_and_into_pinned_heap_buffers() {
    let dir = std::env::temp_dir().join(format!("ghostmem-global-pin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data.txt");
    let text: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("line {i:06}\n").into_bytes())
        .collect();
    // Push the text's pages out: shrink the budget to a few pages and back (a stream of other
    // allocations would not do: the CLOCK keeps pages that came back soon after an eviction,
    // as the text's did while it grew, ahead of pages streaming through), and check that
    // they are out.
    let g = GLOBAL
        .ghost()
        .expect("the global instance exists once the heap is used");
    let budget = |pages| {
        ghostmem::Config::builder()
            .max_memory_pages(pages)
            .build()
            .unwrap()
    };
    g.reconfigure(budget(8)).expect("shrinking the budget");
    g.reconfigure(budget(256)).expect("restoring the budget");
    let page = ghostmem::page_size();
    let start = text.as_ptr() as usize / page * page;
    let mut resident = vec![0u8; (text.as_ptr() as usize + text.len() - start).div_ceil(page)];
    // SAFETY: mincore(2) reads the page tables of `resident.len()` pages from the page-aligned
    // start of `text`, all inside its live allocation, and writes one byte per page into
    // `resident`, which has that many.
    let rc = unsafe {
        libc::mincore(
            start as *mut libc::c_void,
            resident.len() * page,
            resident.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    assert!(
        resident.iter().any(|&b| b & 1 == 0),
        "every page of the text is still resident: {:?}",
        g.stats()
    );

    let unpinned = std::fs::write(&path, &text);
    let err = unpinned.expect_err("write(2) from evicted heap pages must fail without a pin");
    assert_eq!(err.raw_os_error(), Some(libc::EFAULT), "{err}");

    let pin = g.pin_slice(&text).expect("pinning the text");
    std::fs::write(&path, &text).expect("write(2) from pinned heap pages");
    drop(pin);

    let mut back = vec![0u8; text.len()];
    let pin = g.pin_slice(&back).expect("pinning the read buffer");
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut back))
        .expect("read(2) into pinned heap pages");
    drop(pin);
    std::fs::remove_dir_all(&dir).ok();
    assert!(back == text, "file contents differ after a round trip");
}
