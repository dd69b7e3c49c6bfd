//! Status codes, the thread-local last-error text, and the boundary guard that keeps panics
//! from crossing into C.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ghostmem::{Error, FreeError, PinError};

/// The result of a call that can fail: `GHOSTMEM_OK` (0) or one of the `GHOSTMEM_ERR_*` codes.
#[allow(non_camel_case_types)]
pub type ghostmem_status_t = i32;

/// Success.
pub const GHOSTMEM_OK: ghostmem_status_t = 0;
/// A null handle, configuration or output pointer; a zero size; an alignment that is not a
/// power of two or exceeds the page size.
pub const GHOSTMEM_ERR_INVALID_ARGUMENT: ghostmem_status_t = 1;
/// The configuration was refused (budget below the minimum, disk options that do not fit, ...).
pub const GHOSTMEM_ERR_CONFIG: ghostmem_status_t = 2;
/// The system refused (a system call failed, the swap file cannot be opened, the
/// `vm.max_map_count` limit, too many instances).
pub const GHOSTMEM_ERR_SYSTEM: ghostmem_status_t = 3;
/// The request does not fit the instance's reserved address space.
pub const GHOSTMEM_ERR_OUT_OF_MEMORY: ghostmem_status_t = 4;
/// A free of a pointer this instance never handed out.
pub const GHOSTMEM_ERR_FOREIGN_POINTER: ghostmem_status_t = 5;
/// A free of a pointer inside the instance that is not the start of an allocation.
pub const GHOSTMEM_ERR_NOT_ALLOCATED: ghostmem_status_t = 6;
/// A second free of the same allocation.
pub const GHOSTMEM_ERR_DOUBLE_FREE: ghostmem_status_t = 7;
/// A free with a size (or alignment) other than the allocation's.
pub const GHOSTMEM_ERR_SIZE_MISMATCH: ghostmem_status_t = 8;
/// An internal error (a Rust panic) was caught at the C boundary.
pub const GHOSTMEM_ERR_INTERNAL: ghostmem_status_t = 9;
/// An error this version of the C API does not classify further (see the last-error text).
pub const GHOSTMEM_ERR_OTHER: ghostmem_status_t = 10;
/// An unpin of memory that is not pinned.
pub const GHOSTMEM_ERR_NOT_PINNED: ghostmem_status_t = 11;
/// A pin (or a budget change) that would leave fewer than two pages of the budget unpinned.
pub const GHOSTMEM_ERR_PIN_LIMIT: ghostmem_status_t = 12;

/// The name of a status code, for messages.
pub(crate) fn status_name(status: ghostmem_status_t) -> &'static CStr {
    match status {
        GHOSTMEM_OK => c"ok",
        GHOSTMEM_ERR_INVALID_ARGUMENT => c"invalid argument",
        GHOSTMEM_ERR_CONFIG => c"invalid configuration",
        GHOSTMEM_ERR_SYSTEM => c"system error",
        GHOSTMEM_ERR_OUT_OF_MEMORY => c"out of memory",
        GHOSTMEM_ERR_FOREIGN_POINTER => c"foreign pointer",
        GHOSTMEM_ERR_NOT_ALLOCATED => c"not the start of an allocation",
        GHOSTMEM_ERR_DOUBLE_FREE => c"double free",
        GHOSTMEM_ERR_SIZE_MISMATCH => c"size mismatch",
        GHOSTMEM_ERR_INTERNAL => c"internal error",
        GHOSTMEM_ERR_OTHER => c"error",
        GHOSTMEM_ERR_NOT_PINNED => c"not pinned",
        GHOSTMEM_ERR_PIN_LIMIT => c"pins exceed the budget",
        _ => c"unknown status",
    }
}

/// Why a call failed: the code it returns and the text `ghostmem_last_error` gives.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: ghostmem_status_t,
    pub message: String,
}

