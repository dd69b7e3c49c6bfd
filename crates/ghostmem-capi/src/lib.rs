#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod config;
mod log;
mod stats;
mod status;

pub use api::*;
pub use config::ghostmem_config_t;
pub use log::LOG_ENV;
pub use stats::ghostmem_stats_t;
pub use status::{
    GHOSTMEM_ERR_CONFIG, GHOSTMEM_ERR_DOUBLE_FREE, GHOSTMEM_ERR_FOREIGN_POINTER,
    GHOSTMEM_ERR_INTERNAL, GHOSTMEM_ERR_INVALID_ARGUMENT, GHOSTMEM_ERR_NOT_ALLOCATED,
    GHOSTMEM_ERR_NOT_PINNED, GHOSTMEM_ERR_OTHER, GHOSTMEM_ERR_OUT_OF_MEMORY,
    GHOSTMEM_ERR_PIN_LIMIT, GHOSTMEM_ERR_SIZE_MISMATCH, GHOSTMEM_ERR_SYSTEM, GHOSTMEM_OK,
    ghostmem_status_t,
};
