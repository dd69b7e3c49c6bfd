//! `ghostmem_stats_t`: the C form of [`ghostmem::Stats`], generated from the same field list
//! (`ghostmem::__stats_fields`), so the two cannot drift apart. `scripts/check-c-header.py`
//! holds `ghostmem.h` and the C++ header to that list.

use ghostmem::Stats;

macro_rules! c_stats {
    ($($(#[doc = $doc:expr])* $name:ident: $kind:ident,)*) => {
        /// A snapshot of one instance's statistics. Gauges describe the moment of the
        /// snapshot; counters count since the instance was created. New fields are only ever
        /// appended, and `ghostmem_get_stats` fills as many bytes as the caller says its struct
        /// has.
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[allow(non_camel_case_types)]
        pub struct ghostmem_stats_t {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl From<&Stats> for ghostmem_stats_t {
            fn from(s: &Stats) -> Self {
                ghostmem_stats_t {
                    $($name: s.$name,)*
                }
            }
        }
    };
}

ghostmem::__stats_fields!(c_stats);
