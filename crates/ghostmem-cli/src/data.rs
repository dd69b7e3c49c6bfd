//! Deterministic data: a small PRNG, the value pattern of the benchmarks and the mixed pages of
//! the demo. Everything is a pure function of a seed and a position, so a verifier regenerates
//! the expected bytes instead of keeping a copy.

use std::io::Write as _;

/// SplitMix64: tiny, fast, and good enough to pick pages and make noise.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose sequence depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// A value in `0..n` (`n > 0`), by multiply-shift (no modulo bias worth mentioning).
    pub fn below(&mut self, n: u64) -> u64 {
        let wide = (u128::from(self.next_u64()) * u128::from(n)) >> 64;
        u64::try_from(wide).expect("the high half of a 128-bit product fits in 64 bits")
    }

    /// An index in `0..n` (`n > 0`).
    pub fn index(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n).expect("usize fits in u64");
        usize::try_from(self.below(n64)).expect("a value below a usize fits in usize")
    }

    /// True with probability `p` (`p` in `0.0..=1.0`; 1.0 is always true, 0.0 never).
    pub fn chance(&mut self, p: f64) -> bool {
        // 53 random bits: exactly representable, uniform over [0, 1) in steps of 2^-53.
        #[allow(clippy::cast_precision_loss, reason = "53 bits fit an f64 exactly")]
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}

/// The SplitMix64 finalizer: a strong 64-bit mixing function, used as a hash.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for one position (page, thread, ...) derived from the run's seed.
pub fn derive_seed(seed: u64, position: u64) -> u64 {
    mix64(seed ^ mix64(position.wrapping_add(0x6A09_E667_F3BC_C908)))
}

/// The value the benchmarks store in word `index` of their region: distinct for every group of
/// four words and mostly constant high bytes, so pages compress the way typical integer data
/// does (several-fold with LZ4, never to a zero or same-filled tag).
pub fn seq_value(index: u64) -> u64 {
    0x5EED_0000_0000_0000 | (index >> 2)
}

/// The kinds of content the demo mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// Application log lines (ASCII text).
    Text,
    /// Arrays of integer records (ids, timestamps, measurements).
    Numbers,
    /// Untouched or cleared buffers.
    Zeros,
    /// Memory filled with one repeated word (`0xff..`, a poison pattern, spaces).
    Filled,
    /// Compressed or encrypted blobs: random bytes.
    Random,
}

impl PageKind {
    /// The kind of demo page `page`. Kinds come in runs of eight pages, as buffers of one
    /// kind usually span several pages. Roughly: text 35%, numbers 25%, zeros 20%, filled 5%,
    /// random 15%.
    pub fn of(seed: u64, page: u64) -> Self {
        match derive_seed(seed, page / 8) % 100 {
            0..35 => Self::Text,
            35..60 => Self::Numbers,
            60..80 => Self::Zeros,
            80..85 => Self::Filled,
            _ => Self::Random,
        }
    }
}

/// Fill `out` (one page) with the demo's content for page number `page`.
pub fn fill_demo_page(seed: u64, page: u64, out: &mut [u8]) {
    let mut rng = SplitMix64::new(derive_seed(seed, page ^ 0xD1B5_4A32_D192_ED03));
    match PageKind::of(seed, page) {
        PageKind::Text => fill_text(&mut rng, page, out),
        PageKind::Numbers => fill_numbers(&mut rng, page, out),
        PageKind::Zeros => out.fill(0),
        PageKind::Filled => {
            const WORDS: [u64; 4] = [
                u64::MAX,
                0xDEAD_BEEF_DEAD_BEEF,
                0x2020_2020_2020_2020,
                0x0000_0001_0000_0001,
            ];
            let word = WORDS[rng.index(WORDS.len())].to_le_bytes();
            fill_words(out, || word);
        }
        PageKind::Random => fill_words(out, || rng.next_u64().to_le_bytes()),
    }
}

