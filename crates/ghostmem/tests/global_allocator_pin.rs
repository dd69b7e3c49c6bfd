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
    // Push the text's pages out with other allocations, and check that they are out.
    let filler: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 64 << 10]).collect();
    let g = GLOBAL
        .ghost()
        .expect("the global instance exists once the heap is used");
    let text_pages = u64::try_from(text.len() / ghostmem::page_size()).unwrap();
    let s = g.stats();
    assert!(s.evicted_pages >= text_pages, "{s:?}");

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
    drop(filler);
    assert!(back == text, "file contents differ after a round trip");
}
