//! The constants in `include/ghostmem/ghostmem.h` agree with the crate and the engine.
//! (Functions, structs and status codes are compared by `scripts/check-c-header.py`.)

use std::ffi::CStr;

fn header() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../include/ghostmem/ghostmem.h"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn define(header: &str, name: &str) -> String {
    header
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("#define ")?.trim();
            let (n, v) = rest.split_once(char::is_whitespace)?;
            (n == name).then(|| v.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("#define {name} not found in ghostmem.h"))
}

#[test]
fn version_macros_are_the_crate_version() {
    let h = header();
    assert_eq!(
        define(&h, "GHOSTMEM_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert_eq!(
        define(&h, "GHOSTMEM_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_MINOR")
    );
    assert_eq!(
        define(&h, "GHOSTMEM_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    assert_eq!(
        define(&h, "GHOSTMEM_VERSION_STRING"),
        env!("CARGO_PKG_VERSION")
    );
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(ghostmem_capi::ghostmem_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let parts = [
        ghostmem_capi::ghostmem_version_major(),
        ghostmem_capi::ghostmem_version_minor(),
        ghostmem_capi::ghostmem_version_patch(),
    ];
    assert_eq!(
        parts.map(|p| p.to_string()).join("."),
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn budget_and_environment_constants_are_the_engines() {
    let h = header();
    assert_eq!(
        define(&h, "GHOSTMEM_DEFAULT_MAX_MEMORY_PAGES"),
        ghostmem::DEFAULT_MAX_MEMORY_PAGES.to_string()
    );
    assert_eq!(
        define(&h, "GHOSTMEM_MIN_MAX_MEMORY_PAGES"),
        ghostmem::MIN_MAX_MEMORY_PAGES.to_string()
    );
    assert_eq!(
        define(&h, "GHOSTMEM_MAX_PAGES_ENV"),
        ghostmem::MAX_PAGES_ENV
    );
    assert_eq!(define(&h, "GHOSTMEM_LOG_ENV"), ghostmem_capi::LOG_ENV);
}
