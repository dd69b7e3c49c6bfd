#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
mod config;
mod error;
mod global;
mod heap;
mod instance;
mod page;
mod pager;
mod registry;
mod stats;
pub mod store;
mod sys;

pub use config::{
    BACKEND_ENV, Config, ConfigBuilder, DEFAULT_ADDRESS_SPACE, DEFAULT_MAX_MEMORY_PAGES,
    MAX_PAGES_ENV, MIN_MAX_MEMORY_PAGES, SAMPLING_ENV, SPARES_ENV, default_max_memory_pages,
};
pub use error::{ConfigError, Error, FreeError, PinError};
pub use global::GhostGlobal;
pub use instance::{GhostMem, PinGuard};
pub use page::{PageId, page_size};
pub use stats::Stats;
pub use sys::FaultBackend;
