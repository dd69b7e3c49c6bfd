//! Verbose logging for C and C++ programs: the engine reports through `tracing`, and a C
//! program has no subscriber, so the first configuration with `enable_verbose_logging` installs
//! one that writes to stderr.

use std::io::IsTerminal;
use std::sync::Once;

/// The environment variable with `tracing` filter directives for verbose logging
/// (default `ghostmem=debug`; `ghostmem=trace` adds every allocation and free).
pub const LOG_ENV: &str = "GHOSTMEM_LOG";

/// Install the stderr subscriber, once per process. If the process already has a global
/// `tracing` subscriber (a Rust program linking this crate), that one is kept.
pub(crate) fn enable() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Unset, empty or invalid: the default.
        let filter = std::env::var(LOG_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
            .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("ghostmem=debug"));
        let _already_set = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
    });
}
