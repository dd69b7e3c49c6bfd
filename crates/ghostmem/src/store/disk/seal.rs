//! Sealing blocks: authenticated encryption binding each block to its page and slot.
//!
//! ```text
//!   sealed block in its slot (data length n, 24 bytes of overhead)
//!   ┌──────────────────┬───────────────────┬────────────────────────────┐
//!   │ counter (8, LE)  │ tag (16)          │ ciphertext (n)             │
//!   └──────────────────┴───────────────────┴────────────────────────────┘
//!   nonce            = counter ‖ 0u32  (96 bits)
//!   associated data  = page id (u32 LE) ‖ n (u32 LE) ‖ BlockRef (u64 LE: slot, class, generation)
//! ```
//!
//! - **Key**: 256 bits from the OS random source (`getrandom`), made when the store opens and
//!   never written anywhere: the cipher state lives in its own anonymous mapping, locked in
//!   RAM when the memory-lock limit allows (never swapped by the kernel), excluded from core
//!   dumps, and zeroed on drop (the AEAD crates' `zeroize` feature, then the mapping is unmapped).
//! - **Nonce**: a 64-bit counter, one value per sealed block, never reused under the key:
//!   `seal` refuses ([`StoreError::Io`]`(EOVERFLOW)`) rather than wrap. The counter is stored in
//!   the block; changing it only makes authentication fail.
//! - **Associated data**: the page id, the length and the `BlockRef`, whose slot generation
//!   changes on every write into the slot (the pager keeps it, not the file). A block copied
//!   to another slot or page, cut short, or an older version of the same slot written back,
//!   fails authentication.
//!
//! The AEAD (chosen by measurement, `docs/aead.md`) is AES-256-GCM where the CPU has AES and
//! carry-less multiply instructions (2.5–3.5× faster than ChaCha20-Poly1305 there), and
//! ChaCha20-Poly1305 elsewhere (3.5–4× faster than AES-GCM in constant-time software). Both
//! are RustCrypto crates used through the detached in-out API, which never allocates (their
//! `alloc` features are off).
#![allow(unsafe_code)]

use std::ptr::NonNull;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use rustix::io::Errno;
use zeroize::Zeroizing;

use super::slots::Mapping;
use crate::page::PageId;
use crate::store::{BlockRef, StoreError};

const COUNTER_BYTES: usize = 8;
const TAG_BYTES: usize = 16;
/// Bytes a sealed block takes besides its data.
pub(crate) const OVERHEAD: usize = COUNTER_BYTES + TAG_BYTES;

/// The AEAD that seals a disk store's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cipher {
    /// AES-256-GCM (RustCrypto `aes-gcm`): fastest where the CPU has AES and carry-less
    /// multiply instructions (x86-64 AES-NI + PCLMULQDQ, ARMv8 AES + PMULL).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RustCrypto `chacha20poly1305`): fastest without them.
    ChaCha20Poly1305,
}

impl Cipher {
    /// The faster of the two on this CPU (see `docs/aead.md`).
    pub fn preferred() -> Cipher {
        if hardware_aes() {
            Cipher::Aes256Gcm
        } else {
            Cipher::ChaCha20Poly1305
        }
    }

    /// The algorithm's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
fn hardware_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn hardware_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
fn hardware_aes() -> bool {
    false
}

#[allow(
    clippy::large_enum_variant,
    reason = "lives alone in its own page-sized mapping"
)]
enum Aead {
    Gcm(Aes256Gcm),
    ChaCha(ChaCha20Poly1305),
}

/// Why a sealed block was refused. Deliberately carries nothing: a failed authentication tells
/// nothing about the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused;

/// The cipher state and nonce counter.
struct State {
    aead: Aead,
    next: u64,
}

/// Seals and opens blocks under one random key.
pub(crate) struct Sealer {
    cipher: Cipher,
    /// A `State` lives at the start of this mapping.
    state: NonNull<State>,
    map: Mapping,
    locked: bool,
}

// SAFETY: `state` points into `map`, which the sealer exclusively owns; nothing is tied to a
// thread.
unsafe impl Send for Sealer {}

fn associated_data(page: PageId, len: usize, block: BlockRef) -> [u8; 16] {
    let mut ad = [0u8; 16];
    ad[..4].copy_from_slice(&page.0.to_le_bytes());
    // Lengths are at most a page; a larger one cannot authenticate anyway.
    ad[4..8].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    ad[8..].copy_from_slice(&block.0.to_le_bytes());
    ad
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..COUNTER_BYTES].copy_from_slice(&counter.to_le_bytes());
    n
}

