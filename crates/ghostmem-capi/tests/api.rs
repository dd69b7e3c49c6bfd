//! The exported functions, called from Rust as C would call them (owned instances only; the
//! process-wide instance has its own test binary, `global.rs`).

use std::ffi::CStr;
use std::ptr;

use ghostmem_capi::*;

fn last_error() -> String {
    let p = ghostmem_last_error();
    assert!(!p.is_null(), "a failing call sets the last error");
    // SAFETY: non-null pointers from ghostmem_last_error are live C strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn config(pages: usize) -> ghostmem_config_t {
    let mut c = std::mem::MaybeUninit::<ghostmem_config_t>::uninit();
    // SAFETY: `c` is valid for writes; config_init fills every field.
    unsafe {
        ghostmem_config_init(c.as_mut_ptr());
        let mut c = c.assume_init();
        c.max_memory_pages = pages;
        c
    }
}

fn stats(gm: *mut ghostmem_t) -> ghostmem_stats_t {
    let mut s = ghostmem_stats_t::default();
    // SAFETY: live handle; `s` is valid for its size.
    let status = unsafe { ghostmem_get_stats(gm, &mut s, size_of::<ghostmem_stats_t>()) };
    assert_eq!(status, GHOSTMEM_OK);
    s
}

#[test]
fn allocate_touch_evict_restore_free() {
    // SAFETY: valid config.
    let gm = unsafe { ghostmem_new(&config(4)) };
    assert!(!gm.is_null());
    let words = 32 * ghostmem_page_size() / 8;
    // SAFETY: live handle.
    let p = unsafe { ghostmem_alloc(gm, words * 8) }.cast::<u64>();
    assert!(!p.is_null());
    // SAFETY: live handle; `p` is inside it.
    assert!(unsafe { ghostmem_contains(gm, p.cast()) });
    for i in 0..words {
        // SAFETY: inside the allocation, aligned.
        unsafe { p.add(i).write(i as u64 * 7) };
    }
    for i in 0..words {
        // SAFETY: as above.
        assert_eq!(unsafe { p.add(i).read() }, i as u64 * 7);
    }
    let s = stats(gm);
    assert_eq!(s.budget_pages, 4);
    assert!(
        s.resident_pages <= 4 && s.evictions > 0 && s.restores > 0,
        "{s:?}"
    );
    assert_eq!((s.live_allocations, s.live_bytes), (1, (words * 8) as u64));
    // SAFETY: allocated above with this size, not used afterwards.
    let freed = unsafe { ghostmem_free(gm, p.cast(), words * 8) };
    assert_eq!(freed, GHOSTMEM_OK);
    assert_eq!(stats(gm).live_allocations, 0);
    // SAFETY: owned handle, not used afterwards.
    unsafe { ghostmem_delete(gm) };
}

#[test]
fn bad_frees_are_refused_with_their_own_status() {
    // SAFETY: valid config.
    let gm = unsafe { ghostmem_new(&config(4)) };
    let mut local = 0u64;
    // SAFETY: (every call below) live handle; refused frees change nothing.
    unsafe {
        assert_eq!(ghostmem_free(gm, ptr::null_mut(), 16), GHOSTMEM_OK);
        let p = ghostmem_alloc(gm, 100);
        assert_eq!(ghostmem_free(gm, p, 5000), GHOSTMEM_ERR_SIZE_MISMATCH);
        assert!(last_error().contains("ghostmem_free"));
        assert_eq!(
            ghostmem_free(gm, p.cast::<u8>().add(16).cast(), 16),
            GHOSTMEM_ERR_NOT_ALLOCATED
        );
        assert_eq!(ghostmem_free(gm, p, 100), GHOSTMEM_OK);
        assert_eq!(ghostmem_free(gm, p, 100), GHOSTMEM_ERR_DOUBLE_FREE);
        assert_eq!(
            ghostmem_free(gm, ptr::from_mut(&mut local).cast(), 8),
            GHOSTMEM_ERR_FOREIGN_POINTER
        );
        assert_eq!(stats(gm).invalid_frees, 4);
        ghostmem_delete(gm);
    }
}

#[test]
fn bad_arguments_are_errors_not_crashes() {
    // SAFETY: (every call below) null handles and pointers are what is being tested.
    unsafe {
        assert!(ghostmem_alloc(ptr::null_mut(), 8).is_null());
        assert_eq!(last_error(), "ghostmem_alloc: gm is NULL");
        assert_eq!(
            ghostmem_free(ptr::null_mut(), ptr::null_mut(), 0),
            GHOSTMEM_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            ghostmem_get_stats(ptr::null(), ptr::null_mut(), 0),
            GHOSTMEM_ERR_INVALID_ARGUMENT
        );
        assert!(!ghostmem_contains(ptr::null(), ptr::null()));
        ghostmem_delete(ptr::null_mut());

        let gm = ghostmem_new(ptr::null());
        assert!(!gm.is_null(), "null config means the defaults");
        assert!(ghostmem_alloc(gm, 0).is_null());
        assert_eq!(last_error(), "ghostmem_alloc: zero-sized allocation");
        assert!(ghostmem_alloc(gm, usize::MAX).is_null());
        assert!(ghostmem_alloc_aligned(gm, 8, 3).is_null());
        assert!(last_error().contains("not a power of two"));
        assert!(ghostmem_alloc_aligned(gm, 8, 1 << 20).is_null());
        assert!(last_error().contains("exceeds the page size"));
        assert_eq!(
            ghostmem_reconfigure(gm, ptr::null()),
            GHOSTMEM_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            ghostmem_get_stats(gm, ptr::null_mut(), 8),
            GHOSTMEM_ERR_INVALID_ARGUMENT
        );
        ghostmem_delete(gm);
    }
}

