//! How a page is encoded when it is evicted.
//!
//! Before any compressor runs, [`classify`] looks for the two cases that need no data at all:
//! an all-zero page and a page filled with one repeated 8-byte word. Everything else goes to a
//! [`Codec`]; a page that does not shrink to [`compressed_limit`] (3/4 of a page) is stored raw,
//! since decompressing it would cost time for almost no saving.

mod lz4;

pub use lz4::Lz4;

/// What [`classify`] found in a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageClass {
    /// Every byte is zero.
    Zero,
    /// The page is one 8-byte word (native byte order) repeated.
    Same(u64),
    /// Anything else.
    Data,
}

/// Classify a page (its length must be a multiple of 8).
pub fn classify(page: &[u8]) -> PageClass {
    let mut words = page
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().expect("chunks of 8")));
    let Some(first) = words.next() else {
        return PageClass::Zero;
    };
    if words.all(|w| w == first) {
        if first == 0 {
            PageClass::Zero
        } else {
            PageClass::Same(first)
        }
    } else {
        PageClass::Data
    }
}

/// Fill `page` with the repeated word `word` (the inverse of [`PageClass::Same`]).
pub fn fill_same(page: &mut [u8], word: u64) {
    for w in page.chunks_exact_mut(8) {
        w.copy_from_slice(&word.to_ne_bytes());
    }
}

/// The largest encoded size worth keeping: 3/4 of a page. Larger results are stored raw.
pub fn compressed_limit(page_size: usize) -> usize {
    page_size / 4 * 3
}

/// A decoding failure: the stored bytes are not a valid encoding of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stored block does not decode to a full page")]
pub struct CodecError;

/// A page compressor.
///
/// # Contract
/// `compress` and `decompress` run inside the page-fault handler, possibly in a signal
/// handler on a small alternate stack, while the global allocator may itself be ghost memory.
/// An implementation must therefore never allocate (all working memory is allocated when it is
/// created), never take a lock, never block, and use little stack.
pub trait Codec: Send {
    /// Compress `page` into `out`. Returns the compressed length, or `None` when the result
    /// would not fit in `out` (the caller then stores the page raw).
    fn compress(&mut self, page: &[u8], out: &mut [u8]) -> Option<usize>;
    /// Decompress `data` into `out`, which must be filled exactly.
    fn decompress(&mut self, data: &[u8], out: &mut [u8]) -> Result<(), CodecError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_finds_zero_same_and_data() {
        let mut page = vec![0u8; 4096];
        assert_eq!(classify(&page), PageClass::Zero);
        fill_same(&mut page, 0xdead_beef_0000_0001);
        assert_eq!(classify(&page), PageClass::Same(0xdead_beef_0000_0001));
        page[4095] ^= 1;
        assert_eq!(classify(&page), PageClass::Data);
        page.fill(0);
        page[0] = 1;
        assert_eq!(classify(&page), PageClass::Data);
    }

    #[test]
    fn compressed_limit_is_three_quarters_of_a_page() {
        assert_eq!(compressed_limit(4096), 3072);
        assert_eq!(compressed_limit(16384), 12288);
    }
}
