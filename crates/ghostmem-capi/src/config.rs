//! `ghostmem_config_t`: the C form of [`ghostmem::Config`] (the original's `GhostConfig`).
#![allow(unsafe_code)]

use std::ffi::{CStr, OsStr, c_char};
use std::os::unix::ffi::OsStrExt;

use ghostmem::Config;

use crate::status::Failure;

/// Configuration of an instance, as C sees it. Fill it with `ghostmem_config_init` first,
/// then change the fields you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct ghostmem_config_t {
    /// Resident page budget. 0 means the default (`ghostmem_default_max_memory_pages()`:
    /// 5 pages unless `GHOSTMEM_MAX_PAGES` says otherwise); otherwise at least 2.
    pub max_memory_pages: usize,
    /// Store evicted pages in a file instead of process memory. Default false.
    pub use_disk_backing: bool,
    /// Compress pages before writing them to disk. Default true.
    pub compress_before_disk: bool,
    /// Log what the engine does to stderr. Default false.
    pub enable_verbose_logging: bool,
    /// Encrypt pages written to disk (needs disk backing). Default false.
    pub encrypt_disk_pages: bool,
    /// Swap file path (NUL-terminated, borrowed for the duration of the call). Null means the
    /// default, `"ghostmem.swap"`.
    pub disk_file_path: *const c_char,
    /// Virtual address space to reserve, in bytes. 0 means the default (64 GiB). Ignored when
    /// reconfiguring an existing instance.
    pub address_space: usize,
    /// Let system calls touch ghost pages that are not resident (a handler thread serves every
    /// fault). Default false. Creation fails where the system does not allow it.
    pub kernel_access: bool,
}

/// The default swap file name, as a C string with static lifetime.
pub(crate) const DEFAULT_DISK_FILE_PATH: &CStr = c"ghostmem.swap";

impl Default for ghostmem_config_t {
    fn default() -> Self {
        ghostmem_config_t {
            max_memory_pages: 0,
            use_disk_backing: false,
            compress_before_disk: true,
            enable_verbose_logging: false,
            encrypt_disk_pages: false,
            disk_file_path: DEFAULT_DISK_FILE_PATH.as_ptr(),
            address_space: 0,
            kernel_access: false,
        }
    }
}

/// Validate a C configuration into an engine [`Config`]. A null `config` means the defaults.
///
/// # Safety
/// - `config` is null or points to a valid `ghostmem_config_t`.
/// - Its `disk_file_path` is null or points to a NUL-terminated string.
pub(crate) unsafe fn to_config(
    function: &str,
    config: *const ghostmem_config_t,
) -> Result<Config, Failure> {
    // SAFETY: the caller guarantees `config` is null or valid.
    let c = unsafe { config.as_ref() }.copied().unwrap_or_default();
    let mut builder = Config::builder()
        .max_memory_pages(c.max_memory_pages)
        .use_disk_backing(c.use_disk_backing)
        .compress_before_disk(c.compress_before_disk)
        .enable_verbose_logging(c.enable_verbose_logging)
        .encrypt_disk_pages(c.encrypt_disk_pages)
        .kernel_access(c.kernel_access);
    if !c.disk_file_path.is_null() {
        // SAFETY: the caller guarantees a non-null path is NUL-terminated.
        let path = unsafe { CStr::from_ptr(c.disk_file_path) };
        builder = builder.disk_file_path(OsStr::from_bytes(path.to_bytes()));
    }
    if c.address_space != 0 {
        builder = builder.address_space(c.address_space);
    }
    builder.build().map_err(|e| Failure::config(function, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_engine() {
        // SAFETY: null means defaults.
        let from_null = unsafe { to_config("t", std::ptr::null()) }.unwrap();
        let c = ghostmem_config_t::default();
        // SAFETY: `c` is valid and its path is a static C string.
        let from_default = unsafe { to_config("t", &c) }.unwrap();
        assert_eq!(from_null, Config::default());
        assert_eq!(from_default, Config::default());
        assert_eq!(
            from_default.disk_file_path(),
            std::path::Path::new("ghostmem.swap")
        );
    }

    #[test]
    fn fields_are_passed_on_and_validated() {
        let c = ghostmem_config_t {
            max_memory_pages: 12,
            enable_verbose_logging: true,
            address_space: 1 << 20,
            ..Default::default()
        };
        // SAFETY: valid struct, static path.
        let config = unsafe { to_config("t", &c) }.unwrap();
        assert_eq!(config.max_memory_pages(), 12);
        assert!(config.enable_verbose_logging());
        assert_eq!(config.address_space(), 1 << 20);

        let too_small = ghostmem_config_t {
            max_memory_pages: 1,
            ..Default::default()
        };
        // SAFETY: as above.
        let e = unsafe { to_config("ghostmem_new", &too_small) }.unwrap_err();
        assert_eq!(e.status, crate::status::GHOSTMEM_ERR_CONFIG);
        assert!(e.message.starts_with("ghostmem_new: "), "{}", e.message);
    }
}