impl Sealer {
    /// A sealer with a fresh random key.
    pub fn new(cipher: Cipher) -> Result<Sealer, SealerError> {
        let len = rustix::param::page_size().max(std::mem::size_of::<State>());
        let mut map = Mapping::new(len).map_err(SealerError::Memory)?;
        // Keep the key out of the kernel's swap and out of core dumps. Locking can fail under a
        // low RLIMIT_MEMLOCK; the key then stays protected by everything else, so it is not an
        // error, but it is reported by `key_locked`.
        let base = map.bytes_mut().as_mut_ptr();
        // SAFETY: `base..base + len` is our own mapping; mlock changes no memory contents.
        let locked = unsafe { rustix::mm::mlock(base.cast(), len) }.is_ok();
        // SAFETY: as above; DONTDUMP only changes what a core dump includes.
        unsafe { rustix::mm::madvise(base.cast(), len, rustix::mm::Advice::LinuxDontDump) }
            .map_err(SealerError::Memory)?;

        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut key[..]).map_err(SealerError::Random)?;
        let aead = match cipher {
            Cipher::Aes256Gcm => Aead::Gcm(Aes256Gcm::new(&(*key).into())),
            Cipher::ChaCha20Poly1305 => Aead::ChaCha(ChaCha20Poly1305::new(&(*key).into())),
        };
        let state = base.cast::<State>();
        debug_assert!(state.is_aligned());
        // SAFETY: the mapping is page-aligned (so aligned for `State`), at least
        // `size_of::<State>()` bytes, writable, and holds no value yet.
        unsafe { state.write(State { aead, next: 0 }) };
        Ok(Sealer {
            cipher,
            state: NonNull::new(state).expect("mappings are not null"),
            map,
            locked,
        })
    }

    fn state(&self) -> &State {
        // SAFETY: `state` was initialised in `new` and lives until `drop`; shared access through
        // `&self`.
        unsafe { self.state.as_ref() }
    }

    fn state_mut(&mut self) -> &mut State {
        // SAFETY: as `state`, exclusive through `&mut self`.
        unsafe { self.state.as_mut() }
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// Whether the key's memory is locked in RAM.
    pub fn key_locked(&self) -> bool {
        self.locked
    }

    /// Seal `data` for `page` in slot `block` into the start of `out`; return the sealed length
    /// (`data.len() + OVERHEAD`). Allocates nothing.
    pub fn seal(
        &mut self,
        page: PageId,
        block: BlockRef,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, StoreError> {
        let total = data.len() + OVERHEAD;
        let out = out
            .get_mut(..total)
            .ok_or(StoreError::Io(Errno::INVAL.raw_os_error()))?;
        let state = self.state_mut();
        let counter = state.next;
        // Refuse rather than wrap: a nonce is never used twice under the key.
        state.next = counter
            .checked_add(1)
            .ok_or(StoreError::Io(Errno::OVERFLOW.raw_os_error()))?;
        let (head, body) = out.split_at_mut(OVERHEAD);
        let ad = associated_data(page, data.len(), block);
        let n = nonce(counter).into();
        let buf = InOutBuf::new(data, body).expect("same lengths");
        let tag = match &state.aead {
            Aead::Gcm(a) => a.encrypt_inout_detached(&n, &ad, buf),
            Aead::ChaCha(a) => a.encrypt_inout_detached(&n, &ad, buf),
        }
        // Only over-long messages are refused, and a block is at most a page.
        .map_err(|_| StoreError::Io(Errno::MSGSIZE.raw_os_error()))?;
        head[..COUNTER_BYTES].copy_from_slice(&counter.to_le_bytes());
        head[COUNTER_BYTES..].copy_from_slice(&tag);
        Ok(total)
    }

    /// The decoder: authenticate `sealed` (as read from the file) as the block of `page` in
    /// slot `block`, and decrypt it into the start of `out`. Any bytes, any lengths: a clean
    /// [`Refused`] unless the block is exactly what `seal` wrote for that page and slot; `out`
    /// is not written then. Allocates nothing.
    pub fn open<'o>(
        &self,
        page: PageId,
        block: BlockRef,
        sealed: &[u8],
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Refused> {
        let len = sealed.len().checked_sub(OVERHEAD).ok_or(Refused)?;
        let out = out.get_mut(..len).ok_or(Refused)?;
        let (head, body) = sealed.split_at(OVERHEAD);
        let (counter, tag) = head.split_at(COUNTER_BYTES);
        let counter = u64::from_le_bytes(counter.try_into().expect("8 bytes"));
        let tag: [u8; TAG_BYTES] = tag.try_into().expect("16 bytes");
        let ad = associated_data(page, len, block);
        let n = nonce(counter).into();
        let buf = InOutBuf::new(body, &mut *out).expect("same lengths");
        match &self.state().aead {
            Aead::Gcm(a) => a.decrypt_inout_detached(&n, &ad, buf, &tag.into()),
            Aead::ChaCha(a) => a.decrypt_inout_detached(&n, &ad, buf, &tag.into()),
        }
        .map_err(|_| Refused)?;
        Ok(out)
    }

    /// Blocks sealed so far (the next nonce counter).
    #[cfg(test)]
    pub fn sealed_count(&self) -> u64 {
        self.state().next
    }

    /// Make the counter sit at `next` (tests of the exhaustion refusal).
    #[cfg(test)]
    pub fn set_counter(&mut self, next: u64) {
        self.state_mut().next = next;
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        // SAFETY: `state` holds the value written in `new`, dropped exactly once here; the AEAD
        // types zeroize their keys and key schedules in their own `Drop` (`zeroize` feature).
        unsafe { self.state.as_ptr().drop_in_place() };
        // Clear whatever else the state held (the counter, padding) before the mapping goes.
        zeroize::Zeroize::zeroize(self.map.bytes_mut());
        if self.locked {
            let bytes = self.map.bytes_mut();
            // SAFETY: unlocking our own mapping changes no memory contents.
            if let Err(e) = unsafe { rustix::mm::munlock(bytes.as_mut_ptr().cast(), bytes.len()) } {
                tracing::warn!(error = %e, "munlock of the disk store's key failed");
            }
        }
    }
}

/// Failures creating a [`Sealer`].
#[derive(Debug)]
pub(crate) enum SealerError {
    /// Mapping or advising the key's memory failed.
    Memory(Errno),
    /// The OS random source failed.
    Random(getrandom::Error),
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test patterns")]
mod tests {
    use super::*;

    fn both() -> [Sealer; 2] {
        [
            Sealer::new(Cipher::Aes256Gcm).unwrap(),
            Sealer::new(Cipher::ChaCha20Poly1305).unwrap(),
        ]
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        for mut s in both() {
            let data: Vec<u8> = (0..1500u32).map(|i| (i * 7) as u8).collect();
            let mut sealed = vec![0u8; 4096 + OVERHEAD];
            let mut out = vec![0u8; 4096];
            let b = BlockRef(99 << 29);
            let n = s.seal(PageId(3), b, &data, &mut sealed).unwrap();
            assert_eq!(n, data.len() + OVERHEAD);
            assert_eq!(
                s.open(PageId(3), b, &sealed[..n], &mut out).unwrap(),
                &data[..]
            );
            // Another page, another slot or generation, a shorter length: refused.
            assert_eq!(s.open(PageId(4), b, &sealed[..n], &mut out), Err(Refused));
            assert_eq!(
                s.open(PageId(3), BlockRef(b.0 + 1), &sealed[..n], &mut out),
                Err(Refused)
            );
            assert_eq!(
                s.open(PageId(3), b, &sealed[..n - 1], &mut out),
                Err(Refused)
            );
            // A second seal of the same data uses a new nonce: different bytes.
            let mut again = vec![0u8; n];
            s.seal(PageId(3), b, &data, &mut again).unwrap();
            assert_ne!(again[OVERHEAD..], sealed[OVERHEAD..n]);
            assert_eq!(s.sealed_count(), 2);
        }
    }

    #[test]
    fn counter_refuses_to_wrap() {
        for mut s in both() {
            let mut out = vec![0u8; 64];
            s.set_counter(u64::MAX - 1);
            assert!(s.seal(PageId(0), BlockRef(0), b"x", &mut out).is_ok());
            assert_eq!(
                s.seal(PageId(0), BlockRef(0), b"x", &mut out),
                Err(StoreError::Io(Errno::OVERFLOW.raw_os_error()))
            );
        }
    }

    #[test]
    fn keys_differ_between_sealers() {
        let [mut a, _] = both();
        let mut b = Sealer::new(Cipher::Aes256Gcm).unwrap();
        let (mut x, mut y) = (vec![0u8; 64], vec![0u8; 64]);
        a.seal(PageId(0), BlockRef(0), &[0u8; 32], &mut x).unwrap();
        b.seal(PageId(0), BlockRef(0), &[0u8; 32], &mut y).unwrap();
        assert_ne!(x, y, "same nonce and data, different keys");
        let mut out = vec![0u8; 64];
        assert_eq!(
            b.open(PageId(0), BlockRef(0), &x[..56], &mut out),
            Err(Refused)
        );
    }
}
