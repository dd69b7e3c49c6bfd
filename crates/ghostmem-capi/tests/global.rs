//! The process-wide instance through the C API: `ghostmem_global_init` may be called again and
//! again (it reconfigures), memory allocated before keeps its contents, and the handle cannot
//! be deleted. One test: it changes process-wide state.

use std::ffi::CStr;

use ghostmem_capi::*;

fn config(pages: usize) -> ghostmem_config_t {
    ghostmem_config_t {
        max_memory_pages: pages,
        ..ghostmem_config_t_default()
    }
}

fn ghostmem_config_t_default() -> ghostmem_config_t {
    let mut c = std::mem::MaybeUninit::<ghostmem_config_t>::uninit();
    // SAFETY: valid for writes; every field is filled.
    unsafe {
        ghostmem_config_init(c.as_mut_ptr());
        c.assume_init()
    }
}

fn budget(gm: *mut ghostmem_t) -> u64 {
    let mut s = ghostmem_stats_t::default();
    // SAFETY: live handle, valid output.
    let status = unsafe { ghostmem_get_stats(gm, &mut s, size_of::<ghostmem_stats_t>()) };
    assert_eq!(status, GHOSTMEM_OK);
    assert!(s.resident_pages <= s.budget_pages, "{s:?}");
    s.budget_pages
}

#[test]
fn initialize_again_and_again_keeps_memory() {
    // SAFETY: (every call below) valid configs and handles.
    unsafe {
        assert_eq!(ghostmem_global_init(&config(8)), GHOSTMEM_OK);
        let gm = ghostmem_global();
        assert!(!gm.is_null());
        assert_eq!(budget(gm), 8);
        let words = 24 * ghostmem_page_size() / 8;
        let p = ghostmem_alloc(gm, words * 8).cast::<u64>();
        for i in 0..words {
            p.add(i).write(i as u64 ^ 0xabcdef);
        }
        for pages in [3, 64, 5] {
            assert_eq!(ghostmem_global_init(&config(pages)), GHOSTMEM_OK);
            assert_eq!(ghostmem_global(), gm, "reconfigured in place");
            assert_eq!(budget(gm), pages as u64);
            for i in 0..words {
                assert_eq!(p.add(i).read(), i as u64 ^ 0xabcdef, "word {i}");
            }
        }
        // A refused configuration leaves the instance as it was.
        let mut disk = config(16);
        disk.use_disk_backing = true;
        disk.disk_file_path = c"/nonexistent-dir/x.swap".as_ptr();
        assert_eq!(ghostmem_global_init(&disk), GHOSTMEM_ERR_SYSTEM);
        let e = CStr::from_ptr(ghostmem_last_error()).to_str().unwrap();
        assert!(e.contains("/nonexistent-dir/x.swap"), "{e}");
        assert_eq!(budget(gm), 5);
        assert_eq!(ghostmem_global_init(&config(1)), GHOSTMEM_ERR_CONFIG);
        assert_eq!(budget(gm), 5);

        // The process-wide instance cannot be deleted.
        ghostmem_clear_last_error();
        ghostmem_delete(gm);
        let e = CStr::from_ptr(ghostmem_last_error()).to_str().unwrap();
        assert!(e.contains("cannot be deleted"), "{e}");
        assert_eq!(p.read(), 0xabcdef);
        assert_eq!(ghostmem_free(gm, p.cast(), words * 8), GHOSTMEM_OK);
    }
}