impl Failure {
    pub fn new(status: ghostmem_status_t, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A null pointer where a valid one is required.
    pub fn null(function: &str, what: &str) -> Self {
        Failure::new(
            GHOSTMEM_ERR_INVALID_ARGUMENT,
            format!("{function}: {what} is NULL"),
        )
    }

    pub fn engine(function: &str, e: &Error) -> Self {
        let status = match e {
            Error::InvalidPointer(f) => return Failure::free(function, f),
            Error::Pin(p) => match p {
                PinError::Foreign { .. } => GHOSTMEM_ERR_FOREIGN_POINTER,
                PinError::NotAllocated(_) => GHOSTMEM_ERR_NOT_ALLOCATED,
                PinError::Overflow { .. } => GHOSTMEM_ERR_INVALID_ARGUMENT,
                PinError::NotPinned(_) => GHOSTMEM_ERR_NOT_PINNED,
                PinError::OverBudget { .. }
                | PinError::BudgetBelowPins { .. }
                | PinError::TooManyPins(_) => GHOSTMEM_ERR_PIN_LIMIT,
                _ => GHOSTMEM_ERR_OTHER,
            },
            Error::Config(_) | Error::KernelAccessNotAtRuntime => GHOSTMEM_ERR_CONFIG,
            Error::Sys { .. }
            | Error::KernelAccess { .. }
            | Error::Disk(_)
            | Error::MapCountLimit { .. }
            | Error::TooManyInstances(_) => GHOSTMEM_ERR_SYSTEM,
            Error::ZeroSize => GHOSTMEM_ERR_INVALID_ARGUMENT,
            Error::TooLarge { .. } | Error::OutOfAddressSpace { .. } => GHOSTMEM_ERR_OUT_OF_MEMORY,
            _ => GHOSTMEM_ERR_OTHER,
        };
        Failure::new(status, format!("{function}: {e}"))
    }

    pub fn config(function: &str, e: &ghostmem::ConfigError) -> Self {
        Failure::new(GHOSTMEM_ERR_CONFIG, format!("{function}: {e}"))
    }

    pub fn free(function: &str, e: &FreeError) -> Self {
        let status = match e {
            FreeError::Foreign(_) => GHOSTMEM_ERR_FOREIGN_POINTER,
            FreeError::NotAllocated(_) => GHOSTMEM_ERR_NOT_ALLOCATED,
            FreeError::DoubleFree(_) => GHOSTMEM_ERR_DOUBLE_FREE,
            FreeError::SizeMismatch { .. } => GHOSTMEM_ERR_SIZE_MISMATCH,
            _ => GHOSTMEM_ERR_OTHER,
        };
        Failure::new(status, format!("{function}: {e}"))
    }
}

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Record `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    // A message is built from our own text and Display impls; an interior NUL would cut it.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // During thread teardown the slot may be gone: the message is then dropped.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = Some(text));
}

/// This thread's last error, or null. The pointer stays valid until the next failing call on
/// this thread (or `ghostmem_clear_last_error`).
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| {
            slot.borrow()
                .as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr())
        })
        .unwrap_or(std::ptr::null())
}

pub(crate) fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|slot| slot.borrow_mut().take());
}

/// Run the body of an exported function: a returned [`Failure`] or a panic is recorded as the
/// last error and turned into its status code, so that nothing unwinds into C.
///
/// `AssertUnwindSafe`: after a panic the caller only gets an error code; the engine recovers
/// its locks from poisoning (it never leaves shared state half-updated across a panic point
/// that the C API can reach).
pub(crate) fn run<T>(body: impl FnOnce() -> Result<T, Failure>) -> Result<T, ghostmem_status_t> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            Err(failure.status)
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            set_last_error(&format!(
                "internal error caught at the C boundary (a Rust panic): {what}"
            ));
            // Dropping the payload could itself panic; forget it instead (a small leak on an
            // already exceptional path).
            std::mem::forget(payload);
            Err(GHOSTMEM_ERR_INTERNAL)
        }
    }
}

/// [`run`] for functions that return a status code.
pub(crate) fn run_status(body: impl FnOnce() -> Result<(), Failure>) -> ghostmem_status_t {
    match run(body) {
        Ok(()) => GHOSTMEM_OK,
        Err(status) => status,
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    fn last_error() -> Option<String> {
        let p = last_error_ptr();
        // SAFETY: a non-null pointer from `last_error_ptr` points to this thread's live CString.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        clear_last_error();
        let r: Result<(), _> = run(|| panic!("boom {}", 42));
        assert_eq!(r, Err(GHOSTMEM_ERR_INTERNAL));
        let text = last_error().unwrap();
        assert!(text.contains("boom 42") && text.contains("panic"), "{text}");
        let r: Result<(), _> = run(|| std::panic::panic_any(7_u8));
        assert_eq!(r, Err(GHOSTMEM_ERR_INTERNAL));
        assert!(last_error().unwrap().contains("(no message)"));
    }

    #[test]
    fn failures_set_the_last_error_and_success_leaves_it() {
        clear_last_error();
        assert_eq!(last_error(), None);
        let s = run_status(|| Err(Failure::null("f", "ptr")));
        assert_eq!(s, GHOSTMEM_ERR_INVALID_ARGUMENT);
        assert_eq!(last_error().as_deref(), Some("f: ptr is NULL"));
        assert_eq!(run_status(|| Ok(())), GHOSTMEM_OK);
        assert_eq!(last_error().as_deref(), Some("f: ptr is NULL"));
        set_last_error("a\0b");
        assert_eq!(last_error().as_deref(), Some("a\\0b"));
        clear_last_error();
        assert_eq!(last_error(), None);
    }

    #[test]
    fn the_last_error_is_per_thread() {
        set_last_error("here");
        std::thread::spawn(|| assert!(last_error_ptr().is_null()))
            .join()
            .unwrap();
        assert_eq!(last_error().as_deref(), Some("here"));
    }

    #[test]
    fn every_status_has_a_name() {
        for s in GHOSTMEM_OK..=GHOSTMEM_ERR_PIN_LIMIT {
            assert_ne!(status_name(s), c"unknown status", "{s}");
        }
        assert_eq!(status_name(99), c"unknown status");
    }
}
