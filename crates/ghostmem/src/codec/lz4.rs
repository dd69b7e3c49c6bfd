//! LZ4 through the C library (bundled by `lz4-sys`).
//!
//! Chosen over `lz4_flex` by measurement on 4 KiB pages (`docs/codec.md`): the two tie on
//! speed, and the fault path decides. `lz4_flex::block::compress_into` builds its hash table on
//! every call — an 8 KiB heap allocation with its default `alloc` feature, or 16.7 KiB of stack
//! without it, more than a signal stack holds. `LZ4_compress_fast_extState` takes a state we
//! allocate once and uses about 250 bytes of stack.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};

use super::{Codec, CodecError};
use crate::sys::FaultBuffer;

use lz4_sys as _; // links liblz4

unsafe extern "C" {
    fn LZ4_sizeofState() -> c_int;
    fn LZ4_compress_fast_extState(
        state: *mut c_void,
        src: *const c_char,
        dst: *mut c_char,
        src_size: c_int,
        dst_capacity: c_int,
        acceleration: c_int,
    ) -> c_int;
    fn LZ4_decompress_safe(
        src: *const c_char,
        dst: *mut c_char,
        compressed_size: c_int,
        dst_capacity: c_int,
    ) -> c_int;
}

/// LZ4 block compression with a preallocated state (no allocation per call).
pub struct Lz4 {
    /// Mapped directly, so that it takes RAM only once the codec compresses: a pager keeps a
    /// codec for each of the faults that may run at once, and one thread uses one or two.
    state: FaultBuffer,
}

impl Lz4 {
    /// Map the compression state (about 16 KiB).
    ///
    /// # Panics
    ///
    /// If the system refuses the mapping (as a failed allocation would abort).
    pub fn new() -> Self {
        // SAFETY: a pure function of the library's configuration.
        let bytes = usize::try_from(unsafe { LZ4_sizeofState() }).expect("state size");
        Lz4 {
            state: FaultBuffer::new(bytes).expect("mapping the LZ4 compression state"),
        }
    }
}

impl Default for Lz4 {
    fn default() -> Self {
        Self::new()
    }
}

fn len_c(n: usize) -> c_int {
    c_int::try_from(n).expect("page-sized buffers fit in c_int")
}

impl Codec for Lz4 {
    fn compress(&mut self, page: &[u8], out: &mut [u8]) -> Option<usize> {
        // SAFETY: `state` is page-aligned and at least LZ4_sizeofState() bytes; `page` and
        // `out` are valid for the lengths passed. The call writes at most `out.len()` bytes and
        // returns 0 when the result does not fit.
        let n = unsafe {
            LZ4_compress_fast_extState(
                self.state.as_mut_ptr().cast(),
                page.as_ptr().cast(),
                out.as_mut_ptr().cast(),
                len_c(page.len()),
                len_c(out.len()),
                1,
            )
        };
        usize::try_from(n).ok().filter(|&n| n > 0)
    }

    fn decompress(&mut self, data: &[u8], out: &mut [u8]) -> Result<(), CodecError> {
        // SAFETY: LZ4_decompress_safe never reads past `data.len()` nor writes past `out.len()`,
        // whatever the input bytes; a malformed input gives a negative result.
        let n = unsafe {
            LZ4_decompress_safe(
                data.as_ptr().cast(),
                out.as_mut_ptr().cast(),
                len_c(data.len()),
                len_c(out.len()),
            )
        };
        if usize::try_from(n) == Ok(out.len()) {
            Ok(())
        } else {
            Err(CodecError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_raw_fallback() {
        let mut lz = Lz4::new();
        let page: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8).collect();
        let mut out = vec![0u8; 3072];
        let n = lz
            .compress(&page, &mut out)
            .expect("repetitive data compresses");
        assert!(n < 200, "compressed to {n}");
        let mut back = vec![0u8; 4096];
        lz.decompress(&out[..n], &mut back).unwrap();
        assert_eq!(back, page);

        // Pseudo-random bytes do not fit in 3/4 of a page.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        assert_eq!(lz.compress(&noise, &mut out), None);

        // Garbage never decodes into a full page and never panics.
        assert_eq!(lz.decompress(&[0xff; 17], &mut back), Err(CodecError));
        assert_eq!(lz.decompress(&out[..n - 1], &mut back), Err(CodecError));
    }
}