#[test]
fn configurations_are_validated() {
    // SAFETY: (every call below) valid configs with static or null paths.
    unsafe {
        assert!(ghostmem_new(&config(1)).is_null());
        assert!(last_error().contains("max_memory_pages = 1 is too small"));

        let mut disk = config(8);
        disk.use_disk_backing = true;
        disk.disk_file_path = c"/nonexistent-dir/x.swap".as_ptr();
        assert!(
            ghostmem_new(&disk).is_null(),
            "the swap file cannot be opened"
        );

        let mut encrypt = config(8);
        encrypt.encrypt_disk_pages = true;
        assert!(ghostmem_new(&encrypt).is_null());
        assert!(last_error().contains("encrypt_disk_pages"));

        let gm = ghostmem_new(&config(8));
        assert_eq!(ghostmem_reconfigure(gm, &config(1)), GHOSTMEM_ERR_CONFIG);
        assert_eq!(
            stats(gm).budget_pages,
            8,
            "a refused configuration changes nothing"
        );
        assert_eq!(ghostmem_reconfigure(gm, &config(3)), GHOSTMEM_OK);
        assert_eq!(stats(gm).budget_pages, 3);
        ghostmem_delete(gm);
    }
}

#[test]
fn aligned_allocations_are_aligned() {
    // SAFETY: valid config.
    let gm = unsafe { ghostmem_new(&config(8)) };
    let page = ghostmem_page_size();
    for align in [1, 2, 8, 16, 32, 64, 256, 1024, page] {
        for size in [1, 24, 100, 2048, 5000] {
            // SAFETY: live handle.
            let p = unsafe { ghostmem_alloc_aligned(gm, size, align) };
            assert!(!p.is_null(), "size {size} align {align}");
            assert_eq!(p as usize % align, 0, "size {size} align {align}");
            // SAFETY: inside the fresh allocation.
            unsafe { p.cast::<u8>().add(size - 1).write(1) };
            // SAFETY: allocated above with this size and alignment.
            let freed = unsafe { ghostmem_free_aligned(gm, p, size, align) };
            assert_eq!(freed, GHOSTMEM_OK, "size {size} align {align}");
        }
    }
    // SAFETY: owned handle.
    unsafe { ghostmem_delete(gm) };
}

#[test]
fn a_short_stats_struct_gets_a_prefix() {
    // SAFETY: valid config.
    let gm = unsafe { ghostmem_new(&config(6)) };
    let mut two = [u64::MAX; 3];
    // SAFETY: `two` has room for 16 bytes (and 8 more that must stay untouched).
    let s = unsafe { ghostmem_get_stats(gm, two.as_mut_ptr().cast(), 16) };
    assert_eq!(s, GHOSTMEM_OK);
    assert_eq!(two, [ghostmem_page_size() as u64, 6, u64::MAX]);
    // SAFETY: owned handle.
    unsafe { ghostmem_delete(gm) };
}

#[test]
fn status_strings_and_defaults() {
    let s = |c| {
        // SAFETY: static strings.
        let text = unsafe { CStr::from_ptr(ghostmem_status_str(c)) };
        text.to_str().unwrap()
    };
    assert_eq!(s(GHOSTMEM_OK), "ok");
    assert_eq!(s(GHOSTMEM_ERR_DOUBLE_FREE), "double free");
    assert_eq!(s(-1), "unknown status");
    assert_eq!(
        ghostmem_default_max_memory_pages(),
        ghostmem::default_max_memory_pages()
    );
    let c = config(0);
    assert!(c.compress_before_disk && !c.use_disk_backing && !c.enable_verbose_logging);
    // SAFETY: config_init points it at a static string.
    let path = unsafe { CStr::from_ptr(c.disk_file_path) };
    assert_eq!(path, c"ghostmem.swap");
    ghostmem_clear_last_error();
    assert!(ghostmem_last_error().is_null());
}

#[test]
fn disk_backing_through_the_c_config() {
    let dir = std::env::temp_dir().join(format!("ghostmem-capi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path =
        std::ffi::CString::new(dir.join("x.swap").into_os_string().into_encoded_bytes()).unwrap();
    let mut c = config(4);
    c.use_disk_backing = true;
    c.encrypt_disk_pages = true;
    c.disk_file_path = path.as_ptr();
    // SAFETY: valid config; the path outlives the call.
    let gm = unsafe { ghostmem_new(&c) };
    assert!(!gm.is_null(), "{}", last_error());
    let words = 64 * ghostmem_page_size() / 8;
    // SAFETY: live handle.
    let p = unsafe { ghostmem_alloc(gm, words * 8) }.cast::<u64>();
    for i in 0..words {
        // SAFETY: inside the allocation, aligned.
        unsafe { p.add(i).write(i as u64 * 31) };
    }
    for i in 0..words {
        // SAFETY: as above.
        assert_eq!(unsafe { p.add(i).read() }, i as u64 * 31);
    }
    let s = stats(gm);
    assert!(
        s.store_file_bytes > 0 && s.store_auth_failures == 0,
        "{s:?}"
    );
    // SAFETY: allocated above; the handle is owned and not used afterwards.
    unsafe {
        assert_eq!(ghostmem_free(gm, p.cast(), words * 8), GHOSTMEM_OK);
        ghostmem_delete(gm);
    }
    assert!(
        !dir.join("x.swap").exists(),
        "deleting the instance removes its swap file"
    );
    std::fs::remove_dir(&dir).unwrap();
}