/// Fill `out` with 8-byte words from `next` (a short tail gets a prefix of one more word).
fn fill_words(out: &mut [u8], mut next: impl FnMut() -> [u8; 8]) {
    for chunk in out.chunks_mut(8) {
        let word = next();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// Log lines such as
/// `2025-06-14 03:25:07.412 INFO  [db] query returned rows from orders id=48213 took=12ms`.
fn fill_text(rng: &mut SplitMix64, page: u64, out: &mut [u8]) {
    const LEVELS: [&str; 8] = [
        "INFO ", "INFO ", "INFO ", "INFO ", "DEBUG", "DEBUG", "WARN ", "ERROR",
    ];
    const COMPONENTS: [&str; 6] = ["http", "db", "cache", "auth", "scheduler", "storage"];
    const WORDS: [&str; 24] = [
        "request",
        "completed",
        "user",
        "session",
        "opened",
        "closed",
        "query",
        "returned",
        "rows",
        "from",
        "orders",
        "customers",
        "retrying",
        "connection",
        "timeout",
        "served",
        "file",
        "index.html",
        "cache",
        "miss",
        "hit",
        "for",
        "key",
        "upstream",
    ];
    let mut millis = (page * 9_731) % (24 * 3_600_000);
    let day = 1 + page % 28;
    let mut cursor = &mut out[..];
    while !cursor.is_empty() {
        millis = (millis + rng.below(900)) % (24 * 3_600_000);
        let (h, m, s, ms) = (
            millis / 3_600_000,
            millis / 60_000 % 60,
            millis / 1000 % 60,
            millis % 1000,
        );
        let level = LEVELS[rng.index(LEVELS.len())];
        let component = COMPONENTS[rng.index(COMPONENTS.len())];
        // A full page ends the writes with an error, which is the point: stop there.
        let _ = write!(
            cursor,
            "2025-06-{day:02} {h:02}:{m:02}:{s:02}.{ms:03} {level} [{component}]"
        );
        for _ in 0..2 + rng.below(5) {
            let _ = write!(cursor, " {}", WORDS[rng.index(WORDS.len())]);
        }
        let _ = writeln!(
            cursor,
            " id={} took={}ms",
            10_000 + rng.below(90_000),
            rng.below(250)
        );
    }
}

/// Records of `id: u64, timestamp_ms: u64, value: i64, status: u32, flags: u32` (32 bytes,
/// little-endian): ids count up, timestamps advance irregularly, values random-walk.
fn fill_numbers(rng: &mut SplitMix64, page: u64, out: &mut [u8]) {
    let mut id = page * 1_000;
    let mut timestamp: u64 = 1_750_000_000_000 + page * 60_000;
    let mut value: i64 = 20_000;
    let flags: u32 = 0x0100_0000 | u32::from(rng.below(4) == 0);
    let mut record = [0u8; 32];
    for chunk in out.chunks_mut(32) {
        id += 1;
        timestamp += 5 + rng.below(20);
        value += i64::try_from(rng.below(33)).expect("below 33") - 16;
        let status: u32 = if rng.below(50) == 0 { 500 } else { 200 };
        record[0..8].copy_from_slice(&id.to_le_bytes());
        record[8..16].copy_from_slice(&timestamp.to_le_bytes());
        record[16..24].copy_from_slice(&value.to_le_bytes());
        record[24..28].copy_from_slice(&status.to_le_bytes());
        record[28..32].copy_from_slice(&flags.to_le_bytes());
        chunk.copy_from_slice(&record[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prng_is_deterministic_and_bounded() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert!(a.below(10) < 10);
            b.below(10);
            assert!(a.index(3) < 3);
            b.index(3);
        }
    }

    #[test]
    fn demo_pages_are_deterministic_and_mixed() {
        let mut kinds = std::collections::HashSet::new();
        let mut one = vec![0u8; 4096];
        let mut two = vec![1u8; 4096];
        for page in 0..2048 {
            fill_demo_page(42, page, &mut one);
            fill_demo_page(42, page, &mut two);
            assert_eq!(one, two, "page {page}");
            kinds.insert(format!("{:?}", PageKind::of(42, page)));
        }
        assert_eq!(kinds.len(), 5, "all kinds appear: {kinds:?}");
    }

    #[test]
    fn text_pages_are_text() {
        let page = (0..)
            .find(|&p| PageKind::of(1, p) == PageKind::Text)
            .unwrap();
        let mut buf = vec![0u8; 4096];
        fill_demo_page(1, page, &mut buf);
        assert!(
            buf.iter()
                .all(|&b| b == b'\n' || (b' '..=b'~').contains(&b))
        );
        assert!(std::str::from_utf8(&buf).unwrap().starts_with("2025-06-"));
    }
}
